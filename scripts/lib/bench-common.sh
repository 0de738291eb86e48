# shellcheck shell=bash
# bench-common.sh: the plumbing every scripts/bench-*.sh shares.
#
# Sourced, never run. A benchmark script starts with
#
#     set -euo pipefail
#     # shellcheck source-path=SCRIPTDIR source=lib/bench-common.sh
#     source "$(dirname -- "${BASH_SOURCE[0]}")/lib/bench-common.sh"
#
# and then only says what is particular to its benchmark. Sourcing this file
# starts nothing and creates nothing: it sets the variables below and defines
# the functions. In the order a script uses them:
#
#   ROOT TARGET_DIR FAZTD FAZTCTL BUILD   where things are; the BUILD knob
#   log die need_tools find_tool          messages and prerequisites
#   build_release need_binaries           `cargo build --release` unless BUILD=0
#   bench_init (sets TMP, SOCK)           the temp dir, and the traps that clean up
#   track_pid track_pidfile run_tracked   starting processes that cleanup can stop
#   stop_pid stop_tracked                 stopping them (by pid, never by name)
#   free_ports wait_port                  loopback ports
#   start_faztd stop_faztd ctl            a throwaway faztd (FAZTD_PID) and faztctl
#   expect_file                           "does this URL serve exactly that file?"
#   run_wrk read_wrk round                wrk runs and their numbers
#
# The rule all of this serves: whatever happens (a normal end, `die`, a failed
# command under `set -e`, Ctrl-C, SIGTERM), every process a benchmark started
# is stopped by its pid and the temp dir is removed.

# ---------------------------------------------------------------------------
# Where things are.
# ---------------------------------------------------------------------------

# The repo root is two levels above this file (scripts/lib/).
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
# Cargo's output, and the binaries the benchmarks run.
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FAZTD=$TARGET_DIR/release/faztd
FAZTCTL=$TARGET_DIR/release/faztctl
# BUILD=0 skips `cargo build --release` and uses what $TARGET_DIR holds.
BUILD=${BUILD:-1}

# ---------------------------------------------------------------------------
# Messages and prerequisites.
# ---------------------------------------------------------------------------

# log MESSAGE...: progress, on stderr, so stdout carries only the results.
log() { printf '==> %s\n' "$*" >&2; }

# die MESSAGE...: says what went wrong and exits 1 (the EXIT trap cleans up).
# In a $(...) it only leaves that subshell, whose failure `set -e` then sees.
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# need_tools TOOL...: dies unless every TOOL is on the PATH.
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
    done
}

