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
for --start-at, if given). Also used by milter_faults.sh. Exit 0 unless the arguments are wrong.
"""
import argparse
import json
import smtplib
import sys
import threading
import time


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
    ap.add_argument("--start-at", type=float, default=0,
                    help="wall-clock time (seconds since the epoch) to wait for before the first connection, "
                         "30 s at most: two drivers given the same time load their servers together")
    a = ap.parse_args()

    lock = threading.Lock()
    out = {"accepted": 0, "queued": 0, "rcpt_codes": {}, "texts": {}, "eod_codes": {}, "errors": [],
           "aborted_rcpts": 0, "refused": {}}
    queued_ids = []
    next_msg = [0]
    deadline = time.monotonic() + a.max_seconds

    def take():
        with lock:
            if next_msg[0] >= a.messages or time.monotonic() > deadline:
                return None
            next_msg[0] += 1
            return next_msg[0]

    def note(kind, code, text):
        with lock:
            out[kind][str(code)] = out[kind].get(str(code), 0) + 1
            out["texts"].setdefault(str(code), text)

    def refused(kind):
        with lock:
            out["refused"][kind] = out["refused"].get(kind, 0) + 1

    def klass(code):
        return "%dxx" % (code // 100) if 400 <= code < 600 else "error"

    def worker():
        while True:
            n = take()
            if n is None:
                return
            # Each message is counted once: queued, or refused by its first refusal. An error
            # after that (the QUIT of a closing connection) does not count it again.
            settled = False
            try:
                with smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.preflight-it.test", timeout=30) as s:
                    s.ehlo()
                    code, text = s.mail(a.sender)
                    if code != 250:
                        note("rcpt_codes", "MAIL" + str(code), text.decode(errors="replace"))
                        refused(klass(code))
                        settled = True
                        continue
                    ok = 0
                    for r in range(a.rcpts):
                        code, text = s.rcpt("r%d-%d-%s@example.test" % (n, r, a.tag))
                        note("rcpt_codes", code, text.decode(errors="replace"))
                        if code == 250:
                            ok += 1
                    if a.rset or ok == 0:
                        if ok == 0:
                            refused(klass(code))
                        settled = True
                        s.rset()
                        with lock:
                            out["aborted_rcpts"] += ok
                        continue
                    msg = ("From: %s\r\nTo: undisclosed-recipients:;\r\nSubject: quota %s %d\r\n"
                           "X-Test-Id: %s-%d\r\n\r\nquota test message %d\r\n" % (a.sender, a.tag, n, a.tag, n, n))
                    code, text = s.data(msg.encode())
                    note("eod_codes", code, text.decode(errors="replace"))
                    settled = True
                    if code == 250:
                        with lock:
                            out["accepted"] += ok
                            out["queued"] += 1
                            queued_ids.append("%s-%d" % (a.tag, n))
                    else:
                        refused(klass(code))
                        with lock:
                            out["aborted_rcpts"] += ok
            except smtplib.SMTPResponseException as e:  # e.g. a 421 greeting or reply to DATA
                if not settled:
                    refused(klass(e.smtp_code))
                with lock:
                    out["errors"].append("%s: %s" % (type(e).__name__, e))
            except Exception as e:  # a dropped connection or a timeout: reported, not fatal
                if not settled:
                    refused("error")
                with lock:
                    out["errors"].append("%s: %s" % (type(e).__name__, e))

    wait = min(a.start_at - time.time(), 30.0)
    if wait > 0:
        time.sleep(wait)
        deadline = time.monotonic() + a.max_seconds
    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.max_seconds + 60)
    if a.ids:
        with open(a.ids, "w") as f:
            f.write("".join(i + "\n" for i in sorted(queued_ids)))
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
