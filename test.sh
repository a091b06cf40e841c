#!/usr/bin/env bash
# Installs what is missing, builds itemvec three times and runs ctest:
#   1. gcc, optimised: the whole suite;
#   2. clang with ASan+UBSan (-fno-sanitize-recover=all): the whole suite;
#   3. clang with ThreadSanitizer: the threaded parts (job system, PMI,
#      WALS and kNN kernels, serving swaps).
# After each build, scripts/check_deps.py checks that every header, library,
# Python module and tool the build and tests use comes from a package that
# scripts/deps.sh installs (the fresh-machine guard).
#   ./test.sh            all three
#   ./test.sh --quick    the plain build only
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh test

echo "== layering: folder graph from #include lines vs docs/architecture.md =="
python3 scripts/check_layers.py

jobs=$(nproc)
run_suite() { # dir ctest-regex cmake-args...
  local dir=$1 regex=$2; shift 2
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  scripts/check_deps.py --profile test "$dir"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900 ${regex:+-R "$regex"})
}

echo "== plain build (gcc, -O2) =="
run_suite build "" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc

if [ "${1:-}" != "--quick" ]; then
  echo "== sanitizer build (clang, ASan+UBSan, -fno-sanitize-recover=all) =="
  run_suite build-asan "" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DITEMVEC_SANITIZE=ON
  echo "== ThreadSanitizer build (clang): job system, kernels, serving =="
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_suite build-tsan \
    "unit_test_(cooc|wals|knn|loader|pipeline|thread)|api_test_(jobs|models|import)" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DITEMVEC_TSAN=ON
fi
echo "test.sh: all suites passed"
