#!/usr/bin/env bash
# preflight-milter --test-message: a campaign's message checked without sending it, against the
# loopback test DNS (tests/integration/testdns.py serving zones/bulk.zone.in on a free port).
# Usage errors exit 2; a message the milter would accept exits 0, one it would refuse exits 1,
# each verdict printed with its reply (text, or JSON with --format json); tag and dry-run as the
# milter applies them. No root needed; only the PIDs started here are stopped; waits are bounded.
set -u
BIN=${1:?usage: test_test_message_cli.sh PATH/TO/preflight-milter SOURCE_DIR}
SRC=${2:?usage: test_test_message_cli.sh PATH/TO/preflight-milter SOURCE_DIR}
PY=/usr/bin/python3
"$PY" -c 'import dnslib' 2>/dev/null || { echo "skip: python3-dnslib not installed (contrib/install-deps.sh)"; exit 77; }
TMP=$(mktemp -d)
DNS_PID=''
cleanup() {
  [[ -n $DNS_PID ]] && kill -TERM "$DNS_PID" 2>/dev/null && wait "$DNS_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fails=0 passes=0
check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi; }
wait_for() { local n=$1 i; shift; for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }

# The zone without a signing key (nothing here is signed).
sed -e 's|@ACME_DKIM_TXT@|"v=DKIM1; k=rsa; p="|' "$SRC/tests/integration/zones/bulk.zone.in" >"$TMP/bulk.zone"
"$PY" "$SRC/tests/integration/testdns.py" --zone "$TMP/bulk.zone" --addr 127.0.0.1 --port 0 \
  --port-file "$TMP/port" --max-seconds 300 --parent-pid $$ >"$TMP/dns.log" 2>&1 </dev/null &
DNS_PID=$!
wait_for 100 test -s "$TMP/port" || { echo "FAIL: testdns.py did not start: $(tail -3 "$TMP/dns.log")"; exit 1; }
PORT=$(<"$TMP/port")

conf() {  # conf FILE [EXTRA-LINE]...
  local f=$1
  shift
  printf 'Syslog no\nNameservers 127.0.0.1:%s\nDnsTimeout 2s\nEgressAddresses 127.0.0.1\n' "$PORT" >"$f"
  printf 'DmarcMode reject\nAlignmentMode reject\nUnsubscribeMode reject\nHeaderSanityMode reject\n' >>"$f"
  for l in "$@"; do printf '%s\n' "$l" >>"$f"; done
}
conf "$TMP/p.conf"
conf "$TMP/tag.conf" "Domain acme.test UnsubscribeMode tag"
conf "$TMP/dry.conf" "Mode dry-run"

cat >"$TMP/good.eml" <<'EOF'
From: Acme News <news@acme.test>
To: reader@example.test
Subject: December offers
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <campaign.1@acme.test>

Hello.
EOF
# The same campaign as a list mailing, without one-click unsubscribe.
{ sed -n '1,5p' "$TMP/good.eml"; printf 'List-Id: <news.acme.test>\n\nHello.\n'; } >"$TMP/campaign.eml"

run() {  # run ARGS...: status in rc, stdout in out, stderr in err
  "$BIN" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  rc=$?
  out=$(<"$TMP/out") err=$(<"$TMP/err")
}

# ---- usage ---------------------------------------------------------------------------------------
run --test-message "$TMP/good.eml" -c "$TMP/p.conf"
[[ $rc -eq 2 && $err == *"--test-message FILE and --from ADDR go together"* ]]; check "--test-message without --from: exit 2 ($rc: $err)" $?
run --from news@acme.test -c "$TMP/p.conf"
[[ $rc -eq 2 ]]; check "--from without --test-message: exit 2 ($rc)" $?
run --test-message "$TMP/good.eml" --from news@acme.test --format xml -c "$TMP/p.conf"
[[ $rc -eq 2 && $err == *"--format xml: not text or json"* ]]; check "--format xml: exit 2 ($rc: $err)" $?
run --test-message "$TMP/good.eml" --from
[[ $rc -eq 2 && $err == *"--from needs a value"* ]]; check "--from without a value: exit 2 ($rc: $err)" $?
run --test-message "$TMP/none.eml" --from news@acme.test -c "$TMP/p.conf"
[[ $rc -eq 2 && $err == *"cannot read $TMP/none.eml"* ]]; check "unreadable message: exit 2 naming it ($rc: $err)" $?
printf 'DmarcMode maybe\n' >"$TMP/bad.conf"
run --test-message "$TMP/good.eml" --from news@acme.test -c "$TMP/bad.conf"
[[ $rc -eq 2 && $err == *"bad.conf:1: DmarcMode: \"maybe\" is not one of reject, tempfail, tag, off"* ]]; check "broken conf: exit 2, FILE:LINE ($rc: $err)" $?

# ---- verdicts ------------------------------------------------------------------------------------
run --test-message "$TMP/good.eml" --from news@acme.test --rcpt reader@example.test -c "$TMP/p.conf"
[[ $rc -eq 0 && $out == *"  check dmarc: accept"* && $out == *"  check alignment: accept"* && $out == *"result: accepted" ]]
check "a campaign meeting the requirements: exit 0, every check listed ($rc: $out $err)" $?

run --test-message "$TMP/campaign.eml" --from news@acme.test --rcpt reader@example.test -c "$TMP/p.conf"
[[ $rc -eq 1 && $out == *"end of message: reject: 550 5.7.1 Bulk mail (it has a List-Id header) must offer one-click unsubscribe"* &&
  $out == *"  check unsubscribe: reject: 550 5.7.1 "*"add List-Unsubscribe: <https://...> with an https URI"* &&
  $out == *"result: refused" ]]
check "an unsubscribe-less campaign: exit 1, the reply names the fix ($rc: $out)" $?

run --test-message "$TMP/good.eml" --from bounce@esp.test --rcpt reader@example.test -c "$TMP/p.conf" --format json
"$PY" -c 'import json, sys
d = json.loads(sys.argv[1])
assert d["result"] == "refused", d
eom = d["stages"][-1]
assert eom["stage"] == "end of message" and eom["action"] == "reject", eom
a = [c for c in eom["checks"] if c["check"] == "alignment"][0]
assert a["reply"].startswith("550 5.7.26 The From domain acme.test is aligned"), a
assert "esp.test" in a["reply"], a' "$out" 2>"$TMP/py.err" && [[ $rc -eq 1 ]]
check "--format json: one valid object, the unaligned verdict with its reply, exit 1 ($rc: $(<"$TMP/py.err"))" $?

run --test-message "$TMP/campaign.eml" --from news@acme.test -c "$TMP/tag.conf"
[[ $rc -eq 0 && $out == *"header X-Preflight-Unsubscribe: 550 5.7.1 Bulk mail"* ]]
check "Domain acme.test UnsubscribeMode tag: exit 0, the header the milter would add ($rc: $out)" $?

run --test-message "$TMP/campaign.eml" --from news@acme.test -c "$TMP/dry.conf"
[[ $rc -eq 0 && $out == *"check unsubscribe: dry-run (would reject): 550 5.7.1"* ]]
check "Mode dry-run: exit 0, what would be refused ($rc: $out)" $?

run --test-message "$TMP/good.eml" --from a@nodmarc.test --rcpt 'bad recipient' -c "$TMP/p.conf"
[[ $rc -eq 1 && $out == *"RCPT TO <bad recipient>: reject: 501 5.1.3"* ]]
check "a refused recipient: exit 1, its reply ($rc: $out)" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
