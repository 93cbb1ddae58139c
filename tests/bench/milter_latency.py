#!/usr/bin/python3
"""Added latency of a milter, measured from the SMTP client's side.

Sends N messages one after another (one SMTP session each) to the Postfix port with the milter
and to the port without it, alternating, and prints p50/p90/p99 of the whole transaction time
(connect to QUIT) for each, and the difference. Loopback only.

usage: milter_latency.py [--with-port 2525] [--bare-port 2524] [-n 2000] [--from sender@good.test]
"""
import argparse
import smtplib
import statistics
import sys
import time


def transaction(port, sender, rcpt, body):
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail(sender, [rcpt], body)
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
    a = ap.parse_args()
    if not 1 <= a.n <= 100000:
        sys.exit("-n out of range")
    body = "From: <%s>\r\nTo: <%s>\r\nSubject: latency\r\n\r\n%s\r\n" % (a.sender, a.to, "x" * 3000)
    for port in (a.with_port, a.bare_port):  # warm up: DNS cache, Postfix processes
        for _ in range(20):
            transaction(port, a.sender, a.to, body)
    with_ms, bare_ms = [], []
    for _ in range(a.n):
        with_ms.append(transaction(a.with_port, a.sender, a.to, body))
        bare_ms.append(transaction(a.bare_port, a.sender, a.to, body))
    for name, v in (("with milter", with_ms), ("without", bare_ms)):
        print("%-12s n=%d  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  mean %.2f ms"
              % (name, len(v), pct(v, 50), pct(v, 90), pct(v, 99), statistics.mean(v)))
    print("added        p50 %.2f ms  p90 %.2f ms  p99 %.2f ms"
          % (pct(with_ms, 50) - pct(bare_ms, 50), pct(with_ms, 90) - pct(bare_ms, 90),
             pct(with_ms, 99) - pct(bare_ms, 99)))


if __name__ == "__main__":
    main()
