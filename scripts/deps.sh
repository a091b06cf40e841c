#!/usr/bin/env bash
# Installs the Debian 12 packages itemvec needs to build, test and run,
# skipping those already installed. Sourced by run.sh and test.sh.
# Usage: scripts/deps.sh [build|test|bench]
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libopenblas-dev liblapack-dev liblapacke-dev
  libuv1-dev libsystemd-dev libinih-dev libcmocka-dev zlib1g-dev curl python3)
TEST_PKGS=(python3 python3-numpy sqlite3 nodejs)
BENCH_PKGS=(wrk nginx-light)

want=("${BUILD_PKGS[@]}")
case "${1:-build}" in
  test) want+=("${TEST_PKGS[@]}") ;;
  bench) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
esac

# DuckDB for tests/api/test_duckdb_roundtrip.py: npm's @duckdb/node-api on
# Debian's Node.js, pinned by tests/duckdb/package-lock.json, installed into
# tests/duckdb/node_modules (not system-wide). Runs after the apt packages.
duckdb_for_tests() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/duckdb"
  if [ -d "$dir/node_modules/@duckdb/node-api" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    # Debian's nodejs comes without npm (NodeSource's bundles it)
    echo "deps: installing npm"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm
  fi
  echo "deps: installing @duckdb/node-api into $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  case "${1:-build}" in test | bench) duckdb_for_tests ;; esac
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
case "${1:-build}" in test | bench) duckdb_for_tests ;; esac
