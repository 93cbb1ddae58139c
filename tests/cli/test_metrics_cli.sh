#!/usr/bin/env bash
# /metrics of both daemons on loopback: preflight-milter with MetricsListen, driven by a small
# milter-protocol client (a refused and an accepted transaction), and preflight-classify serve
# with --metrics-listen, driven by socketmap requests. Every line of each scrape is parsed as
# the Prometheus text format, and the counters must have moved as the traffic says.
# Free ports from the kernel, bounded waits, only the PIDs started here are killed.
set -u
MILTER=${1:?usage: test_metrics_cli.sh PATH/TO/preflight-milter PATH/TO/preflight-classify}
CLASSIFY=${2:?usage: test_metrics_cli.sh PATH/TO/preflight-milter PATH/TO/preflight-classify}
PY=/usr/bin/python3
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
fails=0; passes=0
check() {  # check NAME CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL: $1"; fi
}
wait_for() {  # wait_for TENTHS CMD...
  local i; for ((i = 0; i < $1; i++)); do "${@:2}" && return 0; sleep 0.1; done; return 1
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Scrapes URL, parses every line, prints "name{labels} value" lines (sorted labels) to stdout;
# exit 1 with the reason on a malformed line, a sample without HELP/TYPE, or a bad histogram.
cat >"$TMP/scrape.py" <<'PYEOF'
import re, sys, urllib.request, urllib.error
url = sys.argv[1]
with urllib.request.urlopen(url, timeout=5) as r:
    if r.status != 200: sys.exit(f"status {r.status}")
    ctype = r.headers.get("Content-Type", "")
    if not ctype.startswith("text/plain; version=0.0.4"): sys.exit(f"content type {ctype!r}")
    text = r.read().decode("utf-8")
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{({LABEL}(?:,{LABEL})*)?\}})? (\S+)$")
types, helps, out, hist = {}, set(), [], {}
if not text.endswith("\n"): sys.exit("no final newline")
for n, line in enumerate(text.split("\n")[:-1], 1):
    if line.startswith("# HELP "):
        name = line.split(" ")[2]
        if name in helps: sys.exit(f"line {n}: second HELP for {name}")
        helps.add(name); continue
    if line.startswith("# TYPE "):
        _, _, name, t = line.split(" ")
        if t not in ("counter", "gauge", "histogram"): sys.exit(f"line {n}: type {t}")
        if name in types: sys.exit(f"line {n}: second TYPE for {name}")
        types[name] = t; continue
    m = SAMPLE.match(line)
    if not m: sys.exit(f"line {n}: not a sample: {line!r}")
    name, labels, value = m.group(1), m.group(2) or "", m.group(3)
    v = float(value)  # raises on a bad number
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    family = name if name in types else base
    if family not in types or family not in helps: sys.exit(f"line {n}: {name} without HELP/TYPE")
    if types[family] == "counter" and (v < 0 or not family.endswith("_total")): sys.exit(f"line {n}: bad counter")
    if types[family] == "histogram":
        key = (family, re.sub(r',?le="[^"]*"', "", labels))
        h = hist.setdefault(key, {"buckets": [], "count": None})
        if name.endswith("_bucket"):
            le = re.search(r'le="([^"]*)"', labels).group(1)
            h["buckets"].append((float(le), v))
        elif name.endswith("_count"): h["count"] = v
    pairs = sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
    out.append(name + ("{" + ",".join(f'{k}="{x}"' for k, x in pairs) + "}" if pairs else "") + " " + value)
for (family, labels), h in hist.items():
    b = h["buckets"]
    if not b or b[-1][0] != float("inf"): sys.exit(f"{family}: no +Inf bucket")
    if any(b[i][0] >= b[i+1][0] or b[i][1] > b[i+1][1] for i in range(len(b) - 1)):
        sys.exit(f"{family}: buckets not increasing")
    if h["count"] != b[-1][1]: sys.exit(f"{family}: _count differs from +Inf")
print("\n".join(out))
PYEOF
scrape() { "$PY" "$TMP/scrape.py" "$1"; }
value() {  # value FILE SAMPLE: the value of one exact sample line, or empty
  awk -v k="$2" 'substr($0, 1, length(k) + 1) == k " " { print $NF }' "$1"
}

# ---- preflight-milter ---------------------------------------------------------------------------

