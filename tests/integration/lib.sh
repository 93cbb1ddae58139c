# shellcheck shell=bash disable=SC2034
# lib.sh - helpers of the integration tests (sourced, not run): free ports, bounded waits,
# processes started and stopped by PID, a throwaway Postfix instance, smtp-sink, testdns.py,
# quota_drive.py.
#
# Rules kept here so each test does not have to: every wait has a bound (in tenths of a
# second); only loopback addresses are used; a process is stopped only through the PID this
# shell recorded when it started it, after checking that the PID still runs the same program
# (guards against a recycled PID); all state lives under one directory, $IT_DIR.
#
# Failure modes: helpers return non-zero and print the reason to stderr; the caller decides
# whether that is a failed scenario or a broken setup.

IT_DIR=${IT_DIR:-}          # the test's temp dir (set by the test before calling anything)
IT_PY=/usr/bin/python3      # Debian's python (dnslib); the first python3 in PATH may not be it
IT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)  # tests/integration: its helper programs
IT_PORTS_TAKEN=" "          # ports handed out by free_port in this run
IT_HANG_MS=${IT_HANG_MS:-15000}  # a reply-time bound that only catches a hang, never a speed assert
# Set by the helpers for the caller: DNS_PID DNS_PORT DNS_STATS SINK_PID SINK_DIR PF_PID PF_ETC
# PF_QUEUE PF_DATA PF_LOG (of the current Postfix instance, see pf_use) WATCHDOG_PID.
PF_NAME=''                  # the current Postfix instance: '' (the default one) or a name (pf_use)
declare -gA PF_PIDS=()      # master PID of every instance started, by name ('_' for the default)

it_log() { echo "# $*"; }

# ---- ports ---------------------------------------------------------------------------------

# free_port VAR: set VAR to a TCP+UDP port on 127.0.0.1 that nothing listens on, from
# 20000-32767 (below Linux's ephemeral range, so outgoing connections do not take it meanwhile);
# never the same port twice in one run (so not to be called in a subshell). 200 tries at most.
free_port() {
  local var=$1 i p
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12768))
    [[ $IT_PORTS_TAKEN == *" $p "* ]] && continue
    if "$IT_PY" - "$p" <<'EOF' 2>/dev/null; then
import socket, sys
p = int(sys.argv[1])
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", p))
    s.close()
EOF
      IT_PORTS_TAKEN+="$p "
      printf -v "$var" '%s' "$p"
      return 0
    fi
  done
  echo "free_port: no free port found" >&2
  return 1
}

# ---- bounded waits -------------------------------------------------------------------------

