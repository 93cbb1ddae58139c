#!/usr/bin/env bash
# `preflight-classify log` exports that are safe to open in a spreadsheet: addresses and replies
# that start like a formula (= + - @) become text in CSV (a leading '), stay as they came with
# --raw, and are string cells (never <f> formulas) in XLSX.
set -u
BIN=${1:?usage: test_log_export_cli.sh PATH/TO/preflight-classify}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0 passes=0
check() { # check NAME STATUS
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi
}

# A recipient that is a valid address and a formula; a sender starting with '-'; a downstream
# reply starting with '@'; a reply with '"' and ',' that needs RFC 4180 quoting as well.
RCPT="=cmd|'/Ccalc'!A0@gmail.example"
L='mx postfix'
cat >"$TMP/maillog" <<EOF
Jun  3 10:00:01 $L/qmgr[2]: 4AB12345: from=<-2+3@example.com>, size=1, nrcpt=2 (queue active)
Jun  3 10:00:02 $L/smtp[3]: 4AB12345: to=<$RCPT>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (host mx[192.0.2.1] said: @SUM(1+1)*cmd|' /C calc'!A0 (in reply to RCPT TO command))
Jun  3 10:00:03 $L/smtp[3]: 4AB12345: to=<bob@example.org>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (host mx[192.0.2.1] said: =HYPERLINK("http://x.example/?a,b","click") (in reply to RCPT TO command))
Jun  3 10:00:04 $L/qmgr[2]: 4AB12345: removed
EOF
touch -d '2024-06-30 12:00' "$TMP/maillog"

# CSV (the default): the cells start with '= '- '@, and quoting is still RFC 4180.
"$BIN" log "$TMP/maillog" >"$TMP/out.csv" 2>"$TMP/err"; rc=$?
check "csv: exit 0 (got $rc: $(cat "$TMP/err"))" $rc
# Field 3 of row 2 (after the header): no quoting needed, so the cell is the line's third field.
cells=$(sed -n 2p "$TMP/out.csv" | tr -d '\r')
[[ $cells == "2024-06-03 10:00:02,'-2+3@example.com,'$RCPT,Bounce,'@SUM(1+1)*cmd|' /C calc'!A0 (in reply to RCPT TO command)" ]]
check "csv: sender, recipient and reply cells start with ' (got: $cells)" $?
python3 - "$TMP/out.csv" "$RCPT" <<'EOF'; check "csv: read back by a CSV reader, each cell starts with ' then the value" $?
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[1][2] == "'" + sys.argv[2], rows[1]
assert rows[1][1] == "'-2+3@example.com", rows[1]
assert rows[2][4].startswith("'=HYPERLINK(\"http://x.example/?a,b\",\"click\")"), rows[2]
assert rows[2][2] == "bob@example.org", rows[2]
assert all(not c or c[0] not in "=+-@\t\r" for r in rows for c in r), rows
EOF

# --raw: the values as they came (for programs), still RFC 4180.
"$BIN" log --raw "$TMP/maillog" >"$TMP/raw.csv"; rc=$?
check "csv --raw: exit 0 (got $rc)" $rc
cells=$(sed -n 2p "$TMP/raw.csv" | tr -d '\r')
[[ $cells == "2024-06-03 10:00:02,-2+3@example.com,$RCPT,Bounce,@SUM(1+1)*cmd|' /C calc'!A0 (in reply to RCPT TO command)" ]]
check "csv --raw: cells as they came (got: $cells)" $?
python3 - "$TMP/raw.csv" "$RCPT" <<'EOF'; check "csv --raw: read back, the recipient cell is the address itself" $?
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[1][2] == sys.argv[2], rows[1]
assert rows[2][4].startswith("=HYPERLINK(\"http://x.example/?a,b\",\"click\")"), rows[2]
EOF
for args in "--raw --format json" "--raw --format xlsx -o $TMP/x.xlsx"; do
  # shellcheck disable=SC2086
  "$BIN" log $args "$TMP/maillog" >/dev/null 2>"$TMP/usage.err"; rc=$?
  [ $rc -eq 2 ] && grep -q -- "--raw applies to csv" "$TMP/usage.err"
  check "usage error '$args' exits 2 naming --raw (got $rc: $(head -1 "$TMP/usage.err"))" $?
done

# XLSX: the same values are string cells (inline or shared strings), and no cell has a formula.
"$BIN" log --format xlsx --wide -o "$TMP/out.xlsx" "$TMP/maillog"; rc=$?
check "xlsx: exit 0 (got $rc)" $rc
python3 - "$TMP/out.xlsx" "$RCPT" <<'EOF'; check "xlsx: formula-like values are string cells, no <f> in the sheet" $?
import sys, zipfile
import xml.etree.ElementTree as ET
NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
z = zipfile.ZipFile(sys.argv[1])
sheet = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
shared = []
if "xl/sharedStrings.xml" in z.namelist():
    for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(NS + "si"):
        shared.append("".join(t.text or "" for t in si.iter(NS + "t")))
assert not list(sheet.iter(NS + "f")), "a formula element in the sheet"
strings = {}
for c in sheet.iter(NS + "c"):
    kind = c.get("t")
    if kind == "inlineStr":
        strings[c.get("r")] = "".join(t.text or "" for t in c.iter(NS + "t"))
    elif kind == "s":
        strings[c.get("r")] = shared[int(c.find(NS + "v").text)]
    elif kind == "str":
        raise SystemExit("cell %s is a formula result (t=str)" % c.get("r"))
want = {"B2": "-2+3@example.com", "C2": sys.argv[2], "E2": "@SUM(1+1)*cmd|' /C calc'!A0 (in reply to RCPT TO command)"}
for ref, text in want.items():
    assert strings.get(ref) == text, (ref, strings.get(ref), text)
assert strings.get("E3", "").startswith('=HYPERLINK("http://x.example/?a,b","click")'), strings.get("E3")
EOF

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