MPORT=$(free_port); HPORT=$(free_port)
cat >"$TMP/pf.conf" <<EOF2
Socket inet:127.0.0.1:$MPORT
RunAsRoot yes
Syslog no
MetricsListen 127.0.0.1:$HPORT
Nameservers 127.0.0.1:1
EgressAddresses 192.0.2.10
SenderDomainMode off
AuthMode off
EOF2
"$MILTER" -n -c "$TMP/pf.conf" >/dev/null; check "conf with MetricsListen passes -n" $?
printf 'MetricsListen localhost:9465\n' >"$TMP/bad.conf"
out=$("$MILTER" -n -c "$TMP/bad.conf" 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "^$TMP/bad.conf:1: MetricsListen: \"localhost:9465\" has no IP address"
check "MetricsListen with a host name: FILE:LINE error, exit 2 (got $rc: $out)" $?

"$MILTER" -f -c "$TMP/pf.conf" 2>"$TMP/milter.log" &
MPID=$!; PIDS+=("$MPID")
wait_for 100 grep -q "metrics: http://127.0.0.1:$HPORT/metrics" "$TMP/milter.log"
check "milter starts and logs the metrics URL" $?

# A busy metrics port is an error at start (exit 1), before anything else happens.
sed "s/^Socket .*/Socket inet:127.0.0.1:$(free_port)/" "$TMP/pf.conf" >"$TMP/busy.conf"
timeout 10 "$MILTER" -f -c "$TMP/busy.conf" 2>"$TMP/busy.log"; rc=$?
[ $rc -eq 1 ] && grep -q "MetricsListen: cannot listen on 127.0.0.1:$HPORT" "$TMP/busy.log"
check "busy MetricsListen port: exit 1 (got $rc: $(cat "$TMP/busy.log"))" $?

scrape "http://127.0.0.1:$HPORT/metrics" >"$TMP/m0"; check "milter /metrics well-formed: $(tail -1 "$TMP/m0")" $?
[ "$(value "$TMP/m0" preflight_milter_connections_total)" = 0 ]; check "no connections yet" $?
"$PY" -c 'import urllib.request,sys
try: urllib.request.urlopen(sys.argv[1], timeout=5)
except urllib.error.HTTPError as e: sys.exit(0 if e.code == 404 else 1)
sys.exit(1)' "http://127.0.0.1:$HPORT/"; check "milter: / is a 404" $?

# The milter protocol (version 6) with no steps skipped, so every stage is answered.
cat >"$TMP/milter_client.py" <<'PYEOF'
import socket, struct, sys
port = int(sys.argv[1])
def send(s, cmd, data=b""):
    s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)
def recv(s):
    hdr = b""
    while len(hdr) < 4:
        chunk = s.recv(4 - len(hdr))
        if not chunk: raise EOFError
        hdr += chunk
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return body[:1], body[1:]
def final(s):  # skips modifications (header additions) until an accept/continue/reject reply
    while True:
        cmd, data = recv(s)
        if cmd in b"acrty": return cmd, data
s = socket.create_connection(("127.0.0.1", port), timeout=10)
send(s, b"O", struct.pack(">III", 6, 0x1ff, 0))
assert recv(s)[0] == b"O"
send(s, b"C", b"client.example\0" + b"4" + struct.pack(">H", 4567) + b"192.0.2.99\0")
assert final(s)[0] == b"c"
# 1: a sender that is not RFC 5321: envelope check, 501
send(s, b"M", b"<not an address>\0")
cmd, data = final(s)
print("bad sender:", cmd.decode(), data.decode(errors="replace").strip("\0"))
send(s, b"A")  # abort
# 2: a good transaction, accepted at end of message
send(s, b"M", b"<a@example.org>\0")
cmd, _ = final(s); print("good sender:", cmd.decode())
send(s, b"R", b"<b@example.net>\0")
cmd, _ = final(s); print("recipient:", cmd.decode())
send(s, b"L", b"Subject\0hello\0"); final(s)
send(s, b"N"); final(s)
send(s, b"B", b"body\r\n"); final(s)
send(s, b"E")
cmd, _ = final(s); print("end of message:", cmd.decode())
send(s, b"Q")
s.close()
PYEOF
"$PY" "$TMP/milter_client.py" "$MPORT" >"$TMP/client.out" 2>&1; check "milter client ran: $(cat "$TMP/client.out")" $?
grep -q "^bad sender: y 501" "$TMP/client.out"; check "bad sender refused with 501" $?
grep -q "^end of message: c" "$TMP/client.out"; check "good message accepted" $?

scrape "http://127.0.0.1:$HPORT/metrics" >"$TMP/m1"; check "milter /metrics well-formed after traffic: $(tail -1 "$TMP/m1")" $?
[ "$(value "$TMP/m1" 'preflight_milter_decisions_total{check="envelope",code="501",result="reject"}')" = 1 ]
check "decision counted: envelope reject 501" $?
[ "$(value "$TMP/m1" 'preflight_milter_decisions_total{check="all",code="250",result="accept"}')" = 1 ]
check "decision counted: all accept 250" $?
[ "$(value "$TMP/m1" preflight_milter_connections_total)" = 1 ]; check "one connection counted" $?
[ "$(value "$TMP/m1" preflight_milter_transactions_total)" = 2 ]; check "two transactions counted" $?
wait_for 50 bash -c "$PY $TMP/scrape.py http://127.0.0.1:$HPORT/metrics | grep -x 'preflight_milter_connections 0' >/dev/null"
check "no connection open after QUIT" $?
for name in preflight_dns_queries_total 'preflight_dns_cache_hits_total{answer="negative"}' \
            preflight_dns_cache_entries preflight_dns_upstream_duration_seconds_count \
            'preflight_milter_reloads_total{result="ok"}'; do
  [ -n "$(value "$TMP/m1" "$name")" ]; check "milter exposes $name" $?
