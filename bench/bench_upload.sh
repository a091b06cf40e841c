#!/usr/bin/env bash
# Upload benchmark (issue 2): POST /v1/playlists of the generator's 3 M-row
# TSV into a freshly started itemvecd, then the same body again (the
# idempotent re-upload), timed from the first byte sent to the 200.
#
# For each run it starts the built daemon on a free loopback port with a
# temporary state dir and an empty config, uploads with curl, and prints:
#   - wall time and rows/s (rows_received / s, and rows_stored / s),
#   - the daemon's own split from its log line ("parse Xs, commit Ys"),
#   - the daemon's CPU time (user+sys from /proc/PID/stat) for each upload,
#     which is the figure to trust on a shared, noisy machine,
#   - the daemon's peak RSS (VmHWM) after both uploads.
# With --runs K > 1 it ends with best and median of each figure.
# It prints numbers and always exits 0 unless it cannot run at all; it is a
# benchmark, never a test (STYLE.md).
#
# usage: bench/bench_upload.sh [--build DIR] [--rows N] [--seed S] [--data FILE]
#                              [--format tsv|csv|ndjson] [--runs K] [--keep]
#   --build DIR  build tree holding itemvecd and bench/gen_playlists
#                (default: build-ingest, else build, next to this script's repo)
#   --rows N     rows for gen_playlists (default 3000000)
#   --seed S     generator seed (default 1)
#   --data FILE  file to upload (default /tmp/itemvec_bench_<rows>_<seed>.<format>,
#                generated when missing)
#   --format F   upload format, sets the Content-Type (default tsv); the
#                generator writes csv and ndjson (one playlist a line) too
#   --runs K     repetitions, each on a fresh state dir (default 1)
#   --keep       keep the state dirs and daemon logs (their paths are printed)
#
# example: bench/bench_upload.sh --build build-ingest --runs 5
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
build=
rows=3000000
seed=1
data=
runs=1
keep=0
format=tsv
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --format) format=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_upload: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$build" ]; then
    for d in "$root/build-ingest" "$root/build"; do
        [ -x "$d/itemvecd" ] && { build=$d; break; }
    done
fi
daemon=$build/itemvecd
gen=$build/bench/gen_playlists
if [ ! -x "$daemon" ]; then
    echo "bench_upload: no itemvecd in '${build:-build-ingest or build}'; build first or pass --build" >&2
    exit 2
fi
for tool in curl python3; do
    command -v $tool >/dev/null || { echo "bench_upload: $tool is needed" >&2; exit 2; }
done
case "$format" in
tsv) ctype=text/tab-separated-values ;;
csv) ctype=text/csv ;;
ndjson) ctype=application/x-ndjson ;;
*) echo "bench_upload: --format is tsv, csv or ndjson" >&2; exit 2 ;;
esac
[ -n "$data" ] || data=/tmp/itemvec_bench_${rows}_${seed}.$format
if [ ! -s "$data" ]; then
    [ -x "$gen" ] || { echo "bench_upload: no $gen to generate $data" >&2; exit 2; }
    echo "generating $data ($rows rows, seed $seed)"
    "$gen" --rows "$rows" --seed "$seed" --format "$format" --out "$data" || exit 2
fi

hz=$(getconf CLK_TCK)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# CPU seconds (user+sys) of the daemon so far: "total loop", where loop is
# the main thread (HTTP, parsing, the batch) and the rest is the worker
# pool (the commit). Field 2 (comm) is in parentheses and may hold spaces,
# so split after the last ')'.
cpu_s() {
    awk -v hz="$hz" '{ sub(/.*\) /, ""); printf "%.3f ", ($12 + $13) / hz }' \
        "/proc/$pid/stat" "/proc/$pid/task/$pid/stat"
}

