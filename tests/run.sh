#!/usr/bin/env bash
# Every test: installs the dependencies, builds (Release, -Wall -Wextra as errors), runs ctest.
# BUILD_DIR (default build/) and JOBS (default: the number of cores) can be set.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash contrib/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -DPREFLIGHT_WERROR=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
# ctest prints its own summary line ("100% tests passed, 0 tests failed out of N"); its JUnit
# report (with whole outputs) then shows that every Catch2 case ran exactly once.
junit="$(cd "$BUILD_DIR" && pwd)/ctest-junit.xml"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 600 \
  --output-junit "$junit" --test-output-size-passed 1048576
python3 tests/catch_case_count.py "$BUILD_DIR" "$junit"
