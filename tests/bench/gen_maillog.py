#!/usr/bin/python3
"""Writes a synthetic Postfix maillog (syslog format) of about LINES lines to stdout: the
usual smtpd/cleanup/qmgr/smtp lines per message, 1-3 recipients, sent, deferred then sent,
bounced, expired, NOQUEUE rejects, milter rejects and the noise lines a real log has.
Deterministic (fixed seed). Usage: gen_maillog.py LINES [EXPECT-FILE]
EXPECT-FILE gets the rows `preflight-classify log` must give for the log, one "STATUS COUNT"
line each (Sent, Bounce, Rejected, Expired, Deferred, then rows: their sum), so that a
benchmark can tell a run that read all of it from one that stopped early."""
import random
import sys

target = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
expect_file = sys.argv[2] if len(sys.argv) > 2 else None
expect = {"Sent": 0, "Bounce": 0, "Rejected": 0, "Expired": 0, "Deferred": 0}
rnd = random.Random(42)
out = sys.stdout
months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
t = 0  # seconds since Mar 1 00:00
def ts(sec):
    day, rest = divmod(sec, 86400)
    return "%s %2d %02d:%02d:%02d" % (months[2 + day // 28], 1 + day % 28, rest // 3600, rest // 60 % 60, rest % 60)
def qid(n):
    return "%X" % (0x1A2B3C40000 + n * 7919)
replies = {
    "sent": "250 2.0.0 Ok: queued as %s",
    "full": "host mx.%s[192.0.2.%d] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)",
    "unknown": "host mx.%s[192.0.2.%d] said: 550 5.1.1 <%s>: Recipient address rejected: User unknown (in reply to RCPT TO command)",
    "auth": "host mx.%s[192.0.2.%d] said: 421 4.7.26 This mail has been rate limited because it is unauthenticated (in reply to end of DATA command)",
    "timeout": "connect to mx.%s[192.0.2.%d]:25: Connection timed out",
}
domains = ["example.org", "example.net", "mail.example.com", "corp.example", "big.example"]
lines = 0
n = 0
buf = []
def w(line):
    global lines
    buf.append(line)
    lines += 1
pid = 1000
while lines < target:
    n += 1
    t += rnd.randint(0, 2)
    q = qid(n)
    pid = 1000 + n % 5000
    r = rnd.random()
    ip = "198.51.100.%d" % (n % 250 + 1)
    w("%s mx postfix/smtpd[%d]: connect from client%d.example[%s]" % (ts(t), pid, n % 97, ip))
    if r < 0.05:
        w("%s mx postfix/smtpd[%d]: NOQUEUE: reject: RCPT from client%d.example[%s]: 554 5.7.1 <u%d@%s>: Relay access denied; from=<s%d@sender.example> to=<u%d@%s> proto=ESMTP helo=<client%d.example>"
          % (ts(t), pid, n % 97, ip, n, domains[n % 5], n, n, domains[n % 5], n % 97))
        expect["Rejected"] += 1
        w("%s mx postfix/smtpd[%d]: disconnect from client%d.example[%s] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4" % (ts(t), pid, n % 97, ip))
        continue
    w("%s mx postfix/smtpd[%d]: %s: client=client%d.example[%s]" % (ts(t), pid, q, n % 97, ip))
    w("%s mx postfix/cleanup[%d]: %s: message-id=<%d.%s@sender.example>" % (ts(t), pid + 1, q, n, q))
    if r < 0.08:
        w("%s mx postfix/cleanup[%d]: %s: milter-reject: END-OF-MESSAGE from client%d.example[%s]: 5.7.1 Message refused by preflight: DKIM signature invalid; from=<s%d@sender.example> to=<u%d@%s> proto=ESMTP helo=<client%d.example>"
              % (ts(t), pid + 1, q, n % 97, ip, n, n, domains[n % 5], n % 97))
        expect["Rejected"] += 1
        w("%s mx postfix/smtpd[%d]: disconnect from client%d.example[%s] ehlo=1 mail=1 rcpt=1 data=0/1 quit=1 commands=4/5" % (ts(t), pid, n % 97, ip))
        continue
    nr = rnd.choice((1, 1, 1, 2, 3))
    w("%s mx postfix/qmgr[99]: %s: from=<s%d@sender.example>, size=%d, nrcpt=%d (queue active)" % (ts(t), q, n, 2000 + n % 5000, nr))
    w("%s mx postfix/smtpd[%d]: disconnect from client%d.example[%s] ehlo=1 mail=1 rcpt=%d data=1 quit=1 commands=5" % (ts(t), pid, n % 97, ip, nr))
    expired = False
    for k in range(nr):
        d = domains[(n + k) % 5]
        rc = "u%d.%d@%s" % (n, k, d)
        x = rnd.random()
        hostn = (n + k) % 250 + 1
        rt = t + rnd.randint(0, 3)
        if x < 0.80:
            w("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=mx.%s[192.0.2.%d]:25, delay=%.1f, delays=0.1/0/0.2/0.3, dsn=2.0.0, status=sent (%s)"
              % (ts(rt), pid + 2, q, rc, d, hostn, rt - t + 0.6, replies["sent"] % qid(n + 10**6)))
            expect["Sent"] += 1
        elif x < 0.88:
            w("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=mx.%s[192.0.2.%d]:25, delay=%.1f, delays=0.1/0/0.2/0.3, dsn=5.1.1, status=bounced (%s)"
              % (ts(rt), pid + 2, q, rc, d, hostn, rt - t + 0.6, replies["unknown"] % (d, hostn, rc)))
            expect["Bounce"] += 1
        else:
            kind = rnd.choice(("full", "auth", "timeout"))
            dsn = {"full": "4.2.2", "auth": "4.7.26", "timeout": "4.4.1"}[kind]
            text = replies[kind] % (d, hostn)
            relay = "none" if kind == "timeout" else "mx.%s[192.0.2.%d]:25" % (d, hostn)
            w("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=%s, delay=%.1f, delays=0.1/0/30/0, dsn=%s, status=deferred (%s)"
              % (ts(rt + 30), pid + 2, q, rc, relay, rt - t + 30, dsn, text))
            if x < 0.97:
                w("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=mx.%s[192.0.2.%d]:25, delay=%.1f, delays=0.1/0/0.2/0.3, dsn=2.0.0, status=sent (%s)"
                  % (ts(rt + 900), pid + 2, q, rc, d, hostn, rt - t + 900, replies["sent"] % qid(n + 2 * 10**6)))
                expect["Sent"] += 1
            else:
                expired = True
                expect["Expired"] += 1
    if expired:
        w("%s mx postfix/qmgr[99]: %s: from=<s%d@sender.example>, status=expired, returned to sender" % (ts(t + 1000), q, n))
        w("%s mx postfix/bounce[%d]: %s: sender non-delivery notification: %s" % (ts(t + 1000), pid + 3, q, qid(n + 3 * 10**6)))
    w("%s mx postfix/qmgr[99]: %s: removed" % (ts(t + (1000 if expired else 901)), q))
    if len(buf) > 10000:
        out.write("\n".join(buf) + "\n")
        buf.clear()
out.write("\n".join(buf) + "\n")
if expect_file:
    with open(expect_file, "w") as f:
        for k, v in expect.items():
            f.write("%s %d\n" % (k, v))
        f.write("rows %d\n" % sum(expect.values()))
