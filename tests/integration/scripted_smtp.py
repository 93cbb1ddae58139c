#!/usr/bin/python3
"""scripted_smtp.py - a downstream SMTP server (python3-aiosmtpd) that answers per recipient.

  scripted_smtp.py --port P --dir DIR [--reply LOCALPART=REPLY]... [--max-seconds S] [--parent-pid PID]

RCPT TO whose local part (case-insensitive) has a --reply gets that reply verbatim ("552 5.2.2
Mailbox full"); every other recipient is accepted, and each accepted message is written to
DIR/msg.N with "X-Mail-From:" and "X-Rcpt-To:" lines in front. Listens on 127.0.0.1 only; writes
DIR/port once it accepts connections. Exits on SIGTERM/SIGINT, after --max-seconds (default 600)
or once --parent-pid is gone, so that a test that dies cannot leave it behind.
"""
import argparse
import itertools
import os
import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, replies, directory):
        self.replies = replies
        self.dir = directory
        self.seq = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.replies.get(address.split("@")[0].lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(self.dir, "msg.%d" % next(self.seq))
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with open(path + ".tmp", "wb") as f:
            # aiosmtpd gives the null sender as "<>", others without brackets
            f.write(b"X-Mail-From: <%s>\n" % (envelope.mail_from or "").strip("<>").encode())
            for r in envelope.rcpt_tos:
                f.write(b"X-Rcpt-To: <%s>\n" % r.encode())
            f.write(data)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: stored"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--reply", action="append", default=[])
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--parent-pid", type=int, default=0)
    a = ap.parse_args()
    replies = {}
    for r in a.reply:
        local, sep, text = r.partition("=")
        if not sep or len(text) < 3 or not text[:3].isdigit():
            ap.error("--reply wants LOCALPART=NNN text: %r" % r)
        replies[local.lower()] = text
    os.makedirs(a.dir, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ctl = Controller(Handler(replies, a.dir), hostname="127.0.0.1", port=a.port,
                     server_hostname="downstream.preflight-it.test", ready_timeout=10)
    ctl.start()
    with open(os.path.join(a.dir, "port.tmp"), "w") as f:
        f.write("%d\n" % a.port)
    os.rename(os.path.join(a.dir, "port.tmp"), os.path.join(a.dir, "port"))
    deadline = time.monotonic() + a.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        if a.parent_pid:
            try:
                os.kill(a.parent_pid, 0)
            except ProcessLookupError:
                break
        stop.wait(0.5)
    ctl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
