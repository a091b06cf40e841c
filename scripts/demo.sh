#!/usr/bin/env bash
# The whole pipeline on generated data, against a running itemvecd:
# generate a small seed-shaped dataset (bench/gen_playlists), upload it,
# run the pmi and train jobs while printing their progress, download the
# embeddings, show similar items with titles, and print commands to try.
# Usage: scripts/demo.sh URL BUILD_DIR   (run by ./run.sh --demo)
set -euo pipefail
URL=${1:-http://127.0.0.1:8080}
BUILD=${2:-build}
ROWS=${DEMO_ROWS:-300000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

json() { # json FIELD.PATH < doc : prints a field with python3 if present, else raw
  python3 -c 'import json,sys
d=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d=d[int(k)] if isinstance(d,list) else d.get(k)
print(d if not isinstance(d,(dict,list)) else json.dumps(d))' "$1"
}

wait_job() { # wait_job ID : polls until terminal, printing progress
  local id=$1 state=""
  while :; do
    doc=$(curl -fsS "$URL/v1/jobs/$id")
    state=$(echo "$doc" | json state)
    frac=$(echo "$doc" | json progress.fraction)
    stage=$(echo "$doc" | json progress.stage)
    loss=$(echo "$doc" | json progress.loss 2>/dev/null || true)
    [ "$loss" = None ] && loss=""
    printf '\r  %-6s %-10s %5.1f%%  %-12s %s        ' "$id" "$state" \
      "$(python3 -c "print($frac*100)")" "$stage" "${loss:+loss $loss}"
    case $state in succeeded|failed|cancelled) break ;; esac
    sleep 0.3
  done
  echo
  [ "$state" = succeeded ] || { echo "job $id $state: $doc"; exit 1; }
}

echo "== 1. generating $ROWS seed-shaped playlist rows (bench/gen_playlists)"
"$BUILD/bench/gen_playlists" --rows "$ROWS" --seed 7 --format tsv --gzip --out "$TMP/playlists.tsv.gz"
ls -la "$TMP/playlists.tsv.gz" | awk '{print "  " $5 " bytes gzipped"}'

echo "== 2. uploading (TSV, gzip)"
curl -fsS -H 'Content-Type: text/tab-separated-values' -H 'Content-Encoding: gzip' \
  --data-binary @"$TMP/playlists.tsv.gz" "$URL/v1/playlists"; echo
curl -fsS "$URL/v1/info"; echo

echo "== 3. PMI job (the seed's sp_ComputePMI, min_item_frequency 15, max_group_size 100)"
PMI=$(curl -fsS -H 'Content-Type: application/json' -d '{"type":"pmi"}' "$URL/v1/jobs" | json id)
wait_job "$PMI"
curl -fsS "$URL/v1/jobs/$PMI" | json result; 
echo "  top pairs by cooc·pmi:"
curl -fsS "$URL/v1/pmi/pairs?limit=4" | python3 -c 'import json,sys
for p in json.load(sys.stdin)["pairs"]: print("   ", p["item1"], p["item2"], "cooc", p["cooc"], "pmi %.3f" % p["pmi"], "score %.1f" % p["score"])'

echo "== 4. train job (implicit WALS, 50 dimensions, alpha 1, as BigQuery ML)"
TRAIN=$(curl -fsS -H 'Content-Type: application/json' -d '{"type":"train"}' "$URL/v1/jobs" | json id)
wait_job "$TRAIN"
MODEL=$(curl -fsS "$URL/v1/jobs/$TRAIN" | json result.model)
echo "  model $MODEL, loss per iteration: $(curl -fsS "$URL/v1/jobs/$TRAIN" | json result.loss)"

echo "== 5. downloading the embeddings (the seed's JSONL export)"
curl -fsS --compressed "$URL/v1/embeddings" -o "$TMP/embeddings.json"
echo "  $(wc -l < "$TMP/embeddings.json") lines; first: $(head -c 120 "$TMP/embeddings.json")..."

echo "== 6. similar items (cosine on the embeddings) for the most popular items"
for ITEM in $(curl -fsS "$URL/v1/pmi/pairs?limit=3" | python3 -c 'import json,sys
print(" ".join(sorted({p["item1"] for p in json.load(sys.stdin)["pairs"]})))'); do
  curl -fsS "$URL/v1/items/$ITEM/similar?k=5" | python3 -c 'import json,sys
d=json.load(sys.stdin); print("  %s:" % d["item"])
for n in d["neighbors"]: print("    %-10s %.3f  %s — %s" % (n["id"], n["score"], n["title"], n["artist"]))'
done

cat <<EOT

The daemon keeps running. Try next:
  curl $URL/v1/info
  curl "$URL/v1/items/$ITEM/similar?k=10"
  curl "$URL/v1/items/$ITEM/similar?k=10&source=cooc"
  curl "$URL/v1/items/$ITEM/similar?k=10&metric=dot"      # inner product: see docs/quality.md
  curl -H 'Content-Type: application/json' -d '{"items":["$ITEM"],"k":10}' $URL/v1/recommend
  curl "$URL/v1/pmi/pairs?limit=10"
  curl -H 'Content-Type: application/json' -d '{"type":"evaluate"}' $URL/v1/jobs      # hold-out quality, see docs/quality.md
  curl --compressed $URL/v1/embeddings > embeddings.json
  curl $URL/metrics
Stop it with: ./run.sh --stop
EOT
