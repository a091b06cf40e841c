#!/usr/bin/env bash
# Installs what is missing, builds, and starts itemvecd on 127.0.0.1:8080
# with its state in ./var (log: var/itemvecd.log, pid: var/itemvecd.pid).
#   ./run.sh            build and (re)start the daemon, print curl commands
#   ./run.sh --demo     ... then run the whole pipeline on generated data
#   ./run.sh --stop     stop a daemon started by this script
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VAR="$ROOT/var"
PIDFILE="$VAR/itemvecd.pid"
LISTEN="${ITEMVEC_LISTEN:-127.0.0.1:8080}"
URL="http://$LISTEN"

stop_daemon() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill -TERM "$(cat "$PIDFILE")"
    for _ in $(seq 100); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
    echo "itemvecd stopped"
  fi
  rm -f "$PIDFILE"
}

if [ "${1:-}" = "--stop" ]; then stop_daemon; exit 0; fi

scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target itemvecd gen_playlists >/dev/null
mkdir -p "$VAR/state"
stop_daemon
nohup build/itemvecd --listen "$LISTEN" --state-dir "$VAR/state" \
  --config "$ROOT/conf/itemvecd.conf" >>"$VAR/itemvecd.log" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 100); do
  if curl -fs "$URL/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "itemvecd failed to start; last log lines:"; tail -n 20 "$VAR/itemvecd.log"; exit 1
  fi
  sleep 0.1
done
echo "itemvecd running on $URL (pid $(cat "$PIDFILE"), state $VAR/state, log $VAR/itemvecd.log)"

if [ "${1:-}" = "--demo" ]; then
  exec scripts/demo.sh "$URL" "$ROOT/build"
fi

cat <<EOT

Try:
  curl $URL/v1/info
  printf 'playlist_id\titem_id\ttitle\tartist\np1\t1\tSong One\tSomeone\np1\t2\tSong Two\tSomeone\n' \\
    | curl -H 'Content-Type: text/tab-separated-values' --data-binary @- $URL/v1/playlists
  curl $URL/v1/playlists/p1
Stop it with: ./run.sh --stop
EOT
