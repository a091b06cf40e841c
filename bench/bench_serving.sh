#!/usr/bin/env bash
# Serving benchmark (issue 5): similar-items queries against the active
# model of the generator's 3 M-row table (≈23 k items × 50 dims), with wrk
# on loopback (2 threads, 32 connections, 10 s, random item ids), side by
# side with nginx serving a static file of the size of a typical answer
# (the ceiling of HTTP on this machine). Also reports the model's
# activation time (top-K precompute) and memory.
#   bench/bench_serving.sh [ROWS]        (default 3000000)
# Needs wrk and nginx (scripts/deps.sh bench installs them). Never fails on
# a time. Targets: >= 25 k req/s, p99 <= 2 ms, 0 errors, >= 60 % of nginx.
set -euo pipefail
ROWS=${1:-3000000}
source "$(dirname "$0")/lib.sh"
NGINX_PID=""
trap 'stop_daemon; [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null; rm -rf "$BENCH_TMP"' EXIT
command -v wrk >/dev/null || { echo "wrk missing: scripts/deps.sh bench"; exit 0; }
echo "machine: $(machine)"
"$BUILD/bench/gen_playlists" --rows "$ROWS" --seed 1 --out "$BENCH_TMP/p.tsv"
start_daemon
curl -fsS -H 'Content-Type: text/tab-separated-values' --data-binary @"$BENCH_TMP/p.tsv" "$URL/v1/playlists" >/dev/null
run_job '{"type":"pmi"}' >/dev/null
train=$(run_job '{"type":"train"}')
MODEL=$(echo "$train" | json result.model)
while [ "$(curl -fsS "$URL/v1/info" | json active_model.id)" != "$MODEL" ]; do sleep 0.1; done
echo "model: $(grep 'serving: model' "$BENCH_TMP/daemon.log" | tail -1 | cut -d' ' -f4-)"
curl -fsS "$URL/v1/embeddings" | python3 -c 'import json,sys
ids=[json.loads(l)["id"] for l in sys.stdin]
print("ids = {" + ",".join("\"%s\"" % i for i in ids) + "}")' > "$BENCH_TMP/ids.lua"
cat >> "$BENCH_TMP/ids.lua" <<'LUA'
math.randomseed(42)
request = function()
  return wrk.format("GET", "/v1/items/" .. ids[math.random(#ids)] .. "/similar?k=10")
end
LUA
SAMPLE=$(curl -fsS "$URL/v1/items/$(head -c 300 "$BENCH_TMP/ids.lua" | sed 's/.*{"\([^"]*\)".*/\1/')/similar?k=10")
echo "typical answer: ${#SAMPLE} bytes"
wrk_run() { # name url [script]
  local out
  out=$(wrk -t2 -c32 -d10s --latency ${3:+-s "$3"} "$2")
  local rps p99 errs
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  echo "$1: $rps req/s, p99 $p99 ${errs:-no errors}"
  echo "$rps" > "$BENCH_TMP/$1.rps"
}
wrk_run itemvecd "$URL" "$BENCH_TMP/ids.lua"
if command -v nginx >/dev/null; then
  mkdir -p "$BENCH_TMP/www" "$BENCH_TMP/nginx"
  chmod 755 "$BENCH_TMP" "$BENCH_TMP/www"  # nginx workers run as www-data
  printf '%s' "$SAMPLE" > "$BENCH_TMP/www/similar.json"
  NPORT=$(free_port)
  cat > "$BENCH_TMP/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $BENCH_TMP/nginx/nginx.pid;
error_log $BENCH_TMP/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $BENCH_TMP/nginx; proxy_temp_path $BENCH_TMP/nginx;
  fastcgi_temp_path $BENCH_TMP/nginx; uwsgi_temp_path $BENCH_TMP/nginx; scgi_temp_path $BENCH_TMP/nginx;
  server { listen 127.0.0.1:$NPORT; root $BENCH_TMP/www; default_type application/json; }
}
NGX
  nginx -c "$BENCH_TMP/nginx.conf" -p "$BENCH_TMP/nginx" &
  NGINX_PID=$!
  sleep 0.5
  wrk_run nginx "http://127.0.0.1:$NPORT/similar.json"
  awk -v a="$(cat "$BENCH_TMP/itemvecd.rps")" -v b="$(cat "$BENCH_TMP/nginx.rps")" \
    'BEGIN {printf "itemvecd / nginx: %.0f %%\n", 100*a/b}'
fi
echo "daemon peak RSS: $(peak_rss_mb "$DPID") MB"
