#!/usr/bin/env bash
# with_redis.sh TEST_EXE [CATCH ARGS...]: run Catch2 test cases against a Redis of their own.
# Starts redis-server on a free loopback port (no persistence, its own temp dir) that requires
# authentication (lib.sh redis_auth_setup: an ACL user and requirepass), waits until it answers,
# runs TEST_EXE with PREFLIGHT_TEST_REDIS=127.0.0.1:PORT, PREFLIGHT_TEST_REDIS_PASSWORD_FILE (the
# ACL user's credentials file) and PREFLIGHT_TEST_REDIS_REQUIREPASS_FILE (the default user's),
# stops that redis-server by its PID. Exit: the test's own, 77 (skipped) when redis-server is not installed, 1 when it
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

free_port REDIS_PORT || exit 1
redis_auth_setup
redis_start || exit 1
PREFLIGHT_TEST_REDIS=127.0.0.1:$REDIS_PORT PREFLIGHT_TEST_REDIS_PASSWORD_FILE=$IT_DIR/redis/user.pass \
  PREFLIGHT_TEST_REDIS_REQUIREPASS_FILE=$IT_DIR/redis/default.pass "$EXE" -w NoTests "$@"
