#!/usr/bin/env bash
# bench-ws.sh: faztd's realtime fan-out against a minimal Node.js broadcast
# server built on npm's `ws` package, measured by the same Rust client.
#
# A benchmark, not a test. It builds faztd, faztctl and the ws-load client in
# release mode, writes the Node server into a temp dir (`npm install ws`
# there), and for each server runs:
#   1. broadcast, saturated: N subscribers on one channel, one publisher that
#      keeps at most WINDOW messages in flight; delivered messages/s and
#      delivery latency (p50/p99).
#   2. broadcast at a fixed RATE messages/s: latency when not saturated.
#   3. IDLE idle connections (each subscribed to a channel): the server's RSS.
# Everything runs on 127.0.0.1 and shares the machine with the client:
# compare ratios, not absolute numbers.
#
# Usage: scripts/bench-ws.sh
#
# Environment knobs:
#   SUBSCRIBERS=100  MESSAGES=20000  WINDOW=64  SIZE=64  RATE=1000
#   IDLE=10000       idle connections for the memory measurement (0 skips it)
#   BUILD=0          skip the release build (use what target/release holds)
#   RESULTS_JSON=F   also write every result as JSON to F
#
# Needs: cargo, curl, node, npm, python3.

set -euo pipefail

# Paths, BUILD, log/die, $TMP and its cleanup, faztd, ports, wrk: shared by
# every bench script, and explained in lib/bench-common.sh.
# shellcheck source-path=SCRIPTDIR source=lib/bench-common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/bench-common.sh"

SUBSCRIBERS=${SUBSCRIBERS:-100}
MESSAGES=${MESSAGES:-20000}
WINDOW=${WINDOW:-64}
SIZE=${SIZE:-64}
RATE=${RATE:-1000}
IDLE=${IDLE:-10000}
RESULTS_JSON=${RESULTS_JSON:-}
LOAD=$TARGET_DIR/release/ws-load

need_tools curl node npm python3

# Idle connections need a descriptor each, on both ends.
want_fds=$((IDLE * 2 + 1024))
if (($(ulimit -n) < want_fds)); then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" ||
        die "cannot raise the open-file limit to $want_fds (ulimit -n)"
fi
if (($(ulimit -n) < IDLE + 1024)); then
    die "the open-file limit $(ulimit -n) is too low for IDLE=$IDLE; lower IDLE or raise ulimit -Hn"
fi

build_release "faztd, faztctl and ws-load" -p faztd -p faztctl
build_release "" -p fazt-e2e --bin ws-load
need_binaries "$FAZTD" "$FAZTCTL" "$LOAD"

# Every process we start is stopped by pid on the way out, and $TMP removed.
bench_init fazt-bench-ws

# faztd's port and the Node server's.
read -r PORT_F PORT_N < <(free_ports 2)

