#!/usr/bin/env bash
# What the test suite needs from this machine: checks the Debian packages
# and, as root, installs the missing ones. scripts/test.sh (and .ci/run)
# run it first; safe to run again.
#
# Packages are checked with dpkg-query (installed = "install ok installed"),
# not by looking for programs: dbus-user-session installs no program, and
# sshd/useradd live in /usr/sbin, which a normal user's PATH lacks.
#
# As root: installs only what is missing (`apt-get update`, then
#   `apt-get install`); nothing at all, and no apt-get, when all is there.
# As a normal user: never installs. With everything there it says so in one
#   line and goes on. With something missing it lists the packages, which
#   tests need them, and the exact `sudo apt-get install` line, and goes on:
#   the suite still runs, and each test that lacks a package (or root: the
#   systemd tests create users and cgroups) skips with a line
#   "SKIPPED <test>: <what is missing>", which scripts/test.sh counts at the
#   end. With CI set such a test fails instead (a green CI run means every
#   test ran), so CI runs this as root.
#
# Exit status: 0 when the tests can run (possibly with skips); 1 only when
# they cannot run at all: no cargo; or, not root, a package the build needs
# is missing (libc6-dev, or gcc when there is no other `cc`); or, as root,
# apt-get failed.
set -euo pipefail

# package:what needs it
PACKAGES=(
  "gcc:the build (linking, and QuickJS is C)"
  "libc6-dev:the build (linking, and QuickJS is C)"
  "openssh-client:tests/tests/remote.rs (ssh, ssh-keygen)"
  "openssh-server:tests/tests/remote.rs (a real sshd)"
  # The systemd tests (tests/src/systemd.rs, root only): a real
  # `systemd --user` manager and its D-Bus user bus, a private dbus-daemon
  # for the stand-in logind, busctl/systemctl as independent observers, a
  # throw-away user, a private mount namespace.
  "systemd:tests/tests/systemd_user.rs (systemd --user, systemctl, busctl)"
  "dbus-daemon:tests/tests/systemd_user.rs (a private bus)"
  "dbus-user-session:tests/tests/systemd_user.rs (the user bus)"
  "nginx-light:tests/tests/http_strict.rs (the peer odd requests are compared with)"
  "pebble:tests/tests/https.rs (a local ACME CA and its DNS server, pebble-challtestsrv)"
  "openssl:tests/tests/https.rs (the CA of pebble's own HTTPS)"
  "util-linux:tests/tests/systemd_*.rs (unshare, setpriv)"
  "passwd:tests/tests/systemd_user.rs (useradd, userdel)"
)

in_ci() { case "${CI:-}" in "" | 0 | false) return 1 ;; *) return 0 ;; esac; }

say() { echo "test-deps: $*"; }

installed() { # installed PACKAGE -> 0 when dpkg says so (any architecture)
  dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -qx 'install ok installed'
}

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo not found: the tests cannot be built. Install Rust (https://rustup.rs) and make sure cargo is on PATH." >&2
  exit 1
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  say "no dpkg-query: not a Debian-like system, the packages cannot be checked. The tests run; those lacking something say SKIPPED."
  exit 0
fi

root=0; [ "$(id -u)" -eq 0 ] && root=1

missing=()
for entry in "${PACKAGES[@]}"; do
  pkg="${entry%%:*}"
  installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  if [ "$root" -eq 1 ]; then
    say "the Debian packages the tests need are installed"
  else
    say "the Debian packages the tests need are installed; not root, so the tests that need root (the systemd ones) will say SKIPPED"
  fi
  exit 0
fi

if [ "$root" -eq 1 ]; then
  say "running as root, installing the missing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  for pkg in "${missing[@]}"; do
    installed "$pkg" || { say "apt-get did not install $pkg" >&2; exit 1; }
  done
  say "installed: ${missing[*]}"
  exit 0
fi

say "these Debian packages are missing (not root, so not installing them):" >&2
build_missing=0
for entry in "${PACKAGES[@]}"; do
  pkg="${entry%%:*}"; why="${entry#*:}"
  case " ${missing[*]} " in *" $pkg "*) ;; *) continue ;; esac
  case "$pkg" in
    libc6-dev) build_missing=1 ;;
    gcc) command -v cc >/dev/null 2>&1 || build_missing=1 ;;
  esac
  printf '  %-18s for %s\n' "$pkg" "$why" >&2
done
say "install them with: sudo apt-get install -y ${missing[*]}" >&2
if [ "$build_missing" -eq 1 ]; then
  say "without them the tests cannot be built" >&2
  exit 1
fi
if in_ci; then
  say "going on: CI is set, so the tests that need them (or root) will FAIL" >&2
else
  say "going on: the tests that need them (or root) will say SKIPPED" >&2
fi
exit 0
