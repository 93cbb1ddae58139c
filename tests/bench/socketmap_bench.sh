#!/usr/bin/env bash
# socketmap_bench.sh BUILD_DIR [SECONDS] - requests/s and latency of `preflight-classify serve`
# over 1 and 50 connections, on a unix socket and on inet 127.0.0.1 (a free port).
# Starts the server (its own temp dir), runs build/tests/socketmap_bench, stops the server by PID.
set -euo pipefail
BUILD=${1:?usage: socketmap_bench.sh BUILD_DIR [SECONDS]}
SECS=${2:-5}
BIN=$BUILD/preflight-classify BENCH=$BUILD/tests/socketmap_bench
TMP=$(mktemp -d)
PID=''
cleanup() { [[ -n $PID ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for listen in "unix:$TMP/status.sock" "inet:127.0.0.1:$PORT"; do
  "$BIN" serve --listen "$listen" --run-as-root 2>>"$TMP/serve.log" &
  PID=$!
  for ((i = 0; i < 50; i++)); do
    "$BENCH" --connect "$listen" --seconds 0.1 --warmup 0 >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "# $listen"
  "$BENCH" --connect "$listen" --connections 1 --seconds "$SECS"
  "$BENCH" --connect "$listen" --connections 50 --threads 2 --seconds "$SECS"
  kill -TERM "$PID"; wait "$PID" || true; PID=''
done
