#!/usr/bin/env bash
# Throughput of `preflight-classify log` against pflogsumm on the same synthetic maillog, in
# one run: lines/s, wall time, peak RSS, and the totals both report (they must agree).
# Usage: tests/bench/log_vs_pflogsumm.sh [BUILD_DIR] [LINES]   (default 1,200,000 lines)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$here/build}
LINES=${2:-1200000}
BIN=$BUILD/preflight-classify
command -v pflogsumm >/dev/null || { echo "pflogsumm is not installed (apt-get install pflogsumm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/tests/bench/gen_maillog.py" "$LINES" > "$tmp/maillog"
lines=$(wc -l < "$tmp/maillog")
bytes=$(stat -c %s "$tmp/maillog")
cat "$tmp/maillog" > /dev/null  # both runs start with the file in the page cache

run() {  # run NAME OUT CMD...: prints "NAME seconds rss_kib"
  local name=$1 out=$2 s e
  shift 2
  s=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$tmp/rss" "$@" > "$out"
  e=$(date +%s.%N)
  awk -v n="$name" -v s="$s" -v e="$e" -v l="$lines" -v r="$(cat "$tmp/rss")" \
    'BEGIN { t = e - s; printf "%-28s %8.3f s  %12.0f lines/s  peak RSS %7d KiB\n", n, t, l / t, r }'
}
printf '%d lines, %.1f MB (synthetic maillog, syslog format)\n' "$lines" "$(echo "$bytes / 1000000" | bc -l)"
run "preflight-classify log csv" "$tmp/rows.csv" "$BIN" log --wide "$tmp/maillog"
run "preflight-classify log json" "$tmp/rows.json" "$BIN" log --format json --wide "$tmp/maillog"
gzip -1 -c "$tmp/maillog" > "$tmp/maillog.gz"
run "preflight-classify log .gz" "$tmp/rows-gz.csv" "$BIN" log --wide "$tmp/maillog.gz"
run "pflogsumm" "$tmp/pflogsumm.txt" pflogsumm "$tmp/maillog"

cmp -s "$tmp/rows.csv" "$tmp/rows-gz.csv" || { echo "FAIL: gzip input gave other rows" >&2; exit 1; }
count() { awk -F, -v s="$1" 'NR > 1 && $4 == s' "$tmp/rows.csv" | wc -l; }
pfl() { awk -v k="$1" '$2 == k { print $1; exit }' "$tmp/pflogsumm.txt"; }
sent=$(count Sent) bounce=$(count Bounce) rejected=$(count Rejected) expired=$(count Expired)
echo "rows: Sent $sent, Bounce $bounce, Rejected $rejected, Expired $expired, Deferred $(count Deferred)"
echo "pflogsumm: delivered $(pfl delivered), bounced $(pfl bounced), rejected $(pfl rejected)"
[[ $sent == "$(pfl delivered)" && $bounce == "$(pfl bounced)" && $rejected == "$(pfl rejected)" ]] \
  || { echo "FAIL: totals differ from pflogsumm" >&2; exit 1; }
echo "totals agree"
