# Shared helpers for the bench/*.sh scripts (sourced, not run).
# Starts the built daemon on a free loopback port with a temporary state dir.

BUILD=${ITEMVEC_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}
BENCH_TMP=${BENCH_TMP:-$(mktemp -d /tmp/itemvec-bench.XXXXXX)}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_daemon() { # sets PORT, URL, DPID; extra config text in $1
  PORT=$(free_port)
  URL="http://127.0.0.1:$PORT"
  mkdir -p "$BENCH_TMP/state"
  printf '%s\n' "${1:-}" > "$BENCH_TMP/bench.conf"
  "$BUILD/itemvecd" --listen "127.0.0.1:$PORT" --state-dir "$BENCH_TMP/state" \
    --config "$BENCH_TMP/bench.conf" 2>>"$BENCH_TMP/daemon.log" &
  DPID=$!
  for _ in $(seq 300); do
    curl -fs "$URL/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon did not start; log:"; tail "$BENCH_TMP/daemon.log"; exit 1
}

stop_daemon() {
  [ -n "${DPID:-}" ] && kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
}

json() { python3 -c 'import json,sys
d=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d=d[int(k)] if isinstance(d,list) else d.get(k)
print(d if not isinstance(d,(dict,list)) else json.dumps(d))' "$1"; }

run_job() { # run_job JSON → prints the finished job document; fails unless succeeded
  local id doc state
  id=$(curl -fsS -H 'Content-Type: application/json' -d "$1" "$URL/v1/jobs" | json id)
  while :; do
    doc=$(curl -fsS "$URL/v1/jobs/$id")
    state=$(echo "$doc" | json state)
    case $state in succeeded) echo "$doc"; return 0 ;; failed|cancelled) echo "$doc" >&2; return 1 ;; esac
    sleep 0.2
  done
}

peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

machine() { echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem/ {print $2}') GiB"; }