# ---------------------------------------------------------------------------
# The Node.js server: the same frames as faztd for what the client uses
# (subscribe → subscribed, publish → message to every subscriber), one
# JSON.stringify and one Buffer per message, sent to each subscriber.
# ---------------------------------------------------------------------------
log "installing ws from npm into $TMP/node"
mkdir -p "$TMP/node"
cat >"$TMP/node/server.js" <<'JS'
const { WebSocketServer, WebSocket } = require('ws');
const port = Number(process.argv[2]);
const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/_ws' });
const channels = new Map(); // channel -> Set of sockets
let nextId = 1;
wss.on('connection', (ws) => {
  ws.subs = new Set();
  ws.on('message', (raw) => {
    let f;
    try { f = JSON.parse(raw); } catch { return; }
    if (f.type === 'subscribe') {
      if (!channels.has(f.channel)) channels.set(f.channel, new Set());
      channels.get(f.channel).add(ws);
      ws.subs.add(f.channel);
      ws.send(JSON.stringify({ type: 'subscribed', channel: f.channel }));
    } else if (f.type === 'publish') {
      // Serialised and encoded once, sent to every subscriber as text.
      const out = Buffer.from(JSON.stringify({ type: 'message', channel: f.channel, id: nextId++, ts: Date.now(), data: f.data }));
      const subs = channels.get(f.channel);
      if (subs) for (const s of subs) if (s.readyState === WebSocket.OPEN) s.send(out, { binary: false });
    } else if (f.type === 'ping') {
      ws.send('{"type":"pong"}');
    }
  });
  ws.on('close', () => { for (const c of ws.subs) channels.get(c)?.delete(ws); });
});
wss.on('listening', () => console.log('listening on ' + port));
JS
(cd "$TMP/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund ws >/dev/null) ||
    die "npm install ws failed"
WS_VERSION=$(node -p "require('$TMP/node/node_modules/ws/package.json').version")

# ---------------------------------------------------------------------------
# faztd, with a site that lets clients publish on `bench` and room for the
# idle connections.
# ---------------------------------------------------------------------------
mkdir -p "$TMP/site" "$TMP/data"
echo '<h1>bench</h1>' >"$TMP/site/index.html"
echo '{"realtime": {"clientPublish": ["bench"]}}' >"$TMP/site/fazt.json"
start_faztd "$PORT_F" --domain localhost
ctl deploy "$TMP/site" --site bench >/dev/null
ctl config set realtime_max_connections_per_site $((IDLE + SUBSCRIBERS + 100)) >/dev/null
# Every connection comes from this one address (the default cap is 512 per
# address); taken at the restart before the idle run.
ctl config set http_max_connections_per_address 0 >/dev/null

# start_node / stop_node: the Node server on PORT_N, tracked by NODE_PID.
start_node() {
    node "$TMP/node/server.js" "$PORT_N" >"$TMP/node.log" 2>&1 &
    NODE_PID=$!
    track_pid "$NODE_PID"
    wait_port "$PORT_N"
}
stop_node() {
    stop_tracked "$NODE_PID"
    NODE_PID=
}
start_node

F_URL=ws://127.0.0.1:$PORT_F/_ws
N_URL=ws://127.0.0.1:$PORT_N/_ws
RESULTS=$TMP/results.jsonl
: >"$RESULTS"

# run LABEL SERVER ARGS...: runs ws-load (tracked, so Ctrl-C stops it at
# once) and records its JSON line.
run() {
    local label=$1 server=$2
    shift 2
    log "$label: $server"
    local line
    run_tracked "$LOAD" "$@" >"$TMP/ws-load.out" || die "ws-load failed ($label, $server)"
    line=$(<"$TMP/ws-load.out")
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["label"]=sys.argv[2]; d["server"]=sys.argv[3]; print(json.dumps(d))' \
        "$line" "$label" "$server" >>"$RESULTS"
}

BCAST=(--subscribers "$SUBSCRIBERS" --messages "$MESSAGES" --window "$WINDOW" --size "$SIZE")
# A short warm-up of each, then the measured runs, alternating servers.
run_tracked "$LOAD" broadcast --url "$F_URL" --host bench.localhost --subscribers 10 --messages 2000 >/dev/null 2>&1
run_tracked "$LOAD" broadcast --url "$N_URL" --host bench.localhost --subscribers 10 --messages 2000 >/dev/null 2>&1
run saturated faztd broadcast --url "$F_URL" --host bench.localhost "${BCAST[@]}"
run saturated node broadcast --url "$N_URL" --host bench.localhost "${BCAST[@]}"
run "rate $RATE/s" faztd broadcast --url "$F_URL" --host bench.localhost "${BCAST[@]}" \
    --rate "$RATE" --messages $((RATE * 5))
run "rate $RATE/s" node broadcast --url "$N_URL" --host bench.localhost "${BCAST[@]}" \
    --rate "$RATE" --messages $((RATE * 5))

if ((IDLE > 0)); then
    # Fresh processes, so the RSS is that of idle connections only.
    stop_faztd
    start_faztd "$PORT_F" --domain localhost
    run "idle $IDLE" faztd idle --url "$F_URL" --host bench.localhost --connections "$IDLE" --pid "$FAZTD_PID"
    stop_node
    start_node
    run "idle $IDLE" node idle --url "$N_URL" --host bench.localhost --connections "$IDLE" --pid "$NODE_PID"
fi

[[ -n $RESULTS_JSON ]] && cp "$RESULTS" "$RESULTS_JSON"

python3 - "$RESULTS" "$SUBSCRIBERS" "$WS_VERSION" "$(node --version)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
subs, ws_version, node_version = sys.argv[2], sys.argv[3], sys.argv[4]
by = {(r["label"], r["server"]): r for r in rows}
print()
print(f"faztd vs Node.js {node_version} + ws {ws_version}, {subs} subscribers, same client (ws-load)")
print(f"{'run':<16} {'server':<6} {'delivered msg/s':>16} {'p50 ms':>8} {'p99 ms':>8} {'cut off':>8}")
for r in rows:
    if r["mode"] != "broadcast":
        continue
    print(f"{r['label']:<16} {r['server']:<6} {r['delivered_per_sec']:>16,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['cut_off']:>8}")
    if r["delivered"] != r["expected"]:
        print(f"  ! {r['delivered']} of {r['expected']} messages delivered")
f, n = by.get(("saturated", "faztd")), by.get(("saturated", "node"))
if f and n and n["delivered_per_sec"] > 0:
    ratio = f["delivered_per_sec"] / n["delivered_per_sec"]
    print(f"throughput ratio faztd/node: {ratio:.2f}x (goal >= 2x)")
for r in rows:
    if r["mode"] == "idle":
        mib = r["rss_kib"] / 1024
        goal = " (goal <= 200 MiB)" if r["server"] == "faztd" else ""
        print(f"{r['label']:<16} {r['server']:<6} {r['connections']} open, RSS {mib:.1f} MiB, "
              f"{r['per_connection_bytes']} B/connection{goal}")
PY
