#!/usr/bin/env bash
# Builds preflight with sanitizers and runs the tests that can show their findings.
#
#   tests/sanitize.sh [address|thread|all]      (default: all)
#
# address: build-asan (-DPREFLIGHT_SANITIZE=address: ASan + UBSan, every finding fatal), then
#          the whole test suite: unit, cli, corpus and, as root, the integration tests (a real
#          Postfix and Sendmail in front of the ASan milter and status filter).
# thread:  build-tsan (-DPREFLIGHT_SANITIZE=thread), then the tests that run code on several
#          threads: the DNS cache and resolver, SPF and DKIM in parallel, the shared rule set,
#          the threaded commands (cli.reply, cli.dsn, cli.serve: worker threads, event loops,
#          SIGHUP reloads) and, as root, integration.milter_faults: 40 concurrent SMTP sessions
#          through Postfix into the TSan milter, with SIGHUP reloads under that load.
# Both build at -O1 with line tables only (-g1): reports keep file:line, the build is faster.
# BUILD_PREFIX (default: build) names the build dirs (build-asan, build-tsan); JOBS defaults to
# the number of cores. Uses the default compiler (GCC on Debian); CMAKE_ARGS are passed through.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
what=${1:-all}
JOBS=${JOBS:-$(nproc)}
prefix=${BUILD_PREFIX:-build}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# GLib is not built with TSan: tests/tsan.supp mutes reports with a GLib frame, and g_slice
# (GLib 2.74's own allocator, synchronised where TSan cannot see it) is turned off.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$here/tests/tsan.supp}
export G_SLICE=${G_SLICE:-always-malloc}

configure() {  # DIR KIND [CMAKE ARGS...]
  local dir=$1 kind=$2
  shift 2
  cmake -S . -B "$dir" -DPREFLIGHT_SANITIZE="$kind" -DPREFLIGHT_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" ${CMAKE_ARGS:-} >/dev/null
}

# The ASan build uses the fallback rule engine (RE2): the whole suite, the seed, reason-table
# and corpus tests included, runs with both engines in one CI run (tests/run.sh: Hyperscan).
run_address() {
  local dir=$prefix-asan
  configure "$dir" address -DPREFLIGHT_RULE_ENGINE=re2
  cmake --build "$dir" -j "$JOBS"
  ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout 900 \
    --output-junit "$here/$dir/ctest-junit.xml" --test-output-size-passed 1048576
  python3 tests/catch_case_count.py "$dir" "$here/$dir/ctest-junit.xml"
}

run_thread() {
  local dir=$prefix-tsan
  configure "$dir" thread
  cmake --build "$dir" -j "$JOBS" --target unit_tests milter_unit_tests preflight-classify preflight-milter
  "$dir/tests/unit_tests" '[threads]'
  "$dir/tests/milter_unit_tests" '[dns],[spf],[dkim]'
  ctest --test-dir "$dir" --output-on-failure --timeout 900 -R '^(cli\.(reply|dsn|serve)|integration\.milter_faults)$'
}

case $what in
  address) run_address ;;
  thread) run_thread ;;
  all) run_address; run_thread ;;
  *) echo "usage: $0 [address|thread|all]" >&2; exit 2 ;;
esac
echo "sanitize: $what: no findings"
