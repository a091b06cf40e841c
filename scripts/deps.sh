#!/usr/bin/env bash
# Installs the Debian 12 packages itemvec needs to build, test and run,
# skipping those already installed. Sourced by run.sh and test.sh.
# Usage: scripts/deps.sh [build|test|bench]
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libopenblas-dev liblapack-dev liblapacke-dev
  libuv1-dev libsystemd-dev libinih-dev libcmocka-dev zlib1g-dev curl python3
  libhnswlib-dev libcurl4-openssl-dev)
TEST_PKGS=(python3 python3-numpy sqlite3)
BENCH_PKGS=(wrk nginx-light)

want=("${BUILD_PKGS[@]}")
case "${1:-build}" in
  test) want+=("${TEST_PKGS[@]}") ;;
  bench) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
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
