# shellcheck shell=bash disable=SC2034  # BENCH_* are read by the scripts that source this
# bench_lib.sh - sourced by the tests/bench scripts. A benchmark figure is printed only for a
# run that ended with a status its program documents and that wrote every output its input
# should give: a program that dies at once must not show up as a huge rate.
#   BENCH_TIMEOUT  seconds one measured run may take (default 900); over it, the run fails.

BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}

bench_die() {
  printf '%s: FAIL: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# bench_how RC: how a run ended, in words.
bench_how() {
  local rc=$1
  if ((rc == 124)); then
    echo "timed out after ${BENCH_TIMEOUT} s"
  elif ((rc > 128)); then
    echo "was killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo "#$((rc - 128))")"
  else
    echo "exited with status $rc"
  fi
}

# bench_timed OUT ERR CMD...: runs CMD (stdin inherited, stdout to OUT, stderr to ERR) under
# timeout and /usr/bin/time. Sets BENCH_RC, BENCH_SECONDS (wall) and BENCH_RSS_KIB (peak RSS,
# empty when the run was cut short).
bench_timed() {
  local out=$1 err=$2 rss s e
  shift 2
  rss=$(mktemp)
  BENCH_RC=0
  s=$(date +%s.%N)
  timeout -k 5 "$BENCH_TIMEOUT" /usr/bin/time -f '%M' -o "$rss" "$@" >"$out" 2>"$err" || BENCH_RC=$?
  e=$(date +%s.%N)
  BENCH_SECONDS=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.6f", e - s }')
  # time(1) writes "Command terminated by signal N" above the figure when the program died.
  BENCH_RSS_KIB=$(tail -n 1 "$rss" 2>/dev/null | grep -E '^[0-9]+$' || true)
  rm -f "$rss"
}

# bench_check_rc NAME RC ERR ALLOWED...: fails unless RC is one of the ALLOWED exit statuses,
# naming NAME, how it ended and the end of its standard error (file ERR).
bench_check_rc() {
  local name=$1 rc=$2 err=$3 ok
  shift 3
  for ok in "$@"; do [[ $rc == "$ok" ]] && return 0; done
  if [[ -s $err ]]; then
    echo "--- last lines of $name's standard error:" >&2
    tail -n 5 "$err" >&2
  fi
  bench_die "$name $(bench_how "$rc") (accepted: $*)"
}
