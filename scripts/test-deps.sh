#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when run as root and
# when something is missing. Safe to run again: it does nothing if all is there.
set -euo pipefail

# command-to-check:package
NEEDED=(
  "curl:curl"
  "sshd:openssh-server"
  "ssh:openssh-client"
  "ssh-keygen:openssh-client"
  # systemd tests: a real `systemd --user` manager, its D-Bus user bus,
  # a private dbus-daemon for the stand-in logind, and busctl/systemctl
  # as independent observers (tests/src/systemd.rs).
  "/lib/systemd/systemd:systemd"
  "systemctl:systemd"
  "busctl:systemd"
  "dbus-daemon:dbus-daemon"
  "/usr/lib/systemd/user/dbus.socket:dbus-user-session"
  "setpriv:util-linux"
  "unshare:util-linux"
  "useradd:passwd"
)

missing=()
for pair in "${NEEDED[@]}"; do
  cmd="${pair%%:*}"; pkg="${pair##*:}"
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
  if [[ "$cmd" == /* ]]; then
    [ -e "$cmd" ] || missing+=("$pkg")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: missing Debian packages: ${missing[*]}" >&2
  echo "test-deps: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "test-deps: running as root, installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
