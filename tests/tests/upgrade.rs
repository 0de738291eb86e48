//! `faztctl upgrade` against a daemon running from its own copy of the
//! binary (not under systemd: the systemd restart path is covered in
//! systemd_user.rs). The new binary must run and say it is faztd; anything
//! else is refused and the running binary is left byte for byte.

use std::os::unix::fs::PermissionsExt;

use fazt_e2e::daemon::Faztd;
use fazt_e2e::{bin, http};

fn installed_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("bin/faztd");
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    std::fs::copy(bin("faztd"), &exe).unwrap();
    (dir, exe)
}

#[test]
fn a_working_binary_is_swapped_in_and_a_broken_one_is_refused() {
    let (dir, exe) = installed_copy();
    let d = Faztd::start_program(&exe, &dir.path().join("data"), &[]).unwrap();
    let original = std::fs::read(&exe).unwrap();

    // A "binary" that does not run as faztd: refused, nothing changes.
    let fake = dir.path().join("fake-faztd");
    std::fs::write(&fake, "#!/bin/sh\necho 'hello from a script'\nexit 3\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = d.ctl(&["upgrade", "--binary", fake.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("refused") && out.stderr.contains("unchanged"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read(&exe).unwrap() == original,
        "the running binary is untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(exe.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".faztd-upgrade")
        })
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left behind");
    assert_eq!(
        http::get(d.addr, "localhost", "/", &[]).status,
        200,
        "still serving"
    );

    // A real faztd (here: a marked copy of the same build) is swapped in.
    let mut marked = std::fs::read(bin("faztd")).unwrap();
    marked.extend_from_slice(b"\0fazt-upgrade-test-marker");
    let new = dir.path().join("new-faztd");
    std::fs::write(&new, &marked).unwrap();
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = d
        .ctl(&["upgrade", "--binary", new.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(out["installed"], true);
    assert_eq!(out["restarted"], false, "not under systemd");
    assert!(out["new_version"]
        .as_str()
        .unwrap()
        .starts_with(env!("CARGO_PKG_VERSION")));
    assert!(
        std::fs::read(&exe).unwrap() == marked,
        "the executable now holds the new binary"
    );
    let mode = std::fs::metadata(&exe).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(
        http::get(d.addr, "localhost", "/", &[]).status,
        200,
        "the running daemon kept serving"
    );
}
