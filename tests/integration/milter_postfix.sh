#!/usr/bin/env bash
# milter_postfix.sh BUILD_DIR - preflight-milter behind a real Postfix, against a real DNS server.
#
# Starts, all on 127.0.0.1 and all under one temp dir:
#   testdns.py     serving zones/test.zone.in (DKIM keys generated for this run), counting queries
#   preflight-milter (BUILD_DIR/preflight-milter -f), twice: on an inet socket and on a unix socket
#   smtp-sink      the next hop; one file per delivered transaction
#   Postfix        a throwaway instance: one smtpd per milter, milter_default_action = tempfail,
#                  relayhost = the sink
# then drives Postfix with swaks (and a few raw SMTP dialogs where swaks cannot: SIZE=, the DNS timeouts)
# and asserts the exact replies the client saw: code, enhanced code and the words of the reply
# table (checks/replies/reply_table.cpp) that matter. Every accepted message must reach the sink; at the
# end the sink must hold exactly those messages. Each scenario below is one behaviour an operator relies on.
#
# Output: one line per scenario, "ok - NAME" or "not ok - NAME: expected ..., got ...", then
# "N passed, M failed". Exit 0 when all pass, 1 otherwise, 77 (skip) when a required system
# component is missing (root, postfix, swaks, python3-dnslib, openssl). The temp dir is removed
# after a passing run and kept (its path printed) after a failing one; IT_KEEP=1 always keeps it,
# IT_HOLD=SECONDS keeps the whole rig up that long before the scenarios (for manual sessions).
# It holds: milter.log / milter-unix.log (the milters' stderr), maillog (Postfix), sink/ (one
# file per delivered transaction), dns/ (testdns stats and query log), out/NAME.swaks (each
# client dialog) and out/NAME.tr (the replies per stage that the assertions read).
#
# Bounds: every wait is bounded (see lib.sh), every daemon has a life limit (15 min), only the
# PIDs recorded here are stopped (trap on EXIT), and a watchdog stops the lot if this shell dies
# without its trap. Runs in about 15 s on two cores (25 s with both cores busy elsewhere).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

