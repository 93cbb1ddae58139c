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
# ctest prints its own summary line ("100% tests passed, 0 tests failed out of N").
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 600
