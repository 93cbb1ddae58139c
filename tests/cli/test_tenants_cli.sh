#!/usr/bin/env bash
# preflight-milter and the tenants file, as a process, without an MTA or root: -n checks the
# TenantsFile with FILE:LINE errors (exit 2) or says how many tenants it read; PlanTimeZone is
# checked against the tz database; --quota-status TENANT prints each window and plan period with
# its renewal in PlanTimeZone, as text and JSON; a name that is no tenant is read as before.
set -u
BIN=${1:?usage: test_tenants_cli.sh PATH/TO/preflight-milter}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0 passes=0
check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi; }

conf() {  # conf ZONE
  cat >"$TMP/m.conf" <<EOC
Socket unix:$TMP/m.sock
Syslog no
RunAsRoot yes
AuthPolicy off
SenderDomainMode off
QuotaRecipients 100000/month
QuotaStore sqlite:$TMP/q.db
PlanTimeZone $1
TenantsFile $TMP/tenants.conf
EOC
}
conf Europe/Berlin
cat >"$TMP/tenants.conf" <<'EOT'
# tenant   plan
acme       QuotaRecipients=50000/month,500/hour MaxRecipients=50 MaxMessageSize=10M BillingDay=15
example.org QuotaRecipients=1000/week QuotaCode=550
EOT
out=$("$BIN" -n -c "$TMP/m.conf" 2>&1)
check "-n with a good tenants file: exit 0, '$TMP/tenants.conf: ok (2 tenants)' (got '$out')" \
  "$([[ $? -eq 0 && $out == *"$TMP/tenants.conf: ok (2 tenants)"* ]]; echo $?)"

out=$("$BIN" --quota-status -c "$TMP/m.conf" acme 2>&1)
check "--quota-status acme: exit 0" $?
[[ $out == *"tenant acme (PlanTimeZone Europe/Berlin)"* ]]; check "--quota-status acme names the tenant and zone: '$out'" $?
[[ $out =~ recipients\ per\ month:\ 0\ of\ 50000\;\ renews\ [0-9]{4}-[0-9]{2}-15\ 00:00\ CES?T ]]
check "--quota-status acme: the month from the 15th, midnight in Berlin: '$out'" $?
[[ $out == *"recipients per hour: 0 of 500; sliding"* ]]; check "--quota-status acme: the hour window: '$out'" $?
json=$("$BIN" --quota-status --json -c "$TMP/m.conf" acme 2>&1)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); q={x["window"]: x for x in d["quotas"]}
assert d["tenant"] == "acme" and d["plan_time_zone"] == "Europe/Berlin", d
assert q["month"]["limit"] == 50000 and q["month"]["used"] == 0, d
assert q["month"]["renews"][7:] in ("-15T00:00:00+01:00", "-15T00:00:00+02:00"), d
assert q["hour"]["renews"] is None, d' "$json"
check "--quota-status --json acme: $json" $?
out=$("$BIN" --quota-status -c "$TMP/m.conf" other.test 2>&1)
check "--quota-status of a name that is no tenant: the store's counters as before ('$out')" \
  "$([[ $? -eq 0 && $out == "QuotaStore sqlite:$TMP/q.db"* ]]; echo $?)"

cat >"$TMP/tenants.conf" <<'EOT'
acme       QuotaRecipients=50000/month
bad        QuotaRecipients=10/fortnight
acme       MaxRecipients=5
worse      MaxRecipients 5
EOT
out=$("$BIN" -n -c "$TMP/m.conf" 2>&1)
rc=$?
check "-n with a broken tenants file exits 2 (got $rc)" "$([[ $rc -eq 2 ]]; echo $?)"
for want in "$TMP/tenants.conf:2: QuotaRecipients: \"10/fortnight\" is not a quota" \
  "$TMP/tenants.conf:3: tenant acme: duplicate (first at line 1)" \
  "$TMP/tenants.conf:4: tenant worse: \"MaxRecipients\" is not KEY=VALUE"; do
  [[ $out == *"$want"* ]]; check "-n names '$want' (got '$out')" $?
done
[[ $out != *": ok"* ]]; check "-n with a broken tenants file does not say ok: '$out'" $?

conf Mars/Olympus
out=$("$BIN" -n -c "$TMP/m.conf" 2>&1)
rc=$?
check "-n with PlanTimeZone Mars/Olympus: exit 2 naming the zone (got $rc, '$out')" \
  "$([[ $rc -eq 2 && $out == *"m.conf:8: PlanTimeZone: unknown time zone Mars/Olympus"* ]]; echo $?)"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