json_field() { # json_field BODY NAME
    python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# upload_once PORT LOG: fills up_wall up_cpu up_cpu_loop up_cpu_pool up_recv
# up_stored up_parse up_commit
upload_once() {
    local port=$1 log=$2 c0 c1 out body code lines
    c0=$(cpu_s)
    lines=$(grep -c 'upload rid=' "$log")
    out=$(curl -s -o /tmp/bench_upload.$$.body -w '%{http_code} %{time_total}' \
        -H "Content-Type: $ctype" --data-binary @"$data" \
        "http://127.0.0.1:$port/v1/playlists")
    c1=$(cpu_s)
    code=${out% *}
    up_wall=${out#* }
    body=$(cat /tmp/bench_upload.$$.body)
    rm -f /tmp/bench_upload.$$.body
    if [ "$code" != 200 ]; then
        echo "bench_upload: upload answered $code: $body" >&2
        return 1
    fi
    up_cpu=$(echo "$c0 $c1" | awk '{ printf "%.2f", $3 - $1 }')
    up_cpu_loop=$(echo "$c0 $c1" | awk '{ printf "%.2f", $4 - $2 }')
    up_cpu_pool=$(echo "$c0 $c1" | awk '{ printf "%.2f", ($3 - $1) - ($4 - $2) }')
    up_recv=$(json_field "$body" rows_received)
    up_stored=$(json_field "$body" rows_stored)
    # The log line is written just before the reply; wait for it briefly.
    for _ in $(seq 50); do
        [ "$(grep -c 'upload rid=' "$log")" -gt "$lines" ] && break
        sleep 0.1
    done
    up_parse=$(grep 'upload rid=' "$log" | tail -1 | sed -n 's/.*parse \([0-9.]*\)s.*/\1/p')
    up_commit=$(grep 'upload rid=' "$log" | tail -1 | sed -n 's/.*commit \([0-9.]*\)s.*/\1/p')
}

rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "daemon:  $daemon"
echo "data:    $data ($format, $(stat -c %s "$data") bytes, $(wc -l <"$data") lines)"
results=$(mktemp)
for run in $(seq "$runs"); do
    dir=$(mktemp -d /tmp/bench_upload.XXXXXX)
    port=$(free_port)
    "$daemon" --listen "127.0.0.1:$port" --state-dir "$dir" --config /dev/null \
        2>"$dir/daemon.log" &
    pid=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
        sleep 0.1
    done
    if ! upload_once "$port" "$dir/daemon.log"; then cleanup; continue; fi
    w1=$up_wall c1=$up_cpu r1=$up_recv s1=$up_stored p1=$up_parse m1=$up_commit
    l1=$up_cpu_loop o1=$up_cpu_pool
    if ! upload_once "$port" "$dir/daemon.log"; then cleanup; continue; fi
    w2=$up_wall c2=$up_cpu r2=$up_recv p2=$up_parse m2=$up_commit
    l2=$up_cpu_loop o2=$up_cpu_pool
    hwm=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
    cleanup
    printf 'run %d: upload %6.2fs %8s rows/s received %8s stored/s | parse %ss commit %ss | cpu %ss = loop %s + pool %s | %s rows, %s stored\n' \
        "$run" "$w1" "$(rate "$r1" "$w1")" "$(rate "$s1" "$w1")" "$p1" "$m1" "$c1" "$l1" "$o1" "$r1" "$s1"
    printf 'run %d: again  %6.2fs %8s rows/s received %8s stored/s | parse %ss commit %ss | cpu %ss = loop %s + pool %s | %s stored\n' \
        "$run" "$w2" "$(rate "$r2" "$w2")" "$(rate "$up_stored" "$w2")" "$p2" "$m2" "$c2" "$l2" "$o2" "$up_stored"
    printf 'run %d: peak RSS %s MB\n' "$run" "$hwm"
    echo "$w1 $(rate "$r1" "$w1") $(rate "$s1" "$w1") $p1 $m1 $c1 $l1 $o1 $w2 $(rate "$r2" "$w2") $p2 $m2 $c2 $l2 $o2 $hwm" >>"$results"
    if [ "$keep" = 1 ]; then echo "run $run: kept $dir"; else rm -rf "$dir"; fi
done
n=$(wc -l <"$results")
if [ "$n" -gt 1 ]; then
    # best = min time / max rate / min RSS; median per column
    python3 - "$results" <<'EOF'
import sys, statistics
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
cols = ["upload s", "upload rows/s", "upload stored/s", "parse s", "commit s", "upload cpu s",
        "cpu loop s", "cpu pool s", "again s", "again rows/s", "again parse s",
        "again commit s", "again cpu s", "again loop s", "again pool s", "peak RSS MB"]
print(f"summary over {len(rows)} runs:      best     median")
for i, name in enumerate(cols):
    v = [r[i] for r in rows]
    best = max(v) if name.endswith("/s") else min(v)
    print(f"  {name:16s} {best:10.2f} {statistics.median(v):10.2f}")
EOF
fi
rm -f "$results"
[ "$n" -gt 0 ] || exit 1
exit 0
