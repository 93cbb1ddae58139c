#!/usr/bin/env bash
# pasted_config_postfix.sh BUILD_DIR - the README's "Attach to Postfix" commands, run as an
# operator pastes them, on Debian's stock Postfix configuration with its chroot.
#
# The Postfix instance (throwaway, under one temp dir, 127.0.0.1 only):
#   main.cf    /usr/share/postfix/main.cf.debian, plus main.cf.tls when the snakeoil key exists
#              and smtpd_relay_restrictions, as the postfix package's postinst makes a new
#              main.cf; then only what an instance beside others needs: queue_directory,
#              data_directory, myhostname, syslog_name, inet_interfaces 127.0.0.1,
#              inet_protocols ipv4, maillog_file (+ maillog_file_prefixes; no syslog here),
#              relayhost = the scripted next hop
#   master.cf  /usr/share/postfix/master.cf.dist as shipped (smtpd, cleanup, pickup, smtp, lmtp
#              chrooted, checked), the smtp inet service on a free loopback port instead of 25
#   chroot     made by Debian's own /usr/lib/postfix/configure-instance.sh (what postfix@.service
#              runs before each start), pointed at this instance with MAIL_CONFIG: etc/services,
#              resolv.conf, hosts, nsswitch.conf, localtime, libnss/libresolv in the queue dir
# Postfix is started with that configuration, then the README's blocks are applied as written:
#   <!-- postfix-preflight-conf -->  lines set in a copy of the tree's conf/preflight.conf
#                                    (replacing the same key, as the README says)
#   <!-- postfix-attach -->          each command, split into words as a shell would (shlex):
#                                    install -d (path: /var/spool/postfix -> the instance's queue
#                                    dir), postconf (with -c the instance), systemctl enable --now
#                                    (each unit started as below), systemctl reload postfix
#                                    (postfix -c ... reload); any other command fails the test
# The daemons run as their units in contrib/systemd say: ExecStartPre, ExecStart, User, Group
# read from the unit files (paths mapped: /usr/sbin, /usr/bin -> BUILD_DIR, /etc/preflight ->
# the test's conf and the tree's policy, /var/spool/postfix -> the instance's queue dir; that
# last one only because the daemons, unlike Postfix's, do not run in the chroot). systemd's
# sandboxing is not reproduced. User preflight is made with contrib/sysusers.d if missing (as
# the package would). The test's own preflight.conf settings, on top of the shipped
# file: EgressAddresses 127.0.0.1, Nameservers (testdns.py), Mode dry-run removed.
# Scenarios: a good sender delivered to the next hop; a null-MX sender refused 550 5.7.27; a
# 15 MB message accepted and delivered (message_size_limit raised above Postfix's 10 MB); local
# submission with the instance's sendmail -t checked by the milter through non_smtpd_milters
# (null MX: bounced, good: delivered); the status filter applied through the chroot (552 5.2.2
# stays deferred, 450 4.1.1 bounces at once); no Postfix warning about milter or map.
#
# PASTED_README=FILE reads the blocks from FILE instead of the tree's README.md (to watch the
# test fail on a broken paste). Output: "ok - NAME" / "not ok - NAME: ..." per scenario, then
# "N passed, M failed"; exit 0 when all pass, 1 otherwise, 77 (skip) without root or a tool.
# The temp dir is removed after a passing run, kept (path printed) after a failing one or with
# IT_KEEP=1. Every wait is bounded, only PIDs started here are stopped, and lib.sh's watchdog
# stops the lot if this shell dies without its trap.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
SRC=$(cd "$HERE/../.." && pwd)

