#!/usr/bin/python3
"""testdns.py - preflight's own small authoritative DNS server for tests (loopback only).

Serves the zones of one BIND-format zone file (parsed by dnslib; $ORIGIN and $TTL work; several
SOA records = several zones) over UDP and TCP on 127.0.0.1 (or ::1), and counts every query so a
test can prove that a cache did not ask twice.

Answers: names with data of the asked type -> NOERROR aa (CNAMEs inside our zones are followed);
existing names (or empty non-terminals) without it -> NODATA + SOA; missing names -> NXDOMAIN +
SOA; names outside every zone -> REFUSED. UDP answers larger than the client's limit (512, or
its EDNS size capped at 1232) come back truncated (TC) so the client retries over TCP.

Built-in behaviours (a name matches when it equals the suffix or ends with "." + suffix; more
suffixes can be added with the options of the same name):
  servfail.test  SERVFAIL
  slow.test      never answered: UDP dropped, TCP accepted, read and held open
  garbage.test   a malformed reply (right ID, header claims an answer, body cut short)
  delay.test     answered from the zone after --delay-ms milliseconds (UDP and TCP)
  tc.test        UDP reply always truncated (TC, no records); TCP gets the full answer
  wrongid.test   the right answer under a different message ID
  wrongq.test    a reply whose question section names another name
  TXT stats.     one TXT string per counted (name, type): "name TYPE count" (not counted)

Counts: every query received (before any delay) increments count[(name, TYPE)], name lower
case without trailing dot. With --stats-file the counts are rewritten (atomically, before the
reply is sent) as lines "name TYPE count", plus one line "*delayed-at-once MAX N": the most
distinct (name, TYPE) questions of delay.test names held for their delayed answer at the same
time (a client that asks them one after the other gets 1; one that sends a batch, the batch's
size; a retransmission of a held question does not count twice).

Lifetime: exits on SIGTERM/SIGINT, after --max-seconds (default 600), or when --parent-pid is
given and that process is gone. --pid-file is written at start; --port-file (the bound port,
useful with --port 0 = any free port) is written once both sockets listen: wait for it.
Needs Debian's python3-dnslib: run with /usr/bin/python3.
"""
import argparse
import heapq
import ipaddress
import os
import selectors
import signal
import socket
import struct
import sys
import time

from dnslib import DNSRecord, RR, QTYPE, RCODE, EDNS0, TXT, DNSQuestion, DNSLabel


def norm(name):
    n = str(name).lower()
    return n if n.endswith(".") else n + "."


def under(name, suffix):
    return name == suffix or name.endswith("." + suffix)


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Zones:
    """All records of the file, indexed by owner name; each SOA starts a zone."""

    def __init__(self, path):
        with open(path) as f:
            rrs = list(RR.fromZone(f.read()))
        self.names = {}
        self.soas = {}
        for rr in rrs:
            self.names.setdefault(norm(rr.rname), []).append(rr)
            if rr.rtype == QTYPE.SOA:
                self.soas.setdefault(norm(rr.rname), rr)
        if not self.soas:
            raise SystemExit("testdns: zone file has no SOA")
        # empty non-terminals (e.g. _domainkey.example.test) exist: NODATA, not NXDOMAIN
        self.ents = set()
        for n in self.names:
            labels = n.split(".")
            for i in range(1, len(labels) - 1):
                parent = ".".join(labels[i:])
                if parent not in self.names and self.zone_of(parent):
                    self.ents.add(parent)

    def zone_of(self, name):
        best = None
        for origin in self.soas:
            if under(name, origin) and (best is None or len(origin) > len(best)):
                best = origin
        return best


