#!/usr/bin/python3
"""Added latency of a milter, measured from the SMTP client's side.

Sends N messages one after another (one SMTP session each) to the Postfix port with the milter
and to the port without it, alternating, and prints p50/p90/p99 of the whole transaction time
(connect to QUIT) for each, and the difference. Loopback only.

Every message must be accepted (250 after DATA): the figures are over the messages accepted,
and one refused, tempfailed (a milter that died or hangs gives 451 with Postfix's
milter_default_action = tempfail) or not answered fails the run, naming the port, the message
and the reply, with whether --milter-pid is still running. The run is bounded by --max-seconds
(and each SMTP step by 30 s).

usage: milter_latency.py [--with-port 2525] [--bare-port 2524] [-n 2000] [--from sender@good.test]
                         [--to rcpt@example.test] [--milter-pid PID] [--max-seconds 3600]
"""
import argparse
import smtplib
import statistics
import sys
import time


class Failure(Exception):
    pass


def milter_state(pid):
    """'' without a PID, else a few words on whether that process still runs."""
    if not pid:
        return ""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "; milter PID %d is gone" % pid
    return "; milter PID %d has exited (zombie)" % pid if state == "Z" else "; milter PID %d is running" % pid


def transaction(where, port, sender, rcpt, body):
    start = time.perf_counter()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            refused = s.sendmail(sender, [rcpt], body)  # raises unless DATA got 250
    except smtplib.SMTPResponseException as e:
        text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        raise Failure("%s: %d %s" % (where, e.smtp_code, text))
    except smtplib.SMTPRecipientsRefused as e:
        raise Failure("%s: recipient refused: %s" % (where, e.recipients))
    except (smtplib.SMTPException, OSError) as e:
        raise Failure("%s: %s: %s" % (where, type(e).__name__, e))
    if refused:
        raise Failure("%s: recipient refused: %s" % (where, refused))
    return (time.perf_counter() - start) * 1000.0


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--with-port", type=int, default=2525)
    ap.add_argument("--bare-port", type=int, default=2524)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--from", dest="sender", default="sender@good.test")
    ap.add_argument("--to", default="rcpt@example.test")
    ap.add_argument("--milter-pid", type=int, default=0, help="the milter's PID: checked before and after")
    ap.add_argument("--max-seconds", type=float, default=3600)
    a = ap.parse_args()
    if not 1 <= a.n <= 100000:
        sys.exit("-n out of range")
    body = "From: <%s>\r\nTo: <%s>\r\nSubject: latency\r\n\r\n%s\r\n" % (a.sender, a.to, "x" * 3000)
    ports = {"with milter": a.with_port, "without": a.bare_port}
    deadline = time.monotonic() + a.max_seconds
    ms = {name: [] for name in ports}

    def send(name, i, total, phase):
        if time.monotonic() > deadline:
            raise Failure("over --max-seconds %g after %d of %d messages" % (a.max_seconds, i, total))
        where = "%s message %d of %d, port %s (127.0.0.1:%d)" % (phase, i + 1, total, name, ports[name])
        return transaction(where, ports[name], a.sender, a.to, body)

    try:
        if a.milter_pid and not milter_state(a.milter_pid).endswith("is running"):
            raise Failure("before the first message")
        for name in ports:  # warm up: DNS cache, Postfix processes
            for i in range(20):
                send(name, i, 20, "warm-up")
        for i in range(a.n):
            for name in ports:
                ms[name].append(send(name, i, a.n, "measured"))
        if a.milter_pid and not milter_state(a.milter_pid).endswith("is running"):
            raise Failure("after the last message")
    except Failure as e:
        sys.exit("milter_latency.py: FAIL: %s%s" % (e, milter_state(a.milter_pid)))
    for name, v in ms.items():
        if len(v) != a.n:  # cannot happen: each message either is accepted or fails the run
            sys.exit("milter_latency.py: FAIL: %d of %d messages accepted on the port %s" % (len(v), a.n, name))
    for name, v in ms.items():
        print("%-12s n=%d accepted  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  mean %.2f ms"
              % (name, len(v), pct(v, 50), pct(v, 90), pct(v, 99), statistics.mean(v)))
    w, b = ms["with milter"], ms["without"]
    print("added        p50 %.2f ms  p90 %.2f ms  p99 %.2f ms"
          % (pct(w, 50) - pct(b, 50), pct(w, 90) - pct(b, 90), pct(w, 99) - pct(b, 99)))


if __name__ == "__main__":
    main()
