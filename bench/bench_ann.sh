#!/usr/bin/env bash
# ANN serving benchmark (issue 14): a planted-cluster model of ITEMS × DIMS
# written by bench/gen_model, served with [serving] index = INDEX (ann or
# exact). Reports the activation (index build or top-K precompute) time,
# the build-time recall@10, memory (RSS high-water mark), similar?k=10 over
# HTTP with wrk -t2 -c32 (random items; rate, p99), and the restart time
# (the ANN index read back from its files).
#   bench/bench_ann.sh [ITEMS] [DIMS] [INDEX]     (default 1000000 64 ann)
# Needs wrk (scripts/deps.sh bench). Never fails on a time.
set -euo pipefail
ITEMS=${1:-1000000}
DIMS=${2:-64}
INDEX=${3:-ann}
source "$(dirname "$0")/lib.sh"
trap 'stop_daemon; rm -rf "$BENCH_TMP"' EXIT
echo "machine: $(machine); load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bench/gen_model" --state "$BENCH_TMP/state" --items "$ITEMS" --dims "$DIMS"

start_big() { # like start_daemon, but waits as long as the activation takes
  PORT=$(free_port)
  URL="http://127.0.0.1:$PORT"
  printf '[serving]\nindex = %s\n' "$INDEX" > "$BENCH_TMP/bench.conf"
  local t0=$(date +%s.%N)
  "$BUILD/itemvecd" --listen "127.0.0.1:$PORT" --state-dir "$BENCH_TMP/state" \
    --config "$BENCH_TMP/bench.conf" 2>>"$BENCH_TMP/daemon.log" &
  DPID=$!
  until curl -fs "$URL/readyz" >/dev/null 2>&1; do
    kill -0 "$DPID" 2>/dev/null || { tail "$BENCH_TMP/daemon.log"; exit 1; }
    sleep 0.5
  done
  echo "ready after $(echo "$(date +%s.%N) - $t0" | bc) s"
}

start_big
grep 'serving: model' "$BENCH_TMP/daemon.log" | tail -1 | cut -d' ' -f4-
curl -fsS "$URL/v1/models/m900000" | json serving
echo "rss: $(grep -E 'VmHWM|VmRSS' /proc/$DPID/status | tr -s ' \n' ' ')"
cat > "$BENCH_TMP/ids.lua" <<LUA
math.randomseed(42)
request = function()
  return wrk.format("GET", "/v1/items/g" .. math.random(0, $ITEMS - 1) .. "/similar?k=10")
end
LUA
for q in "" "&metric=dot"; do
  sed -i "s|similar?k=10[^\"]*\"|similar?k=10${q//&/\\&}\"|" "$BENCH_TMP/ids.lua"
  out=$(wrk -t2 -c32 -d10s --latency -s "$BENCH_TMP/ids.lua" "$URL")
  echo "wrk similar?k=10$q: $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s," \
       "p50 $(echo "$out" | awk '$1=="50%" {print $2}'), p99 $(echo "$out" | awk '$1=="99%" {print $2}')," \
       "errors $(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
stop_daemon
start_big
grep 'serving: model' "$BENCH_TMP/daemon.log" | tail -1 | cut -d' ' -f4-
