#!/usr/bin/env bash
# milter_sendmail.sh BUILD_DIR - preflight-milter behind the real Sendmail, against a real DNS.
#
# Debian's sendmail-bin conflicts with postfix (both are the mail-transport-agent), so it is not
# installed: the test fetches sendmail-bin, sendmail-base and sendmail-cf with "apt-get download"
# into BUILD_DIR/sendmail-debs/, unpacks them with dpkg-deb -x into BUILD_DIR/sendmail-root/ (both
# kept, so reruns do not download again), builds a sendmail.cf with m4 from the unpacked cf/
# tree and contrib/sendmail/preflight.mc (its S= pointed at the test's milter), and runs that
# sendmail binary in the foreground (-bD) with -C on a loopback port. Nothing is installed and
# no file outside the temp dir and BUILD_DIR is written.
#
# Starts, all on 127.0.0.1 and all under one temp dir:
#   testdns.py        serving zones/test.zone.in, counting queries
#   preflight-milter  BUILD_DIR/preflight-milter -f on an inet socket
#   smtp-sink         the next hop (Sendmail's SMART_HOST); one file per delivered transaction
#   sendmail          -bD -C sm/sendmail.cf: own queue dir, pid file, no DNS for delivery
# then drives Sendmail with swaks (raw SMTP for SIZE=) and asserts the replies the client sees,
# the same codes and words as milter_postfix.sh for: the sender domain (NXDOMAIN, null MX, no
# MX but A, SERVFAIL), the recipient limit and the message size; plus a multi-line reply
# (nospf.test), a tag header (tag.test) and F=T (milter down -> Sendmail's own 451 4.3.2).
# Every accepted message must reach the sink. Runs in about 15 s on two cores (plus ~2 s for
# the first download). What Sendmail does differently from Postfix, asserted here: a 450/550/553
# at MAIL FROM reaches the client as "550 5.7.27 <sender>... text" (see the null MX scenario).
#
# Output: "ok - NAME" / "not ok - NAME: expected ..., got ..." per scenario, then "N passed, M
# failed". Exit 0 when all pass, 1 otherwise, 77 (skip, with the reason) when not root, when a
# tool is missing, or when the Sendmail packages cannot be downloaded (no package lists: run
# "apt-get update" or contrib/install-deps.sh; no network to the Debian mirror). The temp dir is
# removed after a passing run and kept (path printed) after a failing one; IT_KEEP=1 keeps it.
# It holds milter.log, sm/ (sendmail.cf, queue, the config's .mc), sink/, dns/, out/NAME.swaks
# and out/NAME.tr. Sendmail logs only to syslog, which these machines do not run: what Sendmail
# did is read from the client transcripts, its queue and the sink.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/integration/lib.sh
. "$HERE/lib.sh"

