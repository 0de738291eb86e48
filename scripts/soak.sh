#!/usr/bin/env bash
# soak.sh: ten minutes of mixed load on one faztd, watching whether its
# memory and open descriptors stay flat.
#
# A soak, not a benchmark: the load is bounded (a few connections each, all
# on loopback) and what matters is the slope, not the speed. At the same
# time, for DURATION:
#   - wrk, keep-alive, on a static page                  (4 connections)
#   - wrk on a function that counts in fazt.kv (incr) and
#     publishes each count with fazt.realtime            (2 connections)
#   - wrk with `Connection: close` on the static page:
#     a new TCP connection per request                   (2 connections)
#   - ws-load: 20 WebSocket subscribers and a publisher at RATE messages/s
# Every INTERVAL it samples faztd's resident memory (VmRSS) and open
# descriptors. At the end it fits a line through the samples after the
# warm-up (the first WARMUP seconds) and prints the slopes, and checks:
#   - memory is flat: the fitted growth over the window is within the noise
#     (3 standard deviations of the samples around the line) or under 2 MiB;
#   - descriptors are flat: the fitted growth is under 5;
#   - zero errors: no socket errors or non-2xx/3xx answers in any wrk run,
#     every WebSocket message delivered, nobody cut off.
# Exits 1 if any check fails.
#
# Environment: DURATION=600 (s), INTERVAL=10 (s), WARMUP=60 (s), RATE=200
# (messages/s), BUILD=0 to skip the release build, CARGO_TARGET_DIR.
# Needs: cargo, curl, wrk, python3.
set -euo pipefail

# Paths, BUILD, log/die, $TMP and its cleanup, faztd, ports, wrk: shared with
# the bench scripts, and explained in lib/bench-common.sh.
# shellcheck source-path=SCRIPTDIR source=lib/bench-common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/bench-common.sh"

DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-10}
WARMUP=${WARMUP:-60}
RATE=${RATE:-200}
WRK=$(find_tool wrk "apt-get install wrk")
LOAD=$TARGET_DIR/release/ws-load
need_tools curl python3
((DURATION > WARMUP + 3 * INTERVAL)) || die "DURATION must leave at least three samples after WARMUP"

build_release "faztd, faztctl and ws-load" -p faztd -p faztctl
build_release "" -p fazt-e2e --bin ws-load
need_binaries "$FAZTD" "$FAZTCTL" "$LOAD"

# From here on, every process is stopped by pid and $TMP removed, however we leave.
bench_init fazt-soak
PORT=$(free_ports 1)
start_faztd "$PORT"

mkdir -p "$TMP/site/api"
printf '<!doctype html><title>soak</title><p>%s</p>\n' "$(head -c 3000 /dev/zero | tr '\0' x)" \
    >"$TMP/site/index.html"
cat >"$TMP/site/api/hit.js" <<'EOF'
export default async function () {
  const n = fazt.kv.incr("hits");
  fazt.realtime.publish("hits", { n });
  return { n };
}
EOF
echo '{"realtime": {"clientPublish": ["bench"]}}' >"$TMP/site/fazt.json"
ctl deploy "$TMP/site" --site soak >/dev/null
HOST="Host: soak.localhost"
BASE="http://127.0.0.1:$PORT"
curl -sf -H "$HOST" "$BASE/" | grep -q soak || die "the static page is not served"
curl -sf -H "$HOST" "$BASE/api/hit" | grep -q '"n"' || die "the function is not served"

log "soaking for ${DURATION}s: static, function, connection churn and WebSockets; sampling every ${INTERVAL}s"
# Each load runs in the background, tracked, writing its report to a file.
start_load() { # start_load NAME COMMAND...
    local name=$1
    shift
    "$@" >"$TMP/$name.out" 2>&1 &
    track_pid "$!"
    LOAD_PIDS+=("$!")
    LOAD_NAMES+=("$name")
}
LOAD_PIDS=() LOAD_NAMES=()
start_load static "$WRK" -t1 -c4 -d"${DURATION}s" --latency -H "$HOST" "$BASE/"
start_load function "$WRK" -t1 -c2 -d"${DURATION}s" --latency -H "$HOST" "$BASE/api/hit"
start_load churn "$WRK" -t1 -c2 -d"${DURATION}s" --latency -H "$HOST" -H "Connection: close" "$BASE/"
start_load websocket "$LOAD" broadcast --url "ws://127.0.0.1:$PORT/_ws" --host soak.localhost \
    --subscribers 20 --rate "$RATE" --messages $((RATE * (DURATION - 2))) --size 128

