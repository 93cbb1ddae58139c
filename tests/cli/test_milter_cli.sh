#!/usr/bin/env bash
# preflight-milter as a process, without an MTA: the sample conf checks, the PidFile is written
# and removed, and a symlink planted at the PidFile path is not followed (the milter writes it
# as root). Loopback only, bounded waits, only the PIDs started here are stopped.
set -u
BIN=${1:?usage: test_milter_cli.sh PATH/TO/preflight-milter SOURCE_DIR}
SRC=${2:?usage: test_milter_cli.sh PATH/TO/preflight-milter SOURCE_DIR}
TMP=$(mktemp -d)
PID=''
cleanup() {
  [[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fails=0 passes=0
check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi; }
wait_for() { local n=$1 i; shift; for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }

"$BIN" -n -c "$SRC/conf/preflight.conf" >/dev/null 2>&1; check "the shipped sample conf checks" $?

conf() {  # conf PIDFILE
  cat >"$TMP/m.conf" <<EOC
Socket unix:$TMP/m.sock
Syslog no
RunAsRoot yes
Nameservers 127.0.0.1:9
EgressAddresses 127.0.0.1
PidFile $1
EOC
}
run() {  # run: start, wait for the socket, stop with SIGTERM; the log in $TMP/m.log
  rm -f "$TMP/m.log"  # else "starting:" of the last run could be read before this one starts
  "$BIN" -f -c "$TMP/m.conf" 2>"$TMP/m.log" </dev/null &
  PID=$!
  # "starting:" is logged once the signals are the milter's own (a socket file alone may be a
  # leftover of an earlier run)
  wait_for 100 grep -q '^preflight-milter: starting:' "$TMP/m.log" || { echo "not started: $(cat "$TMP/m.log")"; return 1; }
  # the check run while the milter runs decides the result as much as the clean stop does
  local during=0
  [[ -z ${1:-} ]] || "$@" || { during=$?; echo "while running: $* failed"; }
  kill -TERM "$PID"
  gone() { [[ ! -e /proc/$PID/stat || $(awk '{print $3}' "/proc/$PID/stat" 2>/dev/null) == Z ]]; }
  # libmilter's listener looks for a stop request every 5 s
  wait_for 150 gone || { echo "still running 15 s after SIGTERM"; return 1; }
  wait "$PID"
  local rc=$?
  PID=''
  ((rc == 0)) || echo "exit status $rc after SIGTERM"
  ((during == 0)) || return "$during"
  return $rc
}

if [ "$(id -u)" -eq 0 ]; then
  conf "$TMP/m.pid"
  pid_is_ours() { [[ $(cat "$TMP/m.pid" 2>/dev/null) == "$PID" ]]; }
  run pid_is_ours; check "PidFile holds the milter's pid while it runs, exit 0 on SIGTERM" $?
  # only meaningful once the file was there: pid_is_ours above read it
  [ ! -e "$TMP/m.pid" ]; check "PidFile removed at exit" $?

  echo precious >"$TMP/victim"
  ln -s "$TMP/victim" "$TMP/planted.pid"
  conf "$TMP/planted.pid"
  run; check "a planted PidFile symlink: the milter still runs and stops" $?
  [ ! -e "$TMP/m.sock" ]; check "the unix socket is removed at exit" $?
  [ "$(cat "$TMP/victim")" = precious ]; check "a planted PidFile symlink is not followed" $?
  grep -q "PidFile: cannot write $TMP/planted.pid" "$TMP/m.log"; check "the refusal is logged" $?
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ] || exit 1
if [ "$(id -u)" -ne 0 ]; then
  echo "skip: the PidFile checks need root (the milter writes it as root, the case that matters)"
  exit 77
fi
