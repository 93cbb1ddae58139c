#!/usr/bin/env bash
# Command-line and socket behaviour of `preflight-classify serve` without Postfix: usage and
# policy errors (exit 2, FILE:LINE), --check, socketmap answers over a unix socket from a small
# python client (partial writes, several requests in one write, bad framing, size limit,
# concurrent clients, idle timeout), stale and live sockets, SIGTERM.
set -u
BIN=${1:?usage: test_serve_cli.sh PATH/TO/preflight-classify}
PY=/usr/bin/python3
TMP=$(mktemp -d)
PID=''
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
fails=0; passes=0
# Started as root (CI), the server refuses to stay root unless told: these tests say so.
ROOT=(); [ "$(id -u)" -eq 0 ] && ROOT=(--run-as-root)
check() {  # check NAME CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL: $1"; fi
}
wait_for() {  # wait_for TENTHS CMD...
  local i; for ((i = 0; i < $1; i++)); do "${@:2}" && return 0; sleep 0.1; done; return 1
}

# ---- usage and policy errors --------------------------------------------------------------------

"$BIN" serve >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--listen is required" "$TMP/err"; r=$?; check "no --listen: exit 2 (got $rc)" $r
"$BIN" serve --listen tcp:1.2.3.4:5 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--listen tcp:1.2.3.4:5: is not a socket (unix:/path" "$TMP/err"; r=$?; check "bad --listen: exit 2 (got $rc)" $r
# The milter's socket grammar, address literals only: a host name is refused, IPv6 is served.
"$BIN" serve --listen inet:localhost:25 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "needs an address literal, not a host name" "$TMP/err"; r=$?
check "--listen with a host name: exit 2 naming why (got $rc: $(head -c 200 "$TMP/err"))" $r
"$BIN" serve --listen inet:8891@::1 --check >/dev/null 2>"$TMP/err"; rc=$?
check "--listen inet:8891@::1 parses (libmilter's spelling, IPv6) (got $rc: $(head -c 200 "$TMP/err"))" $rc
"$BIN" serve --listen inet:127.0.0.1:99999 >/dev/null 2>&1; check "port out of range: exit 2" $(( $? != 2 ))
"$BIN" serve --listen unix:/x --threads 0 >/dev/null 2>&1; check "--threads 0: exit 2" $(( $? != 2 ))
"$BIN" serve --listen unix:/x --bogus >/dev/null 2>&1; check "unknown option: exit 2" $(( $? != 2 ))
"$BIN" serve --help | grep -q "delivery_status_filter"; r=$?; check "--help" $r

printf '# site\ncategory quota-issues defer\ncategory bad-mailbox bounce\ncategory spam-relatd bounce\n' >"$TMP/bad.conf"
"$BIN" serve --listen "unix:$TMP/s" --policy "$TMP/bad.conf" >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ]; r=$?; check "bad policy: exit 2 (got $rc)" $r
grep -qx "preflight-classify: $TMP/bad.conf:4: unknown category 'spam-relatd' (see preflight-rules(5))" "$TMP/err"
r=$?; check "bad policy: FILE:LINE message: $(cat "$TMP/err")" $r
[ ! -e "$TMP/s" ]; r=$?; check "bad policy: no socket created" $r
printf 'default drop\n' >"$TMP/bad2.conf"
"$BIN" serve --listen "unix:$TMP/s" --policy "$TMP/bad2.conf" 2>&1 >/dev/null | grep -q "bad2.conf:1: unknown decision 'drop'"
r=$?; check "bad decision: FILE:LINE message" $r
"$BIN" serve --listen "unix:$TMP/s" --policy "$TMP/missing.conf" >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "missing.conf: cannot open" "$TMP/err"; r=$?; check "missing policy: exit 2 (got $rc)" $r
printf 'bad-mailbox text (\n' >"$TMP/bad.rules"
"$BIN" serve --listen "unix:$TMP/s" --rules "$TMP/bad.rules" >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "bad.rules:1:" "$TMP/err"; r=$?; check "bad rules: exit 2 (got $rc): $(cat "$TMP/err")" $r

