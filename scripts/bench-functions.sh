#!/usr/bin/env bash
# bench-functions.sh: a hello-world function next to a static file of the
# same body, served by the same faztd, loaded by wrk in the same run.
#
# A benchmark, not a test. Prints req/s and p99 at CONNS connections for both
# (ROUNDS alternating runs, medians), the function/static ratio (goal: >= 0.5,
# p99 <= 5 ms at 64 connections), and the difference of mean latency with one
# connection (one request at a time, so queueing does not blur it). What the
# JavaScript alone costs per call: cargo bench -p faztd --bench function_engine.
#
# Environment: DURATION=5s (per run), ROUNDS=3, CONNS=64, BUILD=0 to skip the
# release build, CARGO_TARGET_DIR. Needs: cargo, curl, wrk, python3.
set -euo pipefail

DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-1}
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FAZTD=$TARGET_DIR/release/faztd
FAZTCTL=$TARGET_DIR/release/faztctl
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

if [[ $BUILD != 0 ]]; then
    (cd "$ROOT" && cargo build --release -p faztd -p faztctl)
fi

TMP=$(mktemp -d -t fazt-bench-fn.XXXXXX)
FAZTD_PID=
cleanup() {
    if [[ -n $FAZTD_PID ]] && kill -0 "$FAZTD_PID" 2>/dev/null; then
        kill "$FAZTD_PID" && wait "$FAZTD_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SOCK=$TMP/faztd.sock
"$FAZTD" --data-dir "$TMP/data" --socket "$SOCK" --listen "127.0.0.1:$PORT" >"$TMP/faztd.log" 2>&1 &
FAZTD_PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/_fazt/health" >/dev/null && break
    sleep 0.1
done

# The same 12-byte body both ways.
mkdir -p "$TMP/site/api"
printf 'hello world\n' >"$TMP/site/hello.txt"
printf 'export default () => "hello world\\n";\n' >"$TMP/site/api/hello.js"
"$FAZTCTL" --socket "$SOCK" deploy "$TMP/site" --site bench >/dev/null

HOST="Host: bench.localhost"
STATIC_URL="http://127.0.0.1:$PORT/hello.txt"
FN_URL="http://127.0.0.1:$PORT/api/hello"
[[ $(curl -s -H "$HOST" "$STATIC_URL") == "hello world" ]] || { echo "error: static file not served" >&2; exit 1; }
[[ $(curl -s -H "$HOST" "$FN_URL") == "hello world" ]] || { echo "error: function not served" >&2; exit 1; }

# run_wrk THREADS CONNS URL -> "req_per_sec p99_ms mean_ms"
run_wrk() {
    wrk -t"$1" -c"$2" -d2s -H "$HOST" "$3" >/dev/null
    wrk -t"$1" -c"$2" -d"$DURATION" --latency -H "$HOST" "$3" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        sys.exit(f"cannot read a latency of {v!r} in wrk output:\n{text}")
    n, unit = m.groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p99 = ms(re.search(r"99%\s+(\S+)", text).group(1))
mean = ms(re.search(r"Latency\s+(\S+)", text).group(1))
print(f"{rps:.0f} {p99:.2f} {mean:.3f}")
'
}

# Alternate static and function runs, ROUNDS times: the machine's own noise
# (shared cores) then hits both alike, and the median ratio is what counts.
RESULTS=$TMP/results
for round in $(seq "$ROUNDS"); do
    read -r S_RPS S_P99 _ < <(run_wrk 2 "$CONNS" "$STATIC_URL")
    read -r F_RPS F_P99 _ < <(run_wrk 2 "$CONNS" "$FN_URL")
    echo "$S_RPS $S_P99 $F_RPS $F_P99" >>"$RESULTS"
    printf 'round %s: static %s req/s (p99 %s ms), function %s req/s (p99 %s ms)\n' \
        "$round" "$S_RPS" "$S_P99" "$F_RPS" "$F_P99"
done
read -r _ _ S_MEAN1 < <(run_wrk 1 1 "$STATIC_URL")
read -r _ _ F_MEAN1 < <(run_wrk 1 1 "$FN_URL")

python3 - "$RESULTS" "$CONNS" "$S_MEAN1" "$F_MEAN1" <<'EOF'
import statistics, sys
path, conns, s_mean, f_mean = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rounds = [tuple(map(float, line.split())) for line in open(path)]
ratio = statistics.median(f / s for s, _, f, _ in rounds)
s_rps = statistics.median(r[0] for r in rounds)
f_rps = statistics.median(r[2] for r in rounds)
s_p99 = statistics.median(r[1] for r in rounds)
f_p99 = statistics.median(r[3] for r in rounds)
print(f"\n{'':10} {'req/s':>12} {'p99 ms':>10}   (medians of {len(rounds)} rounds, {conns} connections)")
print(f"{'static':10} {s_rps:>12.0f} {s_p99:>10.2f}")
print(f"{'function':10} {f_rps:>12.0f} {f_p99:>10.2f}")
print(f"\nfunction/static req/s = {ratio:.2f}x  (goal >= 0.5: {'PASS' if ratio >= 0.5 else 'MISS'})")
print(f"function p99 = {f_p99:.2f} ms  (goal <= 5 ms: {'PASS' if f_p99 <= 5 else 'MISS'})")
print(f"one request at a time, function minus static mean latency: {1000 * (f_mean - s_mean):.0f} us")
print("  (that is mostly the hand-off to a JavaScript worker thread and back;")
print("   the JavaScript itself: cargo bench -p faztd --bench function_engine)")
EOF
