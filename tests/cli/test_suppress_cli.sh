#!/usr/bin/env bash
# Command-line behaviour of `preflight-classify suppress` and of --suppress in `log` and `dsn`:
# what gets listed from whose fault, the CSV/JSON round trip through export and import, filters,
# removal, and the errors (a bad conf as FILE:LINE, a bad import line as FILE:LINE and the field,
# usage) with their exit codes. An SQLite store in a temp dir; no network.
set -u
BIN=${1:?usage: test_suppress_cli.sh PATH/TO/preflight-classify DSN_DATA_DIR}
DATA=${2:?usage: test_suppress_cli.sh PATH/TO/preflight-classify DSN_DATA_DIR}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0 passes=0
check() { # check NAME STATUS
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi
}
S() { "$BIN" suppress --conf "$TMP/p.conf" "$@"; }

cat >"$TMP/p.conf" <<EOF
EgressAddresses 127.0.0.1
SuppressionMode reject
SuppressionStore sqlite:$TMP/s.db
Domain global.example SuppressionScope global
EOF

# ---- log --suppress: whose fault decides ----------------------------------------------------------
L='mx postfix' T=$(date '+%b %e %H:%M:%S')
cat >"$TMP/maillog" <<EOF
$T $L/qmgr[2]: 4AB12345: from=<alice@shop.example>, size=1, nrcpt=4 (queue active)
$T $L/smtp[3]: 4AB12345: to=<Dead@Dest.example>, relay=mx.dest.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host mx.dest.example[192.0.2.1] said: 550 5.1.1 <dead@dest.example>: user unknown (in reply to RCPT TO command))
$T $L/smtp[3]: 4AB12345: to=<spam@dest.example>, relay=mx.dest.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.7.1, status=bounced (host mx.dest.example[192.0.2.1] said: 550 5.7.1 Message rejected as spam (in reply to end of DATA command))
$T $L/smtp[3]: 4AB12345: to=<full@dest.example>, relay=mx.dest.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.2.2, status=bounced (host mx.dest.example[192.0.2.1] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command))
$T $L/smtp[3]: 4AB12345: to=<slow@dest.example>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to mx.dest.example[192.0.2.1]:25: Connection timed out)
$T $L/smtpd[4]: NOQUEUE: reject: RCPT from x[192.0.2.9]: 550 5.1.1 <own@dest.example>: Recipient address rejected: User unknown; from=<alice@shop.example> to=<own@dest.example> proto=ESMTP helo=<x>
$T $L/qmgr[2]: 5BC12345: from=<carol@global.example>, size=1, nrcpt=1 (queue active)
$T $L/smtp[3]: 5BC12345: to=<gone@dest.example>, relay=mx.dest.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.2, status=bounced (host mx.dest.example[192.0.2.1] said: 550 5.1.2 domain gone (in reply to RCPT TO command))
EOF
"$BIN" log --suppress --conf "$TMP/p.conf" "$TMP/maillog" >"$TMP/rows.csv" 2>"$TMP/log.err"
check "log --suppress exits 0" $?
grep -q "2 suppressed, 1 counted, 1 sender faults" "$TMP/log.err"
r=$?
check "log --suppress summary: 2 suppressed, 1 counted, 1 sender fault ($(tail -1 "$TMP/log.err"))" "$r"
S list >"$TMP/list.csv"
check "list exits 0" $?
grep -q '^dead@dest.example,shop.example,bad-mailbox,550 5.1.1 <dead@dest.example>: user unknown,mx.dest.example,log,' "$TMP/list.csv"
check "dead@ listed for shop.example with the reply and the MTA" $?
grep -q '^gone@dest.example,\*,bad-domain,' "$TMP/list.csv"
check "gone@ listed for every sender (Domain global.example SuppressionScope global)" $?
! grep -q '^spam@\|^own@\|^slow@\|^full@' "$TMP/list.csv"
check "spam (sender's fault), own rejection, timeout and one full mailbox are not listed" $?
S list --all | grep -q '^full@dest.example,shop.example,quota-issues,.*,1,.*,no'
check "the full mailbox is counted (1 of 3), not suppressing" $?
S stats | grep -q 'shop.example|spam-related 1'
check "stats counts the sender fault per sender domain" $?
S list --format json --reason bad-domain | grep -q '"recipient":"gone@dest.example".*"active":true'
check "list --format json --reason filters by reason" $?
[[ $(S list --scope shop.example | wc -l) -eq 2 ]]
check "list --scope filters by scope (header + dead@)" $?
[[ $(S list --since 2000-01-01 --until 2000-01-02 | wc -l) -eq 1 ]]
check "list --since/--until filters by date (header only)" $?

