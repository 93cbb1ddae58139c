#!/usr/bin/env bash
# with_redis.sh TEST_EXE [CATCH ARGS...]: run Catch2 test cases against a Redis of their own.
# Starts redis-server on a free loopback port (no persistence, its own temp dir), waits until it
# answers, runs TEST_EXE with PREFLIGHT_TEST_REDIS=127.0.0.1:PORT, stops that redis-server by
# its PID. Exit: the test's own, 77 (skipped) when redis-server is not installed, 1 when it
# does not start. The cases must run: -w NoTests makes a filter that selects nothing fail.
set -u
EXE=${1:?usage: with_redis.sh TEST_EXE [CATCH ARGS...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/lib.sh
. "$here/../integration/lib.sh"
command -v redis-server >/dev/null || { echo "skip: redis-server is not installed (contrib/install-deps.sh)"; exit 77; }

IT_DIR=$(mktemp -d /tmp/preflight-redis-unit.XXXXXX)
REDIS_PID=''
cleanup() {
  stop_pids 50 "$REDIS_PID" redis-server
  rm -rf "$IT_DIR"
}
trap cleanup EXIT

redis_answers() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
free_port REDIS_PORT || exit 1
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$IT_DIR" \
  --daemonize no --protected-mode yes >"$IT_DIR/log" 2>&1 </dev/null &
REDIS_PID=$!
if ! wait_for 100 redis_answers; then
  echo "redis-server did not answer PING on 127.0.0.1:$REDIS_PORT within 10 s: $(tail -3 "$IT_DIR/log")" >&2
  exit 1
fi
PREFLIGHT_TEST_REDIS=127.0.0.1:$REDIS_PORT "$EXE" -w NoTests "$@"
