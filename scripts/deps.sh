#!/usr/bin/env bash
# Installs the Debian 12 packages itemvec needs to build, test and run,
# skipping those already installed. Run by run.sh and test.sh; it is the one
# list of what a fresh machine (a `debootstrap --variant=minbase bookworm`)
# lacks. scripts/check_deps.py, run by ./test.sh, fails when the build
# includes a header, links a library or the tests run a tool or import a
# Python module from a package that this list does not reach (directly or
# through Depends), so keep this list and the code in step.
# Usage: scripts/deps.sh [build|test|bench]     install what is missing
#        scripts/deps.sh --list [build|test|bench]   print the package names
set -euo pipefail

# Build: compilers (gcc for the plain build, clang + its sanitizer runtimes
# for the ASan/TSan builds), cmake/pkg-config, the libraries' -dev packages
# (liblapacke-dev: lapack.h), and what run.sh and scripts/demo.sh call.
BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libopenblas-dev liblapack-dev liblapacke-dev
  libuv1-dev libsystemd-dev libinih-dev libcmocka-dev zlib1g-dev curl python3
  libhnswlib-dev libcurl4-openssl-dev)
# Tests: numpy (oracles), sqlite3 (the CLI docs/operations.md uses on a state
# dir), systemd (systemd-analyze verify in
# tests/api/test_systemd_units.py), debootstrap + systemd-container
# (systemd-nspawn: tests/systemd/test_units_nspawn.py boots the units under
# a real systemd).
# chromium + python3-websocket + a font: tests/browser drives the dashboard.
# llvm: llvm-ar (CMake picks it for clang when present) and llvm-symbolizer for
# readable ASan/TSan reports.
# nodejs: DuckDB (npm, pinned in tests/duckdb) runs the duckdb dialect of
# GET /v1/pmi/sql in tests/api/test_duckdb_roundtrip.py.
TEST_PKGS=(python3 python3-numpy sqlite3 systemd debootstrap systemd-container nodejs
  chromium python3-websocket fonts-dejavu-core llvm)
# Benchmarks: load generator, the nginx baseline, free(1) in bench/lib.sh;
# FAISS for bench/ann_compare.cpp (FAISS vs hnswlib, built by hand).
BENCH_PKGS=(wrk nginx-light procps libfaiss-dev)
# python3 is also a build tool: scripts/embed_assets.py embeds ui/ and docs/openapi.json

list=0
if [ "${1:-}" = "--list" ]; then
  list=1
  shift
fi
want=("${BUILD_PKGS[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${TEST_PKGS[@]}") ;;
  bench) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  *) echo "usage: $0 [--list] [build|test|bench]" >&2; exit 2 ;;
esac
if [ $list -eq 1 ]; then
  printf '%s\n' "${want[@]}" | sort -u
  exit 0
fi

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
