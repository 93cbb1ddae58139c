#!/usr/bin/python3
"""quota_drive.py - concurrent SMTP load for the quota test, counting every RCPT outcome.

Sends --messages messages of --rcpts recipients each from --sender through 127.0.0.1:--port,
--threads at a time. Per message: EHLO, MAIL FROM, one RCPT TO per recipient, then DATA when
at least one recipient was accepted (or RSET with --rset: the transaction is aborted after its
recipients). Prints one JSON object: recipients accepted in queued messages ("accepted"),
messages queued, RCPT replies by code, DATA/end-of-data outcomes, client errors, and the first
reply text per code. With --ids FILE, the X-Test-Id of every queued message (250 at end of data)
goes to FILE, one per line, and "refused" counts the messages that were not queued by the first
refusal's class: "4xx", "5xx" or "error" (no SMTP reply: a dropped connection, a timeout). Every
socket operation has a timeout; the run as a whole is bounded by --max-seconds (after the wait
for --start-at, if given), or ended earlier by --stop-file. Also used by milter_faults.sh and
redis_cluster.sh. Exit 0 unless the arguments are wrong.

With --pair-port, a second server is driven from the same process in lockstep with the first:
every thread of both sides waits at one barrier before each RCPT, so that both servers are
loaded together whatever the machine's load (two processes started together are not: on a
loaded machine one can use up a shared quota before the other's Python has started). Its JSON
goes to --pair-out.
"""
import argparse
import json
import os
import smtplib
import sys
import threading
import time


class Side:
    """One server's load and its counts."""

    def __init__(self, a, port, sender, tag):
        self.a, self.port, self.sender, self.tag = a, port, sender, tag
        self.lock = threading.Lock()
        self.out = {"accepted": 0, "queued": 0, "rcpt_codes": {}, "texts": {}, "eod_codes": {}, "errors": [],
                    "aborted_rcpts": 0, "refused": {}}
        self.queued_ids = []
        self.next_msg = 0
        self.deadline = time.monotonic() + a.max_seconds

    def take(self, mine):
        if mine is not None:  # lockstep: each thread has its own share of the messages
            return mine.pop(0) if mine else None
        with self.lock:
            if self.next_msg >= self.a.messages or time.monotonic() > self.deadline:
                return None
            if self.a.stop_file and os.path.exists(self.a.stop_file):
                return None
            self.next_msg += 1
            return self.next_msg

    def note(self, kind, code, text):
        with self.lock:
            self.out[kind][str(code)] = self.out[kind].get(str(code), 0) + 1
            self.out["texts"].setdefault(str(code), text)

    def refused(self, kind):
        with self.lock:
            self.out["refused"][kind] = self.out["refused"].get(kind, 0) + 1

    def error(self, text):
        with self.lock:
            self.out["errors"].append(text)

    @staticmethod
    def klass(code):
        return "%dxx" % (code // 100) if 400 <= code < 600 else "error"

    def step(self, barrier):
        """Lockstep: wait for every thread of both sides; on a broken barrier, go on alone."""
        if barrier is None or barrier.broken:
            return
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            self.error("lockstep barrier broken")

    def worker(self, index, barrier):
        a = self.a
        mine = list(range(index + 1, a.messages + 1, a.threads)) if barrier else None
        while True:
            n = self.take(mine)
            if n is None:
                return
            # Each message is counted once: queued, or refused by its first refusal. An error
            # after that (the QUIT of a closing connection) does not count it again.
            settled = False
            try:
                with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.preflight-it.test", timeout=30) as s:
                    s.ehlo()
                    code, text = s.mail(self.sender)
                    if code != 250:
                        self.note("rcpt_codes", "MAIL" + str(code), text.decode(errors="replace"))
                        self.refused(self.klass(code))
                        settled = True
                        for _ in range(a.rcpts):  # keep the barrier's count
                            self.step(barrier)
                        continue
                    ok = 0
                    for r in range(a.rcpts):
                        self.step(barrier)
                        code, text = s.rcpt("r%d-%d-%s@example.test" % (n, r, self.tag))
                        self.note("rcpt_codes", code, text.decode(errors="replace"))
                        if code == 250:
                            ok += 1
                    if a.rset or ok == 0:
                        if ok == 0:
                            self.refused(self.klass(code))
                        settled = True
                        s.rset()
                        with self.lock:
                            self.out["aborted_rcpts"] += ok
                        continue
                    msg = ("From: %s\r\nTo: undisclosed-recipients:;\r\nSubject: quota %s %d\r\n"
                           "X-Test-Id: %s-%d\r\n\r\nquota test message %d\r\n"
                           % (self.sender, self.tag, n, self.tag, n, n))
                    code, text = s.data(msg.encode())
                    self.note("eod_codes", code, text.decode(errors="replace"))
                    settled = True
                    if code == 250:
                        with self.lock:
                            self.out["accepted"] += ok
                            self.out["queued"] += 1
                            self.queued_ids.append("%s-%d" % (self.tag, n))
                    else:
                        self.refused(self.klass(code))
                        with self.lock:
                            self.out["aborted_rcpts"] += ok
            except smtplib.SMTPResponseException as e:  # e.g. a 421 greeting or reply to DATA
                if not settled:
                    self.refused(self.klass(e.smtp_code))
                self.error("%s: %s" % (type(e).__name__, e))
                if barrier is not None:
                    barrier.abort()  # the other threads must not wait for this one's steps
            except Exception as e:  # a dropped connection or a timeout: reported, not fatal
                if not settled:
                    self.refused("error")
                self.error("%s: %s" % (type(e).__name__, e))
                if barrier is not None:
                    barrier.abort()

    def write(self, path, ids):
        if ids:
            with open(ids, "w") as f:
                f.write("".join(i + "\n" for i in sorted(self.queued_ids)))
        text = json.dumps(self.out, sort_keys=True) + "\n"
        if path is None:
            sys.stdout.write(text)
        else:
            with open(path, "w") as f:
                f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sender", required=True)
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--rcpts", type=int, default=5)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--tag", default="q")
    ap.add_argument("--rset", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--ids", help="write the X-Test-Id of every queued message to this file")
    ap.add_argument("--stop-file", help="start no new message once this file exists (load for as long as needed)")
    ap.add_argument("--start-at", type=float, default=0,
                    help="wall-clock time (seconds since the epoch) to wait for before the first connection, "
                         "30 s at most")
    ap.add_argument("--pair-port", type=int, help="a second server, driven in lockstep with the first")
    ap.add_argument("--pair-sender")
    ap.add_argument("--pair-tag", default="p")
    ap.add_argument("--pair-out", help="file for the second server's JSON")
    a = ap.parse_args()
    if a.pair_port and (not a.pair_sender or not a.pair_out or a.messages % a.threads or a.ids):
        ap.error("--pair-port needs --pair-sender, --pair-out, --messages a multiple of --threads, no --ids")

    sides = [Side(a, a.port, a.sender, a.tag)]
    if a.pair_port:
        sides.append(Side(a, a.pair_port, a.pair_sender, a.pair_tag))
    barrier = threading.Barrier(a.threads * len(sides)) if a.pair_port else None
    wait = min(a.start_at - time.time(), 30.0)
    if wait > 0:
        time.sleep(wait)
    for side in sides:
        side.deadline = time.monotonic() + a.max_seconds
    threads = [threading.Thread(target=side.worker, args=(i, barrier)) for side in sides for i in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.max_seconds + 60)
    sides[0].write(None, a.ids)
    if a.pair_port:
        sides[1].write(a.pair_out, None)


if __name__ == "__main__":
    main()