# --check prints the effective policy: file lines override the built-in, unnamed ones stay.
printf 'category quota-issues keep\ncategory spam-related defer\n' >"$TMP/site.conf"
out=$("$BIN" serve --policy "$TMP/site.conf" --check); rc=$?
[ $rc -eq 0 ]; r=$?; check "--check exit 0" $r
echo "$out" | grep -qx "category quota-issues keep"; r=$?; check "--check: quota-issues keep" $r
echo "$out" | grep -qx "category spam-related defer"; r=$?; check "--check: spam-related defer" $r
echo "$out" | grep -qx "category bad-mailbox bounce"; r=$?; check "--check: bad-mailbox keeps the built-in bounce" $r
[ "$(echo "$out" | wc -l)" -eq 18 ]; r=$?; check "--check: 18 categories" $r
"$BIN" serve --check | grep -qx "category quota-issues defer"; r=$?; check "--check built-in: quota-issues defer" $r
"$BIN" serve --check --policy "$(dirname "$0")/../../conf/status-policy.conf" >/dev/null
r=$?; check "the shipped conf/status-policy.conf is valid" $r

# ---- a running server ---------------------------------------------------------------------------

SOCK=$TMP/status.sock
start() {  # start ARGS...: serve on $SOCK
  "$BIN" serve --listen "unix:$SOCK" "${ROOT[@]}" "$@" 2>>"$TMP/serve.log" &
  PID=$!
  # not test -S: a stale socket is there before the server binds
  wait_for 100 grep -q "listening on unix:$SOCK" "$TMP/serve.log"
}
# A stale socket (bound, then its server gone) is replaced.
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$SOCK"
[ -S "$SOCK" ]; r=$?; check "stale socket prepared" $r
start --policy "$TMP/site.conf" --idle-timeout 1 --max-request 1000; r=$?; check "serve starts over a stale socket" $r
[ "$(stat -c %a "$SOCK")" = 660 ]; r=$?; check "the socket is mode 0660, not world-writable (got $(stat -c %a "$SOCK"))" $r

cat >"$TMP/client.py" <<'EOF'
import socket, sys, threading, time

SOCK = sys.argv[1]

def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(SOCK)
    return s

def ns(payload):
    b = payload.encode() if isinstance(payload, str) else payload
    return b"%d:" % len(b) + b + b","

def read_replies(s, n):
    buf, out = b"", []
    while len(out) < n:
        chunk = s.recv(65536)
        if not chunk:
            out.append("EOF")
            break
        buf += chunk
        while True:
            colon = buf.find(b":")
            if colon < 0:
                break
            ln = int(buf[:colon])
            if len(buf) < colon + 2 + ln:
                break
            assert buf[colon + 1 + ln:colon + 2 + ln] == b","
            out.append(buf[colon + 1:colon + 1 + ln].decode())
            buf = buf[colon + 2 + ln:]
    return out

def closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True

FULL = "status 5.2.2 host mx[192.0.2.1] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)"
UNKNOWN = "status 4.1.1 host mx[192.0.2.1] said: 450 4.1.1 User unknown (in reply to RCPT TO command)"
SPAM = "status 5.7.1 host mx[192.0.2.1] said: 550 5.7.1 Message rejected as spam (in reply to end of DATA command)"
results = []
def t(name, ok):
    results.append((name, ok))

# One request per round trip; site policy: quota keep, spam defer, bad-mailbox built-in bounce.
s = conn()
for req, want in [(FULL, "NOTFOUND "), (UNKNOWN, "OK 5" + UNKNOWN[8:]), (SPAM, "OK 4" + SPAM[8:]),
                  ("status 2.0.0 250 2.0.0 Ok: queued", "NOTFOUND "), ("status ", "NOTFOUND "),
                  ("other 4.1.1 user unknown", "PERM unknown map 'other': want 'status'"),
                  ("", "PERM malformed request: want 'NAME KEY'")]:
    s.sendall(ns(req))
    got = read_replies(s, 1)[0]
    t("%r -> %r (got %r)" % (req[:40], want[:40], got[:60]), got == want)
# Partial writes: one byte at a time; then three requests in one write.
for b in ns(UNKNOWN):
    s.sendall(bytes([b]))
    time.sleep(0.0005)
got = read_replies(s, 1)
t("byte by byte: %r" % got, got == ["OK 5" + UNKNOWN[8:]])
s.sendall(ns(FULL) + ns(UNKNOWN) + ns(SPAM))
got = read_replies(s, 3)
t("three in one write, in order: %r" % got, got == ["NOTFOUND ", "OK 5" + UNKNOWN[8:], "OK 4" + SPAM[8:]])
s.close()

