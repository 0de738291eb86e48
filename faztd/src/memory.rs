//! Giving memory back to the system after a burst.
//!
//! glibc keeps what a thread frees in that thread's arena for reuse; a
//! burst of work (thousands of half-sent request heads, a JavaScript
//! memory bomb) can leave hundreds of MiB of free but resident memory
//! behind, which looks to the operator like a leak. `malloc_trim` hands the
//! free pages of every arena back. It walks the free lists, so it is called
//! after a burst, never per request.

/// Returns memory the allocator holds but no longer uses to the system.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Tells when a count of things that hold memory (open connections, bytes
/// of realtime history) has fallen well below its peak since the last
/// release, which is when a release is worth its cost.
#[derive(Debug)]
pub struct PeakWatch {
    peak: usize,
    /// Below this peak a burst is too small to be worth a release.
    worth_it: usize,
}

impl Default for PeakWatch {
    /// A watch over a count of connections: 256 of them is a burst.
    fn default() -> PeakWatch {
        PeakWatch::new(256)
    }
}

impl PeakWatch {
    /// A watch for which a peak under `worth_it` is not a burst.
    pub fn new(worth_it: usize) -> PeakWatch {
        PeakWatch { peak: 0, worth_it }
    }

    /// Notes `now`; true once `now` has fallen to half of a peak of at
    /// least `worth_it` (the peak then starts again from `now`).
    pub fn fell(&mut self, now: usize) -> bool {
        self.peak = self.peak.max(now);
        if self.peak >= self.worth_it && now <= self.peak / 2 {
            self.peak = now;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_follows_a_large_burst_once() {
        let mut watch = PeakWatch::default();
        assert!(!watch.fell(10));
        assert!(!watch.fell(2000));
        assert!(!watch.fell(1500));
        assert!(watch.fell(900));
        assert!(!watch.fell(800), "the peak starts again after a release");
        assert!(watch.fell(0), "900 of them leaving is a burst of its own");
        assert!(!watch.fell(0));
    }

    #[test]
    fn small_bursts_are_left_alone() {
        let mut watch = PeakWatch::default();
        assert!(!watch.fell(200));
        assert!(!watch.fell(0));
    }
}
