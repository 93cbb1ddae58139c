#!/usr/bin/env bash
# The main job, on this machine alone (loopback only, nothing from outside):
#   1. preflight-classify reply: real-world downstream replies -> status, bounce type, category,
#      the action to take; preflight-milter --test-message on an unaligned and an
#      unsubscribe-less campaign (refused, with their fixes)
#   2. (root) a sandboxed relay: our own DNS for test zones, a throwaway Postfix with
#      preflight-milter in smtpd_milters and preflight-classify serve as its delivery status
#      filter, relaying to a scripted next hop. Mail that passes and mail that fails each check,
#      each with the reply the sender sees; the status filter keeping a "mailbox full" in the
#      queue and bouncing a 4xx "user unknown" at once
#   3. (root) that relay's log exported per recipient, as CSV and XLSX
#   4. preflight-classify dsn: sample bounce messages classified
#   5. (root) the suppression list: a 550 5.1.1 read back from that relay's log by
#      preflight-classify log --suppress, and the next message to it refused at RCPT TO
# Everything it starts is stopped at the end (by PID); outputs are left in build/demo/.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash contrib/install-deps.sh >/dev/null || { echo "demo: contrib/install-deps.sh failed" >&2; exit 1; }
cmake -S . -B build >/dev/null && cmake --build build -j "$(nproc)" >/dev/null ||
  { echo "demo: build failed" >&2; exit 1; }
BIN=$here/build
OUT=$here/build/demo
rm -rf "$OUT" && mkdir -p "$OUT"
T0=$EPOCHREALTIME

title() { printf '\n== %s\n' "$*"; }

title "1. preflight-classify reply --format text < tests/data/sample-replies.txt"
# Exit 1 only means some line could not be classified; the table is still the point.
"$BIN/preflight-classify" reply --format text <tests/data/sample-replies.txt || true
echo
echo "one reply as an argument, JSON for scripts:"
"$BIN/preflight-classify" reply --format json "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown"

title "1b. preflight-milter --test-message: two campaigns checked before they are sent"
# The bulk-sender requirements against our own test DNS (tests/integration/zones/
# bulk.zone.in: acme.test publishes DMARC p=reject); no MTA, no root, nothing sent.
demo_campaigns() {
  local d py=/usr/bin/python3 dns_pid rc=0 i
  d=$(mktemp -d /tmp/preflight-demo-campaign.XXXXXX)
  sed -e 's|@ACME_DKIM_TXT@|"v=DKIM1; k=rsa; p="|' tests/integration/zones/bulk.zone.in >"$d/bulk.zone"
  "$py" tests/integration/testdns.py --zone "$d/bulk.zone" --addr 127.0.0.1 --port 0 --port-file "$d/port" \
    --max-seconds 120 --parent-pid $$ >"$d/dns.log" 2>&1 </dev/null &
  dns_pid=$!
  for ((i = 0; i < 100; i++)); do [[ -s $d/port ]] && break; sleep 0.1; done
  if [[ -s $d/port ]]; then
    printf 'Syslog no\nNameservers 127.0.0.1:%s\nEgressAddresses 127.0.0.1\nDmarcMode reject\n' "$(<"$d/port")" >"$d/p.conf"
    printf 'AlignmentMode reject\nUnsubscribeMode reject\nHeaderSanityMode reject\n' >>"$d/p.conf"
    printf 'From: Acme <news@acme.test>\nTo: reader@example.net\nSubject: December offers\nDate: %s\n' \
      "$(date -R)" >"$d/campaign.eml"
    printf 'Message-ID: <dec.1@acme.test>\nList-Id: <news.acme.test>\n\nOffers.\n' >>"$d/campaign.eml"
    echo "campaign.eml sent through an ESP's bounce domain (MAIL FROM bounce@esp.test), not DKIM-signed:"
    "$BIN/preflight-milter" --test-message "$d/campaign.eml" --from bounce@esp.test --rcpt reader@example.net \
      -c "$d/p.conf" | grep -E '^(end of message|result)' | sed 's/^/    /'
    echo "the same campaign from news@acme.test (aligned), still without one-click unsubscribe:"
    "$BIN/preflight-milter" --test-message "$d/campaign.eml" --from news@acme.test --rcpt reader@example.net \
      -c "$d/p.conf" | grep -E '^(end of message|result)' | sed 's/^/    /'
  else
    echo "demo: the test DNS did not start: $(tail -2 "$d/dns.log")"
    rc=1
  fi
  kill -TERM "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  rm -rf "$d"
  return "$rc"
}
demo_campaigns

