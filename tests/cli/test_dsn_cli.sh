#!/usr/bin/env bash
# Command-line behaviour of `preflight-classify dsn`: inputs (files, directories, maildirs,
# mboxes, stdin), per-file error records that do not stop a run, exit codes, formats.
set -u
BIN=${1:?usage: test_dsn_cli.sh PATH/TO/preflight-classify DATA-DIR}
DATA=${2:?usage: test_dsn_cli.sh PATH/TO/preflight-classify DATA-DIR}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0; passes=0
check() {  # check NAME CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL: $1"; fi
}
valid_json() { $PY -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]' "$1"; }

# One file: one record per recipient, in order, exit 0.
"$BIN" dsn "$DATA/postfix-dsn.eml" > "$TMP/out"; rc=$?
check "postfix DSN exits 0 (got $rc)" $rc
[ "$(wc -l < "$TMP/out")" -eq 2 ]; check "two recipients, two records" $?
sed -n 1p "$TMP/out" | grep -q '"recipient": "bob@example.com", "status": "bounce", "bounce": "hard", "category": "bad-mailbox", "code": 550, "enhanced": "5.1.1"'
check "first record: bob hard bad-mailbox" $?
sed -n 1p "$TMP/out" | grep -q '"reporting_mta": "mx.example.org", "message_id": "orig-1@example.net", "queue_id": "4ABCD1234", "kind": "dsn"'
check "per-message fields" $?
sed -n 2p "$TMP/out" | grep -q '"recipient": "carol@example.com".*"category": "quota-issues"'; check "second record: carol quota" $?

# A directory: every file, sorted; the truncated one gives an error record, the run goes on, exit 1.
"$BIN" dsn "$DATA" > "$TMP/out"; rc=$?
[ $rc -eq 1 ]; check "directory with a truncated file exits 1 (got $rc)" $?
valid_json "$TMP/out"; check "every line is valid JSON" $?
grep -q '"file": "[^"]*truncated.eml", "error": "truncated message' "$TMP/out"; check "truncated file error record" $?
grep -q '"kind": "auto-reply"' "$TMP/out" && grep -q '"kind": "feedback-report"' "$TMP/out"; check "auto-reply and ARF kinds" $?
! grep '"kind": "auto-reply"\|"kind": "feedback-report"' "$TMP/out" | grep -q '"bounce": "hard"'; check "auto-replies and ARF never hard" $?
grep -q '"file": "[^"]*vacation.eml"' "$TMP/out" && [ "$(grep -n 'arf.eml' "$TMP/out" | head -1 | cut -d: -f1)" -lt "$(grep -n 'vacation.eml' "$TMP/out" | head -1 | cut -d: -f1)" ]
check "directory entries in sorted order" $?

# stdin, explicitly and by default.
"$BIN" dsn - < "$DATA/exim-freetext.eml" | grep -q '"file": "-", "recipient": "dave@example.com"'; check "stdin with -" $?
"$BIN" dsn < "$DATA/exim-freetext.eml" | grep -q '"recipient": "dave@example.com"'; check "stdin by default" $?

# mbox: messages split at From lines, named FILE#N.
{ for f in postfix-dsn exim-freetext; do echo "From MAILER-DAEMON Mon Jan  1 00:00:00 2024"; cat "$DATA/$f.eml"; echo; done; } > "$TMP/box.mbox"
"$BIN" dsn "$TMP/box.mbox" > "$TMP/out"; rc=$?
check "mbox exits 0 (got $rc)" $rc
grep -q 'box.mbox#1", "recipient": "bob@example.com"' "$TMP/out" && grep -q 'box.mbox#2", "recipient": "dave@example.com"' "$TMP/out"
check "mbox messages named #N" $?

