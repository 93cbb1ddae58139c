#!/usr/bin/env bash
# Command-line behaviour of `preflight-classify reply` that scripts and operators rely on:
# formats, exit codes, order of results, bad input that must not stop a run.
set -u
BIN=${1:?usage: test_reply_cli.sh PATH/TO/preflight-classify}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0; passes=0
check() {  # check NAME CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL: $1"; fi
}

# One reply as argument; JSON when stdout is not a terminal.
out=$("$BIN" reply "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown"); rc=$?
check "argument reply exits 0" $rc
echo "$out" | grep -q '"status": "bounce", "bounce": "hard", "category": "bad-mailbox", "code": 550, "enhanced": "5.1.1", "retry": false'
check "argument reply is a hard bad-mailbox bounce: $out" $?

# Several words are one reply.
out=$("$BIN" reply 452 4.2.2 Mailbox full)
echo "$out" | grep -q '"reply": "452 4.2.2 Mailbox full", "status": "deferred", "bounce": "soft", "category": "quota-issues"'
check "words joined into one reply: $out" $?

# Multi-line reply with real newlines as one argument.
out=$("$BIN" reply "$(printf '550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient'"'"'s email address for typos or\n550 5.1.1 unnecessary spaces.')")
echo "$out" | grep -q '"category": "bad-mailbox"'
check "multi-line argument: $out" $?
[ "$(echo "$out" | wc -l)" -eq 1 ]; check "multi-line argument gives one result" $?

# stdin: one result per line, same order, bad lines reported with their line number.
printf '250 2.0.0 Ok: queued as ABC\n\n552 5.2.2 Over quota\n\001\002\377 junk\n550 5.1.1 no such user\n' > "$TMP/in"
"$BIN" reply < "$TMP/in" > "$TMP/out"; rc=$?
[ $rc -eq 1 ]; check "unclassifiable lines make exit 1 (got $rc)" $?
[ "$(wc -l < "$TMP/out")" -eq 5 ]; check "five lines in, five results out" $?
sed -n 1p "$TMP/out" | grep -q '"status": "sent"'; check "line 1 sent" $?
sed -n 2p "$TMP/out" | grep -q '{"error": "empty reply", "line": 2}'; check "line 2 empty-reply error" $?
sed -n 3p "$TMP/out" | grep -q '"category": "quota-issues"'; check "line 3 quota" $?
sed -n 4p "$TMP/out" | grep -q '"line": 4'; check "line 4 junk is an error object" $?
sed -n 5p "$TMP/out" | grep -q '"category": "bad-mailbox"'; check "line 5 after junk still classified" $?
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]' "$TMP/out"
check "every output line is valid JSON" $?

# A 1 MB line is refused with an error and the run goes on; last line without newline.
{ echo "550 5.1.1 first"; head -c 1048576 /dev/zero | tr '\0' 'a'; echo; printf '451 4.7.1 greylisted, try later'; } > "$TMP/big"
"$BIN" reply < "$TMP/big" > "$TMP/out"; rc=$?
[ $rc -eq 1 ]; check "1 MB line gives exit 1" $?
sed -n 2p "$TMP/out" | grep -q '"error": "reply longer than 65536 bytes", "line": 2'; check "1 MB line error" $?
sed -n 3p "$TMP/out" | grep -q '"code": 451'; check "line after 1 MB line classified" $?

# All classified: exit 0. TSV has a header and 9 columns.
printf '550 5.1.1 x\n421 4.7.0 try later\n' | "$BIN" reply --format tsv > "$TMP/out"; rc=$?
check "all classified exits 0" $rc
head -1 "$TMP/out" | grep -q '^reply	status	bounce	category	code	enhanced	retry	action	rule$'; check "tsv header" $?
[ "$(awk -F'\t' 'NR>1{print NF}' "$TMP/out" | sort -u)" = 9 ]; check "tsv rows have 9 fields" $?

# Text table for people.
"$BIN" reply --format text "552 5.2.2 Over quota" > "$TMP/out"
head -1 "$TMP/out" | grep -q '^STATUS *BOUNCE *CATEGORY *CODE *ENHANCED *RETRY *REPLY'; check "text header" $?
grep -q '^deferred\|^bounce' "$TMP/out"; check "text row" $?

# Edge origin: our own rejection is 'rejected'.
"$BIN" reply --origin edge "550 5.7.1 message too large" | grep -q '"status": "rejected"'; check "edge origin rejected" $?

# Usage errors exit 2.
"$BIN" reply --format xml x >/dev/null 2>&1; [ $? -eq 2 ]; check "bad --format exits 2" $?
"$BIN" reply --bogus >/dev/null 2>&1; [ $? -eq 2 ]; check "unknown option exits 2" $?
"$BIN" frobnicate >/dev/null 2>&1; [ $? -eq 2 ]; check "unknown command exits 2" $?

# Site rules come first; a broken rule file names file:line and exits 2.
echo 'spam-related text user unknown' > "$TMP/site.rules"
"$BIN" reply --rules "$TMP/site.rules" "550 5.1.1 user unknown" | grep -q "\"category\": \"spam-related\", .*\"rule\": \"$TMP/site.rules:1\""
check "site rule wins" $?
printf '# site\nbad-mailbox text (oops\n' > "$TMP/bad.rules"
err=$("$BIN" reply --rules "$TMP/bad.rules" "550 x" 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ]; check "broken rule file exits 2 (got $rc)" $?
echo "$err" | grep -q "$TMP/bad.rules:2: bad regex: missing ): (oops"; check "broken rule error names file:line: $err" $?

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