BUILD_DIR=${1:-}
[[ -n $BUILD_DIR ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
MILTER=$(realpath -m "$BUILD_DIR/preflight-milter")

it_requires --root "starts a Postfix instance (postfix start) and smtp-sink -u nobody" --py dnslib \
  /usr/sbin/postfix /usr/sbin/postconf /usr/sbin/smtp-sink swaks openssl timeout script

START=$EPOCHREALTIME
it_begin milter "$MILTER"
mkdir -p "$IT_DIR/keys" "$IT_DIR/msg"
MILTER_PID='' MILTER2_PID='' SINK_PID='' DNS_PID='' PF_PID=''

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  pf_stop
  stop_pids 50 "$MILTER_PID" preflight-milter "$MILTER2_PID" preflight-milter \
    "$SINK_PID" smtp-sink "$DNS_PID" testdns.py
  it_end "$rc" "milter.log, maillog, sink/, out/, dns/"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
watchdog_start 900

# Scenario bookkeeping (sc/bad/sc_end), the SMTP clients (send, raw_mail) and the transcript
# assertions (expect_reply, expect_refusal) are in lib.sh, shared with the Sendmail test.
SC='' ERRS=''

# ---- assertions on Postfix's side ----------------------------------------------------------------

# queue_id NAME: Postfix's queue id from the end-of-data reply.
queue_id() { reply_at "$1" EOD | sed -n 's/^250 .*queued as \([0-9A-Za-z]*\).*/\1/p'; }

# expect_delivered NAME [RCPTS]: the message was queued, Postfix delivered it to the sink
# within 20 s, and the sink holds it with RCPTS recipients (default 1). Sets DELIVERED (the
# sink file) and records the queue id in EXPECTED_QIDS.
EXPECTED_QIDS=" "
DELIVERED=
expect_delivered() {
  local name=$1 want=${2:-1} qid files got st
  DELIVERED=
  qid=$(queue_id "$name")
  if [[ -z $qid ]]; then
    got=$(reply_at "$name" EOD)
    if [[ -n $got ]]; then
      bad "expected 250 queued at end of data, got EOD: '$got'"
    else
      bad "expected 250 queued at end of data, got $(what_happened "$name")"
    fi
    return 1
  fi
  EXPECTED_QIDS+="$qid "
  if ! st=$(pf_wait_sent "$qid" 200 2>&1); then
    bad "expected $qid delivered to the sink within 20 s, got ${st:-nothing in the maillog}"
    return 1
  fi
  # Postfix's Received header: "by HOST (Postfix) with ESMTP id QID" then ";" or a line break
  files=$(grep -lE "\(Postfix\) with ESMTP id $qid(;|\$)" "$SINK_DIR"/msg.* 2>/dev/null)
  if [[ -z $files ]]; then
    bad "expected $qid in the sink, got no sink file with it"
    return 1
  fi
  got=$(xargs cat <<<"$files" | grep -c '^X-Rcpt-Args:')
  [[ $got -eq $want ]] || bad "expected $want recipient(s) of $qid at the sink, got $got"
  DELIVERED=$(head -1 <<<"$files")
}

# expect_milter_log FILE REGEX WHAT: a line of the milter's log matches.
expect_milter_log() {
  grep -Eq -- "$2" "$1" || bad "expected a milter log line $3 (/$2/), got none"
}

# ---- fixtures ------------------------------------------------------------------------------------

# DKIM TXT value of a key: "v=DKIM1; k=rsa; p=..." as character-strings of at most 250 bytes.
dkim_txt() {
  local p txt='"v=DKIM1; k=rsa; p="' i
  p=$(openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | base64 -w0) || return 1
  for ((i = 0; i < ${#p}; i += 250)); do txt+=" \"${p:i:250}\""; done
  echo "$txt"
}

make_keys() {
  local k=$IT_DIR/keys
  # pf1: the relay's own signing key (the milter reads the public half); sel: signed.test's.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$k/pf1.pem" 2>/dev/null &&
    openssl pkey -in "$k/pf1.pem" -pubout -out "$k/pf1.pub.pem" &&
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$k/sel.pem" 2>/dev/null
}

make_zone() {
  local pf1 sel
  pf1=$(dkim_txt "$IT_DIR/keys/pf1.pem") && sel=$(dkim_txt "$IT_DIR/keys/sel.pem") || return 1
  # base64 and the quotes never contain '|' or '&'
  sed -e "s|@PF1_DKIM_TXT@|$pf1|" -e "s|@SEL_DKIM_TXT@|$sel|" "$HERE/zones/test.zone.in" \
    >"$IT_DIR/test.zone"
}

# signed_messages: msg/signed.eml (signed by signed.test, selector sel; the signature folded,
# b= value included, as opendkim and the big mailbox providers fold it), msg/signed-oneline.eml
# (the same field unfolded: with relaxed canonicalisation still the same signature) and
# msg/tampered.eml (signed-oneline.eml after a change to the body: the body hash fails).
signed_messages() {
  local m=$IT_DIR/msg
  cat >"$m/plain.eml" <<EOF
From: Signed Sender <user@signed.test>
To: rcpt@example.test
Subject: preflight integration test, DKIM-signed
Date: $(date -R)
Message-ID: <signed.$$@signed.test>
X-Test-Id: signed

This message carries a DKIM signature of signed.test (selector sel)
and no SPF record allows the relay: the signature alone authenticates it.
EOF
  "$IT_PY" "$HERE/dkim_sign.py" --key "$IT_DIR/keys/sel.pem" --domain signed.test --selector sel \
    <"$m/plain.eml" >"$m/signed.eml" || return 1
  awk 'NR == 1 { line = $0; next }
       !done && /^\t/ { sub(/^\t/, " "); line = line $0; next }
       !done { print line; done = 1 }
       { print }' "$m/signed.eml" >"$m/signed-oneline.eml"
  [[ $(head -1 "$m/signed-oneline.eml") == *"; b= "?* ]] || return 1
  sed -e 's/^This message carries/This message carried/' -e 's/^X-Test-Id: signed/X-Test-Id: tampered/' \
    "$m/signed-oneline.eml" >"$m/tampered.eml"
  ! cmp -s "$m/signed-oneline.eml" "$m/tampered.eml"
}

# big_body: msg/big.txt, about 21 MiB of 76-character base64 lines, above MaxMessageSize 20M.
big_body() {
  head -c $((21 * 1024 * 1024 * 57 / 77)) /dev/zero | base64 -w 76 >"$IT_DIR/msg/big.txt"
}

rcpt_list() { local i s=; for ((i = 1; i <= $1; i++)); do s+="${s:+,}r$i@example.test"; done; echo "$s"; }

# write_conf FILE SOCKET: the milter configuration of this test. The unix socket milter runs the
# way the README deploys it: started as root with UserID postfix and the default Umask 007, so
# Postfix can connect only if the milter hands the socket to UserID before dropping root.
write_conf() {
  local run_as='RunAsRoot yes'
  [[ $2 == unix:* ]] && run_as='UserID postfix'
  cat >"$1" <<EOF
# preflight-milter, integration test (generated by tests/integration/milter_postfix.sh)
Socket $2
$run_as
Syslog no
Nameservers 127.0.0.1:$DNS_PORT
DnsTimeout 1s
EgressAddresses 127.0.0.1, ::1
DkimSelectors pf1
DkimPublicKeyFile $IT_DIR/keys/pf1.pub.pem
MaxRecipients 50
MaxMessageSize 20M
AuthPolicy spf-or-dkim
Domain dryrun.test Mode dry-run
Domain tag.test AuthMode tag
Domain poolany.test SpfEgressMatch any
EOF
}

# start_milter CONF LOG VAR: run the milter in the foreground, its PID into VAR (the PID of
# timeout(1), which bounds its life, passes SIGTERM on and returns the milter's exit status).
start_milter() {
  local conf=$1 log=$2 var=$3 pid
  timeout 900 "$MILTER" -f -c "$conf" 2>"$log" </dev/null &
  pid=$!
  track_pid "$pid" preflight-milter
  printf -v "$var" '%s' "$pid"
}

milter_ready() { # PID SOCKET(postfix syntax)
  pid_alive "$1" || return 2
  case $2 in
    inet:*) tcp_open 127.0.0.1 "${2##*:}" ;;
    unix:*) [[ -S ${2#unix:} ]] ;;
  esac
}

wait_milter() { # PID SOCKET LOG
  local i
  for ((i = 0; i < 100; i++)); do
    milter_ready "$1" "$2"
    case $? in
      0) return 0 ;;
      2) echo "preflight-milter exited: $(tail -3 "$3")" >&2; return 1 ;;
    esac
    sleep 0.1
  done
  echo "preflight-milter not listening on $2 within 10 s: $(tail -3 "$3")" >&2
  return 1
}

# ---- setup ---------------------------------------------------------------------------------------

setup_or_die "DKIM keys (openssl)" make_keys
setup_or_die "zone file" make_zone
setup_or_die "signed messages (dkim_sign.py)" signed_messages
setup_or_die "21 MiB body" big_body
# delay.test (built into testdns.py) answers after 1.5 s: after DnsTimeout 1s, before the
# default 5 s would give up (see the delay.test scenario).
setup_or_die "testdns.py" dns_start "$HERE/testdns.py" "$IT_DIR/test.zone" --delay-ms 1500

MILTER_PORT='' PF_PORT='' PF_UNIX_PORT='' SINK_PORT=''
for v in MILTER_PORT PF_PORT PF_UNIX_PORT SINK_PORT; do setup_or_die "free port" free_port "$v"; done
MILTER_SOCK=inet:127.0.0.1:$MILTER_PORT
MILTER_UNIX_SOCK=unix:$IT_DIR/milter/milter.sock
mkdir -p "$IT_DIR/milter"
CONF=$IT_DIR/milter/preflight.conf CONF_UNIX=$IT_DIR/milter/preflight-unix.conf
MLOG=$IT_DIR/milter.log MLOG_UNIX=$IT_DIR/milter-unix.log
write_conf "$CONF" "$MILTER_SOCK"
write_conf "$CONF_UNIX" "$MILTER_UNIX_SOCK"

# conf check (-n) of the conf this test runs with, and of a broken one
sc "conf check: -n accepts the test configuration"
out=$("$MILTER" -n -c "$CONF" 2>&1)
rc=$?
[[ $rc -eq 0 ]] || bad "expected exit 0, got $rc: ${out//$'\n'/ | }"
sc_end

sc "conf check: -n reports FILE:LINE: KEY of an unknown key, exit 2"
printf 'Syslog no\n# comment\nNoSuchKey 1\n' >"$IT_DIR/milter/bad.conf"
out=$("$MILTER" -n -c "$IT_DIR/milter/bad.conf" 2>&1)
rc=$?
[[ $rc -eq 2 ]] || bad "expected exit 2, got $rc"
[[ $out == *"bad.conf:3: NoSuchKey"* ]] || bad "expected 'bad.conf:3: NoSuchKey...', got '${out//$'\n'/ | }'"
sc_end

sc "root without UserID: the milter refuses to start, exit 2, naming UserID and RunAsRoot"
grep -v '^RunAsRoot' "$CONF" >"$IT_DIR/milter/root.conf"
out=$(timeout 10 "$MILTER" -f -c "$IT_DIR/milter/root.conf" 2>&1 </dev/null)
rc=$?
[[ $rc -eq 2 ]] || bad "expected exit 2, got $rc"
[[ $out == *"root.conf: refusing to run as root: set UserID"*"RunAsRoot yes"* ]] || bad "expected 'root.conf: refusing to run as root: set UserID ... RunAsRoot yes', got '${out//$'\n'/ | }'"
sc_end

start_milter "$CONF" "$MLOG" MILTER_PID
start_milter "$CONF_UNIX" "$MLOG_UNIX" MILTER2_PID
setup_or_die "preflight-milter on $MILTER_SOCK" wait_milter "$MILTER_PID" "$MILTER_SOCK" "$MLOG"
setup_or_die "preflight-milter on $MILTER_UNIX_SOCK" wait_milter "$MILTER2_PID" "$MILTER_UNIX_SOCK" "$MLOG_UNIX"
setup_or_die "smtp-sink" sink_start "$SINK_PORT"
pf_configure "$SINK_PORT" "$PF_PORT $MILTER_SOCK" "$PF_UNIX_PORT $MILTER_UNIX_SOCK"
setup_or_die "postfix" pf_start "$PF_PORT" "$PF_UNIX_PORT"
it_log "dns 127.0.0.1:$DNS_PORT, milter $MILTER_SOCK + $MILTER_UNIX_SOCK, postfix 127.0.0.1:$PF_PORT" \
  "(unix milter: $PF_UNIX_PORT), sink 127.0.0.1:$SINK_PORT, dir $IT_DIR"

# IT_HOLD=SECONDS: keep the rig running that long for manual sessions, then run the scenarios.
if [[ ${IT_HOLD:-0} =~ ^[1-9][0-9]*$ ]]; then
  it_log "holding ${IT_HOLD}s: swaks --server 127.0.0.1:$PF_PORT --from user@good.test --to rcpt@example.test"
  sleep "$((IT_HOLD > 3600 ? 3600 : IT_HOLD))"
fi

P=$PF_PORT
R=rcpt@example.test

# ---- scenarios: sender domain --------------------------------------------------------------------

sc "good.test: MX + SPF pass -> accepted, delivered"
send good "$P" --from user@good.test --to "$R"
expect_reply good MAIL '^250 '
expect_reply good EOD '^250 2\.0\.0 .*queued as'
expect_delivered good
sc_end

sc "nomx.test: A record only (implicit MX) -> accepted, delivered"
send nomx "$P" --from user@nomx.test --to "$R"
expect_reply nomx MAIL '^250 '
expect_delivered nomx
sc_end

sc "nullmx.test: null MX -> 550 5.7.27 at MAIL FROM"
send nullmx "$P" --from user@nullmx.test --to "$R"
expect_reply nullmx MAIL '^550 5\.7\.27 Sender address rejected: nullmx\.test publishes a null MX'
sc_end

sc "noexist.test: NXDOMAIN -> 550 5.1.8 at MAIL FROM"
send noexist "$P" --from user@noexist.test --to "$R"
expect_reply noexist MAIL '^550 5\.1\.8 Sender address rejected: noexist\.test '
sc_end

sc "servfail.test: SERVFAIL -> 451 4.4.3 at MAIL FROM"
send servfail "$P" --from user@servfail.test --to "$R"
expect_reply servfail MAIL '^451 4\.4\.3 DNS lookup .*failed temporarily'
sc_end

# No reply time is asserted (it depends on the machine's load): the outcome and the DNS server's
# query counts show what happened (expect_dns_tempfail, lib.sh; its time bound only catches a
# hang: Postfix gives up on the milter after milter_command_timeout, 20 s, anyway).
sc "slow.test: DNS never answers -> 451 4.4.3 at MAIL FROM, after asking the server"
raw_mail slow "$P" "<user@slow.test>"
expect_dns_tempfail slow slow.test '^451 4\.4\.3 DNS lookup .*failed temporarily'
it_log "slow.test: MAIL FROM answered after ${MAIL_MS:-?} ms"
sc_end

# DnsTimeout applies, shown by the outcome instead of a reply time: delay.test's answer (an
# NXDOMAIN: 550 5.1.8) comes 1.5 s after the query, so a milter that waited for it (DnsTimeout
# ignored: the default 5 s, 2.5 s per round) would refuse 550; with DnsTimeout 1s it gave up first.
sc "delay.test: the answer comes 1.5 s late, after DnsTimeout 1s -> 451 4.4.3 at MAIL FROM, not the late 550"
raw_mail delay "$P" "<user@delay.test>"
expect_dns_tempfail delay delay.test '^451 4\.4\.3 DNS lookup .*failed temporarily'
sc_end

# ---- scenarios: authentication (SPF / DKIM) ------------------------------------------------------
# Without SPF the decision needs the message (it may carry a signature), so 5.7.26 comes at end
# of data; a milter that knows earlier (no DKIM possible) may refuse at MAIL FROM: both pass.

sc "spffail.test: SPF excludes the egress address, no DKIM -> 550 5.7.26"
send spffail "$P" --from user@spffail.test --to "$R"
expect_refusal spffail 'MAIL|EOD' '^550 5\.7\.26 spffail\.test publishes no SPF record that allows 127\.0\.0\.1, ::1 and its mail is not DKIM-signed'
sc_end

sc "pool4only.test: SPF allows 127.0.0.1 of the pool 127.0.0.1, ::1 but not ::1 (SpfEgressMatch all) -> 550 5.7.26 naming ::1"
send pool4only "$P" --from user@pool4only.test --to "$R"
expect_refusal pool4only 'MAIL|EOD' '^550 5\.7\.26 pool4only\.test publishes no SPF record that allows ::1 \(SPF must pass for every address this relay sends from: 127\.0\.0\.1, ::1\) and its mail is not DKIM-signed; add ip6:::1 to its SPF record'
sc_end

sc "poolany.test: the same record, Domain poolany.test SpfEgressMatch any -> accepted, delivered"
send poolany "$P" --from user@poolany.test --to "$R"
expect_reply poolany MAIL '^250 '
expect_reply poolany EOD '^250 2\.0\.0 .*queued as'
expect_delivered poolany
sc_end

sc "nospf.test: no SPF, no DKIM -> 550 5.7.26"
send nospf "$P" --from user@nospf.test --to "$R"
expect_refusal nospf 'MAIL|EOD' '^550 5\.7\.26 nospf\.test publishes no SPF record .*publish the DKIM key at pf1\._domainkey\.nospf\.test'
sc_end

sc "dkimkey.test: no SPF, our key published at pf1._domainkey -> accepted, delivered"
send dkimkey "$P" --from user@dkimkey.test --to "$R"
expect_reply dkimkey MAIL '^250 '
expect_delivered dkimkey
sc_end

sc "signed.test: no SPF, valid DKIM signature (d=signed.test, folded b=) -> accepted, delivered"
send signed "$P" --from user@signed.test --to "$R" --data "@$IT_DIR/msg/signed.eml"
expect_reply signed MAIL '^250 '
expect_delivered signed &&
  { grep -q '^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=signed.test' "$DELIVERED" ||
    bad "expected the DKIM-Signature at the sink, got none"; }
sc_end

sc "signed.test, DKIM-Signature on one line -> accepted, delivered"
send signed1 "$P" --from user@signed.test --to "$R" --data "@$IT_DIR/msg/signed-oneline.eml"
expect_reply signed1 MAIL '^250 '
expect_delivered signed1
sc_end

sc "signed.test tampered: body changed after signing -> 550 5.7.26 (body hash mismatch)"
send tampered "$P" --from user@signed.test --to "$R" --data "@$IT_DIR/msg/tampered.eml"
expect_refusal tampered EOD '^550 5\.7\.26 signed\.test publishes no SPF record .*its DKIM signature does not verify \(.*body hash'
sc_end

# ---- scenarios: limits ---------------------------------------------------------------------------

sc "50 recipients -> all accepted, delivered to 50"
send rcpt50 "$P" --from user@good.test --to "$(rcpt_list 50)"
expect_reply rcpt50 'RCPT#50' '^250 '
expect_delivered rcpt50 50
sc_end

sc "51 recipients -> 51st gets 452 4.5.3, delivered to the first 50"
send rcpt51 "$P" --from user@good.test --to "$(rcpt_list 51)"
expect_reply rcpt51 'RCPT#50' '^250 '
expect_reply rcpt51 'RCPT#51' '^452 4\.5\.3 Too many recipients: at most 50 per message'
expect_delivered rcpt51 50 &&
  { ! grep -q '^X-Rcpt-Args: <r51@example.test>' "$DELIVERED" || bad "expected no r51 at the sink, got it"; }
sc_end

sc "SIZE=22020096 announced -> 552 5.3.4 at MAIL FROM"
raw_mail size_announced "$P" "<user@good.test> SIZE=22020096"
expect_reply size_announced MAIL '^552 5\.3\.4 Message too large: 22020096 bytes, and this relay accepts at most 20971520 bytes'
sc_end

sc "21 MiB body without SIZE= -> 552 5.3.4 at end of data"
send big "$P" --from user@good.test --to "$R" --body "@$IT_DIR/msg/big.txt"
expect_reply big MAIL '^250 '
expect_refusal big EOD '^552 5\.3\.4 Message too large: this relay accepts at most 20971520 bytes'
sc_end

# ---- scenarios: modes (Domain overrides) ---------------------------------------------------------

sc "dryrun.test (Mode dry-run): would be 550 5.7.26 -> accepted, delivered, logged as dry-run"
send dryrun "$P" --from dryrun@dryrun.test --to "$R"
expect_reply dryrun EOD '^250 2\.0\.0 .*queued as'
expect_delivered dryrun
expect_milter_log "$MLOG" 'from=<dryrun@dryrun\.test>.* check=auth result=dry-run.* reply="550 5\.7\.26 ' \
  "saying check=auth result=dry-run and the 550 5.7.26 it would have sent"
sc_end

sc "tag.test (AuthMode tag): 550 5.7.26 as a header -> accepted, delivered with X-Preflight-Auth"
send tag "$P" --from user@tag.test --to "$R"
expect_reply tag EOD '^250 2\.0\.0 .*queued as'
expect_delivered tag &&
  { grep -q '^X-Preflight-Auth: 550 5\.7\.26 tag\.test publishes no SPF record' "$DELIVERED" ||
    bad "expected 'X-Preflight-Auth: 550 5.7.26 tag.test ...' in the delivered message, got: $(grep -i '^X-Preflight' "$DELIVERED" || echo none)"; }
sc_end

# ---- scenarios: address forms --------------------------------------------------------------------

sc "null sender <> -> sender checks skipped, accepted, delivered"
send nullsender "$P" --from '<>' --to "$R"
expect_reply nullsender MAIL '^250 '
expect_delivered nullsender &&
  { grep -q '^X-Mail-Args: <>' "$DELIVERED" || bad "expected MAIL FROM:<> at the sink, got $(grep '^X-Mail-Args' "$DELIVERED")"; }
sc_end

sc "GOOD.TEST. (upper case, trailing dot) -> accepted, delivered"
send upperdot "$P" --from user@GOOD.TEST. --to "$R"
expect_reply upperdot MAIL '^250 '
expect_delivered upperdot
sc_end

sc "xn--bcher-kva.test (IDN A-label) -> accepted, delivered"
send idn "$P" --from user@xn--bcher-kva.test --to "$R"
expect_reply idn MAIL '^250 '
expect_delivered idn
sc_end

sc "quoted local part \"john doe\"@good.test -> accepted, delivered"
send quoted "$P" --from '"john doe"@good.test' --to "$R"
expect_reply quoted MAIL '^250 '
expect_delivered quoted
sc_end

# Syntax. Postfix parses the envelope first: a malformed domain (empty, leading or trailing
# hyphen, all-numeric, bad literal) gets Postfix's own "501 5.1.7 Bad sender address syntax"
# and never reaches the milter (first scenario). What Postfix lets through but RFC 5321 does
# not allow (an underscore in a domain label, a dot at either end of a local part, a local part
# over 64 octets, no domain) is the milter's to refuse, naming the bad part.
sc "Postfix's own syntax check: user@bad..test -> Postfix's 501 5.1.7, milter not asked"
send pfsyntax "$P" --from 'user@bad..test' --to "$R"
expect_reply pfsyntax MAIL '^501 5\.1\.7 Bad sender address syntax$'
! grep -qF 'bad..test' "$MLOG" || bad "expected no milter log line for user@bad..test, got: $(grep -F 'bad..test' "$MLOG")"
sc_end

sc "bad sender syntax user@bad_dom.test -> milter's 501 5.1.7 at MAIL FROM"
send badsender "$P" --from 'user@bad_dom.test' --to "$R"
expect_reply badsender MAIL "^501 5\.1\.7 Bad sender address <user@bad_dom\.test>: invalid character '_' in label 'bad_dom'"
expect_milter_log "$MLOG" 'bad_dom\.test.* check=envelope result=reject reply="501 5\.1\.7 ' "check=envelope result=reject 501 5.1.7"
sc_end

sc "bad recipient syntax r.@example.test -> milter's 501 5.1.3 at RCPT, the good recipient delivered"
send badrcpt "$P" --from user@good.test --to "r.@example.test,$R"
expect_reply badrcpt 'RCPT#1' '^501 5\.1\.3 Bad recipient address <r\.@example\.test>: local part ends with a dot'
expect_reply badrcpt 'RCPT#2' '^250 '
expect_delivered badrcpt 1
sc_end

# ---- scenario: one DNS path with a cache ---------------------------------------------------------
# cache.test is asked about here only (not by any earlier scenario): the first message must
# cause queries, the second, identical one none at all.

sc "DNS cache: a second identical message causes no DNS query"
q0=$(dns_total)
send cache1 "$P" --from user@cache.test --to "$R"
expect_delivered cache1
q1=$(dns_total)
cp "$DNS_STATS" "$IT_DIR/dns/stats.after-cache1" 2>/dev/null
send cache2 "$P" --from user@cache.test --to "$R"
expect_delivered cache2
q2=$(dns_total)
((q1 > q0)) || bad "expected the first cache.test message to query testdns, got no query"
# ... and, the sender-domain check and libspf2 sharing that cache, each name and type once
twice=$(awk '$1 ~ /(^|\.)cache\.test$/ && $3 != 1 { printf "%s %s asked %d times, ", $1, $2, $3 }' "$DNS_STATS")
[[ -z $twice ]] || bad "expected each cache.test query once, got ${twice%, }"
((q2 == q1)) || bad "expected no query for the second message, got $((q2 - q1)):" \
  "$(diff "$IT_DIR/dns/stats.after-cache1" "$DNS_STATS" | sed -n 's/^> //p' | tr '\n' ',')"
sc_end

# ---- scenario: unix socket -----------------------------------------------------------------------

sc "unix: socket milter (smtpd unchrooted): good.test delivered, nospf.test 550 5.7.26"
send unix_good "$PF_UNIX_PORT" --from user@good.test --to "$R"
expect_delivered unix_good
send unix_nospf "$PF_UNIX_PORT" --from user@nospf.test --to "$R"
expect_refusal unix_nospf 'MAIL|EOD' '^550 5\.7\.26 nospf\.test publishes no SPF record'
sc_end

# ---- scenarios: reload (SIGHUP) ------------------------------------------------------------------

# milter_pid PID: the milter under timeout(1) PID. Signals go to it directly: GNU timeout passes
# on only the first signal it gets, and the reload test sends several SIGHUPs.
milter_pid() { pgrep -P "$1" -f preflight-milter | head -1; }
MILTER_REAL_PID=$(milter_pid "$MILTER_PID")

log_count() { grep -c -- "$2" "$1" 2>/dev/null; }  # LOG FIXED-ISH-REGEX: matching lines
log_has_more() { (($(log_count "$1" "$2") > $3)); }  # LOG REGEX N: more than N matching lines

sc "SIGHUP with a broken conf: the error is logged with FILE:LINE: KEY, the running conf stays"
cp "$CONF" "$CONF.good"
printf 'MaxRecipients banana\n' >>"$CONF"
bad_line=$(wc -l <"$CONF")
n0=$(log_count "$MLOG" 'keeping the running configuration')
kill -HUP "$MILTER_REAL_PID"
wait_for 50 log_has_more "$MLOG" 'keeping the running configuration' "$n0" ||
  bad "expected 'keeping the running configuration' in the log within 5 s, got: $(tail -2 "$MLOG" | tr '\n' ' ')"
grep -q "reload: $CONF:$bad_line: MaxRecipients" "$MLOG" ||
  bad "expected 'reload: $CONF:$bad_line: MaxRecipients ...' in the log, got: $(grep 'reload:' "$MLOG" | tail -2 | tr '\n' ' ')"
pid_runs "$MILTER_PID" preflight-milter || bad "expected the milter running after SIGHUP, got it exited"
send hup_broken "$P" --from user@good.test --to "$(rcpt_list 3)"
expect_delivered hup_broken 3
sc_end

sc "SIGHUP with a valid change: MaxRecipients 2 applies to the next message, DNS cache kept"
sed 's/^MaxRecipients .*/MaxRecipients 2/' "$CONF.good" >"$CONF"
n0=$(log_count "$MLOG" "reloaded $CONF")
kill -HUP "$MILTER_REAL_PID"
wait_for 50 log_has_more "$MLOG" "reloaded $CONF" "$n0" ||
  bad "expected 'reloaded $CONF' in the log within 5 s, got: $(tail -2 "$MLOG" | tr '\n' ' ')"
grep -q "reloaded $CONF (DNS cache kept)" "$MLOG" || bad "expected the DNS cache kept over the reload"
send hup_rcpt "$P" --from user@good.test --to "$(rcpt_list 3)"
expect_reply hup_rcpt 'RCPT#3' '^452 4\.5\.3 Too many recipients: at most 2 per message'
expect_delivered hup_rcpt 2
cp "$CONF.good" "$CONF"
n0=$(log_count "$MLOG" "reloaded $CONF")
kill -HUP "$MILTER_REAL_PID"
wait_for 50 log_has_more "$MLOG" "reloaded $CONF" "$n0" || bad "expected the original conf reloaded"
sc_end

# ---- scenario: SIGTERM lets the transaction in flight finish -------------------------------------

# slow_client PORT FROM OUT: MAIL, RCPT, DATA and the headers, then waits for the file OUT.go
# (at most 120 s: on a loaded machine the steps before the go, swaks among them, can take tens
# of seconds, and a body sent early would end the drain before they are done) before the body
# and the final dot; every reply into OUT, one per line.
slow_client() {
  /usr/bin/python3 - "$@" <<'PY'
import os, socket, sys, time
port, sender, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")
log = open(out, "w", buffering=1)
def reply(stage):
    text = []
    while True:
        line = f.readline().decode("ascii", "replace").rstrip("\r\n")
        if not line:
            break
        text.append(line)
        if len(line) < 4 or line[3] != "-":
            break
    log.write(stage + "\t" + " ".join(text) + "\n")
def cmd(line, stage):
    s.sendall(line.encode() + b"\r\n")
    reply(stage)
reply("CONNECT")
cmd("EHLO slow.preflight-it.test", "EHLO")
cmd("MAIL FROM:<%s>" % sender, "MAIL")
cmd("RCPT TO:<rcpt@example.test>", "RCPT")
cmd("DATA", "DATA")
s.sendall(b"From: <%s>\r\nTo: <rcpt@example.test>\r\nSubject: in flight\r\n\r\n" % sender.encode())
log.write("HEADERS\tsent\n")
for _ in range(1200):
    if os.path.exists(out + ".go"):
        break
    time.sleep(0.1)
s.sendall(b"body of the message in flight\r\n.\r\n")
reply("EOD")
cmd("QUIT", "QUIT")
PY
}

sc "SIGTERM: the transaction in flight completes, a new one gets 451 4.3.2, then exit 0"
out=$IT_DIR/out/inflight.tr
slow_client "$P" user@good.test "$out" &
slow_pid=$!
wait_for 100 grep -q '^HEADERS' "$out" || bad "expected the slow client to reach DATA, got: $(tr '\n' ' ' <"$out")"
kill -TERM "$MILTER_REAL_PID"
kill -TERM "$MILTER_REAL_PID"  # a second SIGTERM must not cut the drain short
wait_for 50 grep -q 'stopping: 1 transaction(s) in flight' "$MLOG" ||
  bad "expected 'stopping: 1 transaction(s) in flight' in the log, got: $(tail -2 "$MLOG" | tr '\n' ' ')"
pid_runs "$MILTER_PID" preflight-milter || bad "expected the milter to wait for the transaction in flight, got it exited"
send drain_new "$P" --from user@good.test --to "$R"
expect_reply drain_new MAIL '^451 4\.3\.2 .*restarting'
touch "$out.go"
wait_for 200 grep -q '^QUIT' "$out" || bad "expected the slow client done within 20 s, got: $(tr '\n' ' ' <"$out")"
wait "$slow_pid"
got=$(awk -F'\t' '$1 == "EOD" { print $2 }' "$out")
[[ $got =~ ^250\ .*queued\ as\ ([0-9A-Za-z]+) ]] || bad "expected 250 queued for the message in flight, got '$got'"
[[ -n ${BASH_REMATCH[1]:-} ]] && EXPECTED_QIDS+="${BASH_REMATCH[1]} "
# libmilter takes a few seconds to notice the stop; the milter itself gives up (exit 1) after
# 30 s. 35 s only catches a hang; the outcome is the exit status.
if wait_for 350 pid_gone "$MILTER_PID" preflight-milter; then
  wait "$MILTER_PID"
  rc=$?
  [[ $rc -eq 0 ]] || bad "expected exit 0 after the drain, got $rc"
else
  bad "expected the milter gone within 35 s of the last transaction, got it still running"
fi
sc_end

# ---- scenario: the milter killed -9, then started again ------------------------------------------

sc "kill -9 of the unix milter: Postfix tempfails (mail stays with the client); a restarted milter serves, no Postfix restart"
kill -KILL "$(milter_pid "$MILTER2_PID")" 2>/dev/null
wait_for 50 pid_gone "$MILTER2_PID" preflight-milter || bad "expected the milter gone after kill -9"
wait "$MILTER2_PID" 2>/dev/null
send killed "$PF_UNIX_PORT" --from user@good.test --to "$R"
expect_refusal killed 'CONNECT|EHLO|MAIL|RCPT|DATA|EOD' '^4[0-9][0-9] '
[[ -z $(queue_id killed) ]] || bad "expected no queue id while the milter is down, got $(queue_id killed)"
mv "$MLOG_UNIX" "$MLOG_UNIX.before-kill"
start_milter "$CONF_UNIX" "$MLOG_UNIX" MILTER2_PID
if wait_milter "$MILTER2_PID" "$MILTER_UNIX_SOCK" "$MLOG_UNIX"; then
  send restarted "$PF_UNIX_PORT" --from user@good.test --to "$R"
  expect_delivered restarted
else
  bad "the milter did not start again"
fi
sc_end

# ---- final accounting ----------------------------------------------------------------------------

sc "unix milter still running, queue empty, sink holds exactly the accepted messages"
pid_runs "$MILTER2_PID" preflight-milter || bad "expected the unix milter running, got it exited: $(tail -2 "$MLOG_UNIX")"
queue_empty() { [[ $(pf_queue_count) -eq 0 ]]; }
wait_for 100 queue_empty || bad "expected an empty Postfix queue, got $(pf_queue_count) message(s)"
got_qids=$(cat "$SINK_DIR"/msg.* 2>/dev/null | sed -n 's/.*(Postfix) with ESMTP id \([0-9A-Za-z]*\).*/\1/p' | sort | tr '\n' ' ')
want_qids=$(tr ' ' '\n' <<<"$EXPECTED_QIDS" | sed '/^$/d' | sort | tr '\n' ' ')
[[ $got_qids == "$want_qids" ]] || bad "expected the sink to hold [${want_qids% }], got [${got_qids% }]"
nfiles=$(find "$SINK_DIR" -name 'msg.*' -type f | wc -l)
nwant=$(wc -w <<<"$want_qids")
((nfiles == nwant)) || bad "expected $nwant sink files, got $nfiles"
sc_end

# As above: 35 s only catches a hang (the milter exits 1 by itself after 30 s); exit 0 is the point.
sc "SIGTERM stops the idle unix milter, exit 0"
kill -TERM "$MILTER2_PID" 2>/dev/null
for v in MILTER2_PID; do
  pid=${!v}
  if wait_for 350 pid_gone "$pid" preflight-milter; then
    wait "$pid"
    rc=$?
    [[ $rc -eq 0 ]] || bad "expected exit 0 of $v, got $rc"
  else
    bad "expected $v gone within 35 s of SIGTERM, got it still running"
  fi
done
sc_end

sc "milter logs: decision lines well formed (qid= client= from=<> [to=<>] check= result= [reply=] [reason=] dns_ms=)"
decision='^preflight-milter: qid=[0-9A-Za-z]+ client=[^ ]+ from=<[^<>]*>( to=<[^<>]*>)? check=[a-z-]+ '
decision+='result=(accept|reject|tempfail|tag|dry-run)( would=[a-z]+)?( reply="([^"\\]|\\.)*")?'
decision+='( reason="([^"\\]|\\.)*")? dns_ms=[0-9.]+$'
for log in "$MLOG" "$MLOG_UNIX"; do
  n=$(grep -c '^preflight-milter: qid=' "$log")
  ((n > 0)) || bad "expected decision lines in $(basename "$log"), got none"
  odd=$(grep '^preflight-milter: qid=' "$log" | grep -Ev -- "$decision" | head -3)
  [[ -z $odd ]] || bad "expected well-formed decision lines in $(basename "$log"), got: ${odd//$'\n'/ | }"
  odd=$(grep -Ei 'tempfailing|exception|failed|cannot' "$log" | grep -v ' qid=' | head -3)
  [[ -z $odd ]] || bad "expected no internal errors in $(basename "$log"), got: ${odd//$'\n'/ | }"
done
sc_end

echo "# runtime $(awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