# find_tool NAME [HINT]: prints NAME's path, looking in /usr/sbin too (where
# nginx lives, and not on every user's PATH); dies with HINT (how to install
# it) if there is none. Meant for $(...): WRK=$(find_tool wrk "apt-get install wrk").
find_tool() {
    command -v "$1" 2>/dev/null && return 0
    [[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1" && return 0
    die "$1 is not installed${2:+: $2}"
}

# ---------------------------------------------------------------------------
# Building.
# ---------------------------------------------------------------------------

# build_release WHAT CARGO_ARGS...: unless BUILD=0, logs "building WHAT
# (release)" (nothing if WHAT is empty) and runs
# `cargo build --release CARGO_ARGS...` in the repo root. One call per cargo
# invocation: `-p fazt-e2e --bin ws-load` cannot share one with `-p faztd`,
# since cargo would then look for a ws-load binary in faztd too.
build_release() {
    local what=$1
    shift
    [[ $BUILD != 0 ]] || return 0
    [[ -z $what ]] || log "building $what (release)"
    (cd "$ROOT" && cargo build --release "$@")
}

# need_binaries PATH...: dies unless each PATH is an executable file.
need_binaries() {
    local bin
    for bin in "$@"; do
        [[ -x $bin ]] || die "$bin not found: run without BUILD=0"
    done
}

# ---------------------------------------------------------------------------
# The temp dir and the processes we start.
#
# A process is "tracked" from the moment it starts until it is stopped:
# bench_cleanup stops whatever is still tracked when the script ends. We never
# stop anything by name (pkill nginx would hit the user's own nginx).
# ---------------------------------------------------------------------------

TMP=              # set by bench_init; everything a run writes goes in it
FAZTD_PID=        # set by start_faztd
BENCH_PIDS=()     # tracked pids, oldest first
BENCH_PIDFILES=() # pid files of daemons that fork away from us (nginx)

# bench_init PREFIX: installs the traps, then makes the temp dir
# $TMP = ${TMPDIR:-/tmp}/PREFIX.XXXXXX and sets SOCK, faztd's control socket
# in it. From here on every way out runs bench_cleanup: the end of the
# script, `die` or a failed command (EXIT), Ctrl-C (INT, exit status 130) and
# SIGTERM (143). INT and TERM just exit, so that EXIT does the work, once.
bench_init() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    SOCK=$TMP/faztd.sock
}

# bench_cleanup: the EXIT trap. Stops every tracked process, newest first,
# then removes $TMP. `set +e`: a cleanup step that fails must not stop the rest.
bench_cleanup() {
    set +e
    local file i pid
    # A daemon that forked away is known only by its pid file, which it may
    # have written after we last looked: read it now.
    for file in "${BENCH_PIDFILES[@]}"; do
        [[ -s $file ]] && track_pid "$(<"$file")"
    done
    for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${BENCH_PIDS[i]}
        stop_pid "$pid"
        # Reap it if it is our child (a forked-away daemon is not: ignored).
        wait "$pid" 2>/dev/null
    done
    BENCH_PIDS=()
    [[ -n $TMP ]] && rm -rf -- "$TMP"
}

# track_pid PID: bench_cleanup will stop PID. Call it right after `cmd &`:
#     node server.js >"$TMP/node.log" 2>&1 &
#     NODE_PID=$!
#     track_pid "$NODE_PID"
track_pid() { BENCH_PIDS+=("$1"); }

# track_pidfile FILE: bench_cleanup will stop the pid written in FILE, if
# any. For daemons that fork (nginx): the pid we would get from $! is that of
# a launcher that has already exited.
track_pidfile() { BENCH_PIDFILES+=("$1"); }

# untrack_pid PID: PID is gone; forget it, since the number may be reused.
untrack_pid() {
    local keep=() pid
    for pid in "${BENCH_PIDS[@]}"; do
        [[ $pid == "$1" ]] || keep+=("$pid")
    done
    BENCH_PIDS=("${keep[@]}")
}

# stop_pid PID: sends SIGTERM, waits up to 5 s for PID to go, then SIGKILLs it.
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

# stop_tracked PID: stops a tracked child now (stop_pid), reaps it and
# forgets it. For a server the benchmark restarts midway.
stop_tracked() {
    stop_pid "$1"
    wait "$1" 2>/dev/null || true
    untrack_pid "$1"
}

# run_tracked CMD...: runs CMD to the end, tracked, and returns its status.
# Redirect its output on the call: run_tracked wrk ... >"$TMP/wrk.out".
#
# Why not just run CMD? Bash runs a trap only between commands, so while a
# foreground CMD (a 10 s wrk run) goes on, Ctrl-C or SIGTERM would wait for
# it. CMD runs in the background instead, and `wait` returns as soon as a
# signal comes: the trap exits and bench_cleanup stops CMD by its pid. (A
# background command in a script ignores the terminal's Ctrl-C itself, which
# is why it must be stopped this way.) Not for $(...): the tracking would
# happen in a subshell that bench_cleanup never sees.
run_tracked() {
    local pid status=0
    "$@" &
    pid=$!
    track_pid "$pid"
    wait "$pid" || status=$?
    untrack_pid "$pid"
    return "$status"
}

# ---------------------------------------------------------------------------
# Ports.
# ---------------------------------------------------------------------------

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, on one line.
# All N sockets stay bound until every port is chosen, so they differ. (The
# kernel could hand a port to someone else before our server binds it; that
# race is accepted.)
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
}

# wait_port PORT: waits up to ~10 s for something to accept TCP connections
# on 127.0.0.1:PORT; dies if nothing does.
wait_port() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $port"
}

# ---------------------------------------------------------------------------
# A throwaway faztd.
# ---------------------------------------------------------------------------