# maildir: cur and new read, tmp skipped.
mkdir -p "$TMP/md/cur" "$TMP/md/new" "$TMP/md/tmp"
cp "$DATA/postfix-dsn.eml" "$TMP/md/cur/1:2,S"; cp "$DATA/exim-freetext.eml" "$TMP/md/new/2"; cp "$DATA/truncated.eml" "$TMP/md/tmp/3"
"$BIN" dsn "$TMP/md" > "$TMP/out"; rc=$?
check "maildir exits 0, tmp skipped (got $rc)" $rc
[ "$(wc -l < "$TMP/out")" -eq 3 ]; check "maildir records" $?

# Bad input never stops the run: binary, missing, over the size limit, too many parts.
head -c 20000 /dev/urandom > "$TMP/binary.eml"
"$BIN" dsn "$TMP/binary.eml" "$TMP/missing.eml" "$DATA/postfix-dsn.eml" > "$TMP/out"; rc=$?
[ $rc -eq 1 ]; check "bad inputs exit 1 (got $rc)" $?
grep -q 'binary.eml", "error": "binary data' "$TMP/out"; check "binary file error" $?
grep -q 'missing.eml", "error": "cannot open: No such file or directory"' "$TMP/out"; check "missing file error" $?
grep -q '"recipient": "carol@example.com"' "$TMP/out"; check "good file after bad ones" $?
head -c 101000000 /dev/zero > "$TMP/big.eml"
timeout 20 "$BIN" dsn "$TMP/big.eml" > "$TMP/out"; rc=$?
[ $rc -eq 1 ]; check "file over 100 MB exits 1 (got $rc)" $?
grep -q '"error": "file too large: 101000000 bytes, the limit is 100000000"' "$TMP/out"; check "file too large error: $(cat "$TMP/out")" $?
rm -f "$TMP/big.eml"
$PY - "$TMP/parts.eml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("From: MAILER-DAEMON@example.org\nTo: a@example.net\nSubject: x\nMIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=P\n\n")
    for i in range(10000): f.write("--P\nContent-Type: text/plain\n\npart %d\n" % i)
    f.write("--P--\n")
PY
timeout 20 "$BIN" dsn "$TMP/parts.eml" > "$TMP/out"; rc=$?
[ $rc -eq 1 ]; check "10,000 parts exit 1 (got $rc)" $?
grep -q '"error": "more than 1000 MIME parts"' "$TMP/out"; check "too many parts error" $?

# Formats and usage errors.
"$BIN" dsn --format text "$DATA/postfix-dsn.eml" 2>/dev/null | head -1 | grep -q '^STATUS *BOUNCE *CATEGORY'; check "text header" $?
"$BIN" dsn --format tsv "$DATA/postfix-dsn.eml" > "$TMP/out"
[ "$(awk -F'\t' '{print NF}' "$TMP/out" | sort -u)" = 12 ]; check "tsv has 12 columns" $?
"$BIN" dsn --format xml x >/dev/null 2>&1; [ $? -eq 2 ]; check "bad --format exits 2" $?
"$BIN" dsn --bogus >/dev/null 2>&1; [ $? -eq 2 ]; check "unknown option exits 2" $?
"$BIN" dsn --max-parts 0 x >/dev/null 2>&1; [ $? -eq 2 ]; check "bad --max-parts exits 2" $?
printf 'bad-mailbox text (oops\n' > "$TMP/bad.rules"
"$BIN" dsn --rules "$TMP/bad.rules" "$DATA/postfix-dsn.eml" >/dev/null 2>&1; [ $? -eq 2 ]; check "broken rule file exits 2" $?
echo 'spam-related text user unknown' > "$TMP/site.rules"
"$BIN" dsn --rules "$TMP/site.rules" "$DATA/postfix-dsn.eml" 2>/dev/null | head -1 | grep -q '"category": "spam-related"'; check "site rule wins" $?

# Output does not depend on the number of threads.
PREFLIGHT_THREADS=1 "$BIN" dsn "$DATA" "$DATA" > "$TMP/one"
PREFLIGHT_THREADS=3 "$BIN" dsn "$DATA" "$DATA" > "$TMP/three"
cmp -s "$TMP/one" "$TMP/three"; check "same output with 1 and 3 threads" $?

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
