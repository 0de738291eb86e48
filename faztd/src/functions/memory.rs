//! The allocator of a worker's QuickJS runtime: Rust's global allocator,
//! counting the bytes the runtime holds.
//!
//! QuickJS enforces the memory limit itself; the count is for the engine,
//! which must know cheaply, after every request, how much a reused context
//! has accumulated (each request's module instances stay in the context until
//! it is dropped), and retire contexts before they crowd the next request.
//! `Runtime::memory_usage` walks the whole heap, too slow to call per request.

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::allocator::{Allocator, RustAllocator};

/// Bytes currently allocated by the runtime, shared with the engine.
#[derive(Clone, Default)]
pub struct MemoryUse(Rc<Cell<usize>>);

impl MemoryUse {
    pub fn bytes(&self) -> usize {
        self.0.get()
    }

    fn grow(&self, by: usize) {
        self.0.set(self.0.get() + by);
    }

    fn shrink(&self, by: usize) {
        self.0.set(self.0.get().saturating_sub(by));
    }
}

pub struct CountingAllocator {
    pub used: MemoryUse,
}

// SAFETY: every call is forwarded to `RustAllocator`, which upholds the
// contract; the counting around it never touches the memory.
unsafe impl Allocator for CountingAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let ptr = RustAllocator.alloc(size);
        if !ptr.is_null() {
            // SAFETY: `ptr` was just allocated by `RustAllocator`.
            self.used.grow(unsafe { RustAllocator::usable_size(ptr) });
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let ptr = RustAllocator.calloc(count, size);
        if !ptr.is_null() {
            // SAFETY: `ptr` was just allocated by `RustAllocator`.
            self.used.grow(unsafe { RustAllocator::usable_size(ptr) });
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: the caller hands back memory this allocator gave out.
        unsafe {
            self.used.shrink(RustAllocator::usable_size(ptr));
            RustAllocator.dealloc(ptr);
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // SAFETY: the caller hands back memory this allocator gave out; on
        // failure the old block is left as it was (and still counted).
        unsafe {
            let old = RustAllocator::usable_size(ptr);
            let moved = RustAllocator.realloc(ptr, new_size);
            if !moved.is_null() {
                self.used.shrink(old);
                self.used.grow(RustAllocator::usable_size(moved));
            }
            moved
        }
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: forwarded with the caller's guarantee.
        unsafe { RustAllocator::usable_size(ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_the_runtime_holds() {
        let used = MemoryUse::default();
        let rt =
            rquickjs::Runtime::new_with_alloc(CountingAllocator { used: used.clone() }).unwrap();
        let context = rquickjs::Context::full(&rt).unwrap();
        let before = used.bytes();
        assert!(before > 0);
        context.with(|ctx| {
            ctx.eval::<(), _>("globalThis.big = 'x'.repeat(4 << 20);")
                .unwrap();
        });
        assert!(
            used.bytes() >= before + (4 << 20),
            "{} vs {before}",
            used.bytes()
        );
        context.with(|ctx| {
            ctx.eval::<(), _>("delete globalThis.big;").unwrap();
        });
        rt.run_gc();
        assert!(
            used.bytes() < before + (1 << 20),
            "{} vs {before}",
            used.bytes()
        );
    }
}
