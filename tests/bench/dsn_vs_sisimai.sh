#!/usr/bin/env bash
# Times `preflight-classify dsn` and Sisimai (libsisimai-perl) on the same bounce directory,
# each in one process over the whole directory, and prints emails/s for each and the ratio.
#   tests/bench/dsn_vs_sisimai.sh [PATH/TO/preflight-classify] [EML-DIR] [ROUNDS]
# ROUNDS > 1 passes the directory ROUNDS times to each tool in its one run, so that start-up
# (perl's module loading, compiling the classifier rules) weighs less next to the parsing.
#   PREFLIGHT_CLASSIFY=PATH stands for the first argument when it is not given;
#   PERL=PATH runs Sisimai with that perl; BENCH_TIMEOUT (s, default 900) bounds each run.
# Each tool first makes one untimed round (which also warms the page cache); the timed run
# must then give ROUNDS times what that round gave, and the rates count what came out:
# preflight-classify's inputs named in its records (a file, or each message of an mbox; every
# input gives at least one record, an error record when it cannot be read), Sisimai's emails
# read (its hook is called once per email it parses). The ratio is of the two wall times.
# Exit statuses accepted: dsn 0, or 1 with error records in its output (the documented "some
# input failed"); perl 0. Anything else fails, naming how the program ended.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/tests/bench/bench_lib.sh"
BIN=${1:-${PREFLIGHT_CLASSIFY:-build/preflight-classify}}
DIR=${2:-../shared/corpus/bounces/eml}
ROUNDS=${3:-1}
PERL=${PERL:-perl}
PY=/usr/bin/python3
OUTS="$here/tests/bench/bench_outputs.py"
[[ -x $BIN ]] || bench_die "$BIN is not an executable"
[[ -d $DIR ]] || bench_die "$DIR is not a directory"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || bench_die "ROUNDS must be a positive integer"
n=$(find "$DIR" -type f | wc -l)
((n > 0)) || bench_die "no files under $DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(); for _ in $(seq "$ROUNDS"); do args+=("$DIR"); done

# dsn_run OUT ARGS...: one run of preflight-classify dsn, checked; leaves ERRORS (error records)
# and FILES (files named in the records).
dsn_run() {
  local out=$1 name="preflight-classify dsn"
  shift
  bench_timed "$out" "$tmp/dsn.err" "$BIN" dsn "$@"
  bench_check_rc "$name" "$BENCH_RC" "$tmp/dsn.err" 0 1
  read -r _ ERRORS _ FILES < <("$OUTS" dsn "$out") || bench_die "$name: its output could not be read"
  if ((BENCH_RC == 1 && ERRORS == 0)); then
    tail -n 5 "$tmp/dsn.err" >&2
    bench_die "$name exited 1 (input failed or output not written) without an error record in its output"
  elif ((BENCH_RC == 0 && ERRORS > 0)); then
    bench_die "$name exited 0 with $ERRORS error records (1 is documented)"
  fi
}
dsn_run "$tmp/one.jsonl" "$DIR"
((FILES == n)) || bench_die "preflight-classify dsn named $FILES of the $n files under $DIR in its records ($(bench_how "$BENCH_RC"))"
one_errors=$ERRORS
dsn_run "$tmp/timed.jsonl" "${args[@]}"
p_seconds=$BENCH_SECONDS
read -r p_records p_emails < <("$OUTS" dsn-rounds "$tmp/one.jsonl" "$tmp/timed.jsonl" "$ROUNDS") \
  || bench_die "preflight-classify dsn over $ROUNDS rounds did not give $ROUNDS times the records of one round"

# sisimai OUT ROUNDS: one checked run of Sisimai; leaves S_EMAILS (read) and S_RECORDS (made).
sisimai() {
  # shellcheck disable=SC2016  # perl code
  bench_timed "$1" "$tmp/sisimai.err" "$PERL" -MSisimai -e '
    my ($dir, $rounds) = @ARGV; my ($emails, $records) = (0, 0);
    for (1 .. $rounds) {
      my $v = Sisimai->make($dir, hook => sub { $emails++; return undef }) // [];
      $records += scalar(@$v);
    }
    print "$emails $records\n";' "$DIR" "$2"
  bench_check_rc "Sisimai ($PERL)" "$BENCH_RC" "$tmp/sisimai.err" 0
  read -r S_EMAILS S_RECORDS < "$1" || bench_die "Sisimai ($PERL) printed no counts"
  [[ $S_EMAILS =~ ^[0-9]+$ && $S_RECORDS =~ ^[0-9]+$ ]] || bench_die "Sisimai ($PERL) printed no counts"
}
sisimai "$tmp/s1" 1
((S_EMAILS > 0)) || bench_die "Sisimai read no email of $DIR"
s1_emails=$S_EMAILS s1_records=$S_RECORDS
sisimai "$tmp/s" "$ROUNDS"
s_seconds=$BENCH_SECONDS
((S_EMAILS == ROUNDS * s1_emails && S_RECORDS == ROUNDS * s1_records)) \
  || bench_die "Sisimai over $ROUNDS rounds read $S_EMAILS emails, made $S_RECORDS records; one round: $s1_emails, $s1_records"

$PY - "$n" "$ROUNDS" "$p_seconds" "$p_emails" "$p_records" "$one_errors" "$s_seconds" "$S_EMAILS" "$S_RECORDS" <<'PY'
import sys
n, rounds = int(sys.argv[1]), int(sys.argv[2])
p, pe, pr, perr = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s, se, sr = float(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
print(f"files: {n} x {rounds} rounds")
print(f"preflight-classify dsn: {p:.3f} s, {pe / p:,.0f} emails/s ({pe} emails in its output, {pr} records"
      + (f", {perr} error records per round" if perr else "") + ")")
print(f"Sisimai:                {s:.3f} s, {se / s:,.0f} emails/s ({se} emails read, {sr} records)")
print(f"ratio: {s / p:.1f} x (time over the same input; preflight reads an mbox file as its messages, Sisimai as one email)")
PY