# Bad framing and oversize: PERM, then the server closes the connection.
for name, data, want in [("garbage", b"GET / HTTP/1.0\r\n\r\n", "PERM malformed netstring"),
                         ("leading zero", b"01:x,", "PERM malformed netstring"),
                         ("no comma", b"3:abc;", "PERM malformed netstring"),
                         ("oversize length", b"1001:", "PERM request longer than 1000 bytes"),
                         ("oversize digits", b"99999999999999999999999", "PERM request longer than 1000 bytes")]:
    s = conn()
    s.sendall(data)
    got = read_replies(s, 1)
    t("%s: %r" % (name, got), got == [want])
    t("%s: closed after the PERM" % name, closed(s))
    s.close()
# A request of exactly the limit is served.
s = conn()
big = "status 4.1.1 " + "x" * (1000 - 13)
s.sendall(ns(big))
got = read_replies(s, 1)
t("request at the limit answered: %r" % got[0][:20], got[0].startswith(("OK", "NOTFOUND")))
s.close()

# Concurrent clients: 20 connections, 200 requests each, interleaved.
errors = []
def worker(i):
    try:
        c = conn()
        for j in range(200):
            req = (FULL, UNKNOWN, SPAM)[(i + j) % 3]
            c.sendall(ns(req))
            want = {FULL: "NOTFOUND ", UNKNOWN: "OK 5" + UNKNOWN[8:], SPAM: "OK 4" + SPAM[8:]}[req]
            got = read_replies(c, 1)[0]
            if got != want:
                errors.append(got)
        c.close()
    except Exception as e:
        errors.append(repr(e))
ths = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
[x.start() for x in ths]
[x.join() for x in ths]
t("20 concurrent clients x 200 requests: %d errors %r" % (len(errors), errors[:2]), not errors)

# Idle timeout (--idle-timeout 1): the server closes a silent connection; a half-sent request
# does not keep it open either. t0 is taken before connecting, so "took" cannot be shorter than
# the server's own idle time: the lower bound (not closed at once) holds however busy the
# machine is. The 20 s receive timeout only catches a connection that is never closed.
for name, data in [("silent", b""), ("half a request", b"20:status 4.1")]:
    t0 = time.monotonic()
    s = conn()
    s.settimeout(20)
    if data:
        s.sendall(data)
    try:
        ok = closed(s)
    except socket.timeout:
        ok = False
    took = time.monotonic() - t0
    t("idle %s: closed after %.1f s" % (name, took), ok and took > 0.5)
    s.close()

bad = [n for n, ok in results if not ok]
for n, ok in results:
    print(("ok " if ok else "FAIL ") + n)
sys.exit(1 if bad else 0)
EOF
"$PY" "$TMP/client.py" "$SOCK" >"$TMP/client.out" 2>&1; rc=$?
[ -n "${SERVE_CLI_VERBOSE:-}" ] && cat "$TMP/client.out"
[ $rc -eq 0 ]; r=$?; check "socketmap client: $(grep -v '^ok ' "$TMP/client.out" | head -5)" $r

# A second server on a live socket refuses to start and leaves the socket alone.
"$BIN" serve --listen "unix:$SOCK" "${ROOT[@]}" 2>"$TMP/err2" >/dev/null; rc=$?
[ $rc -eq 1 ] && grep -q "in use by a running server" "$TMP/err2"; r=$?; check "live socket: exit 1 (got $rc): $(cat "$TMP/err2")" $r
[ -S "$SOCK" ]; r=$?; check "live socket still there" $r

# SIGTERM: exit 0, socket removed, a summary line.
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=''
[ $rc -eq 0 ]; r=$?; check "SIGTERM: exit 0 (got $rc)" $r
[ ! -e "$SOCK" ]; r=$?; check "SIGTERM: socket removed" $r
grep -q "stopped (Terminated): .* requests" "$TMP/serve.log"; r=$?; check "SIGTERM: summary logged" $r

