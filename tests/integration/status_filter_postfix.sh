#!/usr/bin/env bash
# status_filter_postfix.sh BUILD_DIR - `preflight-classify serve` as Postfix's
# smtp_delivery_status_filter, between a real Postfix and a scripted downstream.
#
# Starts, all on 127.0.0.1 and under one temp dir:
#   preflight-classify serve   on a unix socket, the built-in policy
#   scripted_smtp.py           the next hop (python3-aiosmtpd): per recipient
#                                full@    552 5.2.2 Mailbox full
#                                unknown@ 450 4.1.1 <unknown@...>: Recipient address rejected: User unknown
#                                spam@    550 5.7.1 Message rejected as spam
#                                grey@    450 4.7.1 Greylisted, try again later
#                              and accepts everything else (the DSNs to the sender)
#   Postfix                    relayhost = the downstream,
#                              smtp_delivery_status_filter = socketmap:unix:SOCKET:status
# then sends one message per recipient through Postfix's smtpd (swaks) and asserts:
#   full@     deferred (dsn=4.2.2 though the remote said 552), still in postqueue -p, no DSN
#   unknown@  bounced at once (dsn=5.1.1 though the remote said 450), its DSN delivered to the
#             sender with Status: 5.1.1 and the remote's text
#   spam@     bounced as the remote said (dsn=5.7.1; the filter answered NOTFOUND)
#   grey@     deferred as the remote said (dsn=4.7.1)
# and that the server stops cleanly on SIGTERM (exit 0, socket removed).
#
# Output: "ok - NAME" / "not ok - NAME: ..." per scenario, then "N passed, M failed". Exit 0
# when all pass, 1 otherwise, 77 (skip) without root, postfix, swaks or python3-aiosmtpd. The
# temp dir is removed after a passing run, kept (path printed) after a failing one or with
# IT_KEEP=1. Every wait is bounded, every daemon has a life limit, only PIDs started here are
# stopped, and lib.sh's watchdog stops the lot if this shell dies without its trap.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