BUILD_DIR=${1:-}
[[ -n $BUILD_DIR ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
MILTER=$(realpath -m "$BUILD_DIR/preflight-milter")
CLASSIFY=$(realpath -m "$BUILD_DIR/preflight-classify")
README=${PASTED_README:-$SRC/README.md}
DEB_MAIN=/usr/share/postfix/main.cf.debian
DEB_TLS=/usr/share/postfix/main.cf.tls
DEB_MASTER=/usr/share/postfix/master.cf.dist
DEB_CONFIGURE=/usr/lib/postfix/configure-instance.sh
UNITS=$SRC/contrib/systemd

it_requires --root "starts a Postfix instance and the daemons as their units do" --py aiosmtpd --py dnslib \
  /usr/sbin/postfix /usr/sbin/postconf /usr/sbin/postqueue /usr/sbin/sendmail swaks timeout script setpriv cpio \
  systemd-sysusers
for f in "$DEB_MAIN" "$DEB_MASTER" "$DEB_CONFIGURE"; do
  [[ -r $f ]] || it_skip "$f missing: not Debian's postfix package"
done

it_begin pasted "$MILTER"
# The units' user: the package makes it with its sysusers.d file; so does this test where it is
# missing (a machine that never had the package), with the same file.
if ! getent passwd preflight >/dev/null; then
  systemd-sysusers "$SRC/contrib/sysusers.d/preflight.conf" && getent passwd preflight >/dev/null ||
    { echo "not ok - setup: no user preflight, and systemd-sysusers could not make it"; echo "0 passed, 1 failed"; exit 1; }
  it_log "made the system user preflight with contrib/sysusers.d/preflight.conf (as the package does)"
fi
[[ -x $CLASSIFY ]] || { echo "not ok - binary: expected $CLASSIFY, got none"; echo "0 passed, 1 failed"; exit 1; }
MILTER_PID='' SERVE_PID='' DNS_PID='' DOWN_PID='' PF_PID=''
DOWN_DIR=$IT_DIR/downstream

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  pf_stop
  stop_pids 50 "$MILTER_PID" preflight-milter "$SERVE_PID" preflight-classify \
    "$DOWN_PID" scripted_smtp.py "$DNS_PID" testdns.py
  it_end "$rc" "maillog, milter.log, serve.log, pf-etc/, downstream/, out/, applied.log"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
watchdog_start 600

die_setup() {
  echo "not ok - setup: $*"
  FAIL=$((FAIL + 1))
  echo "$PASS passed, $FAIL failed"
  exit 1
}

# ---- the README's blocks --------------------------------------------------------------------------

# readme_block MARKER: the lines of the fenced block between "<!-- MARKER -->" and
# "<!-- /MARKER -->", fences dropped; fails unless there is exactly one such block.
readme_block() {
  awk -v m="$1" '
    $0 == "<!-- " m " -->" { inb = 1; n++; next }
    $0 == "<!-- /" m " -->" { inb = 0; next }
    inb && /^```/ { next }
    inb && NF { print }
    END { exit (n == 1 ? 0 : 1) }' "$README"
}

# words LINE: LINE split as a POSIX shell splits it (quotes, a "#" comment), one word per line.
words() { "$IT_PY" -c 'import shlex, sys; print("\n".join(shlex.split(sys.argv[1], comments=True)))' "$1"; }

# in_instance: stdin with /var/spool/postfix (Debian's queue_directory) replaced by the instance's.
in_instance() { sed "s|/var/spool/postfix\\b|$PF_QUEUE|g"; }

# ---- the units ------------------------------------------------------------------------------------

# unit_values UNIT KEY: each value of KEY in the unit's [Service] section, one per line,
# continuation lines joined (as tests/package.sh reads them).
unit_values() {
  awk -v key="$2" '
    /^\[/ { service = ($0 == "[Service]") }
    service && !more && index($0, key "=") == 1 { value = substr($0, length(key) + 2); more = /\\$/; if (!more) print value; next }
    more { value = value " " $0; more = /\\$/; if (!more) print value }
  ' "$UNITS/$1.service" | sed 's/\\ / /g; s/  */ /g; s/ $//'
}

# unit_cmd LINE: a unit's command line with the installed paths mapped to this run's.
unit_cmd() {
  sed -e "s|/usr/sbin/preflight-milter|$MILTER|g" -e "s|/usr/bin/preflight-classify|$CLASSIFY|g" \
    -e "s|/etc/preflight/preflight.conf|$CONF|g" -e "s|/etc/preflight/status-policy.conf|$SRC/conf/status-policy.conf|g" \
    -e "s|/var/spool/postfix\\b|$PF_QUEUE|g" <<<"$1"
}

# unit_start UNIT PIDVAR SOCKET LOG: the unit's ExecStartPre lines ("+": as root, else as
# User/Group), then its ExecStart under timeout(1), as User/Group if set; waits for SOCKET (the
# daemon alive meanwhile), 10 s at most. The PID (of timeout) goes into PIDVAR.
unit_start() {
  local unit=$1 var=$2 sock=$3 log=$4 user group line cmd pid i
  local -a as=()
  user=$(unit_values "$unit" User) group=$(unit_values "$unit" Group)
  [[ -n $user ]] && as=(setpriv --reuid="$user" --regid="${group:-$user}" --init-groups)
  while IFS= read -r line; do
    if [[ $line == +* ]]; then
      cmd=$(unit_cmd "${line#+}")
      # shellcheck disable=SC2086  # the unit's command line, split as systemd splits it (no quotes in it)
      timeout 60 $cmd >>"$log" 2>&1 </dev/null || { echo "$unit: ExecStartPre=$line failed: $(tail -3 "$log")" >&2; return 1; }
    else
      cmd=$(unit_cmd "$line")
      # shellcheck disable=SC2086
      timeout 60 "${as[@]}" $cmd >>"$log" 2>&1 </dev/null || { echo "$unit: ExecStartPre=$line failed: $(tail -3 "$log")" >&2; return 1; }
    fi
  done < <(unit_values "$unit" ExecStartPre)
  cmd=$(unit_cmd "$(unit_values "$unit" ExecStart)")
  [[ -n $cmd ]] || { echo "$unit: no ExecStart" >&2; return 1; }
  [[ $cmd != */etc/preflight/* && $cmd != */usr/sbin/* && $cmd != */usr/bin/preflight* ]] ||
    { echo "$unit: a path of ExecStart left unmapped: $cmd" >&2; return 1; }
  echo "$unit: ${user:+User=$user }${group:+Group=$group }$cmd" >>"$IT_DIR/applied.log"
  # shellcheck disable=SC2086
  timeout 900 "${as[@]}" $cmd >>"$log" 2>&1 </dev/null &
  pid=$!
  track_pid "$pid" "${cmd%% *}"
  printf -v "$var" '%s' "$pid"
  for ((i = 0; i < 100; i++)); do
    [[ -S $sock ]] && return 0
    pid_alive "$pid" || { echo "$unit: exited: $(tail -3 "$log")" >&2; return 1; }
    sleep 0.1
  done
  echo "$unit: no socket $sock within 10 s: $(tail -3 "$log")" >&2
  return 1
}

# ---- the rig ----------------------------------------------------------------------------------------

sed -e 's|@PF1_DKIM_TXT@|"v=DKIM1; p="|' -e 's|@SEL_DKIM_TXT@|"v=DKIM1; p="|' "$HERE/zones/test.zone.in" >"$IT_DIR/test.zone"
dns_start "$HERE/testdns.py" "$IT_DIR/test.zone" 2>"$IT_DIR/setup.err" || die_setup "testdns: $(<"$IT_DIR/setup.err")"

free_port DOWN_PORT || die_setup "no free port"
free_port SMTPD_PORT || die_setup "no free port"
"$IT_PY" "$HERE/scripted_smtp.py" --port "$DOWN_PORT" --dir "$DOWN_DIR" --max-seconds 600 --parent-pid $$ \
  --reply "full=552 5.2.2 Mailbox full" \
  --reply "unknown=450 4.1.1 <unknown@dest.pasted-it.test>: Recipient address rejected: User unknown" \
  >"$IT_DIR/downstream.log" 2>&1 </dev/null &
DOWN_PID=$!
track_pid "$DOWN_PID" scripted_smtp.py
wait_for 100 file_nonempty "$DOWN_DIR/port" || die_setup "next hop did not listen within 10 s: $(tail -3 "$IT_DIR/downstream.log")"

# The stock configuration, as the postfix package's postinst writes a new one.
pf_use ''
mkdir -p "$PF_ETC" "$PF_QUEUE" "$PF_DATA"
cp "$DEB_MAIN" "$PF_ETC/main.cf" || die_setup "copying $DEB_MAIN"
cp "$DEB_MASTER" "$PF_ETC/master.cf" || die_setup "copying $DEB_MASTER"
[[ -f /etc/ssl/private/ssl-cert-snakeoil.key && -r $DEB_TLS ]] && cat "$DEB_TLS" >>"$PF_ETC/main.cf"
pc() { postconf -c "$PF_ETC" "$@"; }
pc -e "smtpd_relay_restrictions=permit_mynetworks permit_sasl_authenticated defer_unauth_destination" ||
  die_setup "postconf (postinst's smtpd_relay_restrictions)"
# What this instance needs to run beside the system's Postfix and other tests' instances.
pc -e "queue_directory = $PF_QUEUE" "data_directory = $PF_DATA" "myhostname = mta.pasted-it.test" \
  "syslog_name = postfix-pasted" "inet_interfaces = 127.0.0.1" "inet_protocols = ipv4" \
  "maillog_file = $PF_LOG" "maillog_file_prefixes = $IT_DIR" "relayhost = [127.0.0.1]:$DOWN_PORT" ||
  die_setup "postconf (the instance's own settings)"
# Debian's smtpd service on a free loopback port instead of port 25; the rest of its line as shipped.
sed -i -E "s/^smtp(\s+inet\s)/127.0.0.1:$SMTPD_PORT\1/" "$PF_ETC/master.cf"

sc "Debian's master.cf as shipped: smtpd, cleanup, pickup, smtp and lmtp run chrooted"
for svc in "127.0.0.1:$SMTPD_PORT/inet" cleanup/unix pickup/unix smtp/unix lmtp/unix; do
  col5=$(pc -M "$svc" 2>&1 | awk '{ print $5 }')
  [[ $col5 == y ]] || bad "$svc: chroot column '$col5', expected y"
done
sc_end

# The chroot, as postfix@.service makes it before each start (MAIL_CONFIG: this instance).
MAIL_CONFIG=$PF_ETC "$DEB_CONFIGURE" - >"$IT_DIR/configure-instance.log" 2>&1 ||
  die_setup "$DEB_CONFIGURE: $(tail -3 "$IT_DIR/configure-instance.log")"
for f in etc/services etc/resolv.conf etc/hosts etc/nsswitch.conf; do
  [[ ! -f /$f || -f $PF_QUEUE/$f ]] || die_setup "configure-instance.sh did not copy /$f into the chroot"
done
pf_start "$SMTPD_PORT" 2>"$IT_DIR/setup.err" || die_setup "stock Postfix: $(tr '\n' ' ' <"$IT_DIR/setup.err")"
it_log "postfix 127.0.0.1:$SMTPD_PORT (chroot $PF_QUEUE), next hop 127.0.0.1:$DOWN_PORT, dns 127.0.0.1:$DNS_PORT"

# preflight.conf: the shipped file, the README's Postfix lines set in it, then this test's.
CONF=$IT_DIR/preflight.conf
cp "$SRC/conf/preflight.conf" "$CONF"
# conf_set LINE: LINE replaces the active line of its key (keys are case-insensitive), or is added.
conf_set() {
  local key=${1%% *}
  awk -v k="$key" 'tolower($1) != tolower(k) || /^[ \t]*#/' "$CONF" >"$CONF.new" && mv "$CONF.new" "$CONF"
  echo "$1" >>"$CONF"
}
conf_lines=$(readme_block postfix-preflight-conf) || die_setup "$README: no single <!-- postfix-preflight-conf --> block"
[[ -n $conf_lines ]] || die_setup "$README: the postfix-preflight-conf block is empty"
while IFS= read -r line; do
  conf_set "$(in_instance <<<"$line")"
  echo "preflight.conf: $line" >>"$IT_DIR/applied.log"
done <<<"$conf_lines"
conf_set "EgressAddresses 127.0.0.1"
conf_set "Nameservers 127.0.0.1:$DNS_PORT"
awk 'tolower($1) != "mode"' "$CONF" >"$CONF.new" && mv "$CONF.new" "$CONF"
MSOCK=$(awk 'tolower($1) == "socket" { sub(/^unix:/, "", $2); print $2 }' "$CONF")
[[ -n $MSOCK ]] || MSOCK=/run/preflight-milter/milter.sock
SSOCK=$(unit_cmd "$(unit_values preflight-status-filter ExecStart)" | sed -n 's/.*--listen unix:\([^ ]*\).*/\1/p')

# reloads_above N: the master has logged more than N reloads.
reloads_above() { (($(grep -c "reload -- version" "$PF_LOG") > $1)); }

# The README's commands, in order.
attach=$(readme_block postfix-attach) || die_setup "$README: no single <!-- postfix-attach --> block"
[[ -n $attach ]] || die_setup "$README: the postfix-attach block is empty"
reloaded=0
while IFS= read -r line; do
  mapfile -t w < <(words "$line")
  ((${#w[@]})) || continue
  echo "README: $line" >>"$IT_DIR/applied.log"
  case ${w[0]} in
    postconf)
      pc "${w[@]:1}" >>"$IT_DIR/applied.log" 2>&1 || die_setup "README command failed: $line"
      ;;
    install)
      mapfile -t w < <(printf '%s\n' "${w[@]}" | in_instance)
      "${w[@]}" >>"$IT_DIR/applied.log" 2>&1 || die_setup "README command failed: $line"
      ;;
    systemctl)
      if [[ ${w[1]} == enable && ${w[2]} == --now ]]; then
        for u in "${w[@]:3}"; do
          case ${u%.service} in
            preflight-milter)
              unit_start preflight-milter MILTER_PID "$MSOCK" "$IT_DIR/milter.log" 2>"$IT_DIR/setup.err" ||
                die_setup "$(<"$IT_DIR/setup.err")" ;;
            preflight-status-filter)
              unit_start preflight-status-filter SERVE_PID "$SSOCK" "$IT_DIR/serve.log" 2>"$IT_DIR/setup.err" ||
                die_setup "$(<"$IT_DIR/setup.err")" ;;
            *) die_setup "README: unknown unit $u in: $line" ;;
          esac
        done
      elif [[ ${w[*]:1} == "reload postfix" ]]; then
        reloads=$(grep -c "reload -- version" "$PF_LOG")
        pf reload >>"$IT_DIR/applied.log" 2>&1 || die_setup "postfix reload failed"
        # the master has read the new main.cf once it logs the reload
        wait_for 100 reloads_above "$reloads" ||
          die_setup "no reload in the log within 10 s: $(tail -3 "$PF_LOG")"
        reloaded=1
      else
        die_setup "README: a systemctl command this test does not know: $line"
      fi
      ;;
    *) die_setup "README: a command this test does not know (add it here or keep it out of the block): $line" ;;
  esac
done <<<"$attach"
((reloaded)) || die_setup "README: the postfix-attach block never reloads Postfix"
[[ -n $MILTER_PID ]] || die_setup "README: the postfix-attach block never starts preflight-milter"
[[ -n $SERVE_PID ]] || die_setup "README: the postfix-attach block never starts preflight-status-filter"
pc -n >"$IT_DIR/out/postconf-n" 2>&1

# ---- clients and log helpers --------------------------------------------------------------------------

D=dest.pasted-it.test
# smtp NAME SWAKS-ARGS...: one SMTP session (lib.sh's send, .tr transcript) against the instance.
smtp() { local n=$1; shift; send "$n" "$SMTPD_PORT" "$@"; }
queue_id() { reply_at "$1" EOD | sed -n 's/^250 .*queued as \([0-9A-Za-z]*\).*/\1/p'; }
# status_of QID RCPT: the last delivery status line of QID for RCPT.
status_of() { grep -E " $1: to=<$2>.* status=" "$PF_LOG" | tail -1; }
has_status() { status_of "$1" "$2" | grep -q " status=$3 "; }
# at_next_hop RCPT: the next hop's files with that envelope recipient.
at_next_hop() { grep -l "^X-Rcpt-To: <$1>" "$DOWN_DIR"/msg.* 2>/dev/null; }
has_mail_for() { [[ -n $(at_next_hop "$1") ]]; }

# expect_sent NAME RCPT: queued at end of data, delivered to the next hop (status=sent, its file).
expect_sent() {
  local qid
  qid=$(queue_id "$1")
  if [[ -z $qid ]]; then
    bad "expected 250 queued at end of data, got $(what_happened "$1")"
  elif ! wait_for 300 has_status "$qid" "$2" sent; then
    bad "expected $qid to $2 status=sent within 30 s, got: $(status_of "$qid" "$2" | grep -o 'status=.*')"
  elif [[ -z $(at_next_hop "$2") ]]; then
    bad "Postfix says sent, but the next hop has nothing for $2"
  fi
}

# ---- scenarios --------------------------------------------------------------------------------------------

sc "good sender (MX, SPF for the egress address) over SMTP: accepted, delivered to the next hop"
smtp good --from user@good.test --to "good@$D"
expect_reply good MAIL '^250 '
expect_sent good "good@$D"
grep -q "from=<user@good.test>" "$IT_DIR/milter.log" || bad "the milter logged nothing about user@good.test"
sc_end

sc "null-MX sender over SMTP: 550 5.7.27 from the milter"
smtp nullmx --from user@nullmx.test --to "nullmx@$D"
expect_refusal nullmx 'MAIL|RCPT|EOD' '^550 5\.7\.27 '
sc_end

sc "15 MB message (MaxMessageSize 20M): accepted and delivered, Postfix's limit above the milter's"
head -c $((15 * 1000 * 1000 * 57 / 77)) /dev/zero | base64 -w 76 >"$IT_DIR/big.txt"
smtp big --from user@good.test --to "big@$D" --body "@$IT_DIR/big.txt"
expect_sent big "big@$D"
if f=$(at_next_hop "big@$D") && [[ -n $f ]]; then
  sz=$(stat -c %s "$f")
  ((sz > 15000000)) || bad "the next hop got $sz bytes, expected over 15000000"
fi
sc_end

# Local submission: postdrop -> pickup -> cleanup, which runs non_smtpd_milters. A milter
# refusal there cannot be told to a client: cleanup bounces the message to its sender.
local_mail() { # NAME FROM RCPT
  printf 'From: %s\nTo: %s\nSubject: local submission %s\nMessage-ID: <%s.%s@pasted-it.test>\n\nsent with sendmail -t\n' \
    "$2" "$3" "$1" "$1" "$$" >"$IT_DIR/out/$1.eml"
  timeout 60 /usr/sbin/sendmail -C "$PF_ETC" -f "$2" -t <"$IT_DIR/out/$1.eml" >"$IT_DIR/out/$1.sendmail" 2>&1
}
# qid_of_mid NAME: the queue id cleanup gave the message with NAME's Message-ID.
qid_of_mid() { sed -n "s/.* \([0-9A-Za-z]*\): message-id=<$1\.$$@pasted-it\.test>.*/\1/p" "$PF_LOG" | head -1; }
qid_known() { [[ -n $(qid_of_mid "$1") ]]; }

sc "local submission (sendmail -t) from a good sender: checked by the milter, delivered"
if local_mail localgood user@good.test "localgood@$D"; then
  if wait_for 300 qid_known localgood; then
    qid=$(qid_of_mid localgood)
    wait_for 300 has_status "$qid" "localgood@$D" sent ||
      bad "expected $qid status=sent within 30 s, got: $(status_of "$qid" "localgood@$D" | grep -o 'status=.*')"
    grep -q "$qid" "$IT_DIR/milter.log" || bad "the milter logged nothing for $qid (non_smtpd_milters not applied?)"
  else
    bad "cleanup logged no message-id for the submitted message within 30 s: $(tail -2 "$PF_LOG")"
  fi
else
  bad "sendmail failed: $(cat "$IT_DIR/out/localgood.sendmail")"
fi
sc_end

sc "local submission (sendmail -t) from a null-MX sender: refused by the milter (5.7.27), bounced, not delivered"
if local_mail localnull user@nullmx.test "localnull@$D"; then
  if wait_for 300 qid_known localnull; then
    qid=$(qid_of_mid localnull)
    # cleanup logs "QID: milter-reject: MAIL from localhost[127.0.0.1]: 5.7.27 ...; from=<...>"
    grep -qE " $qid: milter-reject: .*: 5\.7\.27 .*from=<user@nullmx\.test>" "$PF_LOG" ||
      bad "no milter-reject 5.7.27 for $qid: $(grep " $qid: " "$PF_LOG" | head -2)"
    wait_for 300 has_status "$qid" "localnull@$D" bounced ||
      bad "expected $qid to localnull@ status=bounced, got: $(status_of "$qid" "localnull@$D" | grep -o 'status=.*')"
    [[ $(status_of "$qid" "localnull@$D") == *"dsn=5.7.27"* ]] || bad "expected dsn=5.7.27: $(status_of "$qid" "localnull@$D")"
    # the bounce goes to the sender (through the next hop here)
    wait_for 300 has_mail_for user@nullmx.test || bad "no bounce to user@nullmx.test reached the next hop"
  else
    bad "cleanup logged no message-id for the submitted message within 30 s: $(tail -2 "$PF_LOG")"
  fi
  [[ -z $(at_next_hop "localnull@$D") ]] || bad "the refused message was delivered to localnull@"
else
  bad "sendmail failed: $(cat "$IT_DIR/out/localnull.sendmail")"
fi
sc_end

sc "status filter through the chroot: 552 5.2.2 mailbox full stays deferred (dsn=4.2.2), in the queue"
smtp full --from user@good.test --to "full@$D"
qid=$(queue_id full)
if [[ -z $qid ]]; then
  bad "not queued: $(what_happened full)"
elif wait_for 300 has_status "$qid" "full@$D" deferred; then
  line=$(status_of "$qid" "full@$D")
  [[ $line == *"dsn=4.2.2"* && $line == *"said: 552 5.2.2"* ]] || bad "expected dsn=4.2.2 with the remote's 552, got: $line"
  postqueue -c "$PF_ETC" -p 2>&1 | grep -q "^$qid" || bad "$qid is not in the queue"
else
  bad "no status=deferred for $qid within 30 s, got: $(status_of "$qid" "full@$D" | grep -o 'status=.*')"
fi
sc_end

sc "status filter through the chroot: 450 4.1.1 user unknown bounces at once (dsn=5.1.1)"
smtp unknown --from user@good.test --to "unknown@$D"
qid=$(queue_id unknown)
if [[ -z $qid ]]; then
  bad "not queued: $(what_happened unknown)"
elif wait_for 300 has_status "$qid" "unknown@$D" bounced; then
  line=$(status_of "$qid" "unknown@$D")
  [[ $line == *"dsn=5.1.1"* && $line == *"said: 450 4.1.1"* ]] || bad "expected dsn=5.1.1 with the remote's 450, got: $line"
  n=$(grep -cE " $qid: to=<unknown@$D>.* status=" "$PF_LOG")
  ((n == 1)) || bad "expected one delivery attempt, got $n"
else
  bad "no status=bounced for $qid within 30 s, got: $(status_of "$qid" "unknown@$D" | grep -o 'status=.*')"
fi
sc_end

# The processes that served the mail above stay for max_idle (100 s): their root directory is
# the queue directory, so the chroot was in effect, not only configured.
sc "smtpd, cleanup and smtp ran chrooted in the instance's queue directory"
declare -A seen=()
while read -r p comm; do
  case $comm in smtpd | cleanup | smtp) ;; *) continue ;; esac
  root=$(readlink "/proc/$p/root" 2>/dev/null) || continue
  seen[$comm]=1
  [[ $root == "$PF_QUEUE" ]] || bad "$comm (pid $p) has root '$root', expected $PF_QUEUE"
done < <(ps -o pid=,comm= --ppid "$PF_PID")
for comm in smtpd cleanup smtp; do [[ -n ${seen[$comm]:-} ]] || bad "no $comm process of the master found"; done
sc_end

sc "Postfix logged no warning or error about the milter, the status filter's map or the chroot"
if out=$(grep -E "(warning|error|fatal|panic): " "$PF_LOG" | grep -iE "milter|socketmap|status\.sock|chroot|connect to"); then
  bad "$(head -3 <<<"$out" | tr '\n' ' ')"
fi
sc_end

echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