# SIGHUP: the policy (and rules) read again; a broken policy is logged with FILE:LINE and the
# running one stays.
ask() {  # ask KEY: the server's answer to "status KEY" on $SOCK
  "$PY" - "$SOCK" "$1" <<'PYX'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
k = ("status " + sys.argv[2]).encode()
s.sendall(b"%d:%s," % (len(k), k))
r = s.recv(1000).decode()
print(r[r.index(":") + 1:-1])
PYX
}
FULL='5.2.2 host mx said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)'
printf 'category quota-issues defer\n' >"$TMP/hup.conf"
: >"$TMP/serve.log"
start --policy "$TMP/hup.conf"; r=$?; check "SIGHUP: server up" $r
[ "$(ask "$FULL")" = "OK 4.2.2 host mx said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)" ]
r=$?; check "SIGHUP: before, quota-issues defer" $r
printf 'category quota-issues keep\n' >"$TMP/hup.conf"
kill -HUP "$PID"
wait_for 50 grep -q "reloaded rules and policy $TMP/hup.conf" "$TMP/serve.log"; r=$?; check "SIGHUP: reload logged" $r
[ "$(ask "$FULL")" = "NOTFOUND " ]; r=$?; check "SIGHUP: the new policy answers (quota-issues keep)" $r
printf 'category quota-issues keep\ncategory no-such-category bounce\n' >"$TMP/hup.conf"
kill -HUP "$PID"
wait_for 50 grep -q "reload failed; keeping" "$TMP/serve.log"; r=$?; check "SIGHUP: a broken policy is refused" $r
grep -q "hup.conf:2" "$TMP/serve.log"; r=$?; check "SIGHUP: the error names hup.conf:2" $r
[ "$(ask "$FULL")" = "NOTFOUND " ]; r=$?; check "SIGHUP: the running policy stays after a broken reload" $r
kill -TERM "$PID"; wait "$PID"; r=$?; PID=''; check "SIGHUP: then SIGTERM, exit 0" $r

# A path that is not a socket is never replaced.
echo data >"$TMP/file"
"$BIN" serve --listen "unix:$TMP/file" "${ROOT[@]}" 2>"$TMP/err" >/dev/null; rc=$?
[ $rc -eq 1 ] && grep -q "is not a socket" "$TMP/err" && [ "$(cat "$TMP/file")" = data ]
r=$?; check "regular file at the path: exit 1, file kept (got $rc)" $r

# A symlink planted at the path is neither followed nor replaced.
ln -s "$TMP/link-target" "$TMP/link"
"$BIN" serve --listen "unix:$TMP/link" "${ROOT[@]}" 2>"$TMP/err" >/dev/null; rc=$?
[ $rc -eq 1 ] && grep -q "is not a socket" "$TMP/err" && [ -L "$TMP/link" ] && [ ! -e "$TMP/link-target" ]
r=$?; check "symlink at the path: exit 1, link kept, nothing made at its target (got $rc)" $r

# answers_on NAME HOST LISTEN-FORM: serve on a free port of HOST (127.0.0.1 or ::1), LISTEN-FORM
# with PORT in it ("inet:127.0.0.1:PORT"), and check one answer over TCP.
answers_on() {
  local name=$1 host=$2 port got='' i
  port=$("$PY" -c 'import socket,sys; h=sys.argv[1]; s=socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET); s.bind((h,0)); print(s.getsockname()[1])' "$host")
  "$BIN" serve --listen "${3//PORT/$port}" "${ROOT[@]}" 2>>"$TMP/serve.log" &
  PID=$!
  for ((i = 0; i < 100; i++)); do  # until the server answers, 10 s at most
    got=$("$PY" - "$host" "$port" <<'EOF' 2>/dev/null
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
k = b"status 4.1.1 host mx said: 450 4.1.1 user unknown (in reply to RCPT TO command)"
s.sendall(b"%d:%s," % (len(k), k))
print(s.recv(1000).decode())
EOF
) && break
    sleep 0.1
  done
  [ "$got" = "75:OK 5.1.1 host mx said: 450 4.1.1 user unknown (in reply to RCPT TO command)," ]
  check "$name answer: $got" $?
  kill -TERM "$PID"; wait "$PID"; PID=''
}

# inet: answers on 127.0.0.1 too.
answers_on inet 127.0.0.1 "inet:127.0.0.1:PORT"

# --verbose: one line per request; the remote server's words are quoted, a line break in them
# cannot start a forged log line.
"$BIN" serve --verbose --listen "unix:$TMP/v.sock" "${ROOT[@]}" 2>"$TMP/verbose.log" &
PID=$!
if wait_for 100 grep -q "listening on unix:$TMP/v.sock" "$TMP/verbose.log"; then
  "$PY" - "$TMP/v.sock" <<'EOF' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
k = b'status 5.1.1 host mx said: 550 5.1.1 "no" such user\nFORGED: preflight-classify serve: fake'
s.sendall(b"%d:%s," % (len(k), k)); s.recv(1000)
EOF
fi
kill -TERM "$PID"; wait "$PID"; PID=''
grep -q 'request="status 5.1.1 host mx said: 550 5.1.1 \\"no\\" such userFORGED: preflight-classify serve: fake" answer="' "$TMP/verbose.log" &&
  ! grep -q "^FORGED" "$TMP/verbose.log"
r=$?; check "--verbose logs the request quoted on one line: $(grep request= "$TMP/verbose.log" | head -c 300)" $r

