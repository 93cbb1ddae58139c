#!/usr/bin/env bash
# `preflight-classify log` on a journald-only host: `journalctl -u postfix@- -o short-iso` (and
# short-iso-precise, and rsyslog's RFC 3339 high-precision lines) on stdin or from a file, read
# like a mail log; journalctl's "-- ... --" lines skipped; a bad timestamp named as FILE:LINE.
set -u
BIN=${1:?usage: test_log_journal_cli.sh PATH/TO/preflight-classify}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0 passes=0
check() { # check NAME STATUS
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi
}

# What journalctl -u postfix@- -o short-iso writes (systemd 252): its header line, a boot
# marker, Postfix's lines with +HHMM zones; one line of short-iso-precise and one of rsyslog's
# RFC 3339 format mixed in (formats are recognised per line).
H='relay1 postfix'
cat >"$TMP/journal.txt" <<EOF
-- Journal begins at Sun 2026-12-06 09:00:00 UTC, ends at Sun 2026-12-06 11:00:00 UTC. --
2026-12-06T10:15:00+0000 $H/cleanup[1230]: 3F2A1C0042: message-id=<m1@example.com>
2026-12-06T10:15:00+0000 $H/qmgr[1231]: 3F2A1C0042: from=<news@example.com>, size=2048, nrcpt=3 (queue active)
2026-12-06T10:15:01+0000 $H/smtp[1234]: 3F2A1C0042: to=<a@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9XYZ)
-- Boot 3f2a1c00421b4c5d8e9f0a1b2c3d4e5f --
2026-12-06T11:15:02.123456+0100 $H/smtp[1235]: 3F2A1C0042: to=<b@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=2, delays=0/0/1/1, dsn=5.1.1, status=bounced (host mx.example.org[198.51.100.7] said: 550 5.1.1 <b@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command))
2026-12-06T10:15:03.5+00:00 $H/smtp[1236]: 3F2A1C0042: to=<c@example.net>, relay=none, delay=3, delays=0/0/3/0, dsn=4.4.1, status=deferred (connect to mx.example.net[203.0.113.9]:25: Connection timed out)
2026-12-06T10:15:04+0000 $H/qmgr[1231]: 3F2A1C0042: removed
2026-12-06T10:15:05+0000 relay1 systemd[1]: Started postfix@-.service - Postfix Mail Transport Agent (instance -).
EOF

"$BIN" log --wide <"$TMP/journal.txt" >"$TMP/out.csv" 2>"$TMP/err"; rc=$?
check "journal on stdin: exit 0, no bad line (got $rc: $(cat "$TMP/err"))" $rc
[ ! -s "$TMP/err" ]; check "journal on stdin: nothing on stderr" $?
cat >"$TMP/want.csv" <<'EOF'
Date,Sender,Recipient,Status,Status message,Queue ID,Category,Bounce type,Enhanced code,Relay,Delay
2026-12-06 10:15:01,news@example.com,a@example.com,Sent,250 2.0.0 Ok: queued as 9XYZ,3F2A1C0042,success,none,2.0.0,mx.example.com[192.0.2.25]:25,1.2
2026-12-06 11:15:02,news@example.com,b@example.org,Bounce,550 5.1.1 <b@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command),3F2A1C0042,bad-mailbox,hard,5.1.1,mx.example.org[198.51.100.7]:25,2
2026-12-06 10:15:03,news@example.com,c@example.net,Deferred,connect to mx.example.net[203.0.113.9]:25: Connection timed out,3F2A1C0042,no-answer-from-host,soft,4.4.1,none,3
EOF
sed -i 's/$/\r/' "$TMP/want.csv"
cmp -s "$TMP/want.csv" "$TMP/out.csv"; check "journal on stdin: one row per recipient: $(diff "$TMP/want.csv" "$TMP/out.csv")" $?

# The same from a file, as JSON.
"$BIN" log --format json "$TMP/journal.txt" >"$TMP/out.json" 2>"$TMP/err"; rc=$?
check "journal from a file: exit 0 (got $rc: $(cat "$TMP/err"))" $rc
[ "$(grep -c '"recipient"' "$TMP/out.json")" -eq 3 ]; check "journal from a file: three rows" $?

# "journalctl ... | log" when the journal has nothing: journalctl writes "-- No entries --".
printf -- '-- No entries --\n' | "$BIN" log >"$TMP/empty.csv" 2>"$TMP/err"; rc=$?
check "no entries: exit 0 (got $rc: $(cat "$TMP/err"))" $rc
[ "$(wc -l <"$TMP/empty.csv")" -eq 1 ]; check "no entries: the header only" $?

# A bad timestamp: FILE:LINE and what is wrong with it, exit 1, the other rows still written.
{ head -3 "$TMP/journal.txt"; echo "2026-02-30T10:15:01+0000 $H/smtp[1234]: 3F2A1C0042: to=<x@example.com>, relay=none, delay=1, status=sent (ok)";
  echo "2026-12-06T10:15:01+25:00 $H/smtp[1234]: 3F2A1C0042: to=<y@example.com>, relay=none, delay=1, status=sent (ok)";
  tail -n +4 "$TMP/journal.txt"; } >"$TMP/bad.txt"
"$BIN" log "$TMP/bad.txt" >"$TMP/bad.csv" 2>"$TMP/bad.err"; rc=$?
[ $rc -eq 1 ]; check "bad timestamp: exit 1 (got $rc)" $?
grep -q "bad.txt:4: not a syslog, maillog_file or journalctl line (timestamp: no such date)" "$TMP/bad.err"
check "bad date named with FILE:LINE: $(cat "$TMP/bad.err")" $?
grep -q "bad.txt:5: not a syslog, maillog_file or journalctl line (timestamp: zone offset not +HH:MM or +HHMM)" "$TMP/bad.err"
check "bad zone named with FILE:LINE" $?
[ "$(wc -l <"$TMP/bad.csv")" -eq 4 ]; check "bad timestamp: the good lines still give their rows" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
