#!/usr/bin/env bash
# bench-deploy.sh: how fast is a deploy, a one-file redeploy and `faztctl status`?
#
# A benchmark, not a test: it builds faztd and faztctl in release mode, starts
# a throwaway faztd (temp data dir, loopback port, its own control socket),
# generates a deterministic site of many small files and measures, in wall
# clock time as a user would see it (faztctl's start-up included):
#
#   1. the first deploy of the whole site;
#   2. REPEAT redeploys that each change exactly one byte of one file, which
#      must upload exactly one blob each (the deploy is content-addressed);
#      after each, curl must get the new bytes back from faztd;
#   3. `faztctl status` and `faztctl status --json` (hyperfine if installed,
#      else a timed loop).
#
# It ends with a summary against the goals:
#   - a redeploy with one changed file takes <= 0.2 s (median) and uploads one blob
#   - `faztctl status` takes <= 50 ms (mean, both the table and --json)
#
# Usage: scripts/bench-deploy.sh
#
# Environment knobs:
#   FILES=1000          files in the generated site (plus an index.html)
#   DIRS=20             top-level folders they are spread over (each has a sub-folder)
#   REPEAT=5            one-file redeploys to measure
#   STATUS_RUNS=20      measured runs of each `faztctl status` variant
#   BUILD=0             skip `cargo build --release` (use the binaries already built)
#   RESULTS_JSON=FILE   also write the results as JSON to FILE
#   CARGO_TARGET_DIR    where cargo puts binaries [default: <repo>/target]
#
# Needs: cargo, curl, python3, cmp; hyperfine is optional (apt-get install hyperfine).

set -euo pipefail

# Paths, BUILD, log/die, $TMP and its cleanup, faztd, ports, wrk: shared by
# every bench script, and explained in lib/bench-common.sh.
# shellcheck source-path=SCRIPTDIR source=lib/bench-common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/bench-common.sh"

FILES=${FILES:-1000}
DIRS=${DIRS:-20}
REPEAT=${REPEAT:-5}
STATUS_RUNS=${STATUS_RUNS:-20}
RESULTS_JSON=${RESULTS_JSON:-}
SITE=bench
SEED=20240601

# Goals (milliseconds).
GOAL_REDEPLOY_MS=200
GOAL_STATUS_MS=50

# ---------------------------------------------------------------------------
# 0. Prerequisites and knobs.
# ---------------------------------------------------------------------------
need_tools curl python3 cmp
for knob in FILES DIRS REPEAT STATUS_RUNS; do
    [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "$knob must be a positive number (got '${!knob}')"
done
((FILES >= 2 * DIRS)) || die "FILES must be at least 2*DIRS, so every folder gets files"
# Each redeploy changes the byte at offset CHANGE_AT+r of the target file (see 5.).
((REPEAT <= 1000)) || die "REPEAT must be <= 1000"
HYPERFINE=$(command -v hyperfine 2>/dev/null || true)

# ---------------------------------------------------------------------------
# 1. Build.
# ---------------------------------------------------------------------------
build_release "faztd and faztctl" -p faztd -p faztctl
need_binaries "$FAZTD" "$FAZTCTL"

# ---------------------------------------------------------------------------
# 2. Temp dir and cleanup. The faztd we start is stopped by its pid (never by
#    name) however we leave, and the temp dir goes with it.
# ---------------------------------------------------------------------------
bench_init fazt-bench-deploy

# now_ns: wall clock in nanoseconds.
now_ns() { date +%s%N; }
# ms_since START_NS: milliseconds (3 decimals) from START_NS to now.
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }

# json_field FILE KEY: one top-level field of a JSON object.
json_field() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# stats MS...: prints "MIN MEDIAN MEAN MAX" of the numbers given.
stats() {
    python3 -c '
import statistics, sys
v = [float(x) for x in sys.argv[1:]]
print("%.3f %.3f %.3f %.3f" % (min(v), statistics.median(v), statistics.fmean(v), max(v)))
' "$@"
}

# ---------------------------------------------------------------------------
# 3. Start faztd: empty data dir, a free loopback port, an explicit socket.
# ---------------------------------------------------------------------------
PORT=$(free_ports 1)
log "starting faztd on 127.0.0.1:$PORT (socket $SOCK)"
start_faztd "$PORT"
# From here on, `ctl` is faztctl talking to this faztd (--socket $SOCK).

# Sites are routed by Host: NAME.localhost is site NAME.
BASE=http://127.0.0.1:$PORT
HOST_HDR=(-H "Host: $SITE.localhost:$PORT")