# ---- export, remove, import ---------------------------------------------------------------------
S export >"$TMP/export.csv" && S export --format json >"$TMP/export.json"
check "export exits 0" $?
S remove dead@dest.example | grep -q '1 entry removed'
check "remove says what it removed" $?
! S list | grep -q '^dead@'
check "removed: dead@ is no longer listed" $?
S import "$TMP/export.csv" 2>"$TMP/import.err"
check "import of export exits 0" $?
S list | grep -q '^dead@dest.example,shop.example,bad-mailbox'
check "import brings dead@ back as exported" $?
S remove dead@dest.example >/dev/null && S import --format json "$TMP/export.json" 2>/dev/null && S list | grep -q '^dead@'
check "the JSON export imports too" $?
printf 'recipient,scope,reason,reply,remote_mta,source,first_seen,last_seen,count,expires,active\nx@y.example,shop.example,manual,,,manual,2026-13-01,2026-12-01T00:00:00Z,1,,yes\n' >"$TMP/bad.csv"
S import "$TMP/bad.csv" 2>"$TMP/bad.err"
[[ $? -eq 1 ]] && grep -q "$TMP/bad.csv:2: first_seen: \"2026-13-01\" is not a UTC time" "$TMP/bad.err"
r=$?
check "a bad import line: exit 1, FILE:LINE and the field ($(head -1 "$TMP/bad.err"))" "$r"

# ---- add, dsn --suppress ------------------------------------------------------------------------
S add Hand@Example.NET --scope shop.example --reason "asked by phone" --expires 30d | grep -q 'hand@example.net suppressed for shop.example until'
check "add suppresses by hand with an expiry" $?
S list --recipient hand@example.net | grep -q ',manual,asked by phone,,manual,'
check "the manual entry carries its reason" $?
"$BIN" dsn --suppress --conf "$TMP/p.conf" "$DATA/delayed-dsn.eml" >/dev/null 2>"$TMP/dsn.err"
grep -q '0 suppressed, 0 counted' "$TMP/dsn.err"
r=$?
check "dsn --suppress: Action: delayed is no failure ($(tail -1 "$TMP/dsn.err"))" "$r"
"$BIN" dsn --suppress --conf "$TMP/p.conf" "$DATA/arf.eml" >/dev/null 2>&1 && S list | grep -q '^grace@isp.example,example.net,complaint,'
check "dsn --suppress: an ARF complaint suppresses its recipient for the original sender's domain" $?

# ---- errors -------------------------------------------------------------------------------------
printf 'SuppressionMode sometimes\n' >"$TMP/bad.conf"
"$BIN" suppress --conf "$TMP/bad.conf" list 2>"$TMP/e1"
[[ $? -eq 2 ]] && grep -q "$TMP/bad.conf:1: SuppressionMode: \"sometimes\" is not one of reject, tag, off, dry-run" "$TMP/e1"
r=$?
check "a bad conf: exit 2 with FILE:LINE ($(head -1 "$TMP/e1"))" "$r"
S frobnicate 2>"$TMP/e2"
[[ $? -eq 2 ]] && grep -q "unknown action 'frobnicate'" "$TMP/e2"
check "an unknown action: exit 2" $?
S add not-an-address 2>"$TMP/e3"
[[ $? -eq 2 ]] && grep -q '"not-an-address" is not an address' "$TMP/e3"
check "add of a non-address: exit 2" $?
"$BIN" log --suppress --conf "$TMP/missing.conf" "$TMP/maillog" >/dev/null 2>"$TMP/e4"
[[ $? -eq 2 ]] && grep -q "missing.conf" "$TMP/e4"
check "log --suppress with an unreadable conf: exit 2 naming it" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
