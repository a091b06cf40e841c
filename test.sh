#!/usr/bin/env bash
# Installs what is missing, builds itemvec twice (gcc optimised; clang with
# ASan+UBSan) and runs the whole ctest suite in both builds.
#   ./test.sh            both builds
#   ./test.sh --quick    the plain build only
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh test

jobs=$(nproc)
run_suite() { # dir cmake-args...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900)
}

echo "== plain build (gcc, -O2) =="
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc

if [ "${1:-}" != "--quick" ]; then
  echo "== sanitizer build (clang, ASan+UBSan, -fno-sanitize-recover=all) =="
  run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DITEMVEC_SANITIZE=ON
fi
echo "test.sh: all suites passed"