# ---------------------------------------------------------------------------
# 4. The site: FILES small HTML/CSS/JS/text files of 100 B - 20 KiB (sizes
#    log-uniform, so most are small), spread over DIRS folders each with a
#    sub-folder, plus index.html. A seeded RNG makes every run identical, and
#    each file names its own path, so all are distinct blobs. The file in the
#    middle is the one the redeploys change: a 4 KiB+ text file. The generator
#    prints its path.
# ---------------------------------------------------------------------------
SRC=$TMP/site
mkdir -p "$SRC"
log "generating $FILES files in $DIRS folders"
TARGET=$(python3 - "$SRC" "$FILES" "$DIRS" "$SEED" "$REPEAT" <<'EOF'
import math, os, random, sys

root, nfiles, ndirs, seed, repeat = sys.argv[1], *map(int, sys.argv[2:])
rng = random.Random(seed)
WORDS = ("fazt static site deploy blob hash redb daemon socket version rollback "
         "quick brown fox jumps over lazy dog lorem ipsum dolor sit amet").split()
KINDS = ("html", "css", "js", "txt")
target_index = nfiles // 2

def words(n):
    return " ".join(rng.choice(WORDS) for _ in range(n))

def body(kind, size):
    # Roughly realistic text for the kind, then cut/padded to exactly size bytes.
    parts, n = [], 0
    while n < size:
        if kind == "html":
            s = "<p>%s</p>\n" % words(rng.randint(5, 15))
        elif kind == "css":
            s = ".c%d { margin: %dpx; color: #%06x; } /* %s */\n" % (
                rng.randrange(10**6), rng.randrange(40), rng.randrange(1 << 24), words(3))
        elif kind == "js":
            s = "function f%d(x) { return x * %d; } // %s\n" % (
                rng.randrange(10**6), rng.randrange(1000), words(4))
        else:
            s = words(rng.randint(8, 16)) + "\n"
        parts.append(s)
        n += len(s)
    return "".join(parts)[:size]

def header(kind, rel):
    return {"html": "<!-- %s -->\n", "css": "/* %s */\n", "js": "// %s\n", "txt": "# %s\n"}[kind] % rel

target = None
for i in range(nfiles):
    d = i % ndirs
    folder = "s%02d" % d if (i // ndirs) % 2 == 0 else "s%02d/deep" % d
    if i == target_index:
        kind, size = "txt", max(4096, 200 + repeat)
    else:
        kind = rng.choice(KINDS)
        size = int(math.exp(rng.uniform(math.log(100), math.log(20 * 1024))))
    rel = "%s/f%04d.%s" % (folder, i, kind)
    head = header(kind, rel)
    text = head + body(kind, max(0, size - len(head)))
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    with open(os.path.join(root, rel), "w") as f:
        f.write(text)
    if i == target_index:
        target = rel

links = "".join("<li>s%02d</li>\n" % d for d in range(ndirs))
with open(os.path.join(root, "index.html"), "w") as f:
    f.write("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>bench</title>"
            "</head>\n<body>\n<h1>Fazt deploy bench</h1>\n"
            "<ul>\n%s</ul>\n</body></html>\n" % links)
print(target)
EOF
)
SITE_FILES=$(find "$SRC" -type f | wc -l)
SITE_BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
log "site: $SITE_FILES files, $SITE_BYTES bytes; the redeploys change $TARGET"

# check_served REL: faztd must serve REL with exactly the bytes on disk.
check_served() { expect_file "/$1" "$SRC/$1" "$BASE/$1" "${HOST_HDR[@]}"; }

# deploy_timed OUT_JSON: runs `faztctl deploy --json`, leaves its output in
# OUT_JSON and sets DEPLOY_MS to the wall time. Not for $(...) (sets a global).
deploy_timed() {
    local out=$1 t0
    t0=$(now_ns)
    if ! ctl deploy "$SRC" --site "$SITE" --json >"$out" 2>"$TMP/deploy.err"; then
        cat "$TMP/deploy.err" "$out" >&2
        die "faztctl deploy failed"
    fi
    DEPLOY_MS=$(ms_since "$t0")
}

# ---------------------------------------------------------------------------
# 5. First deploy: everything is new.
# ---------------------------------------------------------------------------
log "first deploy"
deploy_timed "$TMP/deploy-0.json"
FIRST_MS=$DEPLOY_MS
FIRST_FILES=$(json_field "$TMP/deploy-0.json" files)
FIRST_BLOBS=$(json_field "$TMP/deploy-0.json" uploaded_blobs)
FIRST_BYTES=$(json_field "$TMP/deploy-0.json" uploaded_bytes)
FIRST_SERVER_MS=$(json_field "$TMP/deploy-0.json" elapsed_ms)
((FIRST_FILES == SITE_FILES)) ||
    die "faztctl deployed $FIRST_FILES files, the site has $SITE_FILES: $(cat "$TMP/deploy-0.json")"
check_served index.html
check_served "$TARGET"
log "first deploy: ${FIRST_MS} ms, $FIRST_BLOBS blobs / $FIRST_BYTES bytes uploaded"

# A redeploy with nothing changed, for reference: the fixed cost of a deploy.
log "redeploy with nothing changed"
deploy_timed "$TMP/deploy-noop.json"
NOOP_MS=$DEPLOY_MS
NOOP_BLOBS=$(json_field "$TMP/deploy-noop.json" uploaded_blobs)

# ---------------------------------------------------------------------------
# 6. One-file redeploys. Redeploy r flips the byte at offset CHANGE_AT+r of
#    the target file, cumulatively, so every version is new content that
#    differs from the previous by one byte: exactly one new blob each time.
# ---------------------------------------------------------------------------
CHANGE_AT=100
REDEPLOY_MS=()
REDEPLOY_SERVER_MS=()
for ((r = 0; r < REPEAT; r++)); do
    python3 - "$SRC/$TARGET" "$((CHANGE_AT + r))" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(path, "rb").read())
