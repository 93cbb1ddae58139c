#!/usr/bin/env bash
# suppression_postfix.sh BUILD_DIR - the suppression loop end to end: a real Postfix with
# preflight-milter relays to a scripted downstream; `preflight-classify log --follow --suppress`
# reads that Postfix's log; the next message is refused at RCPT TO.
#
# Starts, all on 127.0.0.1 and under one temp dir:
#   scripted_smtp.py   the next hop: dead@ 550 5.1.1 user unknown, full@ 552 5.2.2 mailbox full,
#                      gone@ 550 5.1.1; accepts everything else (DSNs to the senders included)
#   preflight-milter   A: SQLite store, SuppressionMode reject, SuppressionQuotaFailures 2,
#                      Domain global.test SuppressionScope global, a trace key
#   preflight-milter   B1, B2: one Redis store shared (and redis-server, which requires AUTH:
#                      B logs in as the ACL user of lib.sh redis_auth_setup through
#                      SuppressionStorePasswordFile)
#   Postfix            smtpd ports for A, B1, B2; relayhost = the downstream
#   log --follow --suppress over Postfix's log, with A's conf
# Scenarios: the dead address refused at RCPT TO on the second message with the reason, the
# other recipients delivered; another sender domain accepted (scope); the full mailbox refused
# only after the second failure; a global-scope failure refused for every sender domain; an ARF
# report with a redacted recipient attributed through X-Preflight-Trace (dsn --suppress);
# `dsn --suppress` over Postfix's own DSN; `suppress remove` re-opens the address; two milters
# refuse what one Redis holds; a wrong password is an error naming the user; Redis down: 451 4.3.0, the message is kept by the client and
# delivered once Redis is back.
#
# Output: "ok - NAME" / "not ok - NAME: ..." per scenario, then "N passed, M failed". Exit 0
# when all pass, 1 otherwise, 77 (skip) without root, postfix, swaks, redis-server or
# python3-aiosmtpd. Every wait is bounded, only PIDs started here are stopped.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