BUILD_DIR=${1:-}
[[ -n $BUILD_DIR ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
CLASSIFY=$(realpath -m "$BUILD_DIR/preflight-classify")

it_requires --root "starts a Postfix instance (postfix start)" --py aiosmtpd \
  /usr/sbin/postfix /usr/sbin/postconf /usr/sbin/postqueue swaks timeout script

it_begin status "$CLASSIFY"
SERVE_PID='' DOWN_PID='' PF_PID=''
SOCK=$IT_DIR/run/status.sock DOWN_DIR=$IT_DIR/downstream

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  pf_stop
  stop_pids 50 "$SERVE_PID" preflight-classify "$DOWN_PID" scripted_smtp.py
  it_end "$rc" "serve.log, maillog, downstream/, out/"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
watchdog_start 300

SC='' ERRS=''  # sc/bad/sc_end: lib.sh
die_setup() {
  echo "not ok - setup: $*"
  FAIL=$((FAIL + 1))
  echo "$PASS passed, $FAIL failed"
  exit 1
}

# ---- the rig -------------------------------------------------------------------------------------

# as deployed: root opens the socket and hands it, and itself, to user postfix; the socket's
# directory is postfix's (systemd's RuntimeDirectory), so the server can remove it at exit
mkdir -p "$IT_DIR/run" && chown postfix: "$IT_DIR/run"
"$CLASSIFY" serve --verbose --listen "unix:$SOCK" --user postfix >"$IT_DIR/serve.log" 2>&1 </dev/null &
SERVE_PID=$!
track_pid "$SERVE_PID" preflight-classify
wait_for 100 test -S "$SOCK" || die_setup "serve did not create $SOCK within 10 s: $(tail -3 "$IT_DIR/serve.log")"

free_port DOWN_PORT || die_setup "no free port"
free_port SMTPD_PORT || die_setup "no free port"
"$IT_PY" "$HERE/scripted_smtp.py" --port "$DOWN_PORT" --dir "$DOWN_DIR" --max-seconds 300 --parent-pid $$ \
  --reply "full=552 5.2.2 Mailbox full" \
  --reply "unknown=450 4.1.1 <unknown@dest.preflight-it.test>: Recipient address rejected: User unknown" \
  --reply "spam=550 5.7.1 Message rejected as spam" \
  --reply "grey=450 4.7.1 Greylisted, try again later" >"$IT_DIR/downstream.log" 2>&1 </dev/null &
DOWN_PID=$!
track_pid "$DOWN_PID" scripted_smtp.py
wait_for 100 file_nonempty "$DOWN_DIR/port" ||
  die_setup "downstream did not listen within 10 s: $(tail -3 "$IT_DIR/downstream.log")"

pf_configure "$DOWN_PORT" "$SMTPD_PORT none"
postconf -c "$PF_ETC" -e "smtp_delivery_status_filter = socketmap:unix:$SOCK:status" \
  "bounce_queue_lifetime = 1d" "maximal_queue_lifetime = 1d" || die_setup "postconf failed"
pf_start "$SMTPD_PORT" 2>"$IT_DIR/setup.err" || die_setup "$(tr '\n' ' ' <"$IT_DIR/setup.err")"

# ---- messages ------------------------------------------------------------------------------------

mkdir -p "$IT_DIR/out"
SENDER=sender@client.preflight-it.test
declare -A QID
for who in full unknown spam grey; do
  timeout 60 swaks --server "127.0.0.1:$SMTPD_PORT" --timeout 20 --helo client.preflight-it.test \
    --from "$SENDER" --to "$who@dest.preflight-it.test" --h-Subject "status filter test $who" \
    --suppress-data >"$IT_DIR/out/$who.swaks" 2>&1 </dev/null
  QID[$who]=$(sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$IT_DIR/out/$who.swaks" | head -1)
  [[ -n ${QID[$who]} ]] || die_setup "Postfix did not queue the message to $who@: $(grep '^<' "$IT_DIR/out/$who.swaks" | tail -2)"
done

# status_line WHO: the last delivery status line of WHO's message.
status_line() { grep -E " ${QID[$1]}: to=<$1@dest\.preflight-it\.test>.* status=" "$PF_LOG" | tail -1; }
has_status() { status_line "$1" | grep -q " status=$2 "; }

# ---- assertions ----------------------------------------------------------------------------------

sc "552 5.2.2 mailbox full stays deferred (dsn=4.2.2) and in the queue"
if wait_for 300 has_status full deferred; then
  line=$(status_line full)
  [[ $line == *"dsn=4.2.2"* ]] || bad "expected dsn=4.2.2, got: $line"
  [[ $line == *"said: 552 5.2.2 Mailbox full"* ]] || bad "expected the remote's text in the log, got: $line"
  postqueue -c "$PF_ETC" -p >"$IT_DIR/out/postqueue" 2>&1
  grep -q "^${QID[full]}" "$IT_DIR/out/postqueue" ||
    bad "expected ${QID[full]} in postqueue -p, got: $(tr '\n' ' ' <"$IT_DIR/out/postqueue")"
  grep -q "full@dest.preflight-it.test" "$IT_DIR/out/postqueue" || bad "postqueue -p does not name full@"
  [[ -f $PF_QUEUE/deferred/${QID[full]:0:1}/${QID[full]} || -n $(find "$PF_QUEUE/deferred" -name "${QID[full]}") ]] ||
    bad "${QID[full]} is not in the deferred queue"
  grep -q " ${QID[full]}: sender non-delivery notification" "$PF_LOG" && bad "a DSN was sent for the deferred message"
else
  bad "no status=deferred for ${QID[full]} within 30 s; log: $(grep " ${QID[full]}: " "$PF_LOG" | tail -2)"
fi
sc_end

sc "450 4.1.1 user unknown bounces at once (dsn=5.1.1) with its DSN"
if wait_for 300 has_status unknown bounced; then
  line=$(status_line unknown)
  [[ $line == *"dsn=5.1.1"* ]] || bad "expected dsn=5.1.1, got: $line"
  [[ $line == *"said: 450 4.1.1"* ]] || bad "expected the remote's 450 text in the log, got: $line"
  grep -E " ${QID[unknown]}: to=<unknown@.* status=deferred" "$PF_LOG" && bad "it was deferred first"
  # "at once": the first delivery attempt bounced (no clock: the wait above is bounded anyway)
  attempts=$(grep -cE " ${QID[unknown]}: to=<unknown@dest\.preflight-it\.test>.* status=" "$PF_LOG")
  ((attempts == 1)) || bad "expected one delivery attempt for unknown@, got $attempts"
  bqid=$(sed -n "s/.* ${QID[unknown]}: sender non-delivery notification: \([0-9A-Za-z]*\).*/\1/p" "$PF_LOG" | head -1)
  if [[ -z $bqid ]]; then
    bad "no sender non-delivery notification for ${QID[unknown]}"
  elif ! wait_for 300 grep -qE " $bqid: to=<$SENDER>.* status=sent" "$PF_LOG"; then
    bad "the DSN $bqid did not reach the downstream: $(grep " $bqid: " "$PF_LOG" | tail -2)"
  else
    dsn=$(grep -l "^X-Rcpt-To: <$SENDER>" "$DOWN_DIR"/msg.* 2>/dev/null | xargs -r grep -l "unknown@dest.preflight-it.test" | head -1)
    if [[ -z $dsn ]]; then
      bad "no DSN for unknown@ among the downstream's messages"
    else
      grep -q '^X-Mail-From: <>' "$dsn" || bad "the DSN's envelope sender is not <>"
      grep -qi '^Status: 5\.1\.1' "$dsn" || bad "the DSN has no 'Status: 5.1.1'"
      grep -qi '^Action: failed' "$dsn" || bad "the DSN has no 'Action: failed'"
      grep -q '450 4.1.1' "$dsn" || bad "the DSN does not quote the remote's 450 4.1.1"
    fi
  fi
  grep -q "${QID[unknown]}" <(postqueue -c "$PF_ETC" -p 2>&1) && bad "the bounced message is still queued"
else
  bad "no status=bounced for ${QID[unknown]} within 30 s; log: $(grep " ${QID[unknown]}: " "$PF_LOG" | tail -2)"
fi
sc_end

sc "550 5.7.1 spam bounces as the remote said (filter: NOTFOUND)"
if wait_for 300 has_status spam bounced; then
  line=$(status_line spam)
  [[ $line == *"dsn=5.7.1"* ]] || bad "expected dsn=5.7.1, got: $line"
else
  bad "no status=bounced for ${QID[spam]} within 30 s; log: $(grep " ${QID[spam]}: " "$PF_LOG" | tail -2)"
fi
sc_end

sc "450 4.7.1 greylisting stays deferred as the remote said"
if wait_for 300 has_status grey deferred; then
  line=$(status_line grey)
  [[ $line == *"dsn=4.7.1"* ]] || bad "expected dsn=4.7.1, got: $line"
else
  bad "no status=deferred for ${QID[grey]} within 30 s; log: $(grep " ${QID[grey]}: " "$PF_LOG" | tail -2)"
fi
sc_end

sc "Postfix logged no socketmap errors"
if grep -E "socketmap|status\.sock|dict_sockmap" "$PF_LOG" | grep -qiE "warning|fatal|error"; then
  bad "$(grep -E "socketmap|status\.sock" "$PF_LOG" | grep -iE "warning|fatal|error" | head -2)"
fi
sc_end

sc "serve stops on SIGTERM: exit 0, socket removed"
pf_stop   # Postfix first: it holds connections to the socket
kill -TERM "$SERVE_PID" 2>/dev/null
if wait_for 200 pid_gone "$SERVE_PID" preflight-classify; then  # 20 s: only catches a hang
  wait "$SERVE_PID"
  rc=$?
  [[ $rc -eq 0 ]] || bad "exit status $rc"
  [[ -e $SOCK ]] && bad "$SOCK is still there"
  grep -qE "stopped \(Terminated\): [0-9]+ connections, [0-9]+ requests, [1-9][0-9]* statuses changed" "$IT_DIR/serve.log" ||
    bad "no stop summary with changed statuses: $(tail -1 "$IT_DIR/serve.log")"
else
  bad "still running 20 s after SIGTERM"
fi
SERVE_PID=''
sc_end

# Postfix's contract for a delivery status filter: a lookup that fails leaves the status as the
# remote gave it (and logs a warning); nothing is held up or lost while the filter is down.
sc "filter down: Postfix keeps the remote's status (552 -> bounced 5.2.2), warns, loses nothing"
pf_start "$SMTPD_PORT" 2>"$IT_DIR/setup2.err" || bad "Postfix did not start again: $(tr '\n' ' ' <"$IT_DIR/setup2.err")"
timeout 60 swaks --server "127.0.0.1:$SMTPD_PORT" --timeout 20 --helo client.preflight-it.test \
  --from "$SENDER" --to "full@dest.preflight-it.test" --h-Subject "filter down" \
  --suppress-data >"$IT_DIR/out/down.swaks" 2>&1 </dev/null
QID[down]=$(sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$IT_DIR/out/down.swaks" | head -1)
if [[ -z ${QID[down]} ]]; then
  bad "not queued: $(grep '^<' "$IT_DIR/out/down.swaks" | tail -1)"
else
  down_line() { grep -E " ${QID[down]}: to=<full@dest\.preflight-it\.test>.* status=" "$PF_LOG" | tail -1; }
  if wait_for 300 eval '[[ -n $(down_line) ]]'; then
    line=$(down_line)
    [[ $line == *"dsn=5.2.2, status=bounced"* ]] || bad "expected the remote's own dsn=5.2.2 status=bounced, got: $line"
  else
    bad "no delivery status for ${QID[down]} within 30 s: $(grep " ${QID[down]}: " "$PF_LOG" | tail -2)"
  fi
  grep -qiE "warning: .*(status\.sock|socketmap)" "$PF_LOG" || bad "expected a Postfix warning naming the filter's map"
fi
pf_stop
sc_end

echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
