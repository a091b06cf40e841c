#!/usr/bin/env bash
# The seed's whole pipeline at seed scale, timed stage by stage:
# ingest (upload) → PMI job → train job → embeddings export.
#   bench/bench_pipeline.sh [ROWS] [DIMS]     (defaults: 12304975 rows, 50 dims)
# ROWS 3000000 is the seed's 3 M-row sample. Needs a build (./test.sh or
# cmake --build build); the daemon runs on a free loopback port with a temp
# state dir; prints one line per stage and the total. Not a test: it never
# fails on a time. Target (issue 4): 12.3 M rows end to end under 5 minutes.
set -euo pipefail
ROWS=${1:-12304975}
DIMS=${2:-50}
source "$(dirname "$0")/lib.sh"
trap 'stop_daemon; rm -rf "$BENCH_TMP"' EXIT
echo "machine: $(machine)"
DATA="$BENCH_TMP/playlists.tsv"
echo "generating $ROWS rows (not timed) ..."
"$BUILD/bench/gen_playlists" --rows "$ROWS" --seed 1 --out "$DATA"
echo "  $(wc -l < "$DATA") lines, $(du -m "$DATA" | cut -f1) MB"
start_daemon "[limits]
max_upload_rows = 1000000000
max_body_size = 64G
max_upload_memory = 16G
max_upload_memory_total = 16G"
t0=$(date +%s.%N)
up=$(curl -fsS -X POST -H 'Content-Type: text/tab-separated-values' -T "$DATA" "$URL/v1/playlists")
t1=$(date +%s.%N)
printf 'ingest  %7.2f s  %s\n' "$(awk "BEGIN{print $t1 - $t0}")" "$up"
pmi=$(run_job '{"type":"pmi"}')
t2=$(date +%s.%N)
printf 'pmi     %7.2f s  %s\n' "$(awk "BEGIN{print $t2 - $t1}")" "$(echo "$pmi" | json result | cut -c1-200)"
train=$(run_job "{\"type\":\"train\",\"params\":{\"dimensions\":$DIMS}}")
t3=$(date +%s.%N)
printf 'train   %7.2f s  iterations %s, %.3f s/iteration, %.4f us/nnz/iteration, activation included\n' \
  "$(awk "BEGIN{print $t3 - $t2}")" "$(echo "$train" | json result.iterations)" \
  "$(echo "$train" | json result.timings.seconds_per_iteration)" \
  "$(echo "$train" | json result.us_per_nnz_iteration)"
# activation (top-K precompute) runs after the job; wait for the model to serve
MODEL=$(echo "$train" | json result.model)
while [ "$(curl -fsS "$URL/v1/info" | json active_model.id)" != "$MODEL" ]; do sleep 0.1; done
t4=$(date +%s.%N)
printf 'activate%7.2f s  (%s)\n' "$(awk "BEGIN{print $t4 - $t3}")" "$(grep 'serving: model' "$BENCH_TMP/daemon.log" | tail -1 | cut -d' ' -f4-)"
curl -fsS "$URL/v1/embeddings" -o "$BENCH_TMP/embeddings.json"
t5=$(date +%s.%N)
printf 'export  %7.2f s  %s lines, %s MB\n' "$(awk "BEGIN{print $t5 - $t4}")" "$(wc -l < "$BENCH_TMP/embeddings.json")" "$(du -m "$BENCH_TMP/embeddings.json" | cut -f1)"
printf 'total   %7.2f s  (ingest + pmi + train + activate + export); daemon peak RSS %s MB\n' \
  "$(awk "BEGIN{print $t5 - $t0}")" "$(peak_rss_mb "$DPID")"