b[off] = ord("#") if b[off] != ord("#") else ord("%")
open(path, "wb").write(b)
EOF
    deploy_timed "$TMP/deploy-$((r + 1)).json"
    blobs=$(json_field "$TMP/deploy-$((r + 1)).json" uploaded_blobs)
    if [[ $blobs != 1 ]]; then
        cat "$TMP/deploy-$((r + 1)).json" >&2
        die "redeploy $((r + 1)) changed one file but uploaded $blobs blobs, expected exactly 1"
    fi
    # The change must be live right after the deploy returns.
    check_served "$TARGET"
    REDEPLOY_MS+=("$DEPLOY_MS")
    REDEPLOY_SERVER_MS+=("$(json_field "$TMP/deploy-$((r + 1)).json" elapsed_ms)")
    log "redeploy $((r + 1))/$REPEAT: ${DEPLOY_MS} ms, 1 blob ($(json_field "$TMP/deploy-$((r + 1)).json" uploaded_bytes) bytes); new content served"
done
read -r RD_MIN RD_MEDIAN RD_MEAN RD_MAX < <(stats "${REDEPLOY_MS[@]}")
read -r _ RD_SERVER_MEDIAN _ _ < <(stats "${REDEPLOY_SERVER_MS[@]}")

# ---------------------------------------------------------------------------
# 7. `faztctl status`, as a table and as JSON. Each must work before it is
#    timed. hyperfine -N runs it without a shell in between; without
#    hyperfine, a loop times each run with date (3 warm-up runs first).
# ---------------------------------------------------------------------------
ctl status >/dev/null || die "faztctl status failed"
ctl status --json | python3 -c 'import json, sys; json.load(sys.stdin)' ||
    die "faztctl status --json is not JSON"

# time_status NAME ARGS...: sets STATUS_MEAN and STATUS_MEDIAN (ms).
time_status() {
    local name=$1 i t0
    shift
    if [[ -n $HYPERFINE ]]; then
        # hyperfine -N splits the command like a shell would: quote the paths.
        # run_tracked: tracked by pid, so Ctrl-C stops it at once.
        run_tracked "$HYPERFINE" --warmup 3 -N --min-runs "$STATUS_RUNS" --style none \
            --export-json "$TMP/hf-$name.json" \
            "'$FAZTCTL' --socket '$SOCK' $*" >/dev/null
        read -r STATUS_MEAN STATUS_MEDIAN < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.3f %.3f" % (r["mean"] * 1000, r["median"] * 1000))
' "$TMP/hf-$name.json")
    else
        local times=()
        for ((i = 0; i < 3; i++)); do ctl "$@" >/dev/null; done
        for ((i = 0; i < STATUS_RUNS; i++)); do
            t0=$(now_ns)
            ctl "$@" >/dev/null
            times+=("$(ms_since "$t0")")
        done
        read -r _ STATUS_MEDIAN STATUS_MEAN _ < <(stats "${times[@]}")
    fi
}

STATUS_TOOL=${HYPERFINE:+hyperfine}
STATUS_TOOL=${STATUS_TOOL:-"date loop"}
log "timing faztctl status ($STATUS_TOOL)"
time_status table status
ST_MEAN=$STATUS_MEAN ST_MEDIAN=$STATUS_MEDIAN
time_status json status --json
SJ_MEAN=$STATUS_MEAN SJ_MEDIAN=$STATUS_MEDIAN

