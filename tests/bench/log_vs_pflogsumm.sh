#!/usr/bin/env bash
# Throughput of `preflight-classify log` against pflogsumm on the same synthetic maillog, in
# one run: rows/s and lines/s, wall time, peak RSS, and the totals both report.
# Usage: tests/bench/log_vs_pflogsumm.sh [BUILD_DIR] [LINES]   (default 1,200,000 lines)
#   PREFLIGHT_CLASSIFY=PATH runs that binary instead of BUILD_DIR/preflight-classify,
#   PFLOGSUMM=PATH that pflogsumm; BENCH_TIMEOUT (s, default 900) bounds each run.
# gen_maillog.py says how many rows of each status the log must give. A figure is printed
# only for a run that exited 0 (the log is well formed, so log's documented 1, "some lines were
# not log lines", is a failure here too) and gave exactly those rows (pflogsumm: delivered,
# bounced and rejected totals equal to them); anything else fails, naming how the program
# ended. rows/s counts the rows written; lines/s is the input over the same time, and means
# something because the rows show that every line was read.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/tests/bench/bench_lib.sh"
BUILD=${1:-$here/build}
LINES=${2:-1200000}
BIN=${PREFLIGHT_CLASSIFY:-$BUILD/preflight-classify}
PFLOGSUMM=${PFLOGSUMM:-pflogsumm}
OUTS="$here/tests/bench/bench_outputs.py"
[[ -x $BIN ]] || bench_die "$BIN is not an executable"
command -v "$PFLOGSUMM" >/dev/null || bench_die "$PFLOGSUMM is not installed (apt-get install pflogsumm)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/tests/bench/gen_maillog.py" "$LINES" "$tmp/expect" > "$tmp/maillog"
lines=$(wc -l < "$tmp/maillog")
bytes=$(stat -c %s "$tmp/maillog")
expect() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/expect"; }
want="Sent $(expect Sent) Bounce $(expect Bounce) Rejected $(expect Rejected) Expired $(expect Expired) Deferred $(expect Deferred) rows $(expect rows)"
cat "$tmp/maillog" > /dev/null  # both runs start with the file in the page cache

report=()
# run NAME OUT CMD...: one checked run; leaves SECONDS_ RSS_.
run() {
  local name=$1 out=$2
  shift 2
  bench_timed "$out" "$tmp/err" "$@"
  bench_check_rc "$name" "$BENCH_RC" "$tmp/err" 0
  SECONDS_=$BENCH_SECONDS RSS_=$BENCH_RSS_KIB
}
# log_run NAME OUT CMD...: a run of preflight-classify log, its rows counted (CSV or JSON Lines).
log_run() {
  local name=$1 out=$2 got rows
  run "$@"
  [[ -s $out ]] || bench_die "$name ($(bench_how "$BENCH_RC")) wrote nothing; the log gives: $want"
  if [[ $out == *.json ]]; then
    # JSON Lines, one row per line: turned into the CSV columns the counter reads.
    /usr/bin/python3 -c '
import csv, json, sys
w = csv.writer(sys.stdout)
w.writerow(["Status"])
for n, line in enumerate(open(sys.argv[1], "rb"), 1):
    if not line.endswith(b"\n"):
        sys.exit("%s:%d: the last line has no newline" % (sys.argv[1], n))
    w.writerow([json.loads(line)["status"]])' "$out" > "$tmp/status.csv" || bench_die "$name: its JSON output could not be read"
    got=$("$OUTS" log-csv "$tmp/status.csv") || bench_die "$name: its output could not be counted"
  else
    got=$("$OUTS" log-csv "$out") || bench_die "$name: its output could not be counted"
  fi
  [[ $got == "$want" ]] || bench_die "$name ($(bench_how "$BENCH_RC")) wrote rows: $got; the log gives: $want"
  rows=${got##* }
  report+=("$(awk -v n="$name" -v t="$SECONDS_" -v rows="$rows" -v l="$lines" -v r="$RSS_" \
    'BEGIN { printf "%-28s %8.3f s  %10.0f rows/s  %12.0f lines/s  peak RSS %7d KiB", n, t, rows / t, l / t, r }')")
}
log_run "preflight-classify log csv" "$tmp/rows.csv" "$BIN" log --wide "$tmp/maillog"
log_run "preflight-classify log json" "$tmp/rows.json" "$BIN" log --format json --wide "$tmp/maillog"
gzip -1 -c "$tmp/maillog" > "$tmp/maillog.gz"
log_run "preflight-classify log .gz" "$tmp/rows-gz.csv" "$BIN" log --wide "$tmp/maillog.gz"
cmp -s "$tmp/rows.csv" "$tmp/rows-gz.csv" || bench_die "preflight-classify log: gzip input gave other rows"

run "$PFLOGSUMM" "$tmp/pflogsumm.txt" "$PFLOGSUMM" "$tmp/maillog"
pfl() { awk -v k="$1" '$2 == k { print $1; exit }' "$tmp/pflogsumm.txt"; }
pf="delivered $(pfl delivered), bounced $(pfl bounced), rejected $(pfl rejected)"
[[ $pf == "delivered $(expect Sent), bounced $(expect Bounce), rejected $(expect Rejected)" ]] \
  || bench_die "$PFLOGSUMM ($(bench_how "$BENCH_RC")) reports $pf; the log has delivered $(expect Sent), bounced $(expect Bounce), rejected $(expect Rejected)"
report+=("$(awk -v t="$SECONDS_" -v l="$lines" -v r="$RSS_" \
  'BEGIN { printf "%-28s %8.3f s  %10s rows/s  %12.0f lines/s  peak RSS %7d KiB", "pflogsumm", t, "-", l / t, r }')")

printf '%d lines, %.1f MB (synthetic maillog, syslog format)\n' "$lines" "$(echo "$bytes / 1000000" | bc -l)"
printf '%s\n' "${report[@]}"
echo "rows: $want"
echo "pflogsumm: $pf"
echo "totals agree"