# wait_for TENTHS CMD...: run CMD every 0.1 s until it succeeds (0) or TENTHS tries pass (1).
wait_for() {
  local n=$1 i
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# tcp_open HOST PORT: does something accept connections there?
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# file_nonempty FILE
file_nonempty() { [[ -s $1 ]]; }

# ---- processes by PID ----------------------------------------------------------------------

# pid_runs PID PATTERN: PID is alive (not a zombie) and its command line contains PATTERN.
pid_runs() {
  local pid=$1 pat=$2
  pid_alive "$pid" || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$pat"
}

# pid_alive PID: the process exists and has not exited (not a zombie), whatever it runs. Right
# after "cmd &" the child is still the shell until it execs cmd, so pid_runs's pattern cannot
# match yet: a start-up wait checks liveness with this, not pid_runs.
pid_alive() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# pid_gone PID PATTERN: the opposite of pid_runs (for wait_for).
pid_gone() { ! pid_runs "$1" "$2"; }

# pid_from_file FILE: the number in FILE (Postfix pads its pid files with blanks).
pid_from_file() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(tr -d ' \n' <"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

# stop_pids TENTHS PID PATTERN [PID PATTERN...]: SIGTERM each process we started that still
# runs PATTERN, all at once (libmilter takes up to ~3 s to notice), wait up to TENTHS/10 s for
# all of them, then SIGKILL what is left. Reaps those that are our children.
stop_pids() {
  local n=$1 i pid pat
  shift
  local -a pids=() pats=()
  while (($# >= 2)); do
    if [[ -n $1 ]] && pid_runs "$1" "$2"; then
      pids+=("$1") pats+=("$2")
      kill -TERM "$1" 2>/dev/null || true
    elif [[ -n $1 ]]; then
      wait "$1" 2>/dev/null || true
    fi
    shift 2
  done
  for ((i = 0; i < ${#pids[@]}; i++)); do
    pid=${pids[i]} pat=${pats[i]}
    wait_for "$n" pid_gone "$pid" "$pat" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  return 0
}

# ---- watchdog ------------------------------------------------------------------------------
# If this shell dies without running its EXIT trap (SIGKILL, a ctest timeout), nothing would end
# what it started: the Postfix master daemonises, the milters wait for connections. The
# watchdog, in its own session, notices that this shell is gone (or that SECONDS passed) and
# then stops every Postfix instance under $IT_DIR/pf-etc and $IT_DIR/pf-etc-NAME and every
# "PID PATTERN" listed in $IT_DIR/pids that still runs PATTERN.

# track_pid PID PATTERN: list a process for the watchdog.
track_pid() { echo "$1 $2" >>"$IT_DIR/pids"; }

# watchdog_start SECONDS: sets WATCHDOG_PID (leader of its own process group).
watchdog_start() {
  : >>"$IT_DIR/pids"
  # shellcheck disable=SC2016 # the script is for the child bash
  setsid bash -c '
    for ((i = 0; i < $2; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 1; done
    for etc in "$3"/pf-etc "$3"/pf-etc-*; do
      [[ -f $etc/main.cf ]] && timeout 20 postfix -c "$etc" stop
    done
    while read -r pid pat; do
      tr "\0" " " 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$pat" && kill -TERM "$pid"
    done <"$3/pids"' preflight-it-watchdog "$$" "$1" "$IT_DIR" >/dev/null 2>&1 </dev/null &
  WATCHDOG_PID=$!
}

# watchdog_stop: end the watchdog (its process group: the bash and its sleep).
watchdog_stop() {
  if [[ -n ${WATCHDOG_PID:-} ]] && pid_runs "$WATCHDOG_PID" preflight-it-watchdog; then
    kill -TERM -- "-$WATCHDOG_PID" 2>/dev/null || true
  fi
  [[ -z ${WATCHDOG_PID:-} ]] || wait "$WATCHDOG_PID" 2>/dev/null || true
}

# ---- a test's start and end ------------------------------------------------------------------

# it_skip WHY: the test cannot run here: "skip: WHY", exit 77 (ctest's SKIP_RETURN_CODE).
it_skip() { echo "skip: $*"; exit 77; }

# it_requires [--root WHY] [--py MODULE] [TOOL]...: skip the test (it_skip, naming what is
# missing) unless it runs as root (WHY: what needs root), every Python MODULE imports in IT_PY
# and every TOOL is a command.
it_requires() {
  while (($#)); do
    case $1 in
      --root) [[ $(id -u) -eq 0 ]] || it_skip "needs root: $2"; shift 2 ;;
      --py) "$IT_PY" -c "import $2" 2>/dev/null || it_skip "python3-$2 not installed (contrib/install-deps.sh)"; shift 2 ;;
      *) command -v "$1" >/dev/null || it_skip "$1 not installed (contrib/install-deps.sh)"; shift ;;
    esac
  done
}

# it_begin NAME BINARY: PASS and FAIL set to 0; BINARY must be executable (else one failed
# scenario and exit 1); IT_DIR made: /tmp/preflight-NAME-it.XXXXXX, mode 755 (Postfix's and
# smtp-sink's users read it, and Postfix's daemons reach unix sockets through it), with out/.
it_begin() {
  PASS=0 FAIL=0
  if [[ ! -x $2 ]]; then
    echo "not ok - binary: expected $2, got none (build the $(basename "$2") target)"
    echo "0 passed, 1 failed"
    exit 1
  fi
  IT_DIR=$(mktemp -d "/tmp/preflight-$1-it.XXXXXX")
  chmod 755 "$IT_DIR"
  mkdir -p "$IT_DIR/out"
}

# it_end RC WHAT: the end of a test's EXIT trap, after it stopped its own daemons: the
# watchdog stopped; IT_DIR removed after a passing run, kept otherwise or with IT_KEEP=1 (its
# path and WHAT, the files worth reading, printed); exit RC.
it_end() {
  watchdog_stop
  if [[ $1 -eq 0 && $FAIL -eq 0 && ${IT_KEEP:-0} != 1 ]]; then
    rm -rf "$IT_DIR"
  else
    echo "# kept $IT_DIR ($2)"
  fi
  exit "$1"
}

# ---- preflight-milter on an inet socket --------------------------------------------------------

# milter_start_inet VAR CONF LOG PORT: $MILTER (the test sets it) -f -c CONF, its stderr appended to LOG,
# its PID into VAR (and tracked); waits until it listens on 127.0.0.1:PORT (10 s at most).
milter_start_inet() {
  local var=$1 conf=$2 log=$3 port=$4 pid
  "$MILTER" -f -c "$conf" >>"$log" 2>&1 </dev/null &
  pid=$!
  track_pid "$pid" preflight-milter
  printf -v "$var" '%s' "$pid"
  if ! wait_for 100 tcp_open 127.0.0.1 "$port"; then
    echo "milter $conf did not listen on $port within 10 s: $(tail -3 "$log")" >&2
    return 1
  fi
}

# ---- testdns.py ----------------------------------------------------------------------------

# dns_start TESTDNS ZONEFILE [ARGS...]: serve ZONEFILE on 127.0.0.1, any free port (or the one
# ARGS give with --port); sets DNS_PID, DNS_PORT, DNS_STATS (the per-(name,type) query counts).
# ARGS go to testdns.py after the defaults. Dies with the test (--parent-pid).
dns_start() {
  local testdns=$1 zone=$2 d=$IT_DIR/dns
  shift 2
  mkdir -p "$d"
  rm -f "$d/port"
  DNS_STATS=$d/stats
  "$IT_PY" "$testdns" --zone "$zone" --addr 127.0.0.1 --port 0 --port-file "$d/port" \
    --pid-file "$d/pid" --stats-file "$DNS_STATS" --query-log "$d/queries.log" \
    --max-seconds 900 --parent-pid $$ "$@" >>"$d/log" 2>&1 </dev/null &
  DNS_PID=$!
  track_pid "$DNS_PID" testdns.py
  if ! wait_for 100 file_nonempty "$d/port"; then
    echo "testdns did not start within 10 s: $(tail -5 "$d/log")" >&2
    return 1
  fi
  DNS_PORT=$(<"$d/port")
}

# dns_total: all queries counted so far.
dns_total() {
  [[ -f $DNS_STATS ]] || { echo 0; return; }
  awk '$1 !~ /^\*/ { s += $3 } END { print s + 0 }' "$DNS_STATS"
}

# dns_delayed_at_once: the most distinct questions for delayed names (delay.test, --delay)
# that waited for their answers at the same time: 1 for lookups made one after the other.
dns_delayed_at_once() { dns_count '*delayed-at-once' MAX; }

# dns_count NAME TYPE: the queries counted so far for NAME (lower case, no trailing dot) and TYPE.
dns_count() {
  [[ -f $DNS_STATS ]] || { echo 0; return; }
  awk -v n="$1" -v t="$2" '$1 == n && $2 == t { c = $3 } END { print c + 0 }' "$DNS_STATS"
}

# dns_count_at_least NAME TYPE N: at least N such queries counted (for wait_for).
dns_count_at_least() { (($(dns_count "$1" "$2") >= $3)); }

# ---- quota_drive.py ------------------------------------------------------------------------

# quota_drive NAME PORT ARGS...: tests/integration/quota_drive.py (SMTP clients in parallel)
# against 127.0.0.1:PORT, its JSON summary in out/NAME.json, its errors in out/NAME.err.
quota_drive() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$IT_DIR/out"
  timeout 200 "$IT_PY" "$IT_HERE/quota_drive.py" --port "$port" --tag "$name" --max-seconds 150 "$@" \
    >"$IT_DIR/out/$name.json" 2>"$IT_DIR/out/$name.err"
}

# drive_field NAME EXPR: a value from out/NAME.json (EXPR in Python over the dict d).
drive_field() {
  "$IT_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$IT_DIR/out/$1.json" "$2" 2>/dev/null
}

# ---- redis-server --------------------------------------------------------------------------

# redis_store_unit_tests UNIT NAME HOST:PORT: the stores' own Redis tests (milter_unit_tests
# binary UNIT, "[redis]": exact limit, release, rollover, concurrency, AUTH) against the Redis
# at HOST:PORT as redis_auth_setup's user; their output in out/NAME.log. A failure is the
# scenario's (bad), naming the first failed checks.
redis_store_unit_tests() {
  local unit=$1 log=$IT_DIR/out/$2.log
  mkdir -p "$IT_DIR/out"
  # -w NoTests: a filter that selects no case fails; a case run without the Redis fails itself.
  if ! PREFLIGHT_TEST_REDIS=$3 PREFLIGHT_TEST_REDIS_PASSWORD_FILE=$IT_DIR/redis/user.pass \
    PREFLIGHT_TEST_REDIS_REQUIREPASS_FILE=$IT_DIR/redis/default.pass \
    timeout 120 "$unit" -w NoTests "[redis]" >"$log" 2>&1; then
    bad "milter_unit_tests [redis] failed: $(grep -m3 -E 'FAILED|with expansion' -A2 "$log" | tr '\n' ' ')"
  fi
}

# redis_auth_setup: a Redis that requires authentication, as a cluster would run it. Writes
# $IT_DIR/redis/user.pass ("preflight:PASSWORD", an ACL user allowed the keys of the quota and
# suppression stores, pfq:* and pfs:*, and no dangerous command) and $IT_DIR/redis/default.pass
# (the requirepass of the default user), both mode 0600; sets REDIS_AUTH_ARGS (for redis-server,
# used by redis_start) and REDIS_CLI_AUTH (for redis-cli, as the default user). Fixed passwords:
# a test's inputs are not random.
REDIS_AUTH_ARGS=() REDIS_CLI_AUTH=()
redis_auth_setup() {
  local d=$IT_DIR/redis
  mkdir -p "$d"
  (umask 077 && printf 'preflight:quota-user-pw-18\n' >"$d/user.pass" && printf 'default-pw-18\n' >"$d/default.pass")
  REDIS_AUTH_ARGS=(--requirepass default-pw-18
    --user preflight on '>quota-user-pw-18' '~pfq:*' '~pfs:*' '+@all' '-@dangerous' '+role' '+wait')
  REDIS_CLI_AUTH=(-a default-pw-18 --no-auth-warning)
}

# redis_start [ARGS...]: a redis-server of the test's own on 127.0.0.1:$REDIS_PORT, no
# persistence, its files under $IT_DIR/redis (the system's redis service is neither needed nor
# touched), with REDIS_AUTH_ARGS (redis_auth_setup) and ARGS. Sets REDIS_PID (tracked for the
# watchdog); waits, 10 s at most, until it answers PING.
redis_start() {
  mkdir -p "$IT_DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$IT_DIR/redis" \
    --daemonize no --protected-mode yes "${REDIS_AUTH_ARGS[@]}" "$@" >"$IT_DIR/redis/log" 2>&1 </dev/null &
  REDIS_PID=$!
  track_pid "$REDIS_PID" redis-server
  if ! wait_for 100 redis_answers; then
    echo "redis-server did not answer PING on 127.0.0.1:$REDIS_PORT within 10 s: $(tail -3 "$IT_DIR/redis/log")" >&2
    return 1
  fi
}

# redis_answers: the redis-server on $REDIS_PORT answers PING (for wait_for).
redis_answers() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "${REDIS_CLI_AUTH[@]}" ping 2>/dev/null) == PONG ]]; }

# ---- smtp-sink -----------------------------------------------------------------------------

# sink_start PORT [NAME]: smtp-sink on 127.0.0.1:PORT writing one file per mail transaction under
# $IT_DIR/NAME/ (default sink; smtp-sink's own X-Mail-Args / X-Rcpt-Args headers, then the
# message), its output in $IT_DIR/NAME.log. Sets SINK_PID and SINK_DIR (of the last one started).
# timeout bounds its life even if nobody stops it.
sink_start() {
  local port=$1 name=${2:-sink}
  SINK_DIR=$IT_DIR/$name
  mkdir -p "$SINK_DIR"
  chown nobody "$SINK_DIR" 2>/dev/null || chmod 0777 "$SINK_DIR"
  # -u: smtp-sink refuses to run as root without it; it switches after binding.
  timeout 900 /usr/sbin/smtp-sink -u nobody -d "$SINK_DIR/msg." "127.0.0.1:$port" 256 \
    >"$IT_DIR/$name.log" 2>&1 </dev/null &
  SINK_PID=$!
  track_pid "$SINK_PID" smtp-sink
  if ! wait_for 100 tcp_open 127.0.0.1 "$port"; then
    echo "smtp-sink did not listen within 10 s: $(tail -5 "$IT_DIR/$name.log")" >&2
    return 1
  fi
}

# ---- throwaway Postfix ---------------------------------------------------------------------
# PF_ETC (config), PF_QUEUE, PF_DATA, log in PF_LOG (maillog_file + postlogd: these machines
# have no syslog). Every daemon unchrooted (unix milter sockets, /etc files).
#
# Several instances may run side by side (no multi_instance: each has its own config directory,
# passed with -c, and its own queue, data directory, log, ports, myhostname and syslog_name).
# The helpers act on the current instance: the default one (PF_NAME empty: $IT_DIR/pf-etc,
# pf-queue, pf-data, maillog, myhostname mta.preflight-it.test) unless pf_use NAME selected
# another ($IT_DIR/pf-etc-NAME, pf-queue-NAME, pf-data-NAME, maillog-NAME, mta-NAME...).

# pf_use [NAME]: make NAME (empty: the default instance) the current one; sets PF_NAME, PF_ETC,
# PF_QUEUE, PF_DATA, PF_LOG and PF_PID (that instance's master, empty if not started).
pf_use() {
  local name=${1:-} sfx
  if [[ -n $name && ! $name =~ ^[a-z0-9]+$ ]]; then
    echo "pf_use: instance name '$name' is not [a-z0-9]+" >&2
    return 1
  fi
  sfx=${name:+-$name}
  PF_NAME=$name
  PF_ETC=$IT_DIR/pf-etc$sfx PF_QUEUE=$IT_DIR/pf-queue$sfx PF_DATA=$IT_DIR/pf-data$sfx
  PF_LOG=$IT_DIR/maillog$sfx
  PF_PID=${PF_PIDS[${name:-_}]:-}
}

# pf: run a postfix command against the instance. Postfix prints errors only to a terminal
# (else to the log, which may not exist yet): give it a pty with script(1).
pf() { timeout 60 script -qec "postfix -c '$PF_ETC' $*" /dev/null; }

# pf_configure SINK_PORT SERVICE...: write main.cf and master.cf. Each SERVICE is
# "PORT MILTER" (MILTER in Postfix syntax, inet:127.0.0.1:P or unix:/path; "none" for none):
# one smtpd on 127.0.0.1:PORT with smtpd_milters=MILTER.
pf_configure() {
  local sink_port=$1 svc port milter sfx=${PF_NAME:+-$PF_NAME}
  shift
  pf_use "$PF_NAME" || return 1
  mkdir -p "$PF_ETC" "$PF_QUEUE" "$PF_DATA"
  cat >"$PF_ETC/main.cf" <<EOF
# throwaway instance of tests/integration (generated)
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF_LOG
maillog_file_prefixes = $IT_DIR
myhostname = mta$sfx.preflight-it.test
syslog_name = postfix$sfx
mydomain = preflight-it.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:local delivery is disabled
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
relayhost = [127.0.0.1]:$sink_port
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
append_dot_mydomain = no
# above the milter's 20 MB limit, so the milter is the one that refuses big mail
message_size_limit = 52428800
milter_default_action = tempfail
milter_protocol = 6
# the milter answers within DnsTimeout; these only bound a hung milter
milter_connect_timeout = 10s
milter_command_timeout = 20s
milter_content_timeout = 60s
smtpd_milters =
non_smtpd_milters =
# nothing may linger in the queue: a failed delivery to the sink shows as deferred at once
queue_run_delay = 300s
minimal_backoff_time = 300s
notify_classes =
EOF
  {
    echo "# generated; chroot column n everywhere"
    for svc in "$@"; do
      port=${svc%% *} milter=${svc#* }
      [[ $milter == none ]] && milter=
      echo "127.0.0.1:$port inet n - n - - smtpd -o smtpd_milters=$milter -o syslog_name=postfix$sfx/smtpd-$port"
    done
    cat <<'EOF'
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
  } >"$PF_ETC/master.cf"
}

# pf_start PORT...: set permissions, check, start the current instance; wait until every PORT
# listens. Sets PF_PID (the master; also kept in PF_PIDS for pf_use and pf_stop_all). Errors:
# the output of postfix check/start and the log tail.
pf_start() {
  local out p
  : >"$PF_LOG"
  # postfix check creates the queue tree; the data directory (master.lock) must be postfix's.
  # (No "postfix set-permissions": it would also walk the system's Postfix files.)
  chown postfix "$PF_DATA" && chmod 0700 "$PF_DATA" || return 1
  if ! out=$(pf check 2>&1); then
    echo "postfix check failed: $out" >&2
    return 1
  fi
  if ! out=$(pf start 2>&1); then
    echo "postfix start failed: $out; log: $(tail -5 "$PF_LOG")" >&2
    return 1
  fi
  if ! wait_for 100 file_nonempty "$PF_QUEUE/pid/master.pid"; then
    echo "postfix master wrote no pid file within 10 s; log: $(tail -5 "$PF_LOG")" >&2
    return 1
  fi
  PF_PID=$(pid_from_file "$PF_QUEUE/pid/master.pid")
  PF_PIDS[${PF_NAME:-_}]=$PF_PID
  track_pid "$PF_PID" master
  for p in "$@"; do
    if ! wait_for 100 tcp_open 127.0.0.1 "$p"; then
      echo "postfix not listening on 127.0.0.1:$p within 10 s; log: $(tail -5 "$PF_LOG")" >&2
      return 1
    fi
  done
}

# pf_stop: stop the current instance: postfix stop, wait up to 10 s for the master to go, then
# SIGKILL that PID only.
pf_stop() {
  if [[ -n ${PF_PID:-} ]] && pid_runs "$PF_PID" master; then
    timeout 20 postfix -c "$PF_ETC" stop >/dev/null 2>&1 || kill -TERM "$PF_PID" 2>/dev/null || true
    wait_for 100 pid_gone "$PF_PID" master || kill -KILL "$PF_PID" 2>/dev/null || true
  fi
}

# pf_stop_all: pf_stop every instance started by pf_start (by its recorded master PID), and the
# current one; the current instance stays selected.
pf_stop_all() {
  local cur=$PF_NAME name
  pf_stop
  for name in "${!PF_PIDS[@]}"; do
    [[ $name == _ ]] && name=''
    pf_use "$name" && pf_stop
  done
  pf_use "$cur"
}

# pf_queue_count: messages still in the instance's queue (0 when everything was delivered).
pf_queue_count() {
  find "$PF_QUEUE"/{incoming,active,deferred,hold,maildrop} -type f 2>/dev/null | wc -l
}

# pf_wait_sent QID [TENTHS]: wait until the log says QID was delivered to the sink and removed
# from the queue (default 20 s). Prints the status line(s) of QID on failure.
pf_wait_sent() {
  local qid=$1 n=${2:-200}
  if wait_for "$n" grep -q " $qid: removed" "$PF_LOG"; then
    grep -q " $qid: .*status=sent" "$PF_LOG" && return 0
  fi
  grep " $qid: " "$PF_LOG" | grep -o 'status=.*' | tail -2 >&2
  return 1
}

# ---- scenarios, SMTP clients, transcript assertions --------------------------------------------
# Shared by the MTA tests (milter_postfix.sh keeps its own copies of these, identical in
# behaviour). The test sets PASS=0 FAIL=0 and IT_DIR (with IT_DIR/out) before using them.

# setup_or_die WHAT CMD...: a broken harness is one failed scenario and the end of the run.
setup_or_die() {
  local what=$1 err
  shift
  # not in a subshell: the helpers set variables (PIDs, ports) for the rest of the test
  if ! "$@" >/dev/null 2>"$IT_DIR/setup.err"; then
    err=$(<"$IT_DIR/setup.err")
    echo "not ok - setup: $what: ${err//$'\n'/ }"
    FAIL=$((FAIL + 1))
    echo "$PASS passed, $FAIL failed"
    exit 1
  fi
}

# ---- scenario bookkeeping ----------------------------------------------------------------------

SC='' ERRS=''
sc() { SC=$1 ERRS=''; }
bad() { ERRS+="${ERRS:+; }$*"; }
sc_end() {
  if [[ -z $ERRS ]]; then
    echo "ok - $SC"
    PASS=$((PASS + 1))
  else
    echo "not ok - $SC: $ERRS"
    FAIL=$((FAIL + 1))
  fi
}

# ---- SMTP clients --------------------------------------------------------------------------------
# Both write out/NAME.tr: one line per server reply, "STAGE<TAB>reply", where STAGE is CONNECT,
# EHLO, MAIL, RCPT, DATA, EOD (the reply to the final ".") or QUIT, and a multi-line reply is
# joined into one line: "550 5.7.26 first line text second line text" (the code and enhanced
# code of the continuation lines dropped). Client-side errors (timeouts) are "ERROR<TAB>text".

# swaks_transcript: swaks output on stdin -> .tr lines on stdout.
swaks_transcript() {
  awk '
    BEGIN { stage = "CONNECT"; indata = 0; buf = "" }
    /^<(-|\*\*) / {
      line = substr($0, 5); sub(/\r$/, "", line)
      code = substr(line, 1, 3); sep = substr(line, 4, 1); text = substr(line, 5)
      if (buf == "") buf = code " " text
      else { sub(/^[245]\.[0-9]+\.[0-9]+ /, "", text); buf = buf " " text }
      if (sep != "-") {
        print stage "\t" buf; buf = ""
        if (stage == "DATA" && code == "354") indata = 1
        else if (stage == "EOD") indata = 0
      }
      next
    }
    /^ (->|~>) / {
      if (indata) { stage = "EOD"; next }
      cmd = toupper($2); sub(/:.*/, "", cmd); stage = cmd; next
    }
    /^\*\*\* / { print "ERROR\t" substr($0, 5) }
  '
}

# send NAME PORT SWAKS-ARGS...: one swaks session against Postfix on PORT; DATA is summarised.
send() {
  local name=$1 port=$2
  shift 2
  timeout 120 swaks --server "127.0.0.1:$port" --timeout 30 --helo client.preflight-it.test \
    --suppress-data --h-X-Test-Id "$name" "$@" >"$IT_DIR/out/$name.swaks" 2>&1 </dev/null
  swaks_transcript <"$IT_DIR/out/$name.swaks" >"$IT_DIR/out/$name.tr"
}

# raw_mail NAME PORT MAIL-ARGS: EHLO, "MAIL FROM:MAIL-ARGS", QUIT over bash's /dev/tcp, for what
# swaks cannot do (ESMTP parameters such as SIZE=) and for timing: sets MAIL_MS, the time from
# sending MAIL FROM to its complete reply.
raw_mail() {
  local name=$1 port=$2 args=$3 fd t0
  local tr=$IT_DIR/out/$name.tr log=$IT_DIR/out/$name.swaks
  : >"$tr"
  : >"$log"
  MAIL_MS=
  if ! exec {fd}<>"/dev/tcp/127.0.0.1/$port"; then
    printf 'ERROR\tcannot connect to 127.0.0.1:%s\n' "$port" >>"$tr"
    return 1
  fi
  raw_reply "$fd" CONNECT "$tr" "$log" &&
    raw_cmd "$fd" "EHLO client.preflight-it.test" EHLO "$tr" "$log" && {
      t0=$EPOCHREALTIME
      raw_cmd "$fd" "MAIL FROM:$args" MAIL "$tr" "$log" &&
        MAIL_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
    } && raw_cmd "$fd" QUIT QUIT "$tr" "$log"
  exec {fd}>&-
}

# expect_mail_before_hang: raw_mail's MAIL FROM got its reply before IT_HANG_MS.
expect_mail_before_hang() {
  [[ -n $MAIL_MS ]] && ((MAIL_MS < IT_HANG_MS)) ||
    bad "expected a MAIL FROM reply (hang bound $IT_HANG_MS ms), got ${MAIL_MS:-none} ms"
}

# expect_dns_tempfail NAME DOMAIN REGEX: the MAIL FROM of raw_mail NAME (sender at DOMAIN) got
# REGEX, testdns counted the DOMAIN MX query behind it (5 s at most), and no hang.
expect_dns_tempfail() {
  local name=$1 domain=$2 want=$3
  expect_reply "$name" MAIL "$want"
  wait_for 50 dns_count_at_least "$domain" MX 1 ||
    bad "expected testdns to have counted the $domain MX query, got $(dns_count "$domain" MX)"
  expect_mail_before_hang
}

raw_cmd() { # FD LINE STAGE TR LOG
  printf '%s\r\n' "$2" >&"$1" || return 1
  printf ' -> %s\n' "$2" >>"$5"
  raw_reply "$1" "$3" "$4" "$5"
}

raw_reply() { # FD STAGE TR LOG: read one (multi-line) reply, 30 s and 100 lines at most
  local fd=$1 stage=$2 tr=$3 log=$4 line joined='' i text
  for ((i = 0; i < 100; i++)); do
    if ! IFS= read -r -t 30 -u "$fd" line; then
      printf 'ERROR\tno complete reply to %s within 30 s\n' "$stage" >>"$tr"
      return 1
    fi
    line=${line%$'\r'}
    printf '<-  %s\n' "$line" >>"$log"
    text=${line:4}
    if [[ -z $joined ]]; then
      joined="${line:0:3} $text"
    else
      [[ $text =~ ^[245]\.[0-9]+\.[0-9]+\ (.*)$ ]] && text=${BASH_REMATCH[1]}
      joined+=" $text"
    fi
    if [[ ${line:3:1} != - ]]; then
      printf '%s\t%s\n' "$stage" "$joined" >>"$tr"
      return 0
    fi
  done
  return 1
}

# ---- assertions on a transcript ------------------------------------------------------------------

# reply_at NAME STAGE [N]: the Nth reply (default first) at STAGE.
reply_at() {
  awk -F'\t' -v s="$2" -v n="${3:-1}" '$1 == s && ++c == n { print $2; exit }' "$IT_DIR/out/$1.tr"
}

# what_happened NAME: a short account for failure messages (first refusal or client error).
what_happened() {
  local tr=$IT_DIR/out/$1.tr
  awk -F'\t' '$1 == "ERROR" || $2 ~ /^[45]/ { print $1 ": " $2; found = 1; exit }
              END { if (!found) print "no refusal" }' "$tr"
}

# expect_reply NAME STAGE[#N] REGEX: the reply at STAGE (the Nth) matches the ERE.
expect_reply() {
  local name=$1 st=$2 re=$3 n=1 got
  if [[ $st == *#* ]]; then n=${st#*#} st=${st%#*}; fi
  got=$(reply_at "$name" "$st" "$n")
  if [[ -z $got ]]; then
    bad "expected $st reply /$re/, got no $st reply ($(what_happened "$name"))"
  elif ! [[ $got =~ $re ]]; then
    bad "expected $st reply /$re/, got '$got'"
  fi
}

# expect_refusal NAME STAGES REGEX: the first 4xx/5xx reply matches REGEX and came at one of
# STAGES (an ERE such as "MAIL|EOD": some decisions may be taken early or at end of data).
expect_refusal() {
  local name=$1 stages=$2 re=$3 first st got
  first=$(awk -F'\t' '$1 == "ERROR" || $2 ~ /^[45]/ { print; exit }' "$IT_DIR/out/$name.tr")
  st=${first%%$'\t'*} got=${first#*$'\t'}
  if [[ -z $first ]]; then
    bad "expected a refusal /$re/ at $stages, got none (EOD: $(reply_at "$name" EOD))"
  elif ! [[ $st =~ ^($stages)$ && $got =~ $re ]]; then
    bad "expected /$re/ at $stages, got $st: '$got'"
  fi
}

