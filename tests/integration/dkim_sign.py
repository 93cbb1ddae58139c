#!/usr/bin/python3
"""dkim_sign.py - add a DKIM-Signature (RFC 6376, rsa-sha256, relaxed/relaxed) to a message.

    dkim_sign.py --key KEY.pem --domain D --selector S [--headers from:to:subject] <in >out

A test fixture generator for tests/integration/milter_postfix.sh: Python's standard library
only (no python3-dkim on a fresh machine), with the RSA signature made by
`openssl dgst -sha256 -sign KEY`. Enough for the short, plain messages the test writes: the
input is a whole message (LF or CRLF line ends), the output the same message with the
DKIM-Signature field prepended, LF line ends (swaks sends CRLF). Each name in --headers signs
the last instance of that field (RFC 6376 5.4.2); a name the message lacks is signed as absent.
"""
import argparse
import base64
import hashlib
import re
import subprocess
import sys
import time


def split_message(raw):
    """-> (list of (name, raw field with CRLF-joined folding lines), body lines)."""
    lines = raw.replace("\r\n", "\n").split("\n")
    fields, i = [], 0
    while i < len(lines) and lines[i] != "":
        if lines[i][:1] in (" ", "\t") and fields:
            name, text = fields[-1]
            fields[-1] = (name, text + "\r\n" + lines[i])
        else:
            fields.append((lines[i].split(":", 1)[0], lines[i]))
        i += 1
    body = lines[i + 1:] if i < len(lines) else []
    if body and body[-1] == "":  # the split of a final LF, not an empty line
        body = body[:-1]
    return fields, body


def relaxed_header(field):
    """RFC 6376 3.4.2: lower-case name, unfold, WSP runs -> one SP, trim around the colon."""
    name, value = field.split(":", 1)
    value = re.sub(r"\r\n(?=[ \t])", "", value)
    value = re.sub(r"[ \t]+", " ", value).strip(" ")
    return name.strip(" \t").lower() + ":" + value


def relaxed_body(lines):
    """RFC 6376 3.4.4: WSP runs -> one SP, no trailing WSP, no trailing empty lines."""
    out = [re.sub(r"[ \t]+", " ", l).rstrip(" ") for l in lines]
    while out and out[-1] == "":
        out.pop()
    return "".join(l + "\r\n" for l in out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--key", required=True, help="RSA private key (PEM)")
    p.add_argument("--domain", required=True, help="d=")
    p.add_argument("--selector", required=True, help="s=")
    p.add_argument("--headers", default="from:to:subject:date:message-id", help="h=")
    a = p.parse_args()

    fields, body = split_message(sys.stdin.read())
    bh = base64.b64encode(hashlib.sha256(relaxed_body(body).encode()).digest()).decode()
    names = [n.strip() for n in a.headers.split(":") if n.strip()]

    signed, used = [], {}
    for n in names:  # each occurrence of a name in h= takes the next instance from the bottom
        matches = [f for f_name, f in fields if f_name.strip().lower() == n.lower()]
        k = used.get(n.lower(), 0)
        used[n.lower()] = k + 1
        if k < len(matches):
            signed.append(relaxed_header(matches[-1 - k]) + "\r\n")

    sig = ("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s; t=%d; h=%s; bh=%s; b="
           % (a.domain, a.selector, int(time.time()), ":".join(names), bh))
    data = "".join(signed) + relaxed_header(sig)  # the signature field itself: no CRLF
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key], input=data.encode(),
                       capture_output=True, check=False)
    if r.returncode != 0:
        sys.exit("dkim_sign.py: openssl failed: " + r.stderr.decode(errors="replace").strip())
    b = base64.b64encode(r.stdout).decode()
    folded = "\n\t".join(b[i:i + 72] for i in range(0, len(b), 72))
    out = [sig.replace("; h=", ";\n\th=").replace("; bh=", ";\n\tbh=") + "\n\t" + folded]
    out += [f.replace("\r\n", "\n") for _, f in fields]
    sys.stdout.write("\n".join(out) + "\n\n" + "".join(l + "\n" for l in body))


if __name__ == "__main__":
    main()
