#!/usr/bin/env bash
# tenants_startup.sh BUILD_DIR [N] - start-up and SIGHUP reload of preflight-milter with a
# tenants file of N lines (default 100,000), generated here the same every run.
#
# Prints: the wall time of `preflight-milter -n` (conf + tenants file read and checked, what
# start-up does before it listens), its peak RSS; then starts the milter (inet socket on a free
# loopback port, SQLite store in a temp dir), and after SIGHUP the time until it logs the
# reloaded tenant count, which is when the new table is in use. A figure is printed only when
# -n said "ok (N tenants)" and the reload logged N tenants; otherwise it exits 1 naming what
# happened. Needs no root.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/bench_lib.sh"
BUILD_DIR=${1:?usage: tenants_startup.sh BUILD_DIR [N]}
N=${2:-100000}
MILTER=$(realpath -m "$BUILD_DIR/preflight-milter")
[[ -x $MILTER ]] || bench_die "no $MILTER"
DIR=$(mktemp -d /tmp/preflight-tenants-bench.XXXXXX)
PID=''
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT

python3 - "$N" >"$DIR/tenants.conf" <<'EOF'
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f"customer-{i:06d}.example QuotaRecipients={1000 + i % 9000}/month,{100 + i % 50}/hour "
          f"MaxRecipients={10 + i % 90} MaxMessageSize={1 + i % 50}M BillingDay={1 + i % 31}")
EOF
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$DIR/preflight.conf" <<EOF
Socket inet:127.0.0.1:$PORT
RunAsRoot yes
Syslog no
AuthPolicy off
SenderDomainMode off
QuotaStore sqlite:$DIR/quota.db
TenantsFile $DIR/tenants.conf
EOF

bench_timed "$DIR/n.out" "$DIR/n.err" "$MILTER" -n -c "$DIR/preflight.conf"
((BENCH_RC == 0)) || bench_die "preflight-milter -n $(bench_how "$BENCH_RC"): $(head -3 "$DIR/n.err")"
grep -qF "ok ($N tenants)" "$DIR/n.out" || bench_die "preflight-milter -n did not load $N tenants: $(cat "$DIR/n.out")"
printf 'start-up check (-n) with %d tenants: %.3f s wall, peak RSS %s KiB\n' "$N" "$BENCH_SECONDS" "$BENCH_RSS_KIB"

"$MILTER" -f -c "$DIR/preflight.conf" >"$DIR/milter.log" 2>&1 </dev/null &
PID=$!
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || bench_die "the milter did not listen: $(tail -3 "$DIR/milter.log")"
t0=$EPOCHREALTIME
kill -HUP "$PID"
for _ in $(seq 1 2000); do
  grep -qF "reload: $N tenants from" "$DIR/milter.log" && break
  sleep 0.005
done
t1=$EPOCHREALTIME
grep -qF "reload: $N tenants from" "$DIR/milter.log" || bench_die "no reload of $N tenants logged: $(tail -3 "$DIR/milter.log")"
awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "SIGHUP reload with %d tenants: %.3f s until logged\n", n, b - a }'
