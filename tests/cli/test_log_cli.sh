#!/usr/bin/env bash
# Command-line behaviour of `preflight-classify log`: exit codes, errors with FILE:LINE, several
# files read as one log, gzip, stdin, --follow with growth, rotation and truncation.
set -u
BIN=${1:?usage: test_log_cli.sh PATH/TO/preflight-classify}
TMP=$(mktemp -d)
FOLLOW_PID=''
cleanup() {
  if [[ -n $FOLLOW_PID ]] && kill -0 "$FOLLOW_PID" 2>/dev/null; then kill -KILL "$FOLLOW_PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
fails=0 passes=0
check() { # check NAME STATUS
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi
}
# wait_for TENTHS CMD...: bounded wait
wait_for() {
  local n=$1 i
  shift
  for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
  return 1
}

L='mx postfix'
cat >"$TMP/maillog.1" <<EOF
Jun  3 10:00:00 $L/cleanup[1]: 4AB12345: message-id=<m1@example.com>
Jun  3 10:00:01 $L/qmgr[2]: 4AB12345: from=<alice@example.com>, size=1, nrcpt=2 (queue active)
Jun  3 10:00:02 $L/smtp[3]: 4AB12345: to=<bob@example.org>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.2.2, status=deferred (host mx[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command))
Jun  3 10:00:02 $L/smtp[3]: 4AB12345: to=<carol@example.org>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to mx[192.0.2.1]:25: Connection timed out)
Jun  3 10:00:03 $L/cleanup[1]: 5BC12345: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 5.7.1 Refused by preflight: SPF fail; from=<x@y.example> to=<z@w.example> proto=ESMTP helo=<h>
EOF
cat >"$TMP/maillog" <<EOF
Jun  3 11:00:02 $L/smtp[3]: 4AB12345: to=<bob@example.org>, relay=mx[192.0.2.1]:25, delay=3601, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9XYZ)
Jun  8 10:00:05 $L/qmgr[2]: 4AB12345: from=<alice@example.com>, status=expired, returned to sender
Jun  8 10:00:05 $L/qmgr[2]: 4AB12345: removed
Jun  8 10:00:06 $L/smtpd[4]: NOQUEUE: reject: RCPT from x[192.0.2.9]: 554 5.7.1 <e@f.example>: Relay access denied; from=<s@g.example> to=<e@f.example> proto=ESMTP helo=<x>
EOF
gzip -c "$TMP/maillog.1" >"$TMP/maillog.1.gz"
touch -d '2024-06-30 12:00' "$TMP/maillog.1" "$TMP/maillog.1.gz" "$TMP/maillog"

# Two files, oldest first, one of them gzipped: read as one log.
"$BIN" log "$TMP/maillog.1.gz" "$TMP/maillog" >"$TMP/out.csv" 2>"$TMP/err"; rc=$?
check "two files exit 0 (got $rc: $(cat "$TMP/err"))" $rc
cat >"$TMP/want.csv" <<'EOF'
Date,Sender,Recipient,Status,Status message
2024-06-03 10:00:03,x@y.example,z@w.example,Rejected,5.7.1 Refused by preflight: SPF fail
2024-06-03 11:00:02,alice@example.com,bob@example.org,Sent,250 2.0.0 Ok: queued as 9XYZ
2024-06-08 10:00:05,alice@example.com,carol@example.org,Expired,connect to mx[192.0.2.1]:25: Connection timed out
2024-06-08 10:00:06,s@g.example,e@f.example,Rejected,554 5.7.1 <e@f.example>: Relay access denied
EOF
sed -i 's/$/\r/' "$TMP/want.csv"
cmp -s "$TMP/want.csv" "$TMP/out.csv"; check "deferred->sent, expired, milter and NOQUEUE rejects: $(diff "$TMP/want.csv" "$TMP/out.csv")" $?