sample_bounces() {
  title "4. preflight-classify dsn --format text tests/data/dsn/*.eml (hand-made sample bounces)"
  "$BIN/preflight-classify" dsn --format text tests/data/dsn/*.eml || true
}

if [[ $(id -u) -ne 0 ]]; then
  echo
  echo "demo: parts 2 and 3 start a Postfix instance and need root; run 'sudo contrib/demo.sh' for them"
  sample_bounces
  exit 0
fi

# ---- the sandboxed relay ---------------------------------------------------------------------------

. "$here/tests/integration/lib.sh"
IT_DIR=$(mktemp -d /tmp/preflight-demo.XXXXXX)
chmod 755 "$IT_DIR"  # Postfix (user postfix) reaches the unix sockets through it
MILTER_PID='' SERVE_PID='' DOWN_PID=''
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  pf_stop
  stop_pids 50 "$MILTER_PID" preflight-milter "$SERVE_PID" preflight-classify "$DOWN_PID" scripted_smtp.py \
    "${DNS_PID:-}" testdns.py
  watchdog_stop
  rm -rf "$IT_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
watchdog_start 600
die() { echo "demo: $*" >&2; exit 1; }

title "2. a sandboxed relay on 127.0.0.1: DNS, Postfix + preflight-milter + preflight-classify serve"
# The test zones of the integration test; this demo does not use the DKIM keys in them.
sed -e 's|@PF1_DKIM_TXT@|"v=DKIM1; p="|' -e 's|@SEL_DKIM_TXT@|"v=DKIM1; p="|' \
  tests/integration/zones/test.zone.in >"$IT_DIR/test.zone"
dns_start "$here/tests/integration/testdns.py" "$IT_DIR/test.zone" || die "the test DNS did not start"

mkdir -p "$IT_DIR/milter"
cat >"$IT_DIR/milter/preflight.conf" <<EOF
# the milter as README deploys it: unix socket handed to group postfix, then no root
Socket unix:$IT_DIR/milter/milter.sock
UserID postfix
Syslog no
Nameservers 127.0.0.1:$DNS_PORT
DnsTimeout 2s
EgressAddresses 127.0.0.1
MaxRecipients 50
MaxMessageSize 20M
AuthPolicy spf-or-dkim
# the suppression list (section 5): filled from Postfix's log, read at RCPT TO
SuppressionMode reject
SuppressionStore sqlite:$IT_DIR/suppression/suppression.db
EOF
mkdir -p "$IT_DIR/suppression" && chown postfix "$IT_DIR/suppression"
"$BIN/preflight-milter" -n -c "$IT_DIR/milter/preflight.conf" || die "the milter conf does not check"
timeout 600 "$BIN/preflight-milter" -f -c "$IT_DIR/milter/preflight.conf" 2>"$IT_DIR/milter.log" </dev/null &
MILTER_PID=$!
track_pid "$MILTER_PID" preflight-milter
wait_for 100 test -S "$IT_DIR/milter/milter.sock" || die "the milter did not start: $(tail -2 "$IT_DIR/milter.log")"

"$BIN/preflight-classify" serve --listen "unix:$IT_DIR/status.sock" --user postfix >"$IT_DIR/serve.log" 2>&1 </dev/null &
SERVE_PID=$!
track_pid "$SERVE_PID" preflight-classify
wait_for 100 test -S "$IT_DIR/status.sock" || die "serve did not start: $(tail -2 "$IT_DIR/serve.log")"

free_port DOWN_PORT && free_port SMTPD_PORT || die "no free port"
"$IT_PY" tests/integration/scripted_smtp.py --port "$DOWN_PORT" --dir "$IT_DIR/downstream" \
  --max-seconds 600 --parent-pid $$ \
  --reply "full=552 5.2.2 <full@dest.example>: Mailbox full, try again later" \
  --reply "gone=450 4.1.1 <gone@dest.example>: Recipient address rejected: User unknown in local recipient table" \
  --reply "dead=550 5.1.1 <dead@dest.example>: Recipient address rejected: User unknown" \
  >"$IT_DIR/downstream.log" 2>&1 </dev/null &
DOWN_PID=$!
track_pid "$DOWN_PID" scripted_smtp.py
wait_for 100 file_nonempty "$IT_DIR/downstream/port" || die "the next hop did not start"

pf_configure "$DOWN_PORT" "$SMTPD_PORT unix:$IT_DIR/milter/milter.sock"
postconf -c "$PF_ETC" -e "smtp_delivery_status_filter = socketmap:unix:$IT_DIR/status.sock:status" \
  "bounce_queue_lifetime = 1d" "maximal_queue_lifetime = 1d" || die "postconf failed"
pf_start "$SMTPD_PORT" 2>"$IT_DIR/pf.err" || die "Postfix did not start: $(tr '\n' ' ' <"$IT_DIR/pf.err")"
echo "DNS 127.0.0.1:$DNS_PORT, Postfix 127.0.0.1:$SMTPD_PORT, milter unix:$IT_DIR/milter/milter.sock,"
echo "status filter unix:$IT_DIR/status.sock, next hop 127.0.0.1:$DOWN_PORT"

mkdir -p "$IT_DIR/out"
# outcome NAME WHAT: the first refusal the client saw, or the queue id it got.
outcome() {
  local tr=$IT_DIR/out/$1.tr first
  first=$(awk -F'\t' '$1 == "ERROR" || $2 ~ /^[45]/ { print $1 ": " $2; exit }' "$tr")
  if [[ -z $first ]]; then
    first="accepted: $(reply_at "$1" EOD)"
  fi
  printf '%-52s %s\n' "$2" "$first"
}
R=rcpt@dest.example
echo
printf '%-52s %s\n' "message" "what the sending client saw"
send good "$SMTPD_PORT" --from user@good.test --to "$R"
outcome good "user@good.test (MX, SPF passes for the relay)"
send nomx "$SMTPD_PORT" --from user@nomx.test --to "$R"
outcome nomx "user@nomx.test (no MX, an A record: implicit MX)"
send nullmx "$SMTPD_PORT" --from user@nullmx.test --to "$R"
outcome nullmx "user@nullmx.test (null MX, RFC 7505)"
send noexist "$SMTPD_PORT" --from user@noexist.test --to "$R"
outcome noexist "user@noexist.test (NXDOMAIN)"
send servfail "$SMTPD_PORT" --from user@servfail.test --to "$R"
outcome servfail "user@servfail.test (its DNS answers SERVFAIL)"
send nospf "$SMTPD_PORT" --from user@nospf.test --to "$R"
outcome nospf "user@nospf.test (no SPF for the relay, not DKIM-signed)"
send rcpt51 "$SMTPD_PORT" --from user@good.test \
  --to "$(for i in $(seq 51); do printf 'r%d@dest.example,' "$i"; done | sed 's/,$//')"
printf '%-52s %s\n' "51 recipients" "RCPT 51: $(reply_at rcpt51 RCPT 51); end of data: $(reply_at rcpt51 EOD)"
raw_mail size "$SMTPD_PORT" "<user@good.test> SIZE=22020096"
outcome size "MAIL FROM with SIZE=22020096 (21 MiB)"
send badrcpt "$SMTPD_PORT" --from user@good.test --to "bob..smith@dest.example"
outcome badrcpt "RCPT TO:<bob..smith@dest.example>"

title "2b. the status filter: what the next hop answered, what Postfix did"
send full "$SMTPD_PORT" --from user@good.test --to full@dest.example
send gone "$SMTPD_PORT" --from user@good.test --to gone@dest.example
status_of() { grep -E "to=<$1@dest\.example>.* status=" "$PF_LOG" | tail -1; }
has_status() { status_of "$1" | grep -q " status="; }
for who in full gone; do
  if wait_for 300 has_status "$who"; then
    line=$(status_of "$who")
    said=$(sed -n 's/.*said: \([0-9][0-9][0-9] [0-9]\.[0-9]*\.[0-9]*\).*/\1/p' <<<"$line")
    dsn=$(sed -n 's/.* dsn=\([0-9.]*\), status=\([a-z]*\).*/dsn=\1 status=\2/p' <<<"$line")
    printf '%-6s next hop said %-10s -> Postfix: %s\n' "$who@" "$said" "$dsn"
  else
    echo "$who@: no delivery attempt logged within 30 s"
  fi
done
echo "full@ stays in the queue and is retried (a full mailbox is temporary):"
postqueue -c "$PF_ETC" -p 2>&1 | grep -B1 -A1 "full@dest.example" | sed 's/^/    /'
echo "gone@ bounced at once with its DSN instead of five days of retries."

title "2c. a tenant's monthly plan runs out: the reply names the limit, the usage and the renewal"
# A tenants file and a quota store, added to the running milter by SIGHUP (the milter runs as
# postfix now, so the store's directory is postfix's).
install -d -o postfix "$IT_DIR/quota"
printf 'good.test  QuotaRecipients=3/month BillingDay=15\n' >"$IT_DIR/milter/tenants.conf"
printf 'QuotaStore sqlite:%s/quota/quota.db\nTenantsFile %s/milter/tenants.conf\n' "$IT_DIR" "$IT_DIR" \
  >>"$IT_DIR/milter/preflight.conf"
"$BIN/preflight-milter" -n -c "$IT_DIR/milter/preflight.conf" || die "the conf with the tenants file does not check"
kill -HUP "$MILTER_PID"
wait_for 100 grep -q "reload: 1 tenants from" "$IT_DIR/milter.log" || die "the milter did not reload the tenants"
echo "tenant good.test: QuotaRecipients=3/month, BillingDay=15 (PlanTimeZone UTC)"
send plan "$SMTPD_PORT" --from user@good.test --to p1@dest.example,p2@dest.example,p3@dest.example,p4@dest.example
printf '%-52s %s\n' "4 recipients, plan of 3/month" "RCPT 4: $(reply_at plan RCPT 4)"
"$BIN/preflight-milter" --quota-status -c "$IT_DIR/milter/preflight.conf" good.test | sed 's/^/    /'

title "3. preflight-classify log: the relay's log, one row per recipient"
pf_wait_sent "$(reply_at good EOD | sed -n "s/.*queued as \([0-9A-Za-z]*\).*/\1/p")" 200 >/dev/null 2>&1 || true
"$BIN/preflight-classify" log --wide "$PF_LOG" >"$OUT/deliveries.csv" || true
"$BIN/preflight-classify" log --wide --format xlsx --output "$OUT/deliveries.xlsx" "$PF_LOG" || true
# The five columns of the seeds (the CSV has more with --wide), long messages cut for the screen.
"$IT_PY" - "$OUT/deliveries.csv" <<'PY'
import csv, re, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
shown = [r for r in rows[1:] if not re.match(r"r\d+@dest\.example$", r[2])]
for r in [rows[0]] + shown:
    msg = r[4] if len(r[4]) <= 64 else r[4][:61] + "..."
    print("%-19s  %-18s  %-18s  %-9s  %s" % (r[0], r[1][:18], r[2][:18], r[3], msg))
print("(%d rows; the 50 r*@dest.example rows of the 51-recipient message are left out above)" % (len(rows) - 1))
PY
echo "written: $OUT/deliveries.csv, $OUT/deliveries.xlsx ($(stat -c %s "$OUT/deliveries.xlsx") bytes)"
cp "$IT_DIR/milter.log" "$OUT/milter.log"
echo "the milter's decisions, one line each: $OUT/milter.log, e.g.:"
grep ' check=' "$OUT/milter.log" | grep -v 'result=accept' | head -3 | sed 's/^/    /'

sample_bounces

title "5. the suppression list: a dead address refused on the second send"
# From nomx.test: good.test's monthly plan (section 2c) is used up.
send dead1 "$SMTPD_PORT" --from user@nomx.test --to "dead@dest.example,$R"
outcome dead1 "first send: dead@dest.example and $R"
wait_for 300 grep -qE "to=<dead@dest\.example>.* status=bounced" "$PF_LOG" || echo "dead@: no bounce logged within 30 s"
echo "the next hop said 550 5.1.1; preflight-classify log --suppress reads Postfix's log:"
"$BIN/preflight-classify" log --suppress --conf "$IT_DIR/milter/preflight.conf" "$PF_LOG" 2>&1 >/dev/null | sed 's/^/    /'
"$BIN/preflight-classify" suppress --conf "$IT_DIR/milter/preflight.conf" list |
  cut -d, -f1-5 | sed 's/^/    /'
send dead2 "$SMTPD_PORT" --from user@nomx.test --to "dead@dest.example,$R"
echo "second send, RCPT TO:<dead@dest.example>:"
echo "    $(reply_at dead2 RCPT 1)"
echo "and RCPT TO:<$R> in the same message: $(reply_at dead2 RCPT 2); end of data: $(reply_at dead2 EOD)"

printf '\ndemo: done in %.0f s; everything it started is stopped.\n' "$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
