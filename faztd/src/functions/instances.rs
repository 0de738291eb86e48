//! Fresh module instances for every request, from bytecode compiled once.
//!
//! A context is reused for many requests of a site, but module-level state
//! (`let count = 0` at the top of a file) must not survive from one request
//! to the next. QuickJS keeps one instance per module *name* in a context, so
//! each request loads its modules under names of its own: `api/hello.js`
//! becomes `api/hello.js@fazt:000000000042` for request 42, and its
//! `import "./lib.js"` resolves to `api/lib.js@fazt:000000000042`. Within a
//! request a module is still loaded once (two importers share it, cycles
//! work); across requests nothing is shared.
//!
//! Compiling per request would be slow, so a module is compiled once under a
//! placeholder name and the request's number is written into a copy of the
//! bytecode. QuickJS stores a module's name once in the bytecode's atom table
//! as plain text (Latin-1 bytes, or UTF-16 when the name needs it), so the
//! placeholder's digits can be replaced in place (the header's checksum is
//! then marked absent, which QuickJS allows); `compile` checks that the
//! digits were found, and the tests below would catch a format change.

use std::borrow::Cow;

use rquickjs::module::{Declared, WriteOptions};
use rquickjs::{Ctx, Module};

/// What separates a module's path from its instance number.
const TAG: &str = "@fazt:";
/// Digits of an instance number (enough for a worker's lifetime).
const DIGITS: usize = 12;
/// The instance number compiled into the bytecode, replaced on load.
const PLACEHOLDER_DIGITS: &str = "000000000000";
/// The largest instance number that fits.
const MAX_INSTANCE: u64 = 10u64.pow(DIGITS as u32) - 1;

/// The instance number after `previous`: from 1 up, wrapping round (the
/// contexts holding low numbers are long retired by then).
pub fn next_instance(previous: u64) -> u64 {
    previous % MAX_INSTANCE + 1
}

/// A module compiled once, loadable as any number of instances.
#[derive(Debug)]
pub struct Compiled {
    bytecode: Vec<u8>,
    /// Where the placeholder's digits sit, and whether they are UTF-16.
    slots: Vec<(usize, bool)>,
}

/// The name of a module's instance for request `instance`.
pub fn instance_name(path: &str, instance: u64) -> String {
    format!("{path}{TAG}{instance:0width$}", width = DIGITS)
}

/// Splits an instance name into the module's path and the instance number.
pub fn split_instance_name(name: &str) -> (&str, Option<u64>) {
    if let Some(at) = name.rfind(TAG) {
        let digits = &name[at + TAG.len()..];
        if digits.len() == DIGITS {
            if let Ok(n) = digits.parse() {
                return (&name[..at], Some(n));
            }
        }
    }
    (name, None)
}