# Sample until the loads are due to end.
SAMPLES=$TMP/samples
started=$(date +%s)
while :; do
    now=$(($(date +%s) - started))
    kill -0 "$FAZTD_PID" 2>/dev/null || die "faztd died during the soak (log: $(tail -5 "$TMP/faztd.log"))"
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$FAZTD_PID/status")
    fds=$(find "/proc/$FAZTD_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$now $rss $fds" >>"$SAMPLES"
    printf '  %4ss  RSS %7s KiB  fds %5s\n' "$now" "$rss" "$fds" >&2
    # The last sample comes before the loads end, not as they close.
    ((now + INTERVAL >= DURATION)) && break
    sleep "$INTERVAL"
done

# The loads end by themselves (wrk at -d, ws-load when every message is
# in); give them a little longer than that, then judge.
# running PID: true while PID runs (an ended child we have not waited for
# yet is a zombie, which kill -0 would still find).
running() { [[ -e /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }
failed=0
for i in "${!LOAD_PIDS[@]}"; do
    pid=${LOAD_PIDS[$i]} name=${LOAD_NAMES[$i]}
    for ((t = 0; t < 300; t++)); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then
        log "$name is still running 30 s after the soak's end: stopping it"
        stop_tracked "$pid"
        failed=1
        continue
    fi
    wait "$pid" || { log "$name failed: $(tail -3 "$TMP/$name.out")"; failed=1; }
    untrack_pid "$pid"
done

ERRORS=$TMP/errors
for name in static function churn; do
    read_wrk "$TMP/$name.out"
    echo "$name $(round 0 "$WRK_RPS") $WRK_ERRORS $(round 2 "$WRK_P99_MS")" >>"$ERRORS"
done
python3 - "$SAMPLES" "$ERRORS" "$TMP/websocket.out" "$WARMUP" "$failed" <<'EOF'
import json, statistics, sys
samples_path, errors_path, ws_path, warmup, failed = sys.argv[1:6]
warmup, failed = float(warmup), int(failed)
samples = [tuple(map(float, line.split())) for line in open(samples_path)]
window = [s for s in samples if s[0] >= warmup]

def fit(points):
    """Least-squares line through (t, y): slope per second, and the
    standard deviation of the points around it."""
    ts = [t for t, _ in points]
    ys = [y for _, y in points]
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    var = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (y - my) for t, y in points) / var if var else 0.0
    residuals = [y - (my + slope * (t - mt)) for t, y in points]
    return slope, statistics.pstdev(residuals)

span = window[-1][0] - window[0][0]
rss_slope, rss_noise = fit([(t, rss) for t, rss, _ in window])
fd_slope, _ = fit([(t, fds) for t, _, fds in window])
rss_growth = rss_slope * span
fd_growth = fd_slope * span
ok = failed == 0

print(f"\nsamples after the {warmup:.0f} s warm-up: {len(window)} over {span:.0f} s")
print(f"RSS  {window[0][1]/1024:.1f} MiB -> {window[-1][1]/1024:.1f} MiB "
      f"(min {min(s[1] for s in window)/1024:.1f}, max {max(s[1] for s in window)/1024:.1f}); "
      f"slope {rss_slope*60:+.1f} KiB/min, fitted growth {rss_growth/1024:+.2f} MiB, noise (sd) {rss_noise/1024:.2f} MiB")
half = len(window) // 2
early, _ = fit([(t, rss) for t, rss, _ in window[:half]])
late, _ = fit([(t, rss) for t, rss, _ in window[half:]])
print(f"     slope in the first half {early*60:+.1f} KiB/min, in the second {late*60:+.1f} KiB/min "
      "(a cache filling slows down; a leak does not)")
flat = abs(rss_growth) <= max(3 * rss_noise, 2048)
print(f"     memory flat within noise: {'PASS' if flat else 'FAIL'}")
ok &= flat
print(f"fds  {window[0][2]:.0f} -> {window[-1][2]:.0f}; slope {fd_slope*60:+.2f}/min, fitted growth {fd_growth:+.1f}")
fd_flat = abs(fd_growth) < 5
print(f"     descriptors flat: {'PASS' if fd_flat else 'FAIL'}")
ok &= fd_flat

print()
for line in open(errors_path):
    name, rps, errors, p99 = line.split()
    print(f"{name:9} {int(rps):>8} req/s  p99 {p99:>7} ms  errors {errors}")
    ok &= int(errors) == 0
ws = None
for line in open(ws_path):
    if line.startswith("{"):
        ws = json.loads(line)
if ws is None:
    print("websocket: no report from ws-load")
    ok = False
else:
    print(f"websocket {ws['delivered']} of {ws['expected']} messages delivered, "
          f"p99 {ws['p99_ms']:.2f} ms, {ws['cut_off']} cut off")
    ok &= ws["delivered"] == ws["expected"] and ws["cut_off"] == 0
print(f"\nsoak: {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
EOF
