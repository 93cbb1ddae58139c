#!/usr/bin/python3
"""Scripted next hop for tests/integration/log_postfix.sh (aiosmtpd), answering by the
recipient's local part:
  full*     452 4.2.2 Mailbox full                      unknown*  550 5.1.1 user unknown
  unauth*   421 4.7.26 ... unauthenticated              flaky*    452 4.2.2 until FLAG_FILE exists
  anything else: 250, and the message "250 2.0.0 Ok: queued as DOWNnnnn"
plus, on --hang-port, a listener that accepts connections and never says anything (a host
that never answers). Stops by itself after --max-seconds or when --parent-pid is gone."""
import argparse
import os
import socket
import threading
import time

from aiosmtpd.controller import Controller

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--hang-port", type=int, required=True)
ap.add_argument("--flag-file", required=True)
ap.add_argument("--ready-file", required=True)
ap.add_argument("--log-file", required=True)
ap.add_argument("--max-seconds", type=int, default=600)
ap.add_argument("--parent-pid", type=int, default=0)
args = ap.parse_args()

lock = threading.Lock()
count = [0]


def note(line):
    with lock, open(args.log_file, "a") as f:
        f.write(line + "\n")


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("full"):
            reply = "452 4.2.2 Mailbox full"
        elif local.startswith("unknown"):
            reply = "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        elif local.startswith("unauth"):
            reply = "421 4.7.26 This mail has been rate limited because it is unauthenticated"
        elif local.startswith("flaky") and not os.path.exists(args.flag_file):
            reply = "452 4.2.2 Mailbox full, try again later"
        else:
            envelope.rcpt_tos.append(address)
            reply = "250 2.1.5 Ok"
        note("RCPT %s %s" % (address, reply))
        return reply

    async def handle_DATA(self, server, session, envelope):
        with lock:
            count[0] += 1
            n = count[0]
        note("DATA %s" % " ".join(envelope.rcpt_tos))
        return "250 2.0.0 Ok: queued as DOWN%04d" % n


def hang():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.hang_port))
    srv.listen(16)
    held = []
    while True:
        conn, _ = srv.accept()
        held.append(conn)  # never answered, closed when the process ends
        note("HANG accepted")


controller = Controller(Handler(), hostname="127.0.0.1", port=args.port)
controller.start()
threading.Thread(target=hang, daemon=True).start()
with open(args.ready_file, "w") as f:
    f.write("ready\n")
deadline = time.monotonic() + args.max_seconds
while time.monotonic() < deadline:
    if args.parent_pid:
        try:
            os.kill(args.parent_pid, 0)
        except OSError:
            break
    time.sleep(0.5)
controller.stop()
