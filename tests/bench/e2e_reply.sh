#!/usr/bin/env bash
# End-to-end throughput of `preflight-classify reply < FILE > OUT`: results/s and peak RSS.
# Builds a file of LINES replies (default 2,000,000) by cycling the seed and sample replies.
# Usage: tests/bench/e2e_reply.sh [BUILD_DIR] [LINES]
#   PREFLIGHT_CLASSIFY=PATH runs that binary instead of BUILD_DIR/preflight-classify;
#   BENCH_TIMEOUT (s, default 900) bounds each run.
# The output goes to a file (as cheap as /dev/null here) and is counted afterwards: the rate is
# the results written over the wall time, printed only when there is one result per input line
# and the exit status is the documented one: 0, or 1 when some results are error records
# (replies that could not be classified). Anything else fails, naming how the program ended.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/tests/bench/bench_lib.sh"
BUILD=${1:-$here/build}
LINES=${2:-2000000}
BIN=${PREFLIGHT_CLASSIFY:-$BUILD/preflight-classify}
[[ -x $BIN ]] || bench_die "$BIN is not an executable"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{ grep -v '^#' "$here/tests/data/seed-replies.tsv" | cut -f2; cat "$here/tests/data/sample-replies.txt"; } \
  | grep -v '^$' > "$tmp/mix"
n=$(wc -l < "$tmp/mix")
reps=$(( (LINES + n - 1) / n ))
for _ in $(seq "$reps"); do cat "$tmp/mix"; done | head -n "$LINES" > "$tmp/in"
lines=$(wc -l < "$tmp/in")
bytes=$(stat -c %s "$tmp/in")
for fmt in json tsv; do
  bench_timed "$tmp/out" "$tmp/err" "$BIN" reply --format "$fmt" < "$tmp/in"
  bench_check_rc "preflight-classify reply --format $fmt" "$BENCH_RC" "$tmp/err" 0 1
  read -r records errors < <("$here/tests/bench/bench_outputs.py" reply "$fmt" "$tmp/out") \
    || bench_die "preflight-classify reply --format $fmt: its output could not be counted"
  ((records == lines)) \
    || bench_die "preflight-classify reply --format $fmt wrote $records results for $lines input lines ($(bench_how "$BENCH_RC"))"
  if ((BENCH_RC == 1 && errors == 0)); then
    bench_die "preflight-classify reply --format $fmt exited 1 (input failed or output not written) with every reply classified"
  elif ((BENCH_RC == 0 && errors > 0)); then
    bench_die "preflight-classify reply --format $fmt exited 0 with $errors error records (1 is documented)"
  fi
  note=''
  ((errors == 0)) || note=" ($errors of them error records: exit 1, as documented)"
  rm -f "$tmp/out"
  awk -v t="$BENCH_SECONDS" -v l="$records" -v b="$bytes" -v f="$fmt" -v r="$BENCH_RSS_KIB" -v note="$note" \
    'BEGIN { printf "%-4s %d results (%.1f MB in) in %.3f s: %.0f results/s, peak RSS %d KiB%s\n", f, l, b/1e6, t, l/t, r, note }'
done
