#!/usr/bin/env bash
# Import throughput (issue 13): POST /v1/pmi/import of a generated item_cooc
# table and POST /v1/models/import of generated embeddings, each timed from
# the first byte sent to the durable 201, with the daemon's peak RSS.
#   bench/bench_import.sh [ITEMS] [ROWS] [EMB_ITEMS] [DIMS]
# Defaults are the seed's whole table (92,761 matrix items, ~90 M item_cooc
# rows, ~2.5 GB CSV) and 1 M x 64 embeddings. Files are generated first (not
# timed) under $BENCH_TMP (default /tmp/itemvec-bench.*; ~3.5 GB free needed).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ITEMS=${1:-92761}
ROWS=${2:-89945421}
EMB_ITEMS=${3:-1000000}
DIMS=${4:-64}
cmake --build "$BUILD" -j2 --target itemvecd gen_cooc >/dev/null
echo "machine: $(machine); load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bench/gen_cooc" --items "$ITEMS" --rows "$ROWS" --out "$BENCH_TMP/item_cooc.csv"
"$BUILD/bench/gen_cooc" --embeddings --items "$EMB_ITEMS" --dims "$DIMS" --out "$BENCH_TMP/emb.jsonl"
CSV_BYTES=$(stat -c %s "$BENCH_TMP/item_cooc.csv")
EMB_BYTES=$(stat -c %s "$BENCH_TMP/emb.jsonl")
trap 'stop_daemon; rm -rf "$BENCH_TMP"' EXIT
start_daemon "[limits]
max_upload_rows = 200000000"
BASE_RSS=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$DPID/status")

t0=$(date +%s.%N)
ans=$(curl -fsS -X POST -H 'Content-Type: text/csv' -T "$BENCH_TMP/item_cooc.csv" \
  "$URL/v1/pmi/import")
t1=$(date +%s.%N)
job=$(echo "$ans" | json job)
nnz=$(echo "$ans" | json cooc_rows)
rss=$(peak_rss_mb "$DPID")
python3 - "$t0" "$t1" "$nnz" "$CSV_BYTES" "$rss" "$BASE_RSS" "$ITEMS" <<'PY'
import sys
t0, t1, nnz, size, rss, base, n = map(float, sys.argv[1:])
s = t1 - t0
result = 8 * nnz + 24 * n  # col + cooc per row, keys + freq + row_ptr per item
print("pmi import: %d rows, %.0f MB CSV in %.2f s = %.2f M rows/s (%.0f MB/s)"
      % (nnz, size / 1e6, s, nnz / s / 1e6, size / s / 1e6))
print("  peak RSS %.0f MB (idle %.0f MB); PMI result in memory %.0f MB; ratio %.2f"
      % (rss, base, result / 2**20, rss / (result / 2**20)))
PY
curl -fsS "$URL/v1/jobs/$job" | json result.timings

t0=$(date +%s.%N)
ans=$(curl -fsS -X POST -H 'Content-Type: application/x-ndjson' -T "$BENCH_TMP/emb.jsonl" \
  "$URL/v1/models/import")
t1=$(date +%s.%N)
python3 - "$t0" "$t1" "$EMB_BYTES" "$EMB_ITEMS" "$DIMS" <<'PY'
import sys
t0, t1, size, n, d = map(float, sys.argv[1:])
s = t1 - t0
print("model import: %d x %d, %.0f MB JSONL in %.2f s = %.0f MB/s" % (n, d, size / 1e6, s, size / s / 1e6))
PY
echo "$ans"