# ---------------------------------------------------------------------------
# 8. Summary against the goals, and (optionally) JSON.
# ---------------------------------------------------------------------------
# le A B: true if A <= B (floats).
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
verdict() { if le "$1" "$2"; then echo PASS; else echo MISS; fi; }

REDEPLOY_VERDICT=$(verdict "$RD_MEDIAN" "$GOAL_REDEPLOY_MS")
# Every redeploy already uploaded exactly one blob, or we would have stopped.
BLOB_VERDICT=PASS
STATUS_WORST=$(awk -v a="$ST_MEAN" -v b="$SJ_MEAN" 'BEGIN { print (a > b ? a : b) }')
STATUS_VERDICT=$(verdict "$STATUS_WORST" "$GOAL_STATUS_MS")

echo
echo "Site: $SITE_FILES files ($FILES in $DIRS folders + index.html), $SITE_BYTES bytes; wall clock, faztctl start-up included"
printf '  first deploy:               %10s ms  (faztd says %s ms; %s blobs, %s bytes uploaded)\n' \
    "$FIRST_MS" "$FIRST_SERVER_MS" "$FIRST_BLOBS" "$FIRST_BYTES"
printf '  redeploy, nothing changed:  %10s ms  (%s blobs uploaded)\n' "$NOOP_MS" "$NOOP_BLOBS"
printf '  redeploy, 1 file changed:   min %s ms, median %s ms, mean %s ms, max %s ms over %d runs (faztd says median %s ms); 1 blob each\n' \
    "$RD_MIN" "$RD_MEDIAN" "$RD_MEAN" "$RD_MAX" "$REPEAT" "$RD_SERVER_MEDIAN"
printf '  faztctl status:             mean %s ms, median %s ms (%s)\n' "$ST_MEAN" "$ST_MEDIAN" "$STATUS_TOOL"
printf '  faztctl status --json:      mean %s ms, median %s ms (%s)\n' "$SJ_MEAN" "$SJ_MEDIAN" "$STATUS_TOOL"
echo
echo "Goals:"
printf '  %s  one-file redeploy <= %d ms (median %s ms)\n' "$REDEPLOY_VERDICT" "$GOAL_REDEPLOY_MS" "$RD_MEDIAN"
printf '  %s  one-file redeploy uploads exactly 1 blob (%d of %d runs)\n' "$BLOB_VERDICT" "$REPEAT" "$REPEAT"
printf '  %s  faztctl status <= %d ms (mean, worse of table/--json: %s ms)\n' "$STATUS_VERDICT" "$GOAL_STATUS_MS" "$STATUS_WORST"

if [[ -n $RESULTS_JSON ]]; then
    python3 - "$RESULTS_JSON" <<EOF
import json, sys
res = {
    "site": {"files": $SITE_FILES, "bytes": $SITE_BYTES, "changed_file": "$TARGET"},
    "first_deploy": {"wall_ms": $FIRST_MS, "faztd_elapsed_ms": $FIRST_SERVER_MS,
                     "uploaded_blobs": $FIRST_BLOBS, "uploaded_bytes": $FIRST_BYTES},
    "noop_redeploy": {"wall_ms": $NOOP_MS, "uploaded_blobs": $NOOP_BLOBS},
    "one_file_redeploy": {"runs": $REPEAT, "wall_ms": [$(IFS=,; echo "${REDEPLOY_MS[*]}")],
                          "faztd_elapsed_ms": [$(IFS=,; echo "${REDEPLOY_SERVER_MS[*]}")],
                          "min_ms": $RD_MIN, "median_ms": $RD_MEDIAN, "mean_ms": $RD_MEAN, "max_ms": $RD_MAX,
                          "uploaded_blobs_each": 1},
    "status": {"tool": "$STATUS_TOOL",
               "table": {"mean_ms": $ST_MEAN, "median_ms": $ST_MEDIAN},
               "json": {"mean_ms": $SJ_MEAN, "median_ms": $SJ_MEDIAN}},
    "goals": {
        "redeploy_le_${GOAL_REDEPLOY_MS}ms": "$REDEPLOY_VERDICT",
        "redeploy_uploads_one_blob": "$BLOB_VERDICT",
        "status_le_${GOAL_STATUS_MS}ms": "$STATUS_VERDICT",
    },
}
with open(sys.argv[1], "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")
EOF
    log "results written to $RESULTS_JSON"
fi
