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
echo "$out" | grep -q '"status": "bounce", "bounce": "hard", "category": "bad-mailbox", "code": 550, "enhanced": "5.1.1", "enhanced_source": "reported", "retry": false'
check "argument reply is a hard bad-mailbox bounce: $out" $?
# No enhanced code in the reply: the one its category names, marked derived.
out=$("$BIN" reply "550 Mailbox full"); rc=$?
echo "$out" | grep -q '"category": "quota-issues", "code": 550, "enhanced": "5.2.2", "enhanced_source": "derived"'
check "a reply without an enhanced code gets a derived one: $out" $?

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

# stdin is classified by PREFLIGHT_THREADS workers in batches; the output must not depend on
# it: same order, same global line numbers in error objects across batch boundaries.
python3 - "$TMP/many" <<'PY'
import sys
rows = ["550 5.1.1 user %d unknown" % i if i % 3 else "452 4.2.2 Mailbox full %d" % i for i in range(30000)]
for i in range(0, 30000, 997): rows[i] = ""        # empty reply: error object with its line
rows[5000] = "x" * 70000                            # too long, in the middle of a batch
open(sys.argv[1], "w").write("\n".join(rows))      # last line without newline
PY
PREFLIGHT_THREADS=1 "$BIN" reply < "$TMP/many" > "$TMP/one"; rc1=$?
[ $rc1 -eq 1 ]; check "many lines with errors exit 1 (got $rc1)" $?
[ "$(wc -l < "$TMP/one")" -eq 30000 ]; check "30000 lines in, 30000 results out" $?
sed -n 29911p "$TMP/one" | grep -q '{"error": "empty reply", "line": 29911}'; check "global line number of a late error" $?
sed -n 5001p "$TMP/one" | grep -q '"error": "reply longer than 65536 bytes", "line": 5001'; check "too-long line in a batch" $?
sed -n 30000p "$TMP/one" | grep -q '"reply": "550 5.1.1 user 29999 unknown"'; check "last line without newline" $?
for t in 2 3 8; do
  PREFLIGHT_THREADS=$t "$BIN" reply < "$TMP/many" > "$TMP/par"; rc=$?
  cmp -s "$TMP/one" "$TMP/par" && [ $rc -eq $rc1 ]; check "PREFLIGHT_THREADS=$t gives the same output and exit code" $?
  # From a pipe in uneven pieces: batches end wherever read() returns short.
  python3 -c 'import os,sys,random
d = open(sys.argv[1], "rb").read(); i = 0; random.seed(1)
while i < len(d): n = random.choice([1, 50, 4096, 70000]); os.write(1, d[i:i+n]); i += n' "$TMP/many" \
    | PREFLIGHT_THREADS=$t "$BIN" reply > "$TMP/par"
  cmp -s "$TMP/one" "$TMP/par"; check "PREFLIGHT_THREADS=$t from a pipe in pieces gives the same output" $?
done
PREFLIGHT_THREADS=bogus "$BIN" reply < "$TMP/many" | cmp -s "$TMP/one" -; check "bad PREFLIGHT_THREADS is ignored" $?
# A >64 KiB line split across reads of a pipe, then a line and a last line without newline.
{ echo "550 5.1.1 first"; head -c 40000 /dev/zero | tr '\0' b; sleep 0.2; head -c 40000 /dev/zero | tr '\0' b
  printf '\n421 4.7.0 try later\n451 4.7.1 greylisted'; } | "$BIN" reply > "$TMP/out"
sed -n 2p "$TMP/out" | grep -q '"error": "reply longer than 65536 bytes", "line": 2'; check "long line split across reads" $?
sed -n 4p "$TMP/out" | grep -q '"code": 451'; check "line after long split line" $?

# A slow producer (tail -f): each line's result must come out while the producer waits, not
# when a batch fills or input ends (stdin stays open, so a result held back never comes: the read
# times out). The read bounds (20 s) only catch that hang; they are no speed figure.
coproc PC { PREFLIGHT_THREADS=2 exec timeout 90 "$BIN" reply; }  # a hang fails, not blocks
# Own copies of the pipe ends and the pid: bash drops PC and PC_PID when the coprocess exits.
pc_pid=$PC_PID; exec {pc_out}<&"${PC[0]}" {pc_in}>&"${PC[1]}"; eval "exec ${PC[1]}>&- ${PC[0]}<&-"
echo "550 5.1.1 one" >&$pc_in
IFS= read -r -t 20 r <&$pc_out; echo "$r" | grep -q '"reply": "550 5.1.1 one"'; check "slow producer: first result ($r)" $?
for i in 2 3; do
  echo "452 4.2.2 line $i" >&$pc_in
  IFS= read -r -t 20 r <&$pc_out; echo "$r" | grep -q "\"reply\": \"452 4.2.2 line $i\""
  check "slow producer: result $i before more input ($r)" $?
done
printf '421 4.7.0 no newline' >&$pc_in
exec {pc_in}>&-
IFS= read -r -t 20 r <&$pc_out; echo "$r" | grep -q '"code": 421'; check "slow producer: last line at EOF ($r)" $?
exec {pc_out}<&-
wait "$pc_pid"; check "slow producer: exit 0 at EOF" $?

# Write errors: a message and exit 1, without hanging in the worker threads.
err=$(timeout 20 "$BIN" reply < "$TMP/many" 2>&1 >/dev/full); rc=$?
[ $rc -eq 1 ]; check "write error (ENOSPC) exits 1 (got $rc)" $?
echo "$err" | grep -q 'write error: No space left on device'; check "write error message: $err" $?
( trap '' PIPE; timeout 20 "$BIN" reply < "$TMP/many" 2>"$TMP/err" | head -c 100 > /dev/null; exit "${PIPESTATUS[0]}" ); rc=$?
[ $rc -eq 1 ]; check "EPIPE with SIGPIPE ignored exits 1 (got $rc)" $?
grep -q 'write error: Broken pipe' "$TMP/err"; check "EPIPE message" $?

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