/// Removes instance numbers from a message (a stack trace, an error) so
/// users see their own file names.
pub fn strip_instance_names(message: &str) -> Cow<'_, str> {
    if !message.contains(TAG) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(TAG) {
        out.push_str(&rest[..at]);
        let after = &rest[at + TAG.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == DIGITS {
            rest = &after[DIGITS..];
        } else {
            out.push_str(TAG);
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

impl Compiled {
    /// Compiles `source` as the module at `path`. The module declared while
    /// compiling stays in `ctx` under the placeholder name, which no request
    /// uses (instance numbers start at 1).
    pub fn compile(ctx: &Ctx<'_>, path: &str, source: Vec<u8>) -> rquickjs::Result<Compiled> {
        let name = format!("{path}{TAG}{PLACEHOLDER_DIGITS}");
        let module = Module::declare(ctx.clone(), name.as_str(), source)?;
        let mut bytecode = module.write(WriteOptions::default())?;
        // The header's checksum (bytes 1..5, after the format version) will
        // not match once digits are patched in; QuickJS accepts all-ones as
        // "not checksummed". The check guards bytes read from outside, and
        // these never are.
        bytecode[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let slots = find_slots(&bytecode, &name);
        if slots.is_empty() {
            return Err(rquickjs::Error::new_loading_message(
                path,
                "the module's name was not found in its bytecode",
            ));
        }
        Ok(Compiled { bytecode, slots })
    }

    /// Loads instance number `instance` of the module into `ctx`.
    pub fn instantiate<'js>(
        &self,
        ctx: &Ctx<'js>,
        instance: u64,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let digits = format!("{instance:0width$}", width = DIGITS);
        let mut bytecode = self.bytecode.clone();
        for &(at, wide) in &self.slots {
            if wide {
                for (i, b) in digits.bytes().enumerate() {
                    bytecode[at + 2 * i] = b;
                    bytecode[at + 2 * i + 1] = 0;
                }
            } else {
                bytecode[at..at + DIGITS].copy_from_slice(digits.as_bytes());
            }
        }
        // SAFETY: the bytecode was written by `Module::write` of this QuickJS
        // build in this process (never read from outside), and only the
        // digits of a name in its atom table were changed, same length.
        unsafe { Module::load(ctx.clone(), &bytecode) }
    }
}

/// Where the placeholder digits of `name` occur in `bytecode`: as Latin-1
/// bytes, or as UTF-16LE when the name has characters beyond Latin-1.
fn find_slots(bytecode: &[u8], name: &str) -> Vec<(usize, bool)> {
    // The placeholder is ASCII: as Latin-1 its bytes are its UTF-8 bytes.
    let needle = format!("{TAG}{PLACEHOLDER_DIGITS}");
    let wide = name.chars().any(|c| (c as u32) > 0xff);
    let (pattern, unit): (Vec<u8>, usize) = if wide {
        let utf16 = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
        (utf16, 2)
    } else {
        (needle.into_bytes(), 1)
    };
    memchr::memmem::find_iter(bytecode, &pattern)
        .map(|at| (at + unit * TAG.len(), wide))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_round_trip() {
        let name = instance_name("api/users/[id].js", 42);
        assert_eq!(name, "api/users/[id].js@fazt:000000000042");
        assert_eq!(split_instance_name(&name), ("api/users/[id].js", Some(42)));
        assert_eq!(split_instance_name("api/hello.js"), ("api/hello.js", None));
        assert_eq!(
            split_instance_name("api/a@fazt:12.js"),
            ("api/a@fazt:12.js", None)
        );
    }

    #[test]
    fn messages_lose_instance_numbers_only() {
        let trace = "at api/a.js@fazt:000000000007:3:5\nat api/b.js@fazt:000000000007:1";
        assert_eq!(
            strip_instance_names(trace),
            "at api/a.js:3:5\nat api/b.js:1"
        );
        assert_eq!(
            strip_instance_names("user text @fazt:12"),
            "user text @fazt:12"
        );
        assert!(matches!(
            strip_instance_names("plain"),
            Cow::Borrowed("plain")
        ));
    }

    fn with_ctx(f: impl FnOnce(&Ctx<'_>)) {
        let rt = rquickjs::Runtime::new().unwrap();
        let context = rquickjs::Context::full(&rt).unwrap();
        context.with(|ctx| f(&ctx));
    }

    #[test]
    fn each_instance_has_its_own_state() {
        for path in ["api/count.js", "api/日本.js"] {
            with_ctx(|ctx| {
                let source = b"let n = 0; export const next = () => ++n;".to_vec();
                let compiled = Compiled::compile(ctx, path, source).unwrap();
                for instance in 1..=3 {
                    let module = compiled
                        .instantiate(ctx, instance)
                        .map_err(|e| {
                            let caught = ctx.catch();
                            format!("{e}: {caught:?} slots {:?}", compiled.slots)
                        })
                        .unwrap();
                    assert_eq!(
                        module.name::<String>().unwrap(),
                        instance_name(path, instance)
                    );
                    let (module, done) = module.eval().unwrap();
                    done.finish::<()>().unwrap();
                    let next: rquickjs::Function = module.get("next").unwrap();
                    assert_eq!(next.call::<_, i32>(()).unwrap(), 1, "{path} #{instance}");
                    assert_eq!(next.call::<_, i32>(()).unwrap(), 2);
                }
            });
        }
    }
}