BUILD_DIR=${1:-}
[[ -n $BUILD_DIR ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
MILTER=$(realpath -m "$BUILD_DIR/preflight-milter")
CLASSIFY=$(realpath -m "$BUILD_DIR/preflight-classify")

it_requires --root "starts a Postfix instance (postfix start)" --py aiosmtpd \
  /usr/sbin/postfix /usr/sbin/postconf swaks redis-server redis-cli timeout script

it_begin suppression "$MILTER"
A_PID='' B1_PID='' B2_PID='' REDIS_PID='' DOWN_PID='' FOLLOW_PID='' PF_PID=''
DOWN_DIR=$IT_DIR/downstream

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  pf_stop
  stop_pids 50 "$FOLLOW_PID" preflight-classify "$A_PID" preflight-milter "$B1_PID" preflight-milter \
    "$B2_PID" preflight-milter "$REDIS_PID" redis-server "$DOWN_PID" scripted_smtp.py
  it_end "$rc" "milter-*.log, maillog, follow.err, downstream/, out/"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
watchdog_start 600

die_setup() {
  echo "not ok - setup: $*"
  FAIL=$((FAIL + 1))
  echo "$PASS passed, $FAIL failed"
  exit 1
}

# ---- the rig -------------------------------------------------------------------------------------

for v in DOWN_PORT SMTPD_A SMTPD_B1 SMTPD_B2 MPORT_A MPORT_B1 MPORT_B2 REDIS_PORT; do
  free_port "$v" || die_setup "no free port"
done
D=dest.preflight-it.test
"$IT_PY" "$HERE/scripted_smtp.py" --port "$DOWN_PORT" --dir "$DOWN_DIR" --max-seconds 500 --parent-pid $$ \
  --reply "dead=550 5.1.1 <dead@$D>: Recipient address rejected: User unknown" \
  --reply "full=552 5.2.2 <full@$D>: Mailbox full" \
  --reply "gone=550 5.1.1 <gone@$D>: No such user" >"$IT_DIR/downstream.log" 2>&1 </dev/null &
DOWN_PID=$!
track_pid "$DOWN_PID" scripted_smtp.py
wait_for 100 file_nonempty "$DOWN_DIR/port" || die_setup "downstream did not listen: $(tail -3 "$IT_DIR/downstream.log")"
redis_auth_setup
redis_start 2>"$IT_DIR/setup.err" || die_setup "$(<"$IT_DIR/setup.err")"

head -c 32 /dev/urandom | base64 >"$IT_DIR/trace.key"
write_conf() { # FILE PORT STORE
  cat >"$1" <<EOF
Socket inet:127.0.0.1:$2
RunAsRoot yes
Syslog no
Nameservers 127.0.0.1:9
SenderDomainMode off
AuthPolicy off
SuppressionMode reject
SuppressionStore $3
SuppressionStoreTimeout 300ms
SuppressionQuotaFailures 2
SuppressionTraceKeyFile $IT_DIR/trace.key
Domain global.test SuppressionScope global
EOF
}
write_conf "$IT_DIR/a.conf" "$MPORT_A" "sqlite:$IT_DIR/suppression.db"
write_conf "$IT_DIR/b.conf" "$MPORT_B1" "redis://127.0.0.1:$REDIS_PORT"
echo "SuppressionStorePasswordFile $IT_DIR/redis/user.pass" >>"$IT_DIR/b.conf"
sed "s/^Socket .*/Socket inet:127.0.0.1:$MPORT_B2/" "$IT_DIR/b.conf" >"$IT_DIR/b2.conf"
for m in "A_PID a $MPORT_A" "B1_PID b $MPORT_B1" "B2_PID b2 $MPORT_B2"; do
  set -- $m
  milter_start_inet "$1" "$IT_DIR/$2.conf" "$IT_DIR/milter-$2.log" "$3" 2>"$IT_DIR/setup.err" ||
    die_setup "$(<"$IT_DIR/setup.err")"
done

pf_configure "$DOWN_PORT" "$SMTPD_A inet:127.0.0.1:$MPORT_A" "$SMTPD_B1 inet:127.0.0.1:$MPORT_B1" \
  "$SMTPD_B2 inet:127.0.0.1:$MPORT_B2"
postconf -c "$PF_ETC" -e "bounce_queue_lifetime = 1d" "maximal_queue_lifetime = 1d" || die_setup "postconf failed"
pf_start "$SMTPD_A" "$SMTPD_B1" "$SMTPD_B2" 2>"$IT_DIR/setup.err" || die_setup "$(tr '\n' ' ' <"$IT_DIR/setup.err")"

# The log follower, as an operator runs it (a unit of its own), from the start of the log.
"$CLASSIFY" log --follow --suppress --conf "$IT_DIR/a.conf" --output "$IT_DIR/out/rows.csv" "$PF_LOG" \
  2>"$IT_DIR/follow.err" </dev/null &
FOLLOW_PID=$!
track_pid "$FOLLOW_PID" preflight-classify

# ---- helpers -------------------------------------------------------------------------------------

listed() { # CONF RECIPIENT [SCOPE]: the recipient is on the list (suppressing)
  "$CLASSIFY" suppress --conf "$1" list --recipient "$2" ${3:+--scope "$3"} 2>/dev/null | grep -q "^$2,"
}
counted() { # CONF RECIPIENT: a soft-failure entry exists (active or not)
  "$CLASSIFY" suppress --conf "$1" export --recipient "$2" 2>/dev/null | grep -q "^$2,"
}
bounced() { grep -qE " to=<$1>.* status=bounced" "$PF_LOG"; }
bounced_times() { grep -cE " to=<$1>.* status=bounced" "$PF_LOG"; }
delivered_to() { grep -l "^X-Rcpt-To: <$1>" "$DOWN_DIR"/msg.* >/dev/null 2>&1; }

# ---- scenarios -----------------------------------------------------------------------------------

sc "a 550 5.1.1 suppresses: the next message's RCPT TO is refused with the reason, the others delivered"
send first "$SMTPD_A" --from alice@shop.test --to "dead@$D,live@$D"
expect_reply first EOD '^250 '
wait_for 300 bounced "dead@$D" || bad "no status=bounced for dead@ in the log"
wait_for 300 listed "$IT_DIR/a.conf" "dead@$D" shop.test || bad "log --follow --suppress did not list dead@ for shop.test"
send second "$SMTPD_A" --from alice@shop.test --to "dead@$D,live2@$D"
expect_reply second 'RCPT#1' "^550 5\.1\.1 <dead@$D> is suppressed for shop\.test since 20[0-9-]+: the last delivery failed with \"550 5\.1\.1 <dead@$D>: Recipient address rejected: User unknown\" \(127\.0\.0\.1\); remove it from your list"
expect_reply second 'RCPT#2' '^250 '
expect_reply second EOD '^250 '
wait_for 300 delivered_to "live2@$D" || bad "live2@ was not delivered"
sc_end

sc "scope: another sender domain still sends to the dead address"
send other "$SMTPD_A" --from bob@other.test --to "dead@$D"
expect_reply other RCPT '^250 '
expect_reply other EOD '^250 '
sc_end

sc "a full mailbox is suppressed only after SuppressionQuotaFailures (2) failures"
send full1 "$SMTPD_A" --from alice@shop.test --to "full@$D"
expect_reply full1 RCPT '^250 '
wait_for 300 bounced "full@$D" || bad "no status=bounced for full@"
wait_for 300 counted "$IT_DIR/a.conf" "full@$D" || bad "the first failure of full@ was not counted"
listed "$IT_DIR/a.conf" "full@$D" && bad "full@ suppressed after one failure"
send full2 "$SMTPD_A" --from alice@shop.test --to "full@$D"
expect_reply full2 RCPT '^250 '
wait_for 300 listed "$IT_DIR/a.conf" "full@$D" || bad "full@ not suppressed after the second failure"
send full3 "$SMTPD_A" --from alice@shop.test --to "full@$D"
expect_reply full3 RCPT "^550 5\.1\.1 <full@$D> is suppressed for shop\.test .*Mailbox full"
sc_end

sc "SuppressionScope global: a failure for one sender domain refuses every sender domain"
send global1 "$SMTPD_A" --from carol@global.test --to "gone@$D"
wait_for 300 listed "$IT_DIR/a.conf" "gone@$D" '*' || bad "gone@ not listed for every sender"
send global2 "$SMTPD_A" --from bob@other.test --to "gone@$D"
expect_reply global2 RCPT "^550 5\.1\.1 <gone@$D> is suppressed for every sender since"
sc_end

sc "an ARF report with a redacted recipient is attributed through X-Preflight-Trace"
send fan "$SMTPD_A" --from alice@shop.test --to "fan@$D" --h-Subject "newsletter"
expect_reply fan EOD '^250 '
wait_for 300 delivered_to "fan@$D" || bad "fan@ was not delivered"
msg=$(grep -l "^X-Rcpt-To: <fan@$D>" "$DOWN_DIR"/msg.* 2>/dev/null | head -1)
trace=$(sed -n 's/^X-Preflight-Trace: *//p' "${msg:-/dev/null}" | tr -d '\r' | head -1)
[[ $trace =~ ^[0-9a-f]{32}$ ]] || bad "the delivered message has no X-Preflight-Trace token (got '$trace')"
{
  printf 'From: abuse@isp.example\nTo: fbl@shop.test\nSubject: complaint\nMIME-Version: 1.0\n'
  printf 'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\n\n'
  printf -- '--B\nContent-Type: text/plain\n\nAn abuse report.\n'
  printf -- '--B\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n'
  printf 'User-Agent: test/1\nOriginal-Mail-From: <alice@shop.test>\nReporting-MTA: dns; fbl.isp.example\n\n'
  printf -- '--B\nContent-Type: text/rfc822-headers\n\n'
  # the returned headers, the recipient redacted as feedback loops do
  sed -n '/^$/q;p' "${msg:-/dev/null}" | grep -v '^X-Rcpt-To:\|^X-Mail-From:' | sed "s/fan@$D/redacted@isp.example/g"
  printf '\n--B--\n'
} >"$IT_DIR/out/arf.eml"
"$CLASSIFY" dsn --suppress --conf "$IT_DIR/a.conf" "$IT_DIR/out/arf.eml" >"$IT_DIR/out/arf.json" 2>"$IT_DIR/out/arf.err" ||
  bad "dsn --suppress failed: $(tail -2 "$IT_DIR/out/arf.err")"
listed "$IT_DIR/a.conf" "fan@$D" shop.test || bad "fan@ not listed for shop.test after the complaint"
send fan2 "$SMTPD_A" --from alice@shop.test --to "fan@$D"
expect_reply fan2 RCPT "^550 5\.7\.1 <fan@$D> is suppressed for shop\.test since .*reported a message as spam"
sc_end

sc "dsn --suppress over Postfix's own DSN lists the dead address (a second store)"
sed "s|^SuppressionStore .*|SuppressionStore sqlite:$IT_DIR/from-dsn.db|" "$IT_DIR/a.conf" >"$IT_DIR/dsn.conf"
dsn=$(grep -l "^X-Rcpt-To: <alice@shop.test>" "$DOWN_DIR"/msg.* 2>/dev/null | xargs -r grep -l "dead@$D" | head -1)
if [[ -z $dsn ]]; then
  bad "no DSN for dead@ reached alice@shop.test at the downstream"
else
  "$CLASSIFY" dsn --suppress --conf "$IT_DIR/dsn.conf" "$dsn" >/dev/null 2>"$IT_DIR/out/dsn.err" ||
    bad "dsn --suppress failed: $(tail -2 "$IT_DIR/out/dsn.err")"
  listed "$IT_DIR/dsn.conf" "dead@$D" shop.test || bad "dead@ not listed for shop.test from the DSN"
fi
sc_end

sc "suppress remove re-opens the address on the next RCPT TO"
"$CLASSIFY" suppress --conf "$IT_DIR/a.conf" remove "dead@$D" --scope shop.test >"$IT_DIR/out/remove.out" 2>&1 ||
  bad "suppress remove failed: $(<"$IT_DIR/out/remove.out")"
send reopened "$SMTPD_A" --from alice@shop.test --to "dead@$D"
expect_reply reopened RCPT '^250 '
sc_end

sc "two milters share one Redis store"
"$CLASSIFY" suppress --conf "$IT_DIR/b.conf" add "shared@$D" --scope shop.test --reason "asked to be removed" \
  >"$IT_DIR/out/add.out" 2>&1 || bad "suppress add failed: $(<"$IT_DIR/out/add.out")"
send b1 "$SMTPD_B1" --from alice@shop.test --to "shared@$D,ok1@$D"
send b2 "$SMTPD_B2" --from alice@shop.test --to "shared@$D,ok2@$D"
for n in b1 b2; do
  expect_reply "$n" 'RCPT#1' "^550 5\.7\.1 <shared@$D> is suppressed for shop\.test since .*: asked to be removed"
  expect_reply "$n" 'RCPT#2' '^250 '
done
"$CLASSIFY" suppress --conf "$IT_DIR/b.conf" remove "shared@$D" >/dev/null 2>&1
send b3 "$SMTPD_B2" --from alice@shop.test --to "shared@$D"
expect_reply b3 RCPT '^250 '
sc_end

sc "a wrong SuppressionStorePasswordFile: suppress fails, naming the user, not the password"
(umask 077 && printf 'preflight:not-the-password\n' >"$IT_DIR/wrong.pass")
sed "s|^SuppressionStorePasswordFile .*|SuppressionStorePasswordFile $IT_DIR/wrong.pass|" "$IT_DIR/b.conf" \
  >"$IT_DIR/b-wrong.conf"
if "$CLASSIFY" suppress --conf "$IT_DIR/b-wrong.conf" list >"$IT_DIR/out/wrong.out" 2>&1; then
  bad "suppress list succeeded with a wrong password"
fi
grep -q "AUTH as user preflight refused" "$IT_DIR/out/wrong.out" ||
  bad "no AUTH error: $(<"$IT_DIR/out/wrong.out")"
if grep -q "not-the-password" "$IT_DIR/out/wrong.out"; then bad "the password was printed"; fi
sc_end

sc "Redis down: 451 4.3.0 (OnSuppressionStoreError tempfail), logged; delivered once Redis is back"
stop_pids 50 "$REDIS_PID" redis-server
REDIS_PID=''
send down "$SMTPD_B1" --from alice@shop.test --to "later@$D"
expect_reply down RCPT '^451 4\.3\.0 Suppression list cannot be checked at the moment'
grep -q "suppression: store redis://127.0.0.1:$REDIS_PORT did not answer" "$IT_DIR/milter-b.log" ||
  bad "no log line for the store error"
redis_start 2>"$IT_DIR/setup.err" || bad "redis did not restart: $(<"$IT_DIR/setup.err")"
# the client still holds the message: sending it again after the store is back delivers it
retry_ok() {
  send down-retry "$SMTPD_B1" --from alice@shop.test --to "later@$D"
  [[ $(reply_at down-retry EOD) == 250* ]]
}
wait_for 100 retry_ok || bad "the retry was not accepted: $(what_happened down-retry)"
wait_for 300 delivered_to "later@$D" || bad "later@ was not delivered after the retry"
sc_end

echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
