#!/usr/bin/env bash
# log_postfix.sh BUILD_DIR - `preflight-classify log` on logs written by a real Postfix.
#
# Starts, all on 127.0.0.1 under one temp dir: downstream.py (aiosmtpd, answering per
# recipient: accept, 452 4.2.2 mailbox full, 550 5.1.1 user unknown, 421 4.7.26
# unauthenticated, "flaky": 452 until told otherwise), a listener that never answers (the
# route for hang.test, with a 2 s smtp_helo_timeout), and a throwaway Postfix (maillog_file +
# postlogd) relaying everything there, with a recipient access map (NOQUEUE reject) and a
# header check (cleanup reject with a queue id). Messages go in by SMTP (python smtplib).
#
# Stage 1, after the first delivery attempts: Sent, Bounce, Deferred and Rejected rows with the
# right category and enhanced code, the bounce notice back to the sender as its own Sent row.
# Stage 2: "flaky" now accepts, maximal_queue_lifetime = 0, the queue is flushed: the flaky
# recipient ends Sent (deferred, then sent) and every other deferred one Expired
# ("status=expired, returned to sender"). The same log as CSV, JSON and XLSX must agree (the
# XLSX read back with openpyxl: header, autofilter, widths, real dates), also when read gzipped
# and with the timestamps rewritten to the other format (syslog <-> RFC 3339).
#
# Output: "ok - NAME" / "not ok - NAME: ..." per check, then "N passed, M failed". Exit 0 all
# passed, 1 otherwise, 77 (skip) without root, Postfix, aiosmtpd or openpyxl. The temp dir is
# removed after a passing run, kept (path printed) otherwise or with IT_KEEP=1.
# Bounds: every wait bounded (lib.sh), daemons with a life limit, only PIDs started here
# stopped, a watchdog for a killed shell. About 15 s.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