done

# A reload that changes MetricsListen says it takes effect at restart, and is counted.
sed -i "s/^MetricsListen .*/MetricsListen 127.0.0.1:$(free_port)/" "$TMP/pf.conf"
kill -HUP "$MPID"
wait_for 50 grep -q "MetricsListen changed; it takes effect when the milter restarts" "$TMP/milter.log"
check "reload: MetricsListen takes effect at restart" $?
wait_for 50 bash -c "$PY $TMP/scrape.py http://127.0.0.1:$HPORT/metrics | grep -x 'preflight_milter_reloads_total{result=\"ok\"} 1' >/dev/null"
check "reload counted, metrics still on the old port" $?

kill -TERM "$MPID"; wait_for 100 bash -c "! kill -0 $MPID 2>/dev/null"; check "milter stops on SIGTERM" $?
wait "$MPID"; rc=$?; check "milter exit 0 (got $rc)" $rc
"$PY" -c 'import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0 else 1)' "$HPORT"
check "metrics port closed after stop" $?

# ---- preflight-classify serve -------------------------------------------------------------------

SPORT=$(free_port); HPORT=$(free_port)
"$CLASSIFY" serve --listen inet:127.0.0.1:1 --run-as-root --metrics-listen localhost:1 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--metrics-listen localhost:1: want ADDR:PORT" "$TMP/err"
check "serve: bad --metrics-listen, exit 2 (got $rc)" $?
"$CLASSIFY" serve --listen "inet:127.0.0.1:$SPORT" --run-as-root --metrics-listen "127.0.0.1:$HPORT" --threads 2 2>"$TMP/serve.log" &
SPID=$!; PIDS+=("$SPID")
wait_for 100 grep -q "metrics on http://127.0.0.1:$HPORT/metrics" "$TMP/serve.log"; check "serve starts with metrics" $?
scrape "http://127.0.0.1:$HPORT/metrics" >"$TMP/s0"; check "serve /metrics well-formed: $(tail -1 "$TMP/s0")" $?
"$PY" - "$SPORT" <<'PYEOF' >"$TMP/sm.out" 2>&1; check "socketmap client: $(cat "$TMP/sm.out")" $?
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def ask(payload):
    b = payload.encode()
    s.sendall(str(len(b)).encode() + b":" + b + b",")
    data = b""
    while not data.endswith(b","): data += s.recv(4096)
    return data.split(b":", 1)[1][:-1].decode()
answers = [ask("status 5.2.2 host mx[192.0.2.1] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)"),
           ask("status 4.1.1 host mx[192.0.2.1] said: 450 4.1.1 User unknown (in reply to RCPT TO command)"),
           ask("status hello"),
           ask("nomap x")]
print(answers)
assert answers[0].startswith("OK 4.2.2") and answers[1].startswith("OK 5.1.1"), answers
assert answers[2] == "NOTFOUND " and answers[3].startswith("PERM"), answers
PYEOF
scrape "http://127.0.0.1:$HPORT/metrics" >"$TMP/s1"; check "serve /metrics well-formed after traffic: $(tail -1 "$TMP/s1")" $?
[ "$(value "$TMP/s1" 'preflight_classify_requests_total{answer="OK"}')" = 2 ]; check "serve: 2 OK" $?
[ "$(value "$TMP/s1" 'preflight_classify_requests_total{answer="NOTFOUND"}')" = 1 ]; check "serve: 1 NOTFOUND" $?
[ "$(value "$TMP/s1" 'preflight_classify_requests_total{answer="PERM"}')" = 1 ]; check "serve: 1 PERM" $?
[ "$(value "$TMP/s1" 'preflight_classify_decisions_total{category="quota-issues",decision="defer"}')" = 1 ]
check "serve: quota-issues defer counted" $?
[ "$(value "$TMP/s1" 'preflight_classify_decisions_total{category="bad-mailbox",decision="bounce"}')" = 1 ]
check "serve: bad-mailbox bounce counted" $?
[ "$(value "$TMP/s1" 'preflight_classify_unclassified_total{reason="not-delivery-status"}')" = 1 ]
check "serve: a key that is no status counted" $?
[ "$(value "$TMP/s1" preflight_classify_request_duration_seconds_count)" = 4 ]; check "serve: 4 durations" $?
[ "$(value "$TMP/s1" preflight_classify_connections_total)" = 1 ]; check "serve: 1 connection" $?
kill -TERM "$SPID"; wait "$SPID"; rc=$?; check "serve exit 0 on SIGTERM (got $rc)" $rc

echo "metrics: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
