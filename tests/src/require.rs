//! What a test needs from the machine that it cannot set up itself: root,
//! an sshd, the programs a systemd user manager is made of.
//!
//! A test that lacks something must never pass as if it had run. Where the
//! environment variable `CI` is set (to anything but `""`, `0` or `false`)
//! it fails, saying what is missing and how to install it, so a green CI
//! run means every test ran. Elsewhere it skips, and says so on the
//! terminal even though the test harness captures a passing test's output.
//!
//! Use [`skip_unless!`](crate::skip_unless) at the top of the test with one
//! or more checks from [`missing_root`], [`missing_programs`] or the
//! helpers' own (`sshd::missing`, `systemd::missing_user_manager`), each an
//! `Option<String>`: `None` when all is there, or what is missing.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Skips the test (returns from it) unless every check passes; fails it
/// instead where `CI` is set. Each argument is an `Option<String>`, `Some`
/// naming what is missing.
///
/// ```no_run
/// fazt_e2e::skip_unless!(fazt_e2e::sshd::missing());
/// ```
#[macro_export]
macro_rules! skip_unless {
    ($($check:expr),+ $(,)?) => {
        $(
            if $crate::require::skip($check, module_path!()) {
                return;
            }
        )+
    };
}

/// Whether a test must stop here because `missing` is `Some`. Panics instead
/// when `CI` is set. Called by [`skip_unless!`](crate::skip_unless).
pub fn skip(missing: Option<String>, module: &str) -> bool {
    let Some(missing) = missing else {
        return false;
    };
    let test = match std::thread::current().name() {
        Some(name) if name != "main" => format!("{module}::{name}"),
        _ => module.to_string(),
    };
    let said = skipped(&test, &missing, in_ci());
    // Straight to the terminal: `eprintln!` would be captured by the test
    // harness and shown only for failures.
    let _ = writeln!(std::io::stderr(), "{said}");
    true
}

/// The line a skipped test prints; a panic instead where `in_ci`.
fn skipped(test: &str, missing: &str, in_ci: bool) -> String {
    if in_ci {
        panic!(
            "{test} cannot run: {missing}. CI is set, so this fails instead of skipping \
             (a green CI run must mean every test ran)"
        );
    }
    format!("SKIPPED {test}: {missing} (set CI=1 to make this a failure)")
}

/// Whether the environment variable `CI` is set (as CI services set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// `Some(reason)` unless the tests run as root.
pub fn missing_root(why: &str) -> Option<String> {
    (!nix::unistd::geteuid().is_root()).then(|| format!("needs root ({why})"))
}

/// `Some(what to install)` for the first of `programs` (name or absolute
/// path, and the Debian package that has it) not found on this machine.
pub fn missing_programs(programs: &[(&str, &str)]) -> Option<String> {
    let missing: Vec<_> = programs
        .iter()
        .filter(|(program, _)| find_program(program).is_none())
        .collect();
    if missing.is_empty() {
        return None;
    }
    let names: Vec<&str> = missing.iter().map(|(program, _)| *program).collect();
    let mut packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    packages.sort_unstable();
    packages.dedup();
    Some(format!(
        "{} not found: install with `apt-get install {}` (as root, scripts/test-deps.sh does it)",
        names.join(", "),
        packages.join(" ")
    ))
}

/// Where `program` is: an absolute path if it exists, else the first match
/// on `PATH` or in the sbin directories (which a normal user's `PATH` lacks).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.starts_with('/') {
        return Path::new(program).exists().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_missing_runs_the_test() {
        assert!(!skip(None, "m"));
    }

    #[test]
    fn something_missing_skips_outside_ci_and_says_so() {
        assert_eq!(
            skipped("m::t", "no sshd", false),
            "SKIPPED m::t: no sshd (set CI=1 to make this a failure)"
        );
    }

    #[test]
    #[should_panic(expected = "m::t cannot run: no sshd. CI is set")]
    fn something_missing_fails_in_ci() {
        skipped("m::t", "no sshd", true);
    }

    #[test]
    fn missing_programs_name_the_package() {
        assert_eq!(missing_programs(&[("sh", "dash")]), None);
        let missing = missing_programs(&[
            ("fazt-no-such-program", "fazt-pkg"),
            ("/fazt/no/such/file", "fazt-pkg"),
        ])
        .expect("missing");
        assert!(
            missing.contains("fazt-no-such-program, /fazt/no/such/file not found"),
            "{missing}"
        );
        assert!(missing.contains("apt-get install fazt-pkg`"), "{missing}");
    }
}
