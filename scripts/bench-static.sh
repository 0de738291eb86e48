#!/usr/bin/env bash
# bench-static.sh: compare faztd's static serving with nginx's.
#
# A benchmark, not a test: it builds faztd in release mode, serves the same
# two files (a 1 KiB HTML page and a 100 KiB binary) from faztd and from a
# throwaway nginx, hammers each with wrk and prints req/s, p99 latency and the
# faztd/nginx throughput ratio per file. Everything runs on 127.0.0.1 so both
# servers share the machine with wrk; compare ratios, not absolute numbers.
#
# Usage: scripts/bench-static.sh
#
# Environment knobs:
#   DURATION=10s        how long each measured wrk run lasts (a 2s warm-up precedes it)
#   CONNS=64            open connections for wrk (wrk always uses 2 threads)
#   BUILD=0             skip `cargo build --release` (use the binaries already built)
#   RESULTS_JSON=FILE   also write the results as JSON to FILE
#   CARGO_TARGET_DIR    where cargo puts binaries [default: <repo>/target]
#
# Needs: cargo, curl, python3, nginx, wrk (apt-get install nginx-light wrk).

set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
BUILD=${BUILD:-1}
RESULTS_JSON=${RESULTS_JSON:-}
WARMUP=2s
THREADS=2
SITE=bench

# The repo root is the parent of this script's directory.
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FAZTD=$TARGET_DIR/release/faztd
FAZTCTL=$TARGET_DIR/release/faztctl

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# 0. Prerequisites.
# ---------------------------------------------------------------------------
# find_tool NAME: its path, looking in /usr/sbin too (not on every user's PATH).
find_tool() {
    command -v "$1" 2>/dev/null && return 0
    [[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1" && return 0
    die "$1 is not installed: apt-get install nginx-light wrk"
}
NGINX=$(find_tool nginx)
WRK=$(find_tool wrk)
for tool in curl python3 cmp; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
if ! [[ $CONNS =~ ^[0-9]+$ ]] || ((CONNS < THREADS)); then
    die "CONNS must be a number >= $THREADS (got '$CONNS')"
fi

# ---------------------------------------------------------------------------
# 1. Build faztd and faztctl (which deploys the files into faztd).
# ---------------------------------------------------------------------------
if [[ $BUILD != 0 ]]; then
    log "building faztd and faztctl (release)"
    (cd "$ROOT" && cargo build --release -p faztd -p faztctl)
fi
[[ -x $FAZTD ]] || die "$FAZTD not found: run without BUILD=0"

# ---------------------------------------------------------------------------
# 2. Temp dir and cleanup. Every process we start is recorded by pid and
#    stopped by pid on the way out, however we leave.
# ---------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fazt-bench.XXXXXX")
FAZTD_PID=
NGINX_PID=
WRK_PID=

# Sends SIGTERM to a pid, waits up to 5s for it to go, then SIGKILLs it.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    set +e
    [[ -n $WRK_PID ]] && stop_pid "$WRK_PID"
    [[ -n $FAZTD_PID ]] && stop_pid "$FAZTD_PID" && wait "$FAZTD_PID" 2>/dev/null
    # nginx daemonizes, so its master is not our child: take its pid from the
    # pid file if we did not get to read it. Stopping the master stops its workers.
    if [[ -z $NGINX_PID && -s $TMP/nginx.pid ]]; then
        NGINX_PID=$(<"$TMP/nginx.pid")
    fi
    [[ -n $NGINX_PID ]] && stop_pid "$NGINX_PID"
    rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two distinct free TCP ports on 127.0.0.1 (both held open while choosing).
read -r PORT_F PORT_N < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])
')

# ---------------------------------------------------------------------------
# 3. The content: deterministic, so every run serves identical bytes.
# ---------------------------------------------------------------------------
SRC=$TMP/site
mkdir -p "$SRC"

