#!/usr/bin/env bash
# socketmap_bench.sh BUILD_DIR [SECONDS] - requests/s and latency of `preflight-classify serve`
# over 1 and 50 connections, on a unix socket and on inet 127.0.0.1 (a free port).
# Starts the server (its own temp dir), runs build/tests/socketmap_bench, stops the server by PID.
#   PREFLIGHT_CLASSIFY=PATH serves with that binary instead of BUILD_DIR/preflight-classify.
# The rate is the replies socketmap_bench received (it fails on no reply, on a reply other than
# OK/NOTFOUND and on a key answered two ways). The server must answer within 5 s of its start,
# stay up through every run and exit 0 on SIGTERM (as documented); anything else fails,
# naming the program and how it ended. Each client run is bounded by SECONDS + 60 s.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/tests/bench/bench_lib.sh"
BUILD=${1:?usage: socketmap_bench.sh BUILD_DIR [SECONDS]}
SECS=${2:-5}
BIN=${PREFLIGHT_CLASSIFY:-$BUILD/preflight-classify} BENCH=$BUILD/tests/socketmap_bench
[[ -x $BIN ]] || bench_die "$BIN is not an executable"
[[ -x $BENCH ]] || bench_die "$BENCH is not built"
TMP=$(mktemp -d)
PID=''
# The server runs in its own process group (setsid), so that what it started goes with it.
cleanup() {
  if [[ -n $PID ]]; then kill -KILL -- "-$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
SERVE="preflight-classify serve ($BIN)"

# alive: the server is running (an exited child stays a zombie until waited for: kill -0 passes).
alive() { [[ $(sed 's/.*) //' "/proc/$PID/stat" 2>/dev/null | cut -d' ' -f1) =~ ^[^Z]$ ]]; }
# server_gone WHEN: if the server has exited, fail saying how and when.
server_gone() {
  alive && return 0
  local rc=0
  wait "$PID" || rc=$?
  PID=''
  tail -n 5 "$TMP/serve.log" >&2
  bench_die "$SERVE $(bench_how "$rc") $1"
}
# client ARGS...: one socketmap_bench run; fails naming the server when it was the one to die.
client() {
  local rc=0
  timeout -k 5 $((${SECS%.*} + 60)) "$BENCH" "$@" 2>"$TMP/bench.err" || rc=$?
  cat "$TMP/bench.err" >&2
  server_gone "during socketmap_bench $*"
  ((rc == 0)) || bench_die "socketmap_bench $* $(BENCH_TIMEOUT=$((${SECS%.*} + 60)) bench_how "$rc"): $(tail -n 1 "$TMP/bench.err")"
}

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for listen in "unix:$TMP/status.sock" "inet:127.0.0.1:$PORT"; do
  : >"$TMP/serve.log"
  setsid "$BIN" serve --listen "$listen" --run-as-root 2>>"$TMP/serve.log" &
  PID=$!
  ready=''
  for ((i = 0; i < 50; i++)); do
    server_gone "before it answered on $listen"
    if timeout 5 "$BENCH" --connect "$listen" --seconds 0.1 --warmup 0 >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
  done
  [[ -n $ready ]] || bench_die "$SERVE did not answer on $listen within 5 s"
  echo "# $listen"
  client --connect "$listen" --connections 1 --seconds "$SECS"
  client --connect "$listen" --connections 50 --threads 2 --seconds "$SECS"
  kill -TERM "$PID"
  for ((i = 0; i < 100; i++)); do alive || break; sleep 0.1; done
  alive && bench_die "$SERVE did not stop within 10 s of SIGTERM"
  rc=0; wait "$PID" || rc=$?; PID=''
  if ((rc != 0)); then
    tail -n 5 "$TMP/serve.log" >&2
    bench_die "$SERVE $(bench_how "$rc") on SIGTERM (documented: 0)"
  fi
done
