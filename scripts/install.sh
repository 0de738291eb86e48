#!/usr/bin/env bash
# Install Fazt. Three modes, and where each puts the binaries:
#   production  a system service (root only): faztd and faztctl in
#               /usr/local/bin, hardened unit, its own user, data in
#               /var/lib/fazt, a real domain, HTTP on :80 and HTTPS on
#               :443 with certificates from Let's Encrypt (--https off: no)
#   local       a user service: faztd and faztctl in ~/.local/bin,
#               `systemctl --user`, starts at boot through linger, IP-based
#               domain (as root: root's own user service, in /root/.local/bin)
#   cli         only faztctl (to operate other instances), optionally a first
#               remote: in /usr/local/bin as root, in ~/.local/bin as a user
# --prefix DIR puts the binaries in DIR/bin instead, in any mode (a system
# service cannot run from under /home or /root). The destination is printed
# before anything is installed.
#
# Interactive with a menu when run in a terminal without --mode; fully
# non-interactive with flags, e.g.
#   scripts/install.sh --mode local --yes
#   sudo scripts/install.sh --mode production --domain example.org --email me@example.org --yes
#   scripts/install.sh --mode cli --remote prod=me@example.org --yes
#   scripts/install.sh --mode cli --prefix /opt/fazt --yes      # /opt/fazt/bin/faztctl
#
# Binaries come from --from-dir DIR (a build: target/release), --archive FILE
# (a release .tar.gz holding faztd and faztctl), or by default from this
# checkout's target/release (then target/debug). An existing install in the
# destination is detected and upgraded in place (the service is restarted
# onto the new binary).
#
# faztd itself talks to systemd (over D-Bus): this script never calls systemctl.
set -euo pipefail

MODE=""
YES=0
FROM_DIR=""
ARCHIVE=""
DOMAIN=""
EMAIL=""
LISTEN=""
HTTPS=""
REMOTE=""
PREFIX=""
PREFIX_GIVEN=0

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Options:
  --mode production|local|cli   what to install (asked when omitted in a terminal)
  --yes, -y                     do not ask; take the defaults
  --prefix DIR                  install the binaries in DIR/bin (see above for the defaults)
  --from-dir DIR                take faztd/faztctl from DIR
  --archive FILE                take them from a release archive (.tar.gz)
  --domain DOMAIN               the instance's domain (production: required)
  --email EMAIL                 contact for HTTPS certificates (production)
  --listen ADDR:PORT            where to serve HTTP (production 0.0.0.0:80, local 0.0.0.0:8080)
  --https on|off|auto           production: HTTPS on :443 with ACME certificates (default on;
                                an IP address as domain cannot have them: HTTP only)
  --remote NAME=USER@HOST       cli: a first remote for faztctl
  -h, --help                    this text
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
note() { echo "==> $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --mode) MODE="${2:-}"; shift 2 ;;
    --mode=*) MODE="${1#*=}"; shift ;;
    --yes|-y) YES=1; shift ;;
    --from-dir) FROM_DIR="${2:-}"; shift 2 ;;
    --archive) ARCHIVE="${2:-}"; shift 2 ;;
    --domain) DOMAIN="${2:-}"; shift 2 ;;
    --email) EMAIL="${2:-}"; shift 2 ;;
    --listen) LISTEN="${2:-}"; shift 2 ;;
    --https) HTTPS="${2:-}"; shift 2 ;;
    --remote) REMOTE="${2:-}"; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; PREFIX_GIVEN=1; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; PREFIX_GIVEN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

if [ "$PREFIX_GIVEN" -eq 1 ]; then
  [ -n "$PREFIX" ] || die "--prefix needs a directory (the binaries go to DIR/bin)"
  case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
  while [ "$PREFIX" != / ] && [ "${PREFIX%/}" != "$PREFIX" ]; do PREFIX="${PREFIX%/}"; done
fi

interactive=0
if [ "$YES" -eq 0 ] && [ -t 0 ]; then interactive=1; fi

ask() { # ask "question" default -> echoes the answer
  local q="$1" def="${2:-}" a
  if [ "$interactive" -eq 0 ]; then echo "$def"; return; fi
  read -r -p "$q${def:+ [$def]}: " a </dev/tty || true
  echo "${a:-$def}"
}
confirm() { # confirm "question" -> 0 for yes
  [ "$interactive" -eq 0 ] && return 0
  local a; read -r -p "$1 [Y/n]: " a </dev/tty || true
  case "${a:-y}" in [Yy]*) return 0 ;; *) return 1 ;; esac
}

if [ -z "$MODE" ]; then
  if [ "$interactive" -eq 0 ]; then
    die "no --mode given and no terminal to ask in: pass --mode production|local|cli"
  fi
  if [ "$(id -u)" -eq 0 ]; then cli_bin=/usr/local/bin; else cli_bin="$HOME/.local/bin"; fi
  cat <<EOF
How do you want to install Fazt?
  1) production   a system service on this server, with a real domain (needs root; /usr/local/bin)
  2) local        a user service on this machine, for development (no root; ~/.local/bin)
  3) cli          only faztctl, to operate Fazt on other machines ($cli_bin)
