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

# Paths, BUILD, log/die, $TMP and its cleanup, faztd, ports, wrk: shared by
# every bench script, and explained in lib/bench-common.sh.
# shellcheck source-path=SCRIPTDIR source=lib/bench-common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/bench-common.sh"

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
RESULTS_JSON=${RESULTS_JSON:-}
WARMUP=2s
THREADS=2
SITE=bench

# ---------------------------------------------------------------------------
# 0. Prerequisites.
# ---------------------------------------------------------------------------
NGINX=$(find_tool nginx "apt-get install nginx-light wrk")
WRK=$(find_tool wrk "apt-get install nginx-light wrk")
need_tools curl python3 cmp
if ! [[ $CONNS =~ ^[0-9]+$ ]] || ((CONNS < THREADS)); then
    die "CONNS must be a number >= $THREADS (got '$CONNS')"
fi

# ---------------------------------------------------------------------------
# 1. Build faztd and faztctl (which deploys the files into faztd).
# ---------------------------------------------------------------------------
build_release "faztd and faztctl" -p faztd -p faztctl
need_binaries "$FAZTD" "$FAZTCTL"

# ---------------------------------------------------------------------------
# 2. Temp dir and cleanup: from here on, every process we start is stopped by
#    pid on the way out, however we leave, and $TMP is removed.
# ---------------------------------------------------------------------------
bench_init fazt-bench

# Two distinct free TCP ports on 127.0.0.1: faztd's and nginx's.
read -r PORT_F PORT_N < <(free_ports 2)

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
#    the running faztd, over the control socket start_faztd gave it with
#    --socket (explicit, so neither process falls back to $XDG_RUNTIME_DIR).
# ---------------------------------------------------------------------------

# load_site_into_faztd SITE_NAME SRC_DIR: faztd must already be running.
load_site_into_faztd() {
    local site=$1 src=$2
    ctl deploy "$src" --site "$site" >"$TMP/deploy.log" 2>&1 || {
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
    local name=$1 base=$2 file
    shift 2
    for file in "${FILES[@]}"; do
        expect_file "$name /$file" "$SRC/$file" "$base/$file" "$@"
    done
    log "$name serves both files correctly"
}

# ---------------------------------------------------------------------------
# 5. Start faztd on an empty data dir with its own socket, wait until it is
#    healthy, then deploy the site into it.
# ---------------------------------------------------------------------------
log "starting faztd on 127.0.0.1:$PORT_F"
start_faztd "$PORT_F"

log "deploying the site with faztctl deploy"
load_site_into_faztd "$SITE" "$SRC"
verify_server faztd "$FAZTD_BASE" "${FAZTD_HDR[@]}"

# ---------------------------------------------------------------------------
# 6. Start nginx on the same files. It daemonizes (no `daemon off`), so its
#    master is not our child: cleanup stops it by the pid in its pid file.
#    Every path it writes is inside $TMP so it never touches /var.
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
track_pidfile "$TMP/nginx.pid"
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
verify_server nginx "$NGINX_BASE"

# ---------------------------------------------------------------------------
# 7. The measurements. run_wrk runs wrk in the background so an INT/TERM can
#    stop it (by pid) right away instead of after the run.
# ---------------------------------------------------------------------------
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
        run_wrk "$TMP/wrk.out" -t"$THREADS" -c"$CONNS" -d"$WARMUP" --latency "${args[@]}" "$url"
        run_wrk "$TMP/wrk.out" -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${args[@]}" "$url"
        read_wrk "$TMP/wrk.out"
        rps=$WRK_RPS p99=$(round 3 "$WRK_P99_MS") errs=$WRK_ERRORS
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