# small.html: exactly 1024 bytes of HTML, padded with a comment.
{
    printf '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Fazt bench</title></head>\n<body>\n<h1>Fazt static benchmark</h1>\n'
    for i in $(seq 1 10); do
        printf '<p>Paragraph %02d: the quick brown fox jumps over the lazy dog.</p>\n' "$i"
    done
} >"$SRC/head.part"
footer=$'</body>\n</html>\n'
pad=$((1024 - $(wc -c <"$SRC/head.part") - ${#footer} - 8)) # 8 = "<!--" + "-->\n"
((pad >= 0)) || die "small.html template is over 1 KiB"
{
    cat "$SRC/head.part"
    printf '<!--%s-->\n' "$(printf '%*s' "$pad" '' | tr ' ' 'x')"
    printf '%s' "$footer"
} >"$SRC/small.html"
rm "$SRC/head.part"

# big.bin: 100 KiB of seeded pseudo-random (incompressible) bytes.
python3 -c '
import random, sys
sys.stdout.buffer.write(random.Random(20240601).randbytes(102400))
' >"$SRC/big.bin"

[[ $(wc -c <"$SRC/small.html") -eq 1024 && $(wc -c <"$SRC/big.bin") -eq 102400 ]] ||
    die "generated files have the wrong size"

FILES=(small.html big.bin)
declare -A LABEL=([small.html]="small (1 KiB)" [big.bin]="big (100 KiB)")

# ---------------------------------------------------------------------------
# 4. Loading the files into faztd: `faztctl deploy DIR --site NAME` against
#    the running faztd, over the control socket we gave it with --socket
#    (explicit, so neither process falls back to $XDG_RUNTIME_DIR).
# ---------------------------------------------------------------------------
SOCK=$TMP/faztd.sock
[[ -x $FAZTCTL ]] || die "$FAZTCTL not found: run without BUILD=0"

# load_site_into_faztd SITE_NAME SRC_DIR: faztd must already be running.
load_site_into_faztd() {
    local site=$1 src=$2
    "$FAZTCTL" --socket "$SOCK" deploy "$src" --site "$site" >"$TMP/deploy.log" 2>&1 || {
        cat "$TMP/deploy.log" >&2
        die "faztctl deploy failed"
    }
}

# ---------------------------------------------------------------------------
# Helpers shared by both servers.
# ---------------------------------------------------------------------------

# faztd routes by Host: NAME.localhost is site NAME. If bench.localhost
# resolves to 127.0.0.1 use it in the URL (wrk and curl send it as Host);
# otherwise connect to 127.0.0.1 and set the Host header by hand.
if [[ $(getent hosts "$SITE.localhost" 2>/dev/null | awk '{print $1; exit}') == 127.0.0.1 ]]; then
    FAZTD_BASE=http://$SITE.localhost:$PORT_F
    FAZTD_HDR=()
else
    FAZTD_BASE=http://127.0.0.1:$PORT_F
    FAZTD_HDR=(-H "Host: $SITE.localhost:$PORT_F")
fi
NGINX_BASE=http://127.0.0.1:$PORT_N

# verify_server NAME BASE_URL [curl args...]: each file must come back as a
# 200 with exactly the bytes on disk.
verify_server() {
    local name=$1 base=$2 file code
    shift 2
    for file in "${FILES[@]}"; do
        code=$(curl -sS -o "$TMP/got" -w '%{http_code}' "$@" "$base/$file") ||
            die "$name: request for /$file failed"
        [[ $code == 200 ]] || die "$name: /$file answered HTTP $code, expected 200"
        cmp -s "$TMP/got" "$SRC/$file" || die "$name: /$file body differs from the source file"
    done
    rm -f "$TMP/got"
    log "$name serves both files correctly"
}

# ---------------------------------------------------------------------------
# 5. Start faztd on an empty data dir with its own socket, wait until it is
#    healthy, then deploy the site into it.
# ---------------------------------------------------------------------------
DATA=$TMP/data
mkdir -p "$DATA"

log "starting faztd on 127.0.0.1:$PORT_F"
"$FAZTD" --data-dir "$DATA" --listen "127.0.0.1:$PORT_F" --socket "$SOCK" >"$TMP/faztd.log" 2>&1 &
FAZTD_PID=$!
# Ready means HTTP answers health and the control socket exists.
for ((i = 0; ; i++)); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT_F/_fazt/health" && [[ -S $SOCK ]] && break
    if ! kill -0 "$FAZTD_PID" 2>/dev/null || ((i >= 100)); then
        cat "$TMP/faztd.log" >&2
        die "faztd did not become healthy"
    fi
    sleep 0.1
done

log "deploying the site with faztctl deploy"
load_site_into_faztd "$SITE" "$SRC"
verify_server faztd "$FAZTD_BASE" "${FAZTD_HDR[@]}"

# ---------------------------------------------------------------------------
# 6. Start nginx on the same files. It daemonizes (no `daemon off`); every
#    path it writes is inside $TMP so it never touches /var.
# ---------------------------------------------------------------------------
NGINX_USER=
if ((EUID == 0)); then
    # Workers would otherwise run as nobody, which cannot read the 0700 temp dir.
    NGINX_USER="user root;"
fi
cat >"$TMP/nginx.conf" <<EOF
$NGINX_USER
worker_processes auto;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;

events {
    worker_connections 4096;
}

http {
    types {
        text/html html;
        application/octet-stream bin;
    }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;

    client_body_temp_path $TMP/nginx-client-body;
    proxy_temp_path $TMP/nginx-proxy;
    fastcgi_temp_path $TMP/nginx-fastcgi;
    uwsgi_temp_path $TMP/nginx-uwsgi;
    scgi_temp_path $TMP/nginx-scgi;

    server {
        listen 127.0.0.1:$PORT_N;
        root $SRC;
    }
}
EOF

log "starting nginx on 127.0.0.1:$PORT_N"
# -e: the error log before the config is read (else nginx tries /var/log/nginx).
"$NGINX" -p "$TMP/" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" ||
    {
        cat "$TMP/nginx-error.log" >&2 2>/dev/null
        die "nginx did not start"
    }
# The daemonized master writes its pid file just after the launcher returns.
for ((i = 0; ; i++)); do
    [[ -s $TMP/nginx.pid ]] && break
    ((i < 50)) || die "nginx wrote no pid file"
    sleep 0.1
done
NGINX_PID=$(<"$TMP/nginx.pid")
verify_server nginx "$NGINX_BASE"

# ---------------------------------------------------------------------------
# 7. The measurements. wrk runs in the background so an INT/TERM can stop it
#    (by pid) right away instead of after the run.
# ---------------------------------------------------------------------------

# run_wrk DURATION URL [wrk args...]: wrk's report goes to $TMP/wrk.out.
# Not meant for $(...): WRK_PID must be set in this shell for cleanup to see it.
run_wrk() {
    local duration=$1 url=$2
    shift 2
    "$WRK" -t"$THREADS" -c"$CONNS" -d"$duration" --latency "$@" "$url" >"$TMP/wrk.out" 2>&1 &
    WRK_PID=$!
    if ! wait "$WRK_PID"; then
        WRK_PID=
        cat "$TMP/wrk.out" >&2
        die "wrk failed against $url"
    fi
    WRK_PID=
}

# parse_wrk < wrk-output: prints "REQ_PER_SEC P99_MS ERRORS".
# wrk prints latencies as e.g. 812.00us, 1.23ms, 2.10s, 1.00m.
parse_wrk() {
    awk '
        function to_ms(v,   n, u) {
            n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us") return n / 1000
            if (u == "ms") return n
            if (u == "s")  return n * 1000
            if (u == "m")  return n * 60000
            if (u == "h")  return n * 3600000
            return -1
        }
        /^Requests\/sec:/              { rps = $2 }
        $1 == "99%"                    { p99 = to_ms($2) }
        /^ *Non-2xx or 3xx responses:/ { errors += $NF }
        /^ *Socket errors:/ {
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) errors += $i + 0
        }
        END {
            if (rps == "" || p99 == "" || p99 < 0) exit 1
            printf "%.2f %.3f %d\n", rps, p99, errors + 0
        }'
}

declare -A RPS P99 ERRS
SERVERS=(faztd nginx)
for file in "${FILES[@]}"; do
    for server in "${SERVERS[@]}"; do
        if [[ $server == faztd ]]; then
            url=$FAZTD_BASE/$file
            args=("${FAZTD_HDR[@]}")
        else
            url=$NGINX_BASE/$file
            args=()
        fi
        log "$server /$file: warm-up $WARMUP, then $DURATION with $CONNS connections"
        run_wrk "$WARMUP" "$url" "${args[@]}"
        run_wrk "$DURATION" "$url" "${args[@]}"
        if ! read -r rps p99 errs < <(parse_wrk <"$TMP/wrk.out"); then
            cat "$TMP/wrk.out" >&2
            die "cannot parse wrk's output"
        fi
        if ((errs > 0)); then
            cat "$TMP/wrk.out" >&2
            log "warning: $server /$file: $errs errors or non-2xx responses (see above)"
        fi
        RPS[$file,$server]=$rps
        P99[$file,$server]=$p99
        ERRS[$file,$server]=$errs
    done
done

# ---------------------------------------------------------------------------
# 8. Report: a table, the ratios and (optionally) JSON.
# ---------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency (after a $WARMUP warm-up), all on 127.0.0.1"
printf '%-15s | %-6s | %12s | %9s\n' file server req/s "p99 ms"
printf '%s\n' "----------------+--------+--------------+----------"
for file in "${FILES[@]}"; do
    for server in "${SERVERS[@]}"; do
        printf '%-15s | %-6s | %12s | %9s\n' "${LABEL[$file]}" "$server" \
            "${RPS[$file,$server]}" "${P99[$file,$server]}"
    done
done
echo
for file in "${FILES[@]}"; do
    printf '%s: faztd/nginx = %sx\n' "${LABEL[$file]}" \
        "$(ratio "${RPS[$file,faztd]}" "${RPS[$file,nginx]}")"
done

if [[ -n $RESULTS_JSON ]]; then
    {
        printf '{\n  "duration": "%s",\n  "connections": %d,\n  "threads": %d,\n  "results": [\n' \
            "$DURATION" "$CONNS" "$THREADS"
        sep=
        for file in "${FILES[@]}"; do
            for server in "${SERVERS[@]}"; do
                printf '%s    {"file": "%s", "bytes": %d, "server": "%s", "req_per_sec": %s, "p99_ms": %s, "errors": %d}' \
                    "$sep" "$file" "$(wc -c <"$SRC/$file")" "$server" \
                    "${RPS[$file,$server]}" "${P99[$file,$server]}" "${ERRS[$file,$server]}"
                sep=$',\n'
            done
        done
        printf '\n  ],\n  "faztd_over_nginx": {'
        sep=
        for file in "${FILES[@]}"; do
            printf '%s"%s": %s' "$sep" "$file" "$(ratio "${RPS[$file,faztd]}" "${RPS[$file,nginx]}")"
            sep=', '
        done
        printf '}\n}\n'
    } >"$RESULTS_JSON"
    log "results written to $RESULTS_JSON"
fi