# Only the older file: what is still deferred at the end is written as Deferred.
"$BIN" log --format json "$TMP/maillog.1" >"$TMP/out.json"; rc=$?
check "one file exit 0" $rc
[ "$(grep -c '"status": "Deferred"' "$TMP/out.json")" -eq 2 ]; check "open recipients end Deferred" $?

# stdin, plain and gzipped.
"$BIN" log <"$TMP/maillog.1.gz" >"$TMP/stdin.csv"; rc=$?
check "gzip on stdin exit 0" $rc
[ "$(wc -l <"$TMP/stdin.csv")" -eq 4 ]; check "gzip on stdin rows" $?
cat "$TMP/maillog.1" "$TMP/maillog" | "$BIN" log --wide - >"$TMP/stdin2.csv"; rc=$?
check "plain stdin exit 0" $rc
head -1 "$TMP/stdin2.csv" | grep -q '^Date,Sender,Recipient,Status,Status message,Queue ID,Category,Bounce type,Enhanced code,Relay,Delay'
check "--wide header" $?

# Bad input: FILE:LINE errors, exit 1, the good lines still give rows.
{ head -2 "$TMP/maillog.1"; echo "this is not a log line"; printf 'Jun  3 10:00:09 mx postfix/smtp[3]: 4AB12345: to=<broken, relay=x\n'; tail -n +3 "$TMP/maillog.1"; } >"$TMP/bad.log"
"$BIN" log "$TMP/bad.log" >"$TMP/bad.csv" 2>"$TMP/bad.err"; rc=$?
[ $rc -eq 1 ]; check "bad lines exit 1 (got $rc)" $?
grep -q "bad.log:3: not a syslog, maillog_file or journalctl line" "$TMP/bad.err"; check "bad line reported with file:line: $(cat "$TMP/bad.err")" $?
grep -q "bad.log:4: malformed Postfix line" "$TMP/bad.err"; check "malformed line reported with file:line" $?
[ "$(wc -l <"$TMP/bad.csv")" -eq 4 ]; check "rows still written around bad lines" $?
head -c 20000 /dev/urandom >"$TMP/binary"
timeout 10 "$BIN" log "$TMP/binary" >/dev/null 2>"$TMP/bin.err"; rc=$?
[ $rc -eq 1 ]; check "binary junk exits 1 (got $rc)" $?
grep -q "more bad lines not shown" "$TMP/bin.err" || [ "$(wc -l <"$TMP/bin.err")" -le 11 ]; check "bad lines reported in bounded amount" $?
head -c 300 "$TMP/maillog.1.gz" >"$TMP/trunc.gz"
"$BIN" log "$TMP/trunc.gz" >/dev/null 2>"$TMP/trunc.err"; rc=$?
[ $rc -eq 1 ]; check "truncated gzip exits 1 (got $rc)" $?
grep -q "trunc.gz" "$TMP/trunc.err"; check "truncated gzip names the file: $(cat "$TMP/trunc.err")" $?
"$BIN" log "$TMP/missing" "$TMP/maillog" >"$TMP/miss.csv" 2>"$TMP/miss.err"; rc=$?
[ $rc -eq 1 ]; check "missing file exits 1 (got $rc)" $?
grep -q "missing: No such file" "$TMP/miss.err"; check "missing file named" $?
"$BIN" log --output /nonexistent/dir/out.csv "$TMP/maillog" 2>/dev/null; rc=$?
[ $rc -eq 1 ]; check "unwritable output exits 1 (got $rc)" $?

# Usage errors: exit 2.
for args in "--format xml" "--bogus" "--format" "--queue-lifetime 5x" "--follow --format xlsx $TMP/maillog" "--follow"; do
  # shellcheck disable=SC2086
  "$BIN" log $args </dev/null >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ]; check "usage error '$args' exits 2 (got $rc)" $?