# start_faztd PORT [FAZTD_ARGS...]: starts $FAZTD on 127.0.0.1:PORT with its
# database in $TMP/data and its control socket at $SOCK (explicit, so that
# neither faztd nor faztctl falls back to $XDG_RUNTIME_DIR, where the user's
# own faztd may be), its output appended to $TMP/faztd.log. Sets FAZTD_PID
# (tracked) and returns once faztd is ready: HTTP answers /_fazt/health and
# the socket exists. Dies, showing the log, if faztd exits first or is not
# ready within ~10 s.
start_faztd() {
    local port=$1 i
    shift
    mkdir -p "$TMP/data"
    "$FAZTD" --data-dir "$TMP/data" --listen "127.0.0.1:$port" --socket "$SOCK" "$@" \
        >>"$TMP/faztd.log" 2>&1 &
    FAZTD_PID=$!
    track_pid "$FAZTD_PID"
    for ((i = 0; ; i++)); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/_fazt/health" && [[ -S $SOCK ]] && return 0
        if ! kill -0 "$FAZTD_PID" 2>/dev/null || ((i >= 100)); then
            cat "$TMP/faztd.log" >&2
            die "faztd did not become healthy"
        fi
        sleep 0.1
    done
}

# stop_faztd: stops the faztd of start_faztd (by pid) and waits until it is gone.
stop_faztd() {
    stop_tracked "$FAZTD_PID"
    FAZTD_PID=
}

# ctl ARGS...: faztctl, talking to our faztd and never to one the user may run.
ctl() { "$FAZTCTL" --socket "$SOCK" "$@"; }

# expect_file LABEL FILE URL [CURL_ARGS...]: a GET of URL must answer 200 with
# exactly the bytes of FILE; dies naming LABEL if not.
expect_file() {
    local label=$1 file=$2 url=$3 code
    shift 3
    code=$(curl -sS -o "$TMP/got" -w '%{http_code}' "$@" "$url") ||
        die "$label: request failed"
    [[ $code == 200 ]] || die "$label answered HTTP $code, expected 200"
    cmp -s "$TMP/got" "$file" || die "$label: the body differs from $file"
    rm -f "$TMP/got"
}

# ---------------------------------------------------------------------------
# wrk.
# ---------------------------------------------------------------------------

# run_wrk OUT WRK_ARGS...: runs $WRK (the script sets it, with find_tool)
# with exactly WRK_ARGS, URL last, through run_tracked so that Ctrl-C stops
# it at once. Its report (stdout and stderr) goes to OUT. Dies, showing the
# report, if wrk fails.
run_wrk() {
    local out=$1
    shift
    if ! run_tracked "$WRK" "$@" >"$out" 2>&1; then
        cat "$out" >&2
        die "wrk failed against ${!#}"
    fi
}

# read_wrk FILE: reads the report of a `wrk --latency` run and sets
#   WRK_RPS      requests/s, as wrk prints it (two decimals)
#   WRK_P99_MS   the 99th percentile latency, in ms
#   WRK_MEAN_MS  the mean latency, in ms
#   WRK_ERRORS   socket errors plus non-2xx/3xx answers
# wrk prints latencies as e.g. 812.00us, 1.23ms, 2.10s, 1.00m; in ms with
# five decimals they are exact, and each script rounds them for display
# (round). Dies, showing the report, if any figure is missing.
read_wrk() {
    # shellcheck disable=SC2034 # the WRK_* variables are for the caller
    if ! read -r WRK_RPS WRK_P99_MS WRK_MEAN_MS WRK_ERRORS < <(awk '
        function to_ms(v,   n, u) {
            n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us") return n / 1000
            if (u == "ms") return n
            if (u == "s")  return n * 1000
            if (u == "m")  return n * 60000
            if (u == "h")  return n * 3600000
            return -1
        }
        /^Requests\/sec:/                                  { rps = $2 }
        $1 == "Latency" && $2 != "Distribution" && mean == "" { mean = to_ms($2) }
        $1 == "99%"                                        { p99 = to_ms($2) }
        /^ *Non-2xx or 3xx responses:/                     { errors += $NF }
        /^ *Socket errors:/ {
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) errors += $i + 0
        }
        END {
            if (rps == "" || p99 == "" || p99 < 0 || mean == "" || mean < 0) exit 1
            printf "%.2f %.5f %.5f %d\n", rps, p99, mean, errors + 0
        }' "$1"); then
        cat "$1" >&2
        die "cannot parse wrk's output"
    fi
}

# round DECIMALS NUMBER: NUMBER rounded to DECIMALS decimals (awk's printf,
# whatever the locale). round 3 0.81234 prints 0.812.
round() { awk -v d="$1" -v n="$2" 'BEGIN { printf "%." d "f", n }'; }
