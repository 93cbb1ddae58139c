#!/usr/bin/env bash
# End-to-end throughput of `preflight-classify reply < FILE > /dev/null`: lines/s and peak RSS.
# Builds a file of LINES replies (default 2,000,000) by cycling the seed and sample replies.
# Usage: tests/bench/e2e_reply.sh [BUILD_DIR] [LINES]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$here/build}
LINES=${2:-2000000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{ grep -v '^#' "$here/tests/data/seed-replies.tsv" | cut -f2; cat "$here/tests/data/sample-replies.txt"; } \
  | grep -v '^$' > "$tmp/mix"
n=$(wc -l < "$tmp/mix")
reps=$(( (LINES + n - 1) / n ))
for _ in $(seq "$reps"); do cat "$tmp/mix"; done | head -n "$LINES" > "$tmp/in"
bytes=$(stat -c %s "$tmp/in")
for fmt in json tsv; do
  start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$tmp/rss" "$BUILD/preflight-classify" reply --format "$fmt" < "$tmp/in" > /dev/null || true
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v l="$LINES" -v b="$bytes" -v f="$fmt" -v r="$(cat "$tmp/rss")" \
    'BEGIN { t = e - s; printf "%-4s %d lines (%.1f MB) in %.3f s: %.0f lines/s, peak RSS %d KiB\n", f, l, b/1e6, t, l/t, r }'
done