done
printf 'not a rule\n' >"$TMP/bad.rules"
"$BIN" log --rules "$TMP/bad.rules" "$TMP/maillog" >/dev/null 2>"$TMP/rules.err"; rc=$?
[ $rc -eq 2 ]; check "bad rule file exits 2 (got $rc)" $?
grep -q "bad.rules:1" "$TMP/rules.err"; check "bad rule file named with line" $?
"$BIN" log --help | grep -q "usage: preflight-classify log"; check "--help" $?
"$BIN" --help | grep -q "  log "; check "log listed in the top usage" $?

# --follow: rows as they become final; growth, rotation (rename + new file), truncation.
F=$TMP/follow.log
now() { date '+%b %e %H:%M:%S'; }
line() { # line QID RCPT STATUS
  echo "$(now) mx postfix/smtp[3]: $1: to=<$2>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=$3 (250 2.0.0 Ok)"
}
line AAAAA1 first@example.org sent >"$F"
"$BIN" log --format json --follow "$F" >"$TMP/follow.json" 2>"$TMP/follow.err" &
FOLLOW_PID=$!
# Every wait below is for an event (a row written, the follower's read position), 10 s at most:
# no fixed sleeps, so a slow machine only makes it slower and a broken follower cannot pass.
rows() { [ "$(grep -c '"recipient"' "$TMP/follow.json" 2>/dev/null)" -ge "$1" ]; }
# follow_pos: where the follower's descriptor of $F stands (the kernel's offset, from
# /proc/PID/fdinfo), or nothing when it has no $F open.
follow_pos() {
  local fd
  for fd in /proc/"$FOLLOW_PID"/fd/*; do
    [ "$(readlink "$fd" 2>/dev/null)" = "$F" ] || continue
    awk '$1 == "pos:" { print $2 }' "/proc/$FOLLOW_PID/fdinfo/${fd##*/}" 2>/dev/null
    return 0
  done
}
at_pos() { [ "$(follow_pos)" = "$1" ]; }
wait_for 100 rows 1; check "follow: existing content" $?
line AAAAA2 second@example.org sent >>"$F"
wait_for 100 rows 2; check "follow: appended line" $?
echo "$(now) mx postfix/qmgr[2]: AAAAA3: from=<a@b.example>, size=1, nrcpt=1 (queue active)" >>"$F"
line AAAAA3 third@example.org deferred >>"$F"
mv "$F" "$F.1"
line AAAAA3 third@example.org sent >"$F"
wait_for 100 rows 3; check "follow: rotation (rename, new file)" $?
grep '"third@example.org"' "$TMP/follow.json" | grep -q '"status": "Sent"'; check "follow: deferred in the old file, sent in the new" $?
grep -q '"sender": "a@b.example", "recipient": "third@example.org"' "$TMP/follow.json"; check "follow: state kept across rotation" $?
# copytruncate: the file is emptied, then written again. A follower can only tell that from its
# size going below what it read, so the test waits until it has read all of $F, truncates, and
# waits until it went back to the start (its offset 0) before the next line is written.
wait_for 100 at_pos "$(stat -c %s "$F")"; check "follow: read the new file to its end" $?
: >"$F"
wait_for 100 at_pos 0; check "follow: back to the start after the truncation" $?
line AAAAA4 fourth@example.org sent >>"$F"
wait_for 100 rows 4; check "follow: truncation (copytruncate)" $?
# Half a line is held until its newline: the follower reads the first half (its offset reaches
# the end of $F), writes no row for it, and makes one row of the whole line once the rest comes.
# A follower that took the half as a line would write a bad-line error and no fifth row.
l5=$(line AAAAA5 fifth@example.org sent)
printf '%s' "${l5%%fifth@*}fif" >>"$F"
wait_for 100 at_pos "$(stat -c %s "$F")"; check "follow: read half a line" $?
rows 5 && r=1 || r=0
check "follow: half a line makes no row" "$r"
printf '%s\n' "th@${l5#*fifth@}" >>"$F"
wait_for 100 rows 5; check "follow: the line once complete" $?
grep '"fifth@example.org"' "$TMP/follow.json" | grep -q '"status": "Sent"'; check "follow: the completed line is one whole row" $?
kill -TERM "$FOLLOW_PID"
# 20 s: only catches a follower that ignores SIGTERM (it stops at its next poll)
wait_for 200 bash -c "! kill -0 $FOLLOW_PID 2>/dev/null"; check "follow: stops on SIGTERM" $?
wait "$FOLLOW_PID"; rc=$?
FOLLOW_PID=''
[ $rc -eq 0 ]; check "follow: exit 0 after SIGTERM (got $rc: $(cat "$TMP/follow.err"))" $?
[ "$(grep -c '"recipient"' "$TMP/follow.json")" -eq 5 ]; check "follow: each row once" $?
[ ! -s "$TMP/follow.err" ]; check "follow: no error or bad line reported ($(head -2 "$TMP/follow.err"))" $?

