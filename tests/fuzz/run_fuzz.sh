#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a bounded time, one after the other.
#
#   tests/fuzz/run_fuzz.sh BUILD_DIR SECONDS [TARGET...]
#
# BUILD_DIR: a build configured with -DPREFLIGHT_FUZZ=ON whose fuzz_* targets are built (the
# top of the build tree or its tests/fuzz); this script builds nothing. SECONDS: run time per
# target. TARGET: only these (default: every fuzz_* found).
#
# Each target starts from its seed corpus, tests/fuzz/corpus/<target>/ plus the tests' own
# fixtures (see seed_fixtures), copied to a temporary directory: what the run adds to the corpus
# is thrown away, the repository does not grow. A dictionary tests/fuzz/<target>.dict is used
# when present. Exit status: 0 when no target crashed, 1 otherwise (a crash, a leak, a timeout
# of one input over 10 s or an RSS over 2 GiB); the reproducer is kept in FUZZ_ARTIFACTS
# (default: a directory under /tmp, named in the output) and its path printed.
#
# Environment: FUZZ_ARTIFACTS (where crashing inputs go), FUZZ_RSS_MB (default 2048),
# FUZZ_TIMEOUT (seconds per input, default 10).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
  exit 2
fi
build=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)

bindir=$build
if [ -d "$build/tests/fuzz" ]; then bindir=$build/tests/fuzz; fi
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in "$bindir"/fuzz_*; do
    if [ -x "$f" ] && [ -f "$f" ]; then targets+=("$(basename "$f")"); fi
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "run_fuzz: no fuzz_* executables in $bindir (configure with -DPREFLIGHT_FUZZ=ON and build fuzz_all)" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/preflight-fuzz.XXXXXX")
artifacts=${FUZZ_ARTIFACTS:-$work/artifacts}
mkdir -p "$artifacts"
cleanup() { rm -rf "$work/corpus"; [ -n "$(ls -A "$artifacts" 2>/dev/null)" ] || rm -rf "$work"; }
trap cleanup EXIT

# Seeds from the fixtures of the other tests, written into the directory $2 for target $1.
seed_fixtures() {
  local t=$1 dir=$2 i=0
  case $t in
    fuzz_reply | fuzz_ascii_path)
      # fuzz_ascii_path: the replies and the reason table's diagnostics, the texts the rules
      # were written for (its own corpus directory holds none).
      if [ "$t" = fuzz_ascii_path ]; then
        grep -v '^#' "$src/tests/data/reasons.tsv" | cut -f2 | while IFS= read -r line; do
          if [ -n "$line" ]; then printf '%s' "$line" >"$dir/reason-$((i++))"; fi
        done
      fi
      while IFS= read -r line; do
        if [ -n "$line" ]; then printf '%s' "$line" >"$dir/sample-$((i++))"; fi
      done <"$src/tests/data/sample-replies.txt"
      # The reply column of the seed table (a literal \n is a line break).
      grep -v '^#' "$src/tests/data/seed-replies.tsv" | cut -f2 | while IFS= read -r line; do
        if [ -n "$line" ]; then printf '%b' "${line//%/%%}" >"$dir/seed-$((i++))"; fi
      done ;;
    fuzz_dsn)
      cp "$src"/tests/data/dsn/*.eml "$dir"/ ;;
    fuzz_conf)
      cp "$src/conf/preflight.conf" "$dir/preflight.conf" ;;
    fuzz_rules)
      # The shipped rule files in pieces of 40 lines (the target reads at most 4 KiB).
      for f in "$src"/conf/rules/*.rules; do
        split -l 40 -d -a 3 "$f" "$dir/$(basename "$f" .rules)-"
      done
      find "$dir" -type f -size +4k -delete ;;
  esac
}

failed=()
printf '%-18s %10s %8s %8s %8s %s\n' target execs exec/s cov ft result
for t in "${targets[@]}"; do
  bin=$bindir/$t
  if [ ! -x "$bin" ]; then
    echo "run_fuzz: $bin: not built" >&2
    failed+=("$t")
    continue
  fi
  corpus=$work/corpus/$t
  mkdir -p "$corpus"
  if [ -d "$here/corpus/$t" ]; then cp "$here/corpus/$t"/* "$corpus"/; fi
  seed_fixtures "$t" "$corpus"
  dict=()
  if [ -f "$here/$t.dict" ]; then dict=(-dict="$here/$t.dict"); fi
  log=$work/$t.log
  rc=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$bin" -max_total_time="$seconds" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout="${FUZZ_TIMEOUT:-10}" \
      -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "${dict[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc)"
    failed+=("$t")
  fi
  printf '%-18s %10s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
  if [ "$rc" -ne 0 ]; then
    # The sanitizer's report and the reproducer's path.
    grep -E -A40 '^==[0-9]+==ERROR|^SUMMARY|runtime error|invariant failed|Test unit written' "$log" | head -80 >&2 || tail -40 "$log" >&2
    echo "run_fuzz: $t: log $log; reproduce with: $bin $artifacts/$t-<file>" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "run_fuzz: failed: ${failed[*]} (inputs in $artifacts)" >&2
  # Keep the logs next to the artifacts.
  cp "$work"/*.log "$artifacts"/ 2>/dev/null || true
  exit 1
fi
echo "run_fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