class Server:
    def __init__(self, a):
        self.a = a
        self.zones = Zones(a.zone)
        self.special = {
            "servfail": [norm(s) for s in ["servfail.test"] + a.servfail],
            "drop": [norm(s) for s in ["slow.test"] + a.drop],
            "garbage": [norm(s) for s in ["garbage.test"] + a.garbage],
            "delay": [norm(s) for s in ["delay.test"] + a.delay],
            "truncate": [norm(s) for s in ["tc.test"] + a.truncate],
            "wrongid": [norm(s) for s in ["wrongid.test"] + a.wrong_id],
            "wrongq": [norm(s) for s in ["wrongq.test"] + a.wrong_question],
        }
        self.counts = {}
        self.held_until = {}  # (name, TYPE) of a delayed question -> when its answer goes
        self.held_max = 0
        self.timers = []  # heap of (due, seq, fn, payload)
        self.seq = 0
        self.tcp = {}  # sock -> [buffer, last_activity, held]
        self.sel = selectors.DefaultSelector()
        self.stop = False
        self.log = open(a.query_log, "a", buffering=1) if a.query_log else None

    # ---- answering -------------------------------------------------------------------------
    def behaviour(self, qname):
        for kind in ("drop", "servfail", "garbage", "wrongid", "wrongq", "truncate", "delay"):
            if any(under(qname, s) for s in self.special[kind]):
                return kind
        return "zone"

    def neg_soa(self, origin):
        s = self.zones.soas[origin]
        return RR(s.rname, QTYPE.SOA, rdata=s.rdata, ttl=s.ttl)

    def fill(self, rep, qname, qtype):
        z = self.zones
        origin = z.zone_of(qname)
        if origin is None:
            rep.header.rcode = RCODE.REFUSED
            rep.header.aa = 0
            return
        for _ in range(8):  # bounded CNAME chase inside our own data
            rrs = z.names.get(qname)
            if rrs is None:
                if qname in z.ents:
                    rep.add_auth(self.neg_soa(origin))
                else:
                    rep.header.rcode = RCODE.NXDOMAIN
                    rep.add_auth(self.neg_soa(origin))
                return
            ans = [rr for rr in rrs if qtype in (rr.rtype, QTYPE.ANY)]
            if ans:
                for rr in ans:
                    rep.add_answer(rr)
                return
            cname = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if not cname:
                rep.add_auth(self.neg_soa(origin))
                return
            rep.add_answer(cname[0])
            qname = norm(cname[0].rdata.label)
            origin = z.zone_of(qname)
            if origin is None:
                return

    def stats_reply(self, req):
        rep = req.reply(ra=0, aa=1)
        for (name, qt), n in sorted(self.counts.items()):
            rep.add_answer(RR("stats.", QTYPE.TXT, ttl=0, rdata=TXT("%s %s %d" % (name, qt, n))))
        return rep

    def count(self, qname, qtype):
        key = (qname.rstrip(".") or ".", QTYPE.get(qtype))
        self.counts[key] = self.counts.get(key, 0) + 1
        self.write_stats()

    def hold(self, qname, qtype, sec):
        now = time.monotonic()
        self.held_until = {k: due for k, due in self.held_until.items() if due > now}
        self.held_until[(qname, qtype)] = now + sec
        if len(self.held_until) > self.held_max:
            self.held_max = len(self.held_until)
            self.write_stats()

    def write_stats(self):
        if self.a.stats_file:
            lines = ["%s %s %d\n" % (n, t, c) for (n, t), c in sorted(self.counts.items())]
            lines.append("*delayed-at-once MAX %d\n" % self.held_max)
            write_atomic(self.a.stats_file, "".join(lines))

    def answer(self, data, transport):
        """Return (wire reply or None, delay seconds, held)."""
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None, 0, False
        if req.header.qr or len(req.questions) != 1:
            return None, 0, False
        q = req.q
        qname = norm(q.qname)
        if qname == "stats." and q.qtype == QTYPE.TXT:
            return self.stats_reply(req).pack(), 0, False
        self.count(qname, q.qtype)
        kind = self.behaviour(qname)
        if self.log:
            self.log.write("%.3f %s %s %s %s\n" % (time.time(), transport, qname,
                                                   QTYPE.get(q.qtype), kind))
        if kind == "drop":
            return None, 0, True
        edns = next((rr for rr in req.ar if rr.rtype == QTYPE.OPT), None)
        limit = 65535 if transport == "tcp" else (max(512, min(edns.rclass, 1232)) if edns else 512)
        rep = req.reply(ra=0, aa=1)
        rep.header.ad = 0
        if kind == "servfail":
            rep.header.rcode = RCODE.SERVFAIL
            rep.header.aa = 0
        elif kind == "wrongq":
            rep.questions = [DNSQuestion(DNSLabel("other." + qname), q.qtype, q.qclass)]
            self.fill(rep, qname, q.qtype)
        else:
            self.fill(rep, qname, q.qtype)
        if edns:
            rep.add_ar(EDNS0(udp_len=1232))
        wire = rep.pack()
        if kind == "garbage":
            # header says 1 question + 1 answer, but the body stops inside the question name
            wire = data[:2] + struct.pack("!HHHHH", 0x8400, 1, 1, 0, 0) + b"\x07garb"
            return wire, 0, False
        if kind == "wrongid":
            wire = struct.pack("!H", (req.header.id ^ 0x5A5A) & 0xFFFF) + wire[2:]
        if len(wire) > limit or (kind == "truncate" and transport == "udp"):
            rep = req.reply(ra=0, aa=1)
            rep.header.tc = 1
            if edns:
                rep.add_ar(EDNS0(udp_len=1232))
            wire = rep.pack()
        delay = self.a.delay_ms / 1000.0 if kind == "delay" else 0
        if delay:
            self.hold(qname, q.qtype, delay)
        return wire, delay, False

    # ---- transports ------------------------------------------------------------------------
    def later(self, sec, fn, payload):
        self.seq += 1
        heapq.heappush(self.timers, (time.monotonic() + sec, self.seq, fn, payload))

    def on_udp(self, sock):
        for _ in range(64):  # drain a bounded batch
            try:
                data, addr = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            wire, delay, _ = self.answer(data, "udp")
            if wire is None:
                continue

            def send(w, s=sock, a=addr):
                try:
                    s.sendto(w, a)
                except OSError:
                    pass
            if delay:
                self.later(delay, send, wire)
            else:
                send(wire)

    def on_accept(self, lsock):
        try:
            conn, _ = lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self.tcp) >= self.a.max_tcp:
            conn.close()
            return
        conn.setblocking(False)
        self.tcp[conn] = [b"", time.monotonic(), False]
        self.sel.register(conn, selectors.EVENT_READ, self.on_tcp)

    def close_tcp(self, conn):
        if self.tcp.pop(conn, None) is None:
            return
        try:
            self.sel.unregister(conn)
        except Exception:
            pass
        conn.close()

    def on_tcp(self, conn):
        st = self.tcp.get(conn)
        if st is None:
            return
        try:
            chunk = conn.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.close_tcp(conn)
            return
        st[0] += chunk
        st[1] = time.monotonic()
        for _ in range(64):  # bounded number of pipelined queries per read
            buf = st[0]
            if len(buf) < 2:
                break
            n = struct.unpack("!H", buf[:2])[0]
            if len(buf) < 2 + n:
                break
            msg, st[0] = buf[2:2 + n], buf[2 + n:]
            wire, delay, held = self.answer(msg, "tcp")
            if held:
                st[2] = True
            if wire is None:
                continue
            frame = struct.pack("!H", len(wire)) + wire

            def send(w, c=conn):
                if c in self.tcp:
                    try:
                        c.setblocking(True)
                        c.settimeout(2.0)
                        c.sendall(w)
                        c.setblocking(False)
                    except OSError:
                        self.close_tcp(c)
            if delay:
                self.later(delay, send, frame)
            else:
                send(frame)

    def parent_alive(self):
        if not self.a.parent_pid:
            return True
        try:
            os.kill(self.a.parent_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return os.getppid() == self.a.parent_pid

    def run(self):
        a = self.a
        if not ipaddress.ip_address(a.addr).is_loopback:
            raise SystemExit("testdns: refusing non-loopback address %s" % a.addr)
        fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
        u = t = None
        for _ in range(50):  # with --port 0: find a port free for both UDP and TCP
            u = socket.socket(fam, socket.SOCK_DGRAM)
            u.bind((a.addr, a.port))
            port = u.getsockname()[1]
            t = socket.socket(fam, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                t.bind((a.addr, port))
                break
            except OSError:
                u.close()
                t.close()
                u = t = None
                if a.port:
                    raise
        if u is None:
            raise SystemExit("testdns: no free port")
        t.listen(128)
        u.setblocking(False)
        t.setblocking(False)
        self.sel.register(u, selectors.EVENT_READ, self.on_udp)
        self.sel.register(t, selectors.EVENT_READ, self.on_accept)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stop", True))
        if a.stats_file:
            write_atomic(a.stats_file, "")
        if a.port_file:
            write_atomic(a.port_file, "%d\n" % port)
        print("testdns: zones %s on %s:%d udp+tcp" % (sorted(self.zones.soas), a.addr, port),
              file=sys.stderr, flush=True)
        deadline = time.monotonic() + a.max_seconds
        last_parent_check = 0.0
        while not self.stop:
            now = time.monotonic()
            if now >= deadline:
                print("testdns: max lifetime reached", file=sys.stderr)
                break
            if now - last_parent_check > 0.5:
                last_parent_check = now
                if not self.parent_alive():
                    print("testdns: parent gone", file=sys.stderr)
                    break
            while self.timers and self.timers[0][0] <= now:
                _, _, fn, payload = heapq.heappop(self.timers)
                fn(payload)
            wait = 0.25
            if self.timers:
                wait = max(0.0, min(wait, self.timers[0][0] - now))
            for key, _ in self.sel.select(timeout=wait):
                key.data(key.fileobj)
            for c, st in list(self.tcp.items()):
                if now - st[1] > a.tcp_idle:
                    self.close_tcp(c)
        for c in list(self.tcp):
            self.close_tcp(c)
        u.close()
        t.close()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zone", required=True, help="BIND-format zone file (one or more zones)")
    p.add_argument("--addr", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=0, help="port (0 = any free port; see --port-file)")
    p.add_argument("--port-file", default="", help="write the bound port here once listening")
    p.add_argument("--pid-file", default="", help="write our PID here at start")
    p.add_argument("--stats-file", default="", help="rewrite query counts here on every query")
    p.add_argument("--query-log", default="", help="append one line per query")
    p.add_argument("--delay-ms", type=int, default=300, help="delay for delay.test names")
    p.add_argument("--servfail", action="append", default=[], metavar="SUFFIX")
    p.add_argument("--drop", action="append", default=[], metavar="SUFFIX")
    p.add_argument("--garbage", action="append", default=[], metavar="SUFFIX")
    p.add_argument("--delay", action="append", default=[], metavar="SUFFIX")
    p.add_argument("--truncate", action="append", default=[], metavar="SUFFIX")
    p.add_argument("--wrong-id", action="append", default=[], metavar="SUFFIX")
    p.add_argument("--wrong-question", action="append", default=[], metavar="SUFFIX")
    p.add_argument("--max-seconds", type=float, default=600.0, help="exit after this long")
    p.add_argument("--max-tcp", type=int, default=256)
    p.add_argument("--tcp-idle", type=float, default=30.0, help="close idle TCP after seconds")
    p.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    a = p.parse_args()
    if a.pid_file:
        write_atomic(a.pid_file, "%d\n" % os.getpid())
    try:
        Server(a).run()
    finally:
        if a.pid_file:
            try:
                os.unlink(a.pid_file)
            except OSError:
                pass


if __name__ == "__main__":
    main()
