//! The shell scripts: scripts/install.sh (cli mode into a `--prefix`, with
//! the already-built binaries through `--from-dir`) and scripts/test-deps.sh
//! (against stand-ins for `dpkg-query`, `apt-get` and `id`, so no package is
//! ever installed and both root and a normal user can be played).
//!
//! Everything a test creates lives in its temporary directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fazt_e2e::require::missing_root;
use fazt_e2e::skip_unless;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn run(cmd: &mut Command) -> Ran {
    let out = cmd.stdin(Stdio::null()).output().expect("the script runs");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// install.sh, with a scratch HOME (cli mode writes there only with --remote).
fn install_sh(dir: &Path, args: &[&str]) -> Ran {
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    run(Command::new("bash")
        .arg(script("install.sh"))
        .args(args)
        .current_dir(dir)
        .env("HOME", &home))
}

/// `install.sh --mode production --yes --domain example.org` with the
/// binaries under test, and `extra`: for the checks made before anything
/// is installed.
fn install_production(dir: &Path, extra: &[&str]) -> Ran {
    let from = fazt_e2e::bin_dir();
    let mut args = vec![
        "--mode",
        "production",
        "--yes",
        "--domain",
        "example.org",
        "--from-dir",
        from.to_str().unwrap(),
    ];
    args.extend(extra);
    install_sh(dir, &args)
}

fn version(faztctl: &Path) -> String {
    let out = Command::new(faztctl).arg("--version").output().unwrap();
    assert!(
        out.status.success(),
        "{} --version failed",
        faztctl.display()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn install_script_cli_mode_installs_into_the_prefix_and_says_so_first() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    let built = fazt_e2e::bin("faztctl");
    let from = built.parent().unwrap().to_str().unwrap().to_string();
    let args = [
        "--mode",
        "cli",
        "--yes",
        "--prefix",
        prefix.to_str().unwrap(),
        "--from-dir",
        &from,
    ];

    let first = install_sh(dir.path(), &args);
    let said = first.all();
    assert_eq!(first.code, Some(0), "{said}");
    let bin = prefix.join("bin");
    let installed = bin.join("faztctl");
    assert_eq!(version(&installed), version(&built));
    assert!(!bin.join("faztd").exists(), "cli mode installed faztd too");
    // The destination is named before anything is installed.
    let announced = said
        .lines()
        .position(|l| {
            l.contains("installing faztctl ") && l.contains(&format!("into {} ", bin.display()))
        })
        .unwrap_or_else(|| panic!("the destination was not announced:\n{said}"));
    let done = said
        .lines()
        .position(|l| l.contains(&format!("installed {}", installed.display())))
        .unwrap_or_else(|| panic!("no `installed` line:\n{said}"));
    assert!(announced < done, "announced after installing:\n{said}");
    assert!(
        said.contains(&format!("(--prefix {})", prefix.display())),
        "{said}"
    );

    // Again: the install in the prefix is found, and nothing changes.
    let again = install_sh(dir.path(), &args);
    let said = again.all();
    assert_eq!(again.code, Some(0), "{said}");
    assert!(
        said.contains(&format!("found an existing install in {}", bin.display())),
        "{said}"
    );
    assert!(said.contains("already"), "{said}");

    // A relative prefix is taken from the current directory.
    let relative = install_sh(
        dir.path(),
        &[
            "--mode",
            "cli",
            "--yes",
            "--prefix",
            "rel/",
            "--from-dir",
            &from,
        ],
    );
    assert_eq!(relative.code, Some(0), "{}", relative.all());
    let rel_bin = dir.path().join("rel/bin");
    assert_eq!(version(&rel_bin.join("faztctl")), version(&built));
    assert!(
        relative
            .all()
            .contains(&format!("into {} ", rel_bin.display())),
        "{}",
        relative.all()
    );

    // An empty prefix is refused, not taken as "/".
    let empty = install_sh(
        dir.path(),
        &[
            "--mode",
            "cli",
            "--yes",
            "--prefix",
            "",
            "--from-dir",
            &from,
        ],
    );
    assert_eq!(empty.code, Some(1), "{}", empty.all());
    assert!(
        empty.stderr.contains("--prefix needs a directory"),
        "{}",
        empty.stderr
    );
}

#[test]
fn install_script_help_says_where_each_mode_installs() {
    let dir = tempfile::tempdir().unwrap();
    let help = install_sh(dir.path(), &["--help"]);
    assert_eq!(help.code, Some(0), "{}", help.all());
    for expected in [
        "production  a system service (root only): faztd and faztctl in\n              /usr/local/bin",
        "local       a user service: faztd and faztctl in ~/.local/bin",
        "remote: in /usr/local/bin as root, in ~/.local/bin as a user",
        "--prefix DIR puts the binaries in DIR/bin instead",
        "--prefix DIR                  install the binaries in DIR/bin",
    ] {
        assert!(help.stdout.contains(expected), "no {expected:?} in:\n{}", help.stdout);
    }
}

#[test]
fn install_script_production_refuses_a_prefix_under_home() {
    skip_unless!(missing_root("production mode installs a system service"));
    let dir = tempfile::tempdir().unwrap();
    let ran = install_production(dir.path(), &["--prefix", "/home/fazt-no-such-user"]);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(ran.stderr.contains("ProtectHome"), "{}", ran.stderr);
    assert!(!Path::new("/home/fazt-no-such-user").exists());
}

#[test]
fn install_script_production_checks_its_https_choice_before_installing() {
    skip_unless!(missing_root("production mode installs a system service"));
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("opt");
    let ran = install_production(
        dir.path(),
        &["--https", "sometimes", "--prefix", prefix.to_str().unwrap()],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.stderr.contains("--https must be on, off or auto"),
        "{}",
        ran.stderr
    );
    assert!(
        !prefix.exists(),
        "nothing is installed before the choice is checked"
    );
}

/// A machine for scripts/test-deps.sh: stand-ins for `dpkg-query` (the
/// packages in `missing` are not installed, all others are), `apt-get`
/// (records its arguments; `install` installs), `id -u` and `cargo`, first
/// on PATH. The real apt-get is never reached.
struct FakeDebian {
    dir: tempfile::TempDir,
}

impl FakeDebian {
    fn new(missing: &[&str]) -> FakeDebian {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("bin")).unwrap();
        fs::write(d.join("missing"), format!(" {} ", missing.join(" "))).unwrap();
        fs::write(d.join("apt.log"), "").unwrap();
        let stubs = [
            (
                "dpkg-query",
                // dpkg-query -W -f='${Status}\n' PACKAGE
                r#"pkg="$3"
case "$(cat "$FAKE/missing")" in *" $pkg "*) echo "dpkg-query: no packages found matching $pkg" >&2; exit 1 ;; esac
printf 'install ok installed\n'"#,
            ),
            (
                "apt-get",
                r#"echo "apt-get $*" >> "$FAKE/apt.log"
if [ "$1" = install ]; then
  m="$(cat "$FAKE/missing")"
  for a in "$@"; do m="${m/ $a / }"; done
  printf '%s' "$m" > "$FAKE/missing"
fi"#,
            ),
            (
                "id",
                r#"if [ "$1" = -u ]; then echo "$FAKE_UID"; else exec /usr/bin/id "$@"; fi"#,
            ),
            ("cargo", "echo 'cargo (a stand-in)'"),
        ];
        for (name, body) in stubs {
            let path = d.join("bin").join(name);
            fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeDebian { dir }
    }

    fn test_deps(&self, uid: u32, ci: bool) -> Ran {
        let d = self.dir.path();
        let mut cmd = Command::new("bash");
        cmd.arg(script("test-deps.sh"))
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", d.join("bin").display()))
            .env("FAKE", d)
            .env("FAKE_UID", uid.to_string());
        if ci {
            cmd.env("CI", "true");
        }
        run(&mut cmd)
    }

    fn apt_calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("apt.log"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }
}

#[test]
fn test_deps_as_root_with_everything_installed_runs_no_apt_get() {
    let fake = FakeDebian::new(&[]);
    let ran = fake.test_deps(0, true);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(fake.apt_calls(), Vec::<String>::new());
    assert!(ran.stdout.contains("are installed"), "{}", ran.all());
}

#[test]
fn test_deps_as_root_installs_only_what_is_missing() {
    // dbus-user-session installs no program; sshd is in /usr/sbin.
    let fake = FakeDebian::new(&["dbus-user-session", "openssh-server"]);
    let ran = fake.test_deps(0, true);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(
        fake.apt_calls(),
        [
            "apt-get update -qq",
            "apt-get install -y -qq openssh-server dbus-user-session"
        ]
    );
    // Installed now: the next run does nothing.
    let again = fake.test_deps(0, true);
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert_eq!(fake.apt_calls().len(), 2, "{:?}", fake.apt_calls());
}

#[test]
fn test_deps_as_a_user_with_everything_installed_goes_on_quietly() {
    let fake = FakeDebian::new(&[]);
    let ran = fake.test_deps(1000, false);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(fake.apt_calls(), Vec::<String>::new());
    assert_eq!(ran.stderr, "");
    assert!(!ran.all().contains("missing"), "{}", ran.all());
    assert!(ran.stdout.contains("are installed"), "{}", ran.all());
}

#[test]
fn test_deps_as_a_user_with_packages_missing_says_what_to_install_and_goes_on() {
    let fake = FakeDebian::new(&["dbus-user-session", "openssh-server"]);
    let ran = fake.test_deps(1000, false);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(fake.apt_calls(), Vec::<String>::new());
    assert!(
        ran.stderr
            .contains("sudo apt-get install -y openssh-server dbus-user-session\n"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("will say SKIPPED"), "{}", ran.stderr);
    // With CI set, those tests will fail, and it says so.
    let ci = fake.test_deps(1000, true);
    assert_eq!(ci.code, Some(0), "{}", ci.all());
    assert!(ci.stderr.contains("will FAIL"), "{}", ci.stderr);
}

#[test]
fn test_deps_as_a_user_without_what_the_build_needs_stops() {
    let fake = FakeDebian::new(&["libc6-dev"]);
    let ran = fake.test_deps(1000, false);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.stderr.contains("sudo apt-get install -y libc6-dev\n"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("cannot be built"), "{}", ran.stderr);
    assert_eq!(fake.apt_calls(), Vec::<String>::new());
}
