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

# Paths, BUILD, log/die, $TMP and its cleanup, faztd, ports, wrk: shared by
# every bench script, and explained in lib/bench-common.sh.
# shellcheck source-path=SCRIPTDIR source=lib/bench-common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/bench-common.sh"

DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
WRK=$(find_tool wrk "apt-get install wrk")
need_tools curl python3

build_release "" -p faztd -p faztctl
need_binaries "$FAZTD" "$FAZTCTL"

# From here on, faztd and wrk are stopped by pid and $TMP removed, however we leave.
bench_init fazt-bench-fn
PORT=$(free_ports 1)
start_faztd "$PORT"

# The same 12-byte body both ways.
mkdir -p "$TMP/site/api"
printf 'hello world\n' >"$TMP/site/hello.txt"
printf 'export default () => "hello world\\n";\n' >"$TMP/site/api/hello.js"
ctl deploy "$TMP/site" --site bench >/dev/null

HOST="Host: bench.localhost"
STATIC_URL="http://127.0.0.1:$PORT/hello.txt"
FN_URL="http://127.0.0.1:$PORT/api/hello"
[[ $(curl -s -H "$HOST" "$STATIC_URL") == "hello world" ]] || die "static file not served"
[[ $(curl -s -H "$HOST" "$FN_URL") == "hello world" ]] || die "function not served"

# measure THREADS CONNS URL: a 2 s warm-up, then the measured run; sets
# RPS, P99 (ms) and MEAN (ms). Not for $(...): run_wrk tracks wrk's pid.
measure() {
    run_wrk "$TMP/wrk.out" -t"$1" -c"$2" -d2s -H "$HOST" "$3"
    run_wrk "$TMP/wrk.out" -t"$1" -c"$2" -d"$DURATION" --latency -H "$HOST" "$3"
    read_wrk "$TMP/wrk.out"
    RPS=$(round 0 "$WRK_RPS") P99=$(round 2 "$WRK_P99_MS") MEAN=$(round 3 "$WRK_MEAN_MS")
}

# Alternate static and function runs, ROUNDS times: the machine's own noise
# (shared cores) then hits both alike, and the median ratio is what counts.
RESULTS=$TMP/results
for round in $(seq "$ROUNDS"); do
    measure 2 "$CONNS" "$STATIC_URL"
    S_RPS=$RPS S_P99=$P99
    measure 2 "$CONNS" "$FN_URL"
    F_RPS=$RPS F_P99=$P99
    echo "$S_RPS $S_P99 $F_RPS $F_P99" >>"$RESULTS"
    printf 'round %s: static %s req/s (p99 %s ms), function %s req/s (p99 %s ms)\n' \
        "$round" "$S_RPS" "$S_P99" "$F_RPS" "$F_P99"
done
measure 1 1 "$STATIC_URL"
S_MEAN1=$MEAN
measure 1 1 "$FN_URL"
F_MEAN1=$MEAN

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
