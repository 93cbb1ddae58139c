#!/usr/bin/env bash
# Times `preflight-classify dsn` and Sisimai (libsisimai-perl) on the same bounce directory,
# each in one process over the whole directory, and prints emails/s for each and the ratio.
#   tests/bench/dsn_vs_sisimai.sh [PATH/TO/preflight-classify] [EML-DIR] [ROUNDS]
# ROUNDS > 1 passes the directory ROUNDS times to each tool in its one run, so that start-up
# (perl's module loading, compiling the classifier rules) weighs less next to the parsing.
set -eu
BIN=${1:-build/preflight-classify}
DIR=${2:-../shared/corpus/bounces/eml}
ROUNDS=${3:-1}
PY=/usr/bin/python3
n=$(find "$DIR" -maxdepth 1 -type f | wc -l)
total=$((n * ROUNDS))
args=(); for _ in $(seq "$ROUNDS"); do args+=("$DIR"); done

now() { date +%s.%N; }
"$BIN" dsn "${args[@]}" > /dev/null || true   # warm the page cache for both
t0=$(now); "$BIN" dsn "${args[@]}" > /tmp/dsn_bench_preflight.jsonl || true; t1=$(now)
perl -MSisimai -e '
  my ($dir, $rounds) = @ARGV; my $n = 0;
  for (1 .. $rounds) { my $v = Sisimai->make($dir) // []; $n += scalar(@$v); }
  print STDERR "sisimai: $n records\n";' "$DIR" "$ROUNDS" 2>/tmp/dsn_bench_sisimai.err
t2=$(now)
records=$(wc -l < /tmp/dsn_bench_preflight.jsonl)
$PY - "$total" "$t0" "$t1" "$t2" "$records" "$(cat /tmp/dsn_bench_sisimai.err)" <<'PY'
import sys
total, t0, t1, t2 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
p, s = t1 - t0, t2 - t1
print(f"emails: {total}")
print(f"preflight-classify dsn: {p:.3f} s, {total / p:,.0f} emails/s ({sys.argv[5]} records)")
print(f"Sisimai:                {s:.3f} s, {total / s:,.0f} emails/s ({sys.argv[6]})")
print(f"ratio: {s / p:.1f} x")
PY
