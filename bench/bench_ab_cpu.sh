#!/usr/bin/env bash
# A/B of the serving path by daemon CPU per request, the steadier measure on a
# shared machine: two itemvecd builds (e.g. main's and a branch's) get the
# same generated table and model, then wrk (2 threads, 32 connections, 8 s,
# random /v1/items/{id}/similar?k=10) runs against each in turn, ROUNDS times;
# each line prints requests, req/s and the daemon's user+system CPU time per
# request (from /proc/<pid>/stat). Never fails on a time.
#   bench/bench_ab_cpu.sh A_BUILD_DIR B_BUILD_DIR [ROWS=1000000] [ROUNDS=4]
# Needs wrk (scripts/deps.sh bench). Used for docs/benchmarks.md's dashboard section.
set -euo pipefail
A=$1/itemvecd; B=$2/itemvecd; ROWS=${3:-1000000}; ROUNDS=${4:-4}
GEN=$2/bench/gen_playlists
T=$(mktemp -d /tmp/itemvec_ab.XXXXXX)
declare -A PID URLS
trap 'for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"' EXIT
command -v wrk >/dev/null || { echo "wrk missing: scripts/deps.sh bench"; exit 0; }
"$GEN" --rows "$ROWS" --seed 1 --out "$T/p.tsv" 2>/dev/null
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+''.join('[%r]'%k for k in sys.argv[1].split('.'))))" "$1"; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
job() { # url body -> waits for success
  local j; j=$(curl -fsS -H 'Content-Type: application/json' -d "$2" "$1/v1/jobs" | json id)
  until [ "$(curl -fsS "$1/v1/jobs/$j" | json state)" = succeeded ]; do sleep 0.2; done
}
for name in A B; do
  bin=${!name}; dir=$T/$name; mkdir -p "$dir"; port=$(free_port)
  "$bin" --listen 127.0.0.1:$port --state-dir "$dir" --log-level warn > "$dir/log" 2>&1 &
  PID[$name]=$!; URLS[$name]=http://127.0.0.1:$port
  until curl -fs "${URLS[$name]}/readyz" >/dev/null; do sleep 0.05; done
  curl -fsS -o /dev/null -H 'Content-Type: text/tab-separated-values' --data-binary @"$T/p.tsv" \
    "${URLS[$name]}/v1/playlists"
  job "${URLS[$name]}" '{"type":"pmi"}'
  job "${URLS[$name]}" '{"type":"train","params":{"max_iterations":4,"early_stop":false,"seed":1}}'
done
curl -fsS "${URLS[A]}/v1/embeddings" | python3 -c 'import json,sys
ids=[json.loads(l)["id"] for l in sys.stdin]
print("ids = {" + ",".join("\"%s\"" % i for i in ids) + "}")' > "$T/ids.lua"
cat >> "$T/ids.lua" <<'LUA'
math.randomseed(42)
request = function()
  return wrk.format("GET", "/v1/items/" .. ids[math.random(#ids)] .. "/similar?k=10")
end
LUA
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for name in A B; do
    c0=$(cpu "${PID[$name]}")
    out=$(wrk -t2 -c32 -d8s --latency -s "$T/ids.lua" "${URLS[$name]}")
    c1=$(cpu "${PID[$name]}")
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    echo "round $round $name: $n requests, $rps req/s, daemon CPU" \
      "$(python3 -c "print('%.2f' % (($c1 - $c0) * 1e6 / $(getconf CLK_TCK) / $n))") us/request"
  done
done
