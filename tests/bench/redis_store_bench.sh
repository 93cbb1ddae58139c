#!/usr/bin/env bash
# redis_store_bench.sh BUILD_DIR [SECONDS]: what the quota check per recipient costs on Redis as
# a cluster runs it. Starts, on 127.0.0.1 under one temp dir (tests/integration/redis_lib.sh),
# three stores with the ACL user and requirepass: a plain Redis; a TLS-only Redis behind stunnel
# (contrib/redis-tls/); a master, one replica and one sentinel. For each, BM_ReserveConfStore of
# build/tests/bench_quota (one reserve() of one counter per recipient, over a conf with
# QuotaStorePasswordFile, the way the milter opens its store) runs SECONDS (default 3) and its
# line is printed. In Sentinel mode each reserve also waits for the replica (WAIT 1).
# A figure is printed only for a run that ended with status 0 and reported its benchmark; the
# script exits 1 naming the store otherwise. Stops everything it started by PID.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../integration/lib.sh"
. "$HERE/../integration/redis_lib.sh"
. "$HERE/bench_lib.sh"

BUILD_DIR=${1:?usage: redis_store_bench.sh BUILD_DIR [SECONDS]}
SECONDS_EACH=${2:-3}
BENCH=$(realpath -m "$BUILD_DIR/tests/bench_quota")
[[ -x $BENCH ]] || bench_die "no $BENCH (build the bench_quota target)"
for tool in redis-server redis-cli stunnel openssl; do
  command -v "$tool" >/dev/null || bench_die "$tool is not installed (contrib/install-deps.sh)"
done

IT_DIR=$(mktemp -d /tmp/preflight-redis-bench.XXXXXX)
REDIS_PID=''
cleanup() {
  stop_pids 50 "$REDIS_PID" redis-server
  redis_lib_stop
  watchdog_stop
  rm -rf "$IT_DIR"
}
trap cleanup EXIT
watchdog_start 900

free_port REDIS_PORT && free_port TLS_PORT && free_port LP && free_port RM1 && free_port RM2 && free_port S1 ||
  bench_die "no free ports"
redis_auth_setup
redis_start || bench_die "redis-server did not start"
make_pki || bench_die "openssl: $(tail -2 "$IT_DIR/tls/openssl.log")"
redis_tls_start || bench_die "the TLS redis-server did not start"
stunnel_start relay "$LP" redis.preflight-it.test ca || bench_die "stunnel did not start"
# shellcheck disable=SC2034 # read by redis_lib.sh's cluster_start
REDIS_NODES=("$RM1" "$RM2") SENTINELS=("$S1") SEN_QUORUM=1
cluster_start 2>"$IT_DIR/cluster.err" || bench_die "Sentinel setup: $(cat "$IT_DIR/cluster.err")"

# conf NAME STORE [SENTINEL_PASSWORD_FILE]: $IT_DIR/NAME.conf for BM_ReserveConfStore.
conf() {
  {
    echo "EgressAddresses 127.0.0.1"
    echo "QuotaRecipients 1000000000/day"
    echo "QuotaStore $2"
    echo "QuotaStorePasswordFile $IT_DIR/redis/user.pass"
    [[ -z ${3:-} ]] || echo "QuotaStoreSentinelPasswordFile $3"
  } >"$IT_DIR/$1.conf"
}
conf plain "redis://127.0.0.1:$REDIS_PORT"
conf stunnel "redis://127.0.0.1:$LP"
conf sentinel "redis-sentinel://127.0.0.1:$S1/mymaster" "$IT_DIR/sentinel.pass"

echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); BM_ReserveConfStore/1, ${SECONDS_EACH} s each"
for name in plain stunnel sentinel; do
  bench_timed "$IT_DIR/$name.out" "$IT_DIR/$name.err" env PREFLIGHT_BENCH_QUOTA_CONF="$IT_DIR/$name.conf" \
    "$BENCH" --benchmark_filter='BM_ReserveConfStore/1/' --benchmark_min_time="$SECONDS_EACH"
  line=$(grep -E '^BM_ReserveConfStore/1/real_time ' "$IT_DIR/$name.out")
  ((BENCH_RC == 0)) && [[ -n $line && $line != *ERROR* ]] ||
    bench_die "$name: bench_quota $(bench_how "$BENCH_RC"): $(tail -3 "$IT_DIR/$name.out" "$IT_DIR/$name.err" | tr '\n' ' ')"
  printf '%-9s %s\n' "$name" "$line"
done