BUILD_DIR=${1:-}
[[ -n $BUILD_DIR ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BIN=$(realpath -m "$BUILD_DIR/preflight-classify")

it_requires --root "starts a Postfix instance (postfix start)" --py aiosmtpd --py openpyxl \
  /usr/sbin/postfix /usr/sbin/postconf /usr/sbin/postqueue timeout script gzip

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $1"; }

it_begin log "$BIN"
DOWN_PID=''
# shellcheck disable=SC2034 # set by pf_start, read by pf_stop (lib.sh)
PF_PID=''

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  pf_stop
  stop_pids 50 "$DOWN_PID" downstream.py
  it_end "$rc" "maillog, downstream.log, out/"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
watchdog_start 300

die() {
  not_ok "$1"
  echo "$PASS passed, $FAIL failed"
  exit 1
}

if ! { free_port SMTPD_PORT && free_port DOWN_PORT && free_port HANG_PORT; }; then die "setup: no free ports"; fi

# ---- downstream -----------------------------------------------------------------------------
"$IT_PY" "$HERE/downstream.py" --port "$DOWN_PORT" --hang-port "$HANG_PORT" \
  --flag-file "$IT_DIR/flaky-accepts" --ready-file "$IT_DIR/down.ready" \
  --log-file "$IT_DIR/downstream.log" --max-seconds 280 --parent-pid $$ \
  >"$IT_DIR/downstream.err" 2>&1 </dev/null &
DOWN_PID=$!
track_pid "$DOWN_PID" downstream.py
{ wait_for 100 file_nonempty "$IT_DIR/down.ready" && wait_for 50 tcp_open 127.0.0.1 "$DOWN_PORT"; } ||
  die "setup: downstream.py did not start: $(tail -3 "$IT_DIR/downstream.err")"

# ---- Postfix --------------------------------------------------------------------------------
pf_configure "$DOWN_PORT" "$SMTPD_PORT none"
cat >"$PF_ETC/transport" <<EOF
hang.test smtp:[127.0.0.1]:$HANG_PORT
EOF
cat >"$PF_ETC/rcpt_access" <<'EOF'
blocked.test REJECT 5.7.1 blocked by site policy
EOF
cat >"$PF_ETC/header_checks" <<'EOF'
/^Subject: reject me/ REJECT 5.7.1 subject refused by site policy
EOF
cat >>"$PF_ETC/main.cf" <<EOF
transport_maps = texthash:$PF_ETC/transport
smtpd_recipient_restrictions = check_recipient_access texthash:$PF_ETC/rcpt_access, permit_mynetworks, reject
header_checks = regexp:$PF_ETC/header_checks
smtp_connect_timeout = 2s
smtp_helo_timeout = 2s
EOF
pf_start "$SMTPD_PORT" 2>"$IT_DIR/setup.err" || die "setup: postfix: $(cat "$IT_DIR/setup.err")"

# send SUBJECT RCPT...: one SMTP transaction; prints the queue id ("-" when refused).
send() {
  "$IT_PY" - "$SMTPD_PORT" "$@" <<'PY'
import smtplib, sys
port, subject, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("client.src.test")
s.mail("sender@src.test")
ok = [r for r in rcpts if s.rcpt(r)[0] == 250]
qid = "-"
if ok:
    code, resp = s.data(("From: sender@src.test\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s.%s@src.test>\r\n\r\nbody\r\n"
                         % (", ".join(ok), subject, subject.replace(" ", "-"), rcpts[0])).encode())
    if code == 250:
        qid = resp.decode().rsplit(" ", 1)[-1]
s.quit()
print(qid)
PY
}

declare -a QIDS=()
for spec in "ok ok1@down.test" "unknown unknown1@down.test" "full full1@down.test" \
  "unauth unauth1@down.test" "hang nobody@hang.test" "flaky flaky1@down.test" \
  "multi ok2@down.test unknown2@down.test full2@down.test" "blocked blocked1@blocked.test"; do
  # shellcheck disable=SC2086 # the spec is words: subject then recipients
  q=$(send $spec)
  [[ $q != - ]] && QIDS+=("$q")
done
q=$(send "reject me" ok3@down.test)
[[ $q == - ]] || not_ok "header check: expected the message refused, got queue id $q"
[[ ${#QIDS[@]} -eq 7 ]] || die "setup: expected 7 queued messages, got ${#QIDS[@]}: ${QIDS[*]}"

# Every queued message has had its first delivery attempt for every recipient (hang.test takes
# the 2 s greeting timeout); the multi-recipient message is the last one queued.
attempted() {
  local q
  for q in "${QIDS[@]}"; do grep -q " $q: to=<" "$PF_LOG" || return 1; done
  [[ $(grep -c " ${QIDS[6]}: to=<" "$PF_LOG") -ge 3 ]]
}
wait_for 300 attempted || die "first delivery attempts not all logged within 30 s"
# the bounce notices for unknown1 and unknown2 reach the downstream too
notices_sent() { [[ $(grep -c 'to=<sender@src.test>.*status=sent' "$PF_LOG") -ge 2 ]]; }
wait_for 100 notices_sent || die "bounce notices to the sender not delivered within 10 s"

# ---- checks ---------------------------------------------------------------------------------
# check_rows NAME FILE.json EXPECT...: EXPECT is "recipient status [category [enhanced]]";
# every recipient listed must have exactly one row with these values.
check_rows() {
  local name=$1 file=$2 out
  shift 2
  if out=$("$IT_PY" - "$file" "$@" 2>&1 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
bad = []
for spec in sys.argv[2:]:
    want = spec.split()
    got = [r for r in rows if r["recipient"] == want[0]]
    if len(got) != 1:
        bad.append("%s: %d rows" % (want[0], len(got)))
        continue
    r = got[0]
    have = [r["recipient"], r["status"], r["category"], r["enhanced_code"] or "-"][:len(want)]
    if have != want:
        bad.append("%s: expected %s, got %s (%s)" % (want[0], want, have, r["message"]))
if bad:
    print("; ".join(bad))
    sys.exit(1)
PY
  ); then ok "$name"; else not_ok "$name: $out"; fi
}

run_log() {  # run_log NAME ARGS...: the tool must exit 0
  local name=$1 rc
  shift
  "$BIN" log "$@" 2>"$IT_DIR/out/$name.err"
  rc=$?
  [[ $rc -eq 0 ]] || not_ok "$name: exit $rc: $(head -3 "$IT_DIR/out/$name.err")"
}

cp "$PF_LOG" "$IT_DIR/maillog.stage1"
run_log stage1 --format json --wide --output "$IT_DIR/out/stage1.json" "$IT_DIR/maillog.stage1"
check_rows "stage 1: first attempts" "$IT_DIR/out/stage1.json" \
  "ok1@down.test Sent success 2.0.0" \
  "unknown1@down.test Bounce bad-mailbox 5.1.1" \
  "full1@down.test Deferred quota-issues 4.2.2" \
  "unauth1@down.test Deferred" \
  "nobody@hang.test Deferred" \
  "flaky1@down.test Deferred quota-issues 4.2.2" \
  "ok2@down.test Sent" "unknown2@down.test Bounce bad-mailbox 5.1.1" "full2@down.test Deferred quota-issues" \
  "blocked1@blocked.test Rejected" "ok3@down.test Rejected"
if "$IT_PY" - "$IT_DIR/out/stage1.json" >"$IT_DIR/out/details.err" 2>&1 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
notices = [r for r in rows if r["recipient"] == "sender@src.test"]
blocked = [r for r in rows if r["recipient"] == "blocked1@blocked.test"][0]
hdr = [r for r in rows if r["recipient"] == "ok3@down.test"][0]
ok1 = [r for r in rows if r["recipient"] == "ok1@down.test"][0]
unauth = [r for r in rows if r["recipient"] == "unauth1@down.test"][0]
assert len(notices) == 2 and all(r["status"] == "Sent" and r["sender"] == "" for r in notices), notices
assert blocked["queue_id"] == "" and "blocked by site policy" in blocked["message"], blocked
assert blocked["sender"] == "sender@src.test", blocked
assert hdr["queue_id"] != "" and "subject refused" in hdr["message"], hdr
assert ok1["sender"] == "sender@src.test" and ok1["message"].startswith("250 2.0.0 Ok: queued as DOWN"), ok1
assert ok1["relay"].startswith("127.0.0.1[127.0.0.1]:") and ok1["delay"] is not None, ok1
assert "4.7.26" in unauth["message"], unauth
PY
then ok "stage 1: senders, queue ids, reject texts, bounce notices"; else not_ok "stage 1: row details: $(tail -2 "$IT_DIR/out/details.err")"; fi

# ---- stage 2: flaky accepts now; everything still deferred expires on the next attempt ------
touch "$IT_DIR/flaky-accepts"
postconf -c "$PF_ETC" -e "maximal_queue_lifetime = 0" "bounce_queue_lifetime = 0" >/dev/null
pf reload >/dev/null 2>&1
timeout 20 postqueue -c "$PF_ETC" -f >/dev/null 2>&1
queue_drained() { [[ $(find "$PF_QUEUE"/{incoming,active,deferred} -type f 2>/dev/null | wc -l) -eq 0 ]]; }
wait_for 300 queue_drained || not_ok "stage 2: queue not empty after 30 s"
grep -q "status=expired, returned to sender" "$PF_LOG" || not_ok "stage 2: Postfix logged no expiry"

run_log stage2 --format json --wide --output "$IT_DIR/out/stage2.json" "$PF_LOG"
check_rows "stage 2: deferred then sent; the rest expired" "$IT_DIR/out/stage2.json" \
  "ok1@down.test Sent" "unknown1@down.test Bounce" \
  "flaky1@down.test Sent success 2.0.0" \
  "full1@down.test Expired message-expired 4.2.2" \
  "unauth1@down.test Expired message-expired" \
  "nobody@hang.test Expired message-expired" \
  "full2@down.test Expired message-expired" \
  "blocked1@blocked.test Rejected"

# ---- formats agree: CSV, JSON, XLSX, gzip, syslog timestamps --------------------------------
run_log csv --wide --output "$IT_DIR/out/rows.csv" "$PF_LOG"
run_log xlsx --format xlsx --wide --output "$IT_DIR/out/rows.xlsx" "$PF_LOG"
"$BIN" log --format xlsx --wide "$PF_LOG" >"$IT_DIR/out/stdout.xlsx" 2>/dev/null
if "$IT_PY" - "$IT_DIR/out/rows.csv" "$IT_DIR/out/rows.xlsx" "$IT_DIR/out/stage2.json" \
  "$IT_DIR/out/stdout.xlsx" >"$IT_DIR/out/xlsx.err" 2>&1 <<'PY'
import csv, datetime, json, sys
import openpyxl
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
raw = open(sys.argv[1], "rb").read()
assert raw.count(b"\r\n") == len(rows), "CSV lines must end in CRLF"
for path in (sys.argv[2], sys.argv[4]):
    wb = openpyxl.load_workbook(path)
    ws = wb["Deliveries"]
    assert ws.auto_filter.ref == "A1:K%d" % len(rows), ws.auto_filter.ref
    assert ws.freeze_panes == "A2", ws.freeze_panes
    assert ws.column_dimensions["A"].width >= 19 and ws.column_dimensions["E"].width >= 60
    cells = [[c.value for c in r] for r in ws.iter_rows()]
    assert len(cells) == len(rows), (len(cells), len(rows))
    assert [str(v) for v in cells[0]] == rows[0] and ws["A1"].font.b
    assert ws["A2"].number_format == "yyyy-mm-dd hh:mm:ss", ws["A2"].number_format
    for got, want in zip(cells[1:], rows[1:]):
        assert isinstance(got[0], datetime.datetime), got[0]
        g = [got[0].strftime("%Y-%m-%d %H:%M:%S")] + ["" if v is None else v for v in got[1:]]
        if isinstance(g[10], (int, float)):
            assert abs(float(g[10]) - float(want[10])) < 1e-9, (g, want)
            g[10] = want[10]
        assert [str(v) for v in g] == want, (g, want)
js = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
keys = ["date", "sender", "recipient", "status", "message", "queue_id", "category", "bounce_type",
        "enhanced_code", "relay", "delay"]
assert len(js) == len(rows) - 1
for j, c in zip(js, rows[1:]):
    vals = ["" if j[k] is None else j[k] for k in keys]
    if vals[10] != "":
        assert abs(float(vals[10]) - float(c[10])) < 1e-9
        vals[10] = c[10]
    assert [str(v) for v in vals] == c, (vals, c)
PY
then ok "XLSX (file and stdout) and JSON read back equal the CSV"; else not_ok "formats disagree: $(tail -3 "$IT_DIR/out/xlsx.err")"; fi

gzip -c "$PF_LOG" >"$IT_DIR/maillog.gz"
run_log gz --wide --output "$IT_DIR/out/rows-gz.csv" "$IT_DIR/maillog.gz"
if cmp -s "$IT_DIR/out/rows.csv" "$IT_DIR/out/rows-gz.csv"; then ok "gzip input gives the same rows"
else not_ok "gzip input gives other rows"; fi

# The same log with the other timestamp format (Postfix 3.7's maillog_file writes syslog-style
# "Nov 25 18:40:01"; rsyslog's RFC 3339 is "2026-11-25T18:40:01.000000+00:00"): the same rows.
"$IT_PY" - "$PF_LOG" "$IT_DIR/maillog.other" <<'PY'
import datetime, os, re, sys
months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
year = datetime.datetime.fromtimestamp(os.path.getmtime(sys.argv[1])).year
out = open(sys.argv[2], "w", encoding="utf-8", errors="surrogateescape")
for line in open(sys.argv[1], encoding="utf-8", errors="surrogateescape"):
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d:\d\d:\d\d)\S* (.*)", line, re.S)
    if m:  # RFC 3339 -> syslog
        line = "%s %2d %s %s" % (months[int(m.group(2)) - 1], int(m.group(3)), m.group(4), m.group(5))
    else:  # syslog -> RFC 3339
        m = re.match(r"(\w{3}) +(\d+) (\d\d:\d\d:\d\d)(?:\.\d+)? (.*)", line, re.S)
        line = "%d-%02d-%02dT%s.000000+00:00 %s" % (year, months.index(m.group(1)) + 1, int(m.group(2)),
                                                     m.group(3), m.group(4))
    out.write(line)
PY
touch -r "$PF_LOG" "$IT_DIR/maillog.other"
run_log other --wide --output "$IT_DIR/out/rows-other.csv" "$IT_DIR/maillog.other"
if cmp -s "$IT_DIR/out/rows.csv" "$IT_DIR/out/rows-other.csv"; then ok "the other timestamp format gives the same rows"
else not_ok "the other timestamp format gives other rows: $(diff "$IT_DIR/out/rows.csv" "$IT_DIR/out/rows-other.csv" | head -4)"; fi

echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