# inet6, in Postfix's spelling: answers on ::1 (where the host has IPv6 loopback).
if "$PY" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
  answers_on "inet6 on [::1]" ::1 "inet:[::1]:PORT"
else
  echo "# no IPv6 loopback here: inet6 --listen not served"
fi

# Privileges. As root: no --user and no --run-as-root is refused; --user hands the socket to
# that user and group and the server runs as them. Not root: --user is refused.
if [ "$(id -u)" -eq 0 ]; then
  "$BIN" serve --listen "unix:$TMP/r.sock" >/dev/null 2>"$TMP/err"; rc=$?
  [ $rc -eq 2 ] && grep -q "refusing to run as root: set --user" "$TMP/err" && [ ! -e "$TMP/r.sock" ]
  r=$?; check "root without --user: exit 2, no socket (got $rc): $(cat "$TMP/err")" $r
  "$BIN" serve --listen "unix:$TMP/r.sock" --user 'bad name:' >/dev/null 2>"$TMP/err"; rc=$?
  [ $rc -eq 2 ] && grep -q "want USER or USER:GROUP" "$TMP/err"; r=$?; check "--user not a name: exit 2 (got $rc)" $r
  "$BIN" serve --listen "unix:$TMP/r.sock" --user no-such-user-pf >/dev/null 2>"$TMP/err"; rc=$?
  [ $rc -eq 2 ] && grep -q "no user 'no-such-user-pf'" "$TMP/err"; r=$?; check "--user unknown: exit 2 (got $rc)" $r
  "$BIN" serve --listen "unix:$TMP/r.sock" --user nobody:no-such-group-pf >/dev/null 2>"$TMP/err"; rc=$?
  [ $rc -eq 2 ] && grep -q "no group 'no-such-group-pf'" "$TMP/err"; r=$?; check "--user bad group: exit 2 (got $rc)" $r
  # --run-as-root with --pid-file: the file holds the server's pid and is gone after SIGTERM.
  : >"$TMP/root.log"
  "$BIN" serve --listen "unix:$TMP/p.sock" --run-as-root --pid-file "$TMP/serve.pid" 2>>"$TMP/root.log" &
  PID=$!
  if wait_for 100 grep -q "listening on unix:$TMP/p.sock" "$TMP/root.log"; then
    [ "$(cat "$TMP/serve.pid")" = "$PID" ]; r=$?; check "--pid-file holds the pid (got $(cat "$TMP/serve.pid"), want $PID)" $r
    kill -TERM "$PID"; wait "$PID"; rc=$?; PID=''
    [ $rc -eq 0 ] && [ ! -e "$TMP/serve.pid" ] && [ ! -e "$TMP/p.sock" ]
    r=$?; check "--pid-file: SIGTERM, exit 0, pid file and socket removed (got $rc)" $r
  else
    check "--run-as-root --pid-file: started: $(cat "$TMP/root.log")" 1
  fi
  : >"$TMP/user.log"
  "$BIN" serve --listen "unix:$TMP/r.sock" --user nobody:nogroup 2>>"$TMP/user.log" &
  PID=$!
  if wait_for 100 grep -q "listening on unix:$TMP/r.sock" "$TMP/user.log"; then
    [ "$(stat -c %U:%G:%a "$TMP/r.sock")" = nobody:nogroup:660 ]
    r=$?; check "--user nobody:nogroup: socket nobody:nogroup 0660 (got $(stat -c %U:%G:%a "$TMP/r.sock"))" $r
    uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$PID/status")
    nobody=$(id -u nobody)
    [ "$uids" = "$nobody $nobody $nobody $nobody" ]; r=$?; check "--user nobody: real, effective, saved uid all nobody (got $uids)" $r
    got=$(SOCK=$TMP/r.sock ask "$FULL")
    [ "$got" = "OK 4.2.2 host mx said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)" ]
    r=$?; check "--user nobody: answers (got $got)" $r
    kill -TERM "$PID"; wait "$PID"; rc=$?; PID=''
    [ $rc -eq 0 ]; r=$?; check "--user nobody: SIGTERM, exit 0 (got $rc)" $r
  else
    check "--user nobody: started: $(cat "$TMP/user.log")" 1
  fi
else
  "$BIN" serve --listen "unix:$TMP/r.sock" --user nobody >/dev/null 2>"$TMP/err"; rc=$?
  [ $rc -eq 2 ] && grep -q "needs to be started as root" "$TMP/err"; r=$?; check "--user without root: exit 2 (got $rc)" $r
fi

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