EOF
  case "$(ask "Choose 1, 2 or 3" 2)" in
    1|production) MODE=production ;;
    2|local) MODE=local ;;
    3|cli) MODE=cli ;;
    *) die "not a choice" ;;
  esac
fi
case "$MODE" in production|local|cli) ;; *) die "--mode must be production, local or cli" ;; esac

# ---- where the binaries come from -----------------------------------------
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "$ARCHIVE" ]; then
  [ -f "$ARCHIVE" ] || die "no archive at $ARCHIVE"
  tar -xzf "$ARCHIVE" -C "$WORK" || die "cannot unpack $ARCHIVE (a .tar.gz with faztd and faztctl is expected)"
  src="$(dirname "$(find "$WORK" -type f -name faztctl | head -n 1)")"
  [ -f "$src/faztctl" ] || die "$ARCHIVE holds no faztctl"
  origin="archive $ARCHIVE"
elif [ -n "$FROM_DIR" ]; then
  src="$FROM_DIR"; origin="$FROM_DIR"
else
  src=""
  for d in "$here/target/release" "$here/target/debug"; do
    if [ -x "$d/faztctl" ]; then src="$d"; break; fi
  done
  [ -n "$src" ] || die "no build found: run \`cargo build --release\` in the checkout, or pass --from-dir DIR or --archive FILE"
  origin="local build $src"
fi
need=(faztctl); [ "$MODE" != cli ] && need+=(faztd)
for b in "${need[@]}"; do
  [ -x "$src/$b" ] || die "$src/$b is missing or not executable"
done
new_version="$("$src/faztctl" --version | awk '{print $2}')"