BUILD_DIR=${1:-}
[[ -n $BUILD_DIR ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$(realpath -m "$BUILD_DIR")
MILTER=$BUILD_DIR/preflight-milter

it_requires --root "runs the Sendmail daemon (-bD) and smtp-sink -u nobody" --py dnslib \
  /usr/sbin/smtp-sink swaks openssl timeout m4 apt-get dpkg-deb

START=$EPOCHREALTIME

# ---- the Sendmail binary: downloaded and unpacked once per build dir ----------------------------

SM_PKGS=(sendmail-bin sendmail-base sendmail-cf)
SM_DEBS=$BUILD_DIR/sendmail-debs SM_ROOT=$BUILD_DIR/sendmail-root
SM_BIN=$SM_ROOT/usr/libexec/sendmail/sendmail SM_CF_DIR=$SM_ROOT/usr/share/sendmail/cf

# fetch_sendmail: the packages' .debs in SM_DEBS (downloaded when absent), unpacked into SM_ROOT
# (again when a .deb is newer than the stamp). Prints the reason and fails when it cannot.
fetch_sendmail() {
  local p out missing=() deb
  mkdir -p "$SM_DEBS" || return 1
  for p in "${SM_PKGS[@]}"; do
    compgen -G "$SM_DEBS/${p}_*.deb" >/dev/null || missing+=("$p")
  done
  if ((${#missing[@]})); then
    # as root, without apt's _apt sandbox (it could not write into the build dir)
    if ! out=$(cd "$SM_DEBS" && timeout 120 apt-get -q -o APT::Sandbox::User=root download "${missing[@]}" 2>&1); then
      echo "apt-get download ${missing[*]} failed (package lists missing? run apt-get update or" \
        "contrib/install-deps.sh): $(tail -2 <<<"$out" | tr '\n' ' ')"
      return 1
    fi
  fi
  if [[ ! -x $SM_BIN || ! -f $SM_ROOT/.stamp || -n $(find "$SM_DEBS" -name '*.deb' -newer "$SM_ROOT/.stamp") ]]; then
    rm -rf "$SM_ROOT" && mkdir -p "$SM_ROOT" || return 1
    for deb in "$SM_DEBS"/*.deb; do
      dpkg-deb -x "$deb" "$SM_ROOT" || { echo "dpkg-deb -x $deb failed"; return 1; }
    done
    touch "$SM_ROOT/.stamp"
  fi
  [[ -x $SM_BIN && -f $SM_CF_DIR/m4/cf.m4 ]] || { echo "no $SM_BIN or cf/m4/cf.m4 in the unpacked packages"; return 1; }
}

if ! why=$(fetch_sendmail); then
  it_skip "cannot get Sendmail: $why"
fi
# Its shared libraries (libwrap0, liblockfile1, ...) do not conflict with postfix and are
# installed by contrib/install-deps.sh.
libs=$(ldd "$SM_BIN" 2>&1 | awk '/not found/ { printf "%s ", $1 }')
[[ -z $libs ]] || it_skip "the unpacked sendmail lacks shared libraries: ${libs% } (contrib/install-deps.sh installs them)"
SM_VERSION=$(dpkg-deb -f "$(compgen -G "$SM_DEBS/sendmail-bin_*.deb" | tail -1)" Version 2>/dev/null)

it_begin sendmail "$MILTER"
mkdir -p "$IT_DIR/keys" "$IT_DIR/msg"
MILTER_PID='' SINK_PID='' DNS_PID='' SM_PID=''

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pids 50 "$SM_PID" sendmail "$MILTER_PID" preflight-milter "$SINK_PID" smtp-sink "$DNS_PID" testdns.py
  it_end "$rc" "milter.log, sm/, sink/, out/, dns/"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
watchdog_start 900

# ---- fixtures ------------------------------------------------------------------------------------

# make_zone: the Postfix test's zone; both DKIM placeholders get one generated key (no scenario
# here signs mail, the zone file only has to be complete).
make_zone() {
  local p txt='"v=DKIM1; k=rsa; p="' i
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$IT_DIR/keys/pf1.pem" 2>/dev/null &&
    openssl pkey -in "$IT_DIR/keys/pf1.pem" -pubout -out "$IT_DIR/keys/pf1.pub.pem" || return 1
  p=$(openssl pkey -in "$IT_DIR/keys/pf1.pem" -pubout -outform DER 2>/dev/null | base64 -w0) || return 1
  for ((i = 0; i < ${#p}; i += 250)); do txt+=" \"${p:i:250}\""; done
  sed -e "s|@PF1_DKIM_TXT@|$txt|" -e "s|@SEL_DKIM_TXT@|$txt|" "$HERE/zones/test.zone.in" >"$IT_DIR/test.zone"
}

# big_body: msg/big.txt, about 21 MiB of 76-character base64 lines, above MaxMessageSize 20M.
big_body() {
  head -c $((21 * 1024 * 1024 * 57 / 77)) /dev/zero | base64 -w 76 >"$IT_DIR/msg/big.txt"
}

rcpt_list() { local i s=; for ((i = 1; i <= $1; i++)); do s+="${s:+,}r$i@example.test"; done; echo "$s"; }

write_conf() { # FILE SOCKET: the milter settings of milter_postfix.sh that these scenarios use
  cat >"$1" <<EOF
# preflight-milter, integration test (generated by tests/integration/milter_sendmail.sh)
Socket $2
RunAsRoot yes
Syslog no
Nameservers 127.0.0.1:$DNS_PORT
DnsTimeout 1s
EgressAddresses 127.0.0.1
DkimSelectors pf1
DkimPublicKeyFile $IT_DIR/keys/pf1.pub.pem
MaxRecipients 50
MaxMessageSize 20M
AuthPolicy spf-or-dkim
Domain tag.test AuthMode tag
EOF
}

start_milter() { # CONF LOG: sets MILTER_PID (timeout(1), which passes SIGTERM on)
  timeout 900 "$MILTER" -f -c "$1" 2>"$2" </dev/null &
  MILTER_PID=$!
  track_pid "$MILTER_PID" preflight-milter
}

wait_milter() { # PORT LOG
  local i
  for ((i = 0; i < 100; i++)); do
    pid_alive "$MILTER_PID" || { echo "preflight-milter exited: $(tail -3 "$2")" >&2; return 1; }
    tcp_open 127.0.0.1 "$1" && return 0
    sleep 0.1
  done
  echo "preflight-milter not listening on 127.0.0.1:$1 within 10 s: $(tail -3 "$2")" >&2
  return 1
}

# ---- the Sendmail instance -----------------------------------------------------------------------
# sm/ holds everything: sendmail.mc -> sendmail.cf, queue/ (mode 0700, root's: Sendmail refuses
# an unsafe queue), the pid file, an empty aliases and a hosts-only service switch (no DNS: the
# next hop is the bracketed SMART_HOST [127.0.0.1], port given in the mailer's A= line).

sm_configure() { # SM_PORT SINK_PORT MILTER_SOCKET(sendmail syntax)
  local port=$1 sink=$2 sock=$3 d=$IT_DIR/sm
  SM_DIR=$d SM_QUEUE=$d/queue
  mkdir -p "$SM_QUEUE" && chmod 0700 "$SM_QUEUE" || return 1
  printf 'hosts files\naliases files\n' >"$d/service.switch"
  # The next hop has a name of its own: Sendmail counts [127.0.0.1] as itself (class w) and
  # would drop a SMART_HOST of [127.0.0.1] as "local host", then look the recipient's domain up.
  printf '127.0.0.1 mta.preflight-it.test mta localhost\n127.0.0.1 sink.preflight-it.test\n' >"$d/hosts"
  : >"$d/aliases"
  cp "$SM_ROOT/etc/mail/helpfile" "$d/helpfile" 2>/dev/null || : >"$d/helpfile"
  # The operator's snippet, as shipped, with S= pointed at this run's milter.
  sed "s|S=unix:/run/preflight-milter/milter.sock|S=$sock|" "$SRC/contrib/sendmail/preflight.mc" >"$d/preflight.mc"
  grep -qF "S=$sock," "$d/preflight.mc" || { echo "contrib/sendmail/preflight.mc has no S=unix:/run/preflight-milter/milter.sock to replace" >&2; return 1; }
  cat >"$d/sendmail.mc" <<EOF
divert(-1)
# throwaway Sendmail of tests/integration/milter_sendmail.sh (generated)
divert(0)dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`mta.preflight-it.test')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confSERVICE_SWITCH_FILE', \`$d/service.switch')dnl
define(\`confHOSTS_FILE', \`$d/hosts')dnl
define(\`ALIAS_FILE', \`$d/aliases')dnl
define(\`QUEUE_DIR', \`$SM_QUEUE')dnl
define(\`confPID_FILE', \`$d/sendmail.pid')dnl
define(\`HELP_FILE', \`$d/helpfile')dnl
define(\`STATUS_FILE', \`$d/statistics')dnl
define(\`confEBINDIR', \`$SM_ROOT/usr/libexec/sendmail')dnl
define(\`confDELIVERY_MODE', \`background')dnl
define(\`confDEF_USER_ID', \`nobody')dnl
define(\`confPRIVACY_FLAGS', \`authwarnings')dnl
define(\`confTO_IDENT', \`0')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
dnl above the milter's 20 MB limit, so the milter is the one that refuses big mail
define(\`confMAX_MESSAGE_SIZE', \`52428800')dnl
dnl every delivery goes to the sink (its name is in sm/hosts), without DNS
define(\`SMART_HOST', \`[sink.preflight-it.test]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $sink')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $sink')dnl
define(\`SMTP_MAILER_ARGS', \`TCP \$h $sink')dnl
DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA')dnl
dnl the sender domain is the milter's to judge, not Sendmail's own check_mail
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`no_default_msa')dnl
dnl loopback-only test relay: any recipient is relayed to the sink
FEATURE(\`promiscuous_relay')dnl
include(\`$d/preflight.mc')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
EOF
  m4 -D "_CF_DIR_=$SM_CF_DIR/" "$SM_CF_DIR/m4/cf.m4" "$d/sendmail.mc" >"$d/sendmail.cf" 2>"$d/m4.err" ||
    { echo "m4 failed: $(head -3 "$d/m4.err")" >&2; return 1; }
  grep -q "^Xpreflight, S=$sock, F=T" "$d/sendmail.cf" ||
    { echo "sendmail.cf has no Xpreflight line for S=$sock" >&2; return 1; }
}

# sm_start PORT: the daemon in the foreground (-bD) under timeout(1); sets SM_PID. IT_SM_ARGS
# adds arguments, e.g. IT_SM_ARGS="-D /tmp/sm-debug.log -d64.20" (milter debugging into that
# file: without -D, the debugging goes into the SMTP sessions).
# Before it reads its config, Sendmail qualifies the machine's host name with the resolver and,
# when that gives no dot (this machine: "vm", an /etc/hosts without a domain), logs "My
# unqualified host name unknown" and sleeps 60 s, twice. So it runs in its own UTS and mount
# namespaces (unshare(1)): host name mta.preflight-it.test, and the files sm/hosts and
# sm/nsswitch.conf ("hosts: files") bound over /etc/hosts and /etc/nsswitch.conf for that
# process only. No host lookup of Sendmail reaches DNS; the machine's files are untouched.
sm_start() {
  local port=$1
  printf 'hosts: files\npasswd: files\ngroup: files\n' >"$SM_DIR/nsswitch.conf"
  # shellcheck disable=SC2016,SC2086 # the script is for the child sh; IT_SM_ARGS is split
  timeout 900 unshare --mount --uts --propagation private sh -c '
    d=$1 bin=$2 && shift 2 && hostname mta.preflight-it.test &&
      mount --bind "$d/hosts" /etc/hosts && mount --bind "$d/nsswitch.conf" /etc/nsswitch.conf &&
      exec "$bin" -bD -C "$d/sendmail.cf" "$@"' preflight-it-sendmail "$SM_DIR" "$SM_BIN" ${IT_SM_ARGS:-} \
    </dev/null >"$SM_DIR/daemon.out" 2>&1 &
  SM_PID=$!
  track_pid "$SM_PID" sendmail
  if ! wait_for 100 tcp_open 127.0.0.1 "$port"; then
    echo "sendmail not listening on 127.0.0.1:$port within 10 s: $(tail -3 "$SM_DIR/daemon.out")" >&2
    return 1
  fi
  pid_runs "$SM_PID" sendmail || { echo "sendmail exited: $(tail -3 "$SM_DIR/daemon.out")" >&2; return 1; }
}

sm_queue_count() { find "$SM_QUEUE" -type f -name 'qf*' 2>/dev/null | wc -l; }

# queue_id NAME: Sendmail's queue id from the end-of-data reply ("250 2.0.0 QID Message accepted
# for delivery").
queue_id() { reply_at "$1" EOD | sed -n 's/^250 2\.0\.0 \([0-9A-Za-z]*\) Message accepted.*/\1/p'; }

# sink_files_of QID: the sink files whose Received header names QID ("with ESMTP id QID").
# shellcheck disable=SC2153 # SINK_DIR is set by sink_start (lib.sh)
sink_files_of() { grep -lE "with E?SMTP id $1(;|\$)" "$SINK_DIR"/msg.* 2>/dev/null; }
qid_sent() { [[ ! -e $SM_QUEUE/qf$1 ]] && [[ -n $(sink_files_of "$1") ]]; }

# expect_delivered NAME [RCPTS]: queued (250 at end of data), in the sink and out of Sendmail's
# queue within 20 s, with RCPTS recipients (default 1) at the sink. Records the queue id in
# EXPECTED_QIDS.
EXPECTED_QIDS=" "
expect_delivered() {
  local name=$1 want=${2:-1} qid files got
  qid=$(queue_id "$name")
  if [[ -z $qid ]]; then
    bad "expected '250 2.0.0 QID Message accepted for delivery' at end of data, got $(reply_at "$name" EOD || true) ($(what_happened "$name"))"
    return 1
  fi
  EXPECTED_QIDS+="$qid "
  if ! wait_for 200 qid_sent "$qid"; then
    bad "expected $qid delivered to the sink within 20 s, got $([[ -e $SM_QUEUE/qf$qid ]] && echo "it still queued: $(grep -a '^M' "$SM_QUEUE/qf$qid" | head -1)" || echo "no sink file")"
    return 1
  fi
  files=$(sink_files_of "$qid")
  got=$(xargs cat <<<"$files" | grep -c '^X-Rcpt-Args:')
  [[ $got -eq $want ]] || bad "expected $want recipient(s) of $qid at the sink, got $got"
}

# ---- setup ---------------------------------------------------------------------------------------

setup_or_die "zone file and key (openssl)" make_zone
setup_or_die "21 MiB body" big_body
setup_or_die "testdns.py" dns_start "$HERE/testdns.py" "$IT_DIR/test.zone"
MILTER_PORT='' SM_PORT='' SINK_PORT=''
for v in MILTER_PORT SM_PORT SINK_PORT; do setup_or_die "free port" free_port "$v"; done
mkdir -p "$IT_DIR/milter"
CONF=$IT_DIR/milter/preflight.conf MLOG=$IT_DIR/milter.log
write_conf "$CONF" "inet:127.0.0.1:$MILTER_PORT"
start_milter "$CONF" "$MLOG"
setup_or_die "preflight-milter on 127.0.0.1:$MILTER_PORT" wait_milter "$MILTER_PORT" "$MLOG"
setup_or_die "smtp-sink" sink_start "$SINK_PORT"
setup_or_die "sendmail.cf (m4)" sm_configure "$SM_PORT" "$SINK_PORT" "inet:$MILTER_PORT@127.0.0.1"
setup_or_die "sendmail $SM_VERSION -bD" sm_start "$SM_PORT"
it_log "sendmail $SM_VERSION 127.0.0.1:$SM_PORT (unpacked in $SM_ROOT), milter inet:127.0.0.1:$MILTER_PORT," \
  "dns 127.0.0.1:$DNS_PORT, sink 127.0.0.1:$SINK_PORT, dir $IT_DIR"

P=$SM_PORT
R=rcpt@example.test

# ---- scenarios: sender domain --------------------------------------------------------------------

sc "good.test: MX + SPF pass -> accepted, delivered"
send good "$P" --from user@good.test --to "$R"
expect_reply good MAIL '^250 '
expect_reply good EOD '^250 2\.0\.0 [0-9A-Za-z]+ Message accepted for delivery'
expect_delivered good
sc_end

sc "nomx.test: A record only (implicit MX) -> accepted, delivered"
send nomx "$P" --from user@nomx.test --to "$R"
expect_reply nomx MAIL '^250 '
expect_delivered nomx
sc_end

# Sendmail prints a milter's reply through its usrerr(), whose formatter puts "<ADDRESS>... "
# before the text of a 450, 550 or 553 reply while the command's address is set (sendmail/err.c,
# fmtmsg). So a client sees the milter's 550 at MAIL FROM as "550 5.7.27 <user@nullmx.test>...
# Sender address rejected: ...": same code, same enhanced code, same words, the address in
# front. 451, 452 and 552 replies pass unchanged. The milter cannot avoid it (nor should it).
sc "nullmx.test: null MX -> 550 5.7.27 at MAIL FROM (Sendmail puts '<sender>... ' before the text)"
send nullmx "$P" --from user@nullmx.test --to "$R"
expect_reply nullmx MAIL '^550 5\.7\.27 <user@nullmx\.test>\.\.\. Sender address rejected: nullmx\.test publishes a null MX'
sc_end

sc "noexist.test: NXDOMAIN -> 550 5.1.8 at MAIL FROM (Sendmail puts '<sender>... ' before the text)"
send noexist "$P" --from user@noexist.test --to "$R"
expect_reply noexist MAIL '^550 5\.1\.8 <user@noexist\.test>\.\.\. Sender address rejected: noexist\.test '
sc_end

sc "servfail.test: SERVFAIL -> 451 4.4.3 at MAIL FROM"
send servfail "$P" --from user@servfail.test --to "$R"
expect_reply servfail MAIL '^451 4\.4\.3 DNS lookup .*failed temporarily'
sc_end

# ---- scenarios: limits ---------------------------------------------------------------------------

sc "51 recipients -> 51st gets 452 4.5.3, delivered to the first 50"
send rcpt51 "$P" --from user@good.test --to "$(rcpt_list 51)"
expect_reply rcpt51 'RCPT#50' '^250 '
expect_reply rcpt51 'RCPT#51' '^452 4\.5\.3 Too many recipients: at most 50 per message'
expect_delivered rcpt51 50 &&
  { ! sink_files_of "$(queue_id rcpt51)" | xargs grep -q '^X-Rcpt-Args: <r51@example.test>' ||
    bad "expected no r51 at the sink, got it"; }
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

# ---- scenario: a multi-line reply ----------------------------------------------------------------
# The 5.7.26 reply is the milter's longest, sent as several lines (smfi_setmlreply); Sendmail
# must pass every line on. (Not one of the Postfix test's size/domain/limit scenarios: here to
# show how Sendmail relays a multi-line milter reply.)

sc "nospf.test: no SPF, no DKIM -> multi-line 550 5.7.26, every line passed on"
send nospf "$P" --from user@nospf.test --to "$R"
expect_refusal nospf 'MAIL|EOD' '^550 5\.7\.26 (<user@nospf\.test>\.\.\. )?nospf\.test publishes no SPF record .*publish the DKIM key at pf1\._domainkey\.nospf\.test'
it_log "nospf.test: $(grep -c '^<[-*]* *550[- ]' "$IT_DIR/out/nospf.swaks") reply line(s): $(grep -m1 '^<[-*]* *550' "$IT_DIR/out/nospf.swaks" | cut -c1-60)..."
sc_end

# ---- scenario: a header added at end of message -------------------------------------------------
# The milter negotiates SMFIP_HDR_LEADSPC and writes the blank after the colon itself; the header
# must arrive as "Name: value" (one blank), as with Postfix.

sc "tag.test (AuthMode tag): accepted, delivered with 'X-Preflight-Auth: 550 5.7.26 ...' (one blank)"
send tag "$P" --from user@tag.test --to "$R"
expect_reply tag EOD '^250 2\.0\.0 [0-9A-Za-z]+ Message accepted for delivery'
if expect_delivered tag; then
  hdr=$(sink_files_of "$(queue_id tag)" | xargs grep -h '^X-Preflight-Auth:' | head -1)
  [[ $hdr =~ ^X-Preflight-Auth:\ 550\ 5\.7\.26\ tag\.test\ publishes\ no\ SPF\ record ]] ||
    bad "expected 'X-Preflight-Auth: 550 5.7.26 tag.test publishes no SPF record...' at the sink, got '${hdr:-none}'"
fi
sc_end

# ---- final accounting ----------------------------------------------------------------------------

sc "milter still running, Sendmail's queue empty, sink holds exactly the accepted messages"
pid_runs "$MILTER_PID" preflight-milter || bad "expected the milter running, got it exited: $(tail -2 "$MLOG")"
queue_empty() { [[ $(sm_queue_count) -eq 0 ]]; }
wait_for 100 queue_empty || bad "expected an empty Sendmail queue, got $(sm_queue_count) message(s)"
got_qids=$(cat "$SINK_DIR"/msg.* 2>/dev/null |
  sed -n 's/.*by mta\.preflight-it\.test (.*) with E\{0,1\}SMTP id \([0-9A-Za-z]*\).*/\1/p' | sort -u | tr '\n' ' ')
want_qids=$(tr ' ' '\n' <<<"$EXPECTED_QIDS" | sed '/^$/d' | sort | tr '\n' ' ')
[[ $got_qids == "$want_qids" ]] || bad "expected the sink to hold [${want_qids% }], got [${got_qids% }]"
sc_end

sc "milter log: a decision line per refusal, with Sendmail's queue id (macro i)"
n=$(grep -cE '^preflight-milter: qid=[0-9A-Za-z]+ .* result=(reject|tempfail)' "$MLOG")
nq=$(grep -c '^preflight-milter: qid=NOQUEUE ' "$MLOG")
((n >= 6)) || bad "expected at least 6 refusal lines, got $n: $(tail -3 "$MLOG")"
((nq == 0)) || bad "expected every decision line to carry Sendmail's queue id, got $nq with qid=NOQUEUE"
odd=$(grep -Ei 'tempfailing|exception|failed|cannot' "$MLOG" | grep -v ' qid=' | head -3)
[[ -z $odd ]] || bad "expected no internal errors in milter.log, got: ${odd//$'\n'/ | }"
sc_end

# ---- F=T: the milter down ------------------------------------------------------------------------

sc "milter stopped (F=T) -> Sendmail tempfails, accepts nothing unchecked"
stop_pids 50 "$MILTER_PID" preflight-milter
send down "$P" --from user@good.test --to "$R"
first=$(awk -F'\t' '$1 == "ERROR" || $2 ~ /^[45]/ { print; exit }' "$IT_DIR/out/down.tr")
[[ ${first#*$'\t'} =~ ^4[0-9][0-9]\ 4\. ]] || bad "expected a 4xx 4.x.x refusal, got '${first:-none}'"
[[ -z $(queue_id down) ]] || bad "expected no message accepted, got queued as $(queue_id down)"
it_log "milter down: Sendmail said ${first//$'\t'/: }"
sc_end

echo "# runtime $(awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