# --dsn: a bounce that arrives after "sent" turns the row into a Bounce with the bounce's reason
# (joined by the downstream's queue id, "queued as 4ABCD1234", named in the DSN).
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$TMP/dsn"
cp "$SRC/data/dsn/postfix-dsn.eml" "$TMP/dsn/"
cat >"$TMP/joined.log" <<EOF
Jun  3 10:00:01 $L/qmgr[2]: 1AA12345: from=<alice@example.net>, size=1, nrcpt=1 (queue active)
Jun  3 10:00:02 $L/smtp[3]: 1AA12345: to=<bob@example.com>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4ABCD1234)
Jun  3 10:00:03 $L/qmgr[2]: 1AA12345: removed
EOF
out=$("$BIN" log --format json --dsn "$TMP/dsn" "$TMP/joined.log"); rc=$?
[ $rc -eq 0 ]; check "dsn join: exit 0 (got $rc)" $?
[[ $out == *'"status": "Bounce", "message": "550 5.1.1 <bob@example.com>: Recipient address rejected'* ]]
check "dsn join: the sent row becomes a Bounce with the DSN's reply (got $out)" $?
out=$("$BIN" log --format json "$TMP/joined.log")
[[ $out == *'"status": "Sent"'* ]]; check "dsn join: without --dsn the row stays Sent" $?
"$BIN" log --dsn "$TMP/no-such-dir" "$TMP/joined.log" >/dev/null 2>"$TMP/dsn.err"; rc=$?
[ $rc -eq 1 ] && grep -q 'no-such-dir' "$TMP/dsn.err"; check "dsn join: an unreadable --dsn dir is named, exit 1 (got $rc: $(cat "$TMP/dsn.err"))" $?

# A full disk: exit 1, the reason on stderr, and no partial file under the --output name (an
# older file of that name stays). Needs root for a small tmpfs in a private mount namespace.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
  for i in $(seq 3000); do
    echo "Jun  3 10:00:01 $L/smtp[3]: 1AA$((10000 + i)): to=<bob$i@example.com>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
  done >"$TMP/many.log"
  mkdir -p "$TMP/full"
  out=$(unshare -m bash -c 'mount -t tmpfs -o size=32k tmpfs "$1" && echo old >"$1/out.csv" &&
    "$2" log --output "$1/out.csv" "$3"; echo "rc=$?"; ls "$1"; cat "$1/out.csv"' _ "$TMP/full" "$BIN" "$TMP/many.log" 2>&1)
  [[ $out == *"No space left on device"* && $out == *"out.csv: not written"* && $out == *"rc=1"* ]]
  check "disk full: exit 1 with the reason (got: $(tr '\n' ' ' <<<"$out"))" $?
  [[ $(grep -c 'tmp-' <<<"$out") -eq 0 && $(tail -1 <<<"$out") == old ]]
  check "disk full: no temporary left, the older out.csv untouched" $?
else
  echo "skip: disk-full check needs root (unshare -m, mount tmpfs)"
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