# ---- per mode --------------------------------------------------------------
if [ "$MODE" = production ]; then
  [ "$(id -u)" -eq 0 ] || die "production mode installs a system service: run it as root (sudo $0 --mode production ...)"
  BIN=/usr/local/bin
  if [ "$PREFIX_GIVEN" -eq 1 ]; then
    BIN="${PREFIX%/}/bin"
    case "$BIN/" in /home/*|/root/*) die "a system service cannot run from $BIN: it protects /home and /root (ProtectHome=yes); choose a --prefix outside them, e.g. /opt/fazt" ;; esac
  fi
  export FAZT_SOCKET=/run/fazt/faztd.sock
  [ -n "$DOMAIN" ] || DOMAIN="$(ask "Domain of this server (sites live at NAME.DOMAIN)" "")"
  [ -n "$DOMAIN" ] || die "production mode needs --domain DOMAIN (a name whose DNS points at this server)"
  [ -n "$EMAIL" ] || EMAIL="$(ask "Email for HTTPS certificates (optional)" "")"
  [ -n "$LISTEN" ] || LISTEN="$(ask "Listen on" "0.0.0.0:80")"
  [ -n "$HTTPS" ] || HTTPS=on
  case "$HTTPS" in on|off|auto) ;; *) die "--https must be on, off or auto" ;; esac
  if [ "$HTTPS" != off ] && [[ "$DOMAIN" =~ ^[0-9.]+$ || "$DOMAIN" == *:* ]]; then
    echo "note: $DOMAIN is an IP address: certificate authorities only certify DNS names, so this instance serves HTTP only (--https off)" >&2
    HTTPS=off
  fi
  scope=(--system)
elif [ "$MODE" = local ]; then
  [ "$(id -u)" -ne 0 ] || echo "note: local mode as root installs root's user service; a normal user is the usual choice" >&2
  BIN="$HOME/.local/bin"
  [ "$PREFIX_GIVEN" -eq 0 ] || BIN="${PREFIX%/}/bin"
  [ -n "$LISTEN" ] || LISTEN="$(ask "Listen on" "0.0.0.0:8080")"
  scope=(--user)
else
  if [ "$PREFIX_GIVEN" -eq 1 ]; then BIN="${PREFIX%/}/bin"
  elif [ "$(id -u)" -eq 0 ]; then BIN=/usr/local/bin
  else BIN="$HOME/.local/bin"; fi
fi

# ---- where they go: said before anything is installed ------------------------
if [ "$PREFIX_GIVEN" -eq 1 ]; then
  why="--prefix $PREFIX"
elif [ "$(id -u)" -eq 0 ]; then
  why="$MODE mode as root; --prefix DIR installs in DIR/bin instead"
else
  why="$MODE mode as $(id -un); --prefix DIR installs in DIR/bin instead"
fi
note "installing ${need[*]} $new_version into $BIN ($why)"

# ---- an existing install? -------------------------------------------------
upgrade=0
if [ -x "$BIN/faztctl" ] || [ -x "$BIN/faztd" ]; then
  old_version="$("$BIN/faztctl" --version 2>/dev/null | awk '{print $2}' || true)"
  note "found an existing install in $BIN (version ${old_version:-unknown}); upgrading to $new_version"
  confirm "Upgrade it?" || { echo "nothing changed"; exit 0; }
  upgrade=1
else
  confirm "Install into $BIN?" || { echo "nothing changed"; exit 0; }
fi

# ---- binaries ---------------------------------------------------------------
mkdir -p "$BIN"
changed=0
for b in "${need[@]}"; do
  if [ -f "$BIN/$b" ] && cmp -s "$src/$b" "$BIN/$b"; then
    continue
  fi
  # Copy then rename: a running faztd keeps its old file until it restarts.
  cp "$src/$b" "$BIN/.$b.new" && chmod 0755 "$BIN/.$b.new" && mv -f "$BIN/.$b.new" "$BIN/$b"
  changed=1
  note "installed $BIN/$b ($new_version, from $origin)"
done
[ "$changed" -eq 1 ] || note "binaries in $BIN are already $new_version"
case ":$PATH:" in *":$BIN:"*) ;; *) echo "note: $BIN is not on your PATH; add it (e.g. in ~/.profile: export PATH=\"$BIN:\$PATH\")" >&2 ;; esac

if [ "$MODE" = cli ]; then
  if [ -n "$REMOTE" ]; then
    name="${REMOTE%%=*}"; target="${REMOTE#*=}"
    if "$BIN/faztctl" remote --help >/dev/null 2>&1; then
      "$BIN/faztctl" remote add "$name" "$target"
      note "added remote $name ($target): try \`faztctl @$name status\`"
    else
      echo "note: this faztctl ($new_version) has no remotes yet; $name=$target was not added" >&2
    fi
  fi
  echo
  echo "Installed faztctl $new_version in $BIN. Try: faztctl --help"
  exit 0
fi

# ---- the service: faztd talks to systemd itself (D-Bus) --------------------
args=(install "${scope[@]}")
[ -n "$DOMAIN" ] && args+=(--domain "$DOMAIN")
[ -n "$LISTEN" ] && args+=(--listen "$LISTEN")
note "faztd ${args[*]}"
out="$("$BIN/faztd" "${args[@]}" 2>&1)" || { echo "$out" >&2; die "faztd install failed (see above); the service was left as it was"; }
echo "$out"
if [ "$upgrade" -eq 1 ] && [ "$changed" -eq 1 ] && grep -q "already running" <<<"$out"; then
  note "restarting the running instance onto $new_version"
  "$BIN/faztctl" restart
fi

if [ "$MODE" = production ] && [ "$HTTPS" != off ]; then
  # Stored settings, taken at the next start: set them, then restart once.
  [ -z "$EMAIL" ] || "$BIN/faztctl" config set acme_email "$EMAIL" >/dev/null
  if ! "$BIN/faztctl" config get https --json 2>/dev/null | grep -q "\"value\": \"$HTTPS\""; then
    "$BIN/faztctl" config set https "$HTTPS" >/dev/null
    note "HTTPS $HTTPS: restarting faztd to serve :443 and order certificates for $DOMAIN${EMAIL:+ (contact $EMAIL)}"
    "$BIN/faztctl" restart
  fi
fi

# ---- healthy? ----------------------------------------------------------------
jflag=""; [ "$MODE" = local ] && jflag=" --user"
status=""
for _ in $(seq 1 50); do
  if status="$("$BIN/faztctl" status --json 2>/dev/null)" && grep -q '"health": "ok"' <<<"$status"; then
    break
  fi
  status=""; sleep 0.2
done
[ -n "$status" ] || die "faztd was installed but does not answer: see \`faztctl status\` and \`journalctl$jflag -u faztd\`"
field() { grep -m1 "\"$1\":" <<<"$status" | sed -E 's/.*: "?([^",]*)"?,?$/\1/'; }
domain="$(field domain)"; listen="$(field listen)"; port="${listen##*:}"
portpart=":$port"; [ "$port" = 80 ] && portpart=""
echo
echo "Fazt $new_version is running ($MODE mode, healthy)."
echo "  domain     $domain ($(field domain_source))"
echo "  sites      http://localhost$portpart/   http://demo.localhost$portpart/"
https_listen="$(field https_listen)"
if [ -n "$https_listen" ] && [ "$https_listen" != null ]; then
  hport="${https_listen##*:}"; hpart=":$hport"; [ "$hport" = 443 ] && hpart=""
  echo "             https://$domain$hpart/   https://demo.$domain$hpart/   (certificates are ordered now: \`faztctl status\` shows them)"
elif [ "${listen%:*}" != "0.0.0.0" ] && [ "${listen%:*}" != "[::]" ]; then
  :  # bound to one address: the domain's URLs would not reach it
elif [[ "$domain" =~ ^[0-9.]+$ ]]; then
  echo "             http://$domain$portpart/   http://demo.$domain.nip.io$portpart/"
else
  echo "             http://$domain$portpart/   http://demo.$domain$portpart/"
fi
echo "  deploy     faztctl deploy ./my-site"
if [ "$MODE" = local ]; then
  echo "  manage     systemctl --user status faztd · faztctl status · faztctl restart"
else
  echo "  manage     systemctl status faztd · faztctl status · faztctl restart"
fi
