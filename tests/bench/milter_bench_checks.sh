#!/usr/bin/env bash
# milter_bench_checks.sh BUILD_DIR [MILTER_BENCH_DIR]
# What preflight-milter costs Postfix, measured with the shared loopback harness
# (../shared/milter-bench: its test DNS on 127.0.0.1:5353, its throwaway Postfix, smtp-source and
# smtp-sink), in one run, each milter in turn on its own unix socket:
#   nullmilter   the harness's pass-through milter (the floor every milter pays)
#   default      preflight with the shipped defaults (sender domain, SPF/DKIM, limits)
#   bulk-sender  the defaults and the bulk-sender checks: recipient domains, DMARC record,
#                alignment, one-click unsubscribe, header sanity
#   suppression  the defaults and the suppression list (SQLite, 10,000 entries) at RCPT TO
#   one-tenant   the defaults and a monthly quota from a tenants file of one line (good.test)
#   plans        the same plan in a tenants file of 100,000 lines
#   all-checks   every check on: recipient domains, DMARC record, alignment, one-click
#                unsubscribe, header sanity, the suppression list (SQLite, 10,000 entries), a
#                monthly quota per tenant from a tenants file of 100,000 lines
# and prints each one's "ratio milter/bare cpu ms/msg" (whole machine, the steadiest figure),
# e2e ratio and the milter's own CPU per message, then each preflight row against nullmilter.
# Then the latency each adds from the client's side (tests/bench/milter_latency.py: one message
# per session, alternating with and without the milter, p50/p90/p99) for nullmilter,
# bulk-sender and all-checks.
# Env: ROUNDS (3), N (2000): passed to the harness's throughput.sh; LATENCY_N (1000) messages
# per latency run. Needs root (Postfix).
set -euo pipefail
BUILD=$(cd "${1:?usage: milter_bench_checks.sh BUILD_DIR [MILTER_BENCH_DIR]}" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MB=$(cd "${2:-$HERE/../../../shared/milter-bench}" && pwd)
MILTER=$BUILD/preflight-milter
CLASSIFY=$BUILD/preflight-classify
WORK=$(mktemp -d /tmp/preflight-mbench.XXXXXX)
chmod 755 "$WORK"  # the unix sockets in it are Postfix's (user postfix) to connect to
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$MB/nullmilter.sh" stop >/dev/null 2>&1 || true
  "$MB/dns.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
[[ -x $MILTER && -x $CLASSIFY ]] || { echo "no preflight-milter/preflight-classify in $BUILD" >&2; exit 2; }

"$MB/setup.sh" >/dev/null
"$MB/dns.sh" start >/dev/null
(umask 000 && "$MB/nullmilter.sh" start "unix:$WORK/null.sock" >/dev/null)

# The tenants file: 100,000 tenants, good.test among them with a plan no run exhausts.
python3 - "$WORK/tenants.conf" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(99999):
        f.write("customer%05d.example QuotaRecipients=%d/month MaxRecipients=50 BillingDay=%d\n" % (i, 1000 + i, 1 + i % 28))
    f.write("good.test QuotaRecipients=100000000/month BillingDay=15\n")
PY

write_conf() {  # NAME EXTRA-LINES
  cat >"$WORK/$1.conf" <<EOF
Socket unix:$WORK/$1.sock
Umask 0111
RunAsRoot yes
Syslog no
Nameservers 127.0.0.1:5353
EgressAddresses 127.0.0.1
QuotaStore sqlite:$WORK/$1-quota.db
$2
EOF
  "$MILTER" -n -c "$WORK/$1.conf" >/dev/null
}
write_conf default ""
write_conf bulk-sender "RecipientDomainMode reject
DmarcMode reject
AlignmentMode reject
UnsubscribeMode reject
HeaderSanityMode reject"
write_conf suppression "SuppressionMode reject
SuppressionStore sqlite:$WORK/suppression.db"
grep '^good.test ' "$WORK/tenants.conf" >"$WORK/one-tenant.txt"
write_conf one-tenant "TenantsFile $WORK/one-tenant.txt"
write_conf plans "TenantsFile $WORK/tenants.conf"
write_conf all-checks "RecipientDomainMode reject
DmarcMode reject
AlignmentMode reject
UnsubscribeMode reject
HeaderSanityMode reject
SuppressionMode reject
SuppressionStore sqlite:$WORK/suppression.db
TenantsFile $WORK/tenants.conf"
# 10,000 suppressed recipients, none of them the one the benchmark sends to.
python3 -c '
print("recipient,scope,reason,reply,remote_mta,source,first_seen,last_seen,count,expires,active")
for i in range(10000):
    print("dead%05d@good.test,good.test,bad-mailbox,550 5.1.1 user unknown,mx.good.test,log,"
          "2026-12-01T00:00:00Z,2026-12-01T00:00:00Z,1,2036-01-01T00:00:00Z,yes" % i)' >"$WORK/suppressed.csv"
"$CLASSIFY" suppress --conf "$WORK/all-checks.conf" import "$WORK/suppressed.csv" >/dev/null

start_milter() {  # NAME -> MPID
  "$MILTER" -f -c "$WORK/$1.conf" 2>"$WORK/$1.log" &
  MPID=$!
  PIDS+=("$MPID")
  local i
  for ((i = 0; i < 200; i++)); do [[ -S $WORK/$1.sock ]] && return 0; sleep 0.05; done
  echo "preflight-milter ($1) did not start: $(tail -2 "$WORK/$1.log")" >&2
  return 1
}

declare -A CPU E2E MCPU
measure() {  # NAME SOCKET PID
  local out
  out=$(MILTER_PID=$3 FROM=sender@good.test TO=rcpt@good.test ROUNDS=${ROUNDS:-3} N=${N:-2000} \
    "$MB/throughput.sh" "$2" 2>&1) || { echo "$out" >&2; echo "throughput.sh failed for $1" >&2; return 1; }
  CPU[$1]=$(sed -n 's/^ratio milter\/bare cpu ms\/msg: \([0-9.]*\).*/\1/p' <<<"$out")
  E2E[$1]=$(sed -n 's/^ratio milter\/bare e2e msgs\/s: \([0-9.]*\).*/\1/p' <<<"$out")
  MCPU[$1]=$(awk '$2 == "milter" && $6 != "-" { s += $6; n++ } END { if (n) printf "%.3f", s / n }' <<<"$out")
  printf '%-11s cpu ratio %s   e2e ratio %s   milter cpu %s ms/msg\n' "$1" "${CPU[$1]}" "${E2E[$1]}" "${MCPU[$1]}"
}

declare -A LAT
latency() {  # NAME SOCKET PID
  "$MB/postfix.sh" start "$2" >/dev/null
  LAT[$1]=$(python3 "$HERE/milter_latency.py" -n "${LATENCY_N:-1000}" --from sender@good.test --to rcpt@good.test \
    --milter-pid "$3" --max-seconds 600 2>&1 | grep -E '^added|rror|ail' | tr '\n' ' ')
  "$MB/postfix.sh" stop >/dev/null
}

NULL_PID=$(cat /tmp/pf-bench/nullmilter.pid)
echo "# $(date -u '+%F %T') load $(cut -d' ' -f1-3 /proc/loadavg); ROUNDS=${ROUNDS:-3} N=${N:-2000}"
measure nullmilter "unix:$WORK/null.sock" "$NULL_PID"
latency nullmilter "unix:$WORK/null.sock" "$NULL_PID"
for name in default bulk-sender suppression one-tenant plans all-checks; do
  start_milter "$name"
  measure "$name" "unix:$WORK/$name.sock" "$MPID"
  case $name in bulk-sender | all-checks) latency "$name" "unix:$WORK/$name.sock" "$MPID" ;; esac
  kill -TERM "$MPID" && wait "$MPID" || true  # one milter at a time on the machine
done
echo "# against the pass-through milter and against the defaults (whole-machine CPU per message, same run):"
for name in default bulk-sender suppression one-tenant plans all-checks; do
  awk -v n="${CPU[nullmilter]}" -v p="${CPU[$name]}" -v name="$name" \
    'BEGIN { printf "%-11s %.3f / %.3f = %+.1f %% vs nullmilter", name, p, n, (p / n - 1) * 100 }'
  awk -v d="${CPU[default]}" -v p="${CPU[$name]}" 'BEGIN { printf ", %+.1f %% vs default\n", (p / d - 1) * 100 }'
done
for name in bulk-sender suppression one-tenant plans all-checks; do
  refused=$(grep -c 'result=reject\|result=tempfail' "$WORK/$name.log" || true)
  echo "# $name refused $refused transaction(s) (0 expected: the benchmark mail passes every check)"
done
echo "# added latency, client side (milter_latency.py, ${LATENCY_N:-1000} messages each way):"
for name in nullmilter bulk-sender all-checks; do printf '%-11s %s\n' "$name" "${LAT[$name]}"; done
