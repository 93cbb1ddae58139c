#!/usr/bin/python3
"""Counts what a benchmarked `preflight-classify` run wrote, so that the scripts in tests/bench
compute their rates from the outputs, and can check them against what the input must give.

  bench_outputs.py reply json|tsv FILE   -> "RECORDS ERRORS": results written (TSV: rows under
                                            the header), of them error records
  bench_outputs.py dsn FILE              -> "RECORDS ERRORS EMAILS FILES": JSON records, of them
                                            error records, distinct inputs named (file or
                                            file#n), distinct files (file#n counted as file)
  bench_outputs.py dsn-rounds ONE FILE R -> "RECORDS EMAILS" of FILE after checking that each
                                            input has R times the records it has in ONE (a run
                                            over one round); else a message and exit 1
  bench_outputs.py log-csv FILE          -> "Sent N Bounce N Rejected N Expired N Deferred N rows N"

A last line without its newline (a run cut short while writing) is an error: exit 1."""
import collections
import csv
import json
import re
import sys


def fail(msg):
    sys.exit("bench_outputs.py: %s" % msg)


def reply(fmt, path):
    # Counted in 1 MiB chunks: a 2M-line JSON output is about 0.9 GB.
    pat = b'\n{"error": ' if fmt == "json" else b"\terror\t"
    lines = errors = 0
    carry = b"\n"  # the newline before the first line, so that a leading error record counts
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            body, carry = data[: cut + 1], data[cut:]
            lines += body.count(b"\n") - 1
            errors += body.count(pat)
    if len(carry) > 1:
        fail("%s: the last line has no newline (output cut short)" % path)
    if fmt == "tsv":
        lines = max(0, lines - 1)  # the header line
    print(lines, errors)


def dsn_counts(path):
    per_input = collections.Counter()
    records = errors = 0
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                fail("%s:%d: the last line has no newline (output cut short)" % (path, n))
            try:
                rec = json.loads(line)
            except ValueError as e:
                fail("%s:%d: not a JSON record: %s" % (path, n, e))
            if not isinstance(rec, dict) or not isinstance(rec.get("file"), str):
                fail("%s:%d: a record without its file" % (path, n))
            records += 1
            errors += "error" in rec
            per_input[rec["file"]] += 1
    return records, errors, per_input


def log_csv(path):
    counts = collections.Counter()
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if not header or "Status" not in header:
            fail("%s: no CSV header with a Status column" % path)
        col = header.index("Status")
        for row in rows:
            counts[row[col] if col < len(row) else "(short row)"] += 1
    names = ["Sent", "Bounce", "Rejected", "Expired", "Deferred"]
    extra = sorted(set(counts) - set(names))
    print(" ".join("%s %d" % (k, counts[k]) for k in names + extra), "rows", sum(counts.values()))


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "reply" and a[1] in ("json", "tsv"):
        reply(a[1], a[2])
    elif len(a) == 2 and a[0] == "dsn":
        records, errors, per_input = dsn_counts(a[1])
        files = {re.sub(r"#[0-9]+$", "", k) for k in per_input}
        print(records, errors, len(per_input), len(files))
    elif len(a) == 4 and a[0] == "dsn-rounds":
        rounds = int(a[3])
        _, _, one = dsn_counts(a[1])
        records, _, timed = dsn_counts(a[2])
        missing = [k for k in one if timed.get(k, 0) != rounds * one[k]]
        extra = [k for k in timed if k not in one]
        if missing or extra:
            k = (missing or extra)[0]
            fail("%d inputs have other record counts than %d x those of one round, %d are new; e.g. %s: %d, want %d"
                 % (len(missing), rounds, len(extra), k, timed.get(k, 0), rounds * one.get(k, 0)))
        print(records, rounds * len(one))
    elif len(a) == 2 and a[0] == "log-csv":
        log_csv(a[1])
    else:
        fail("bad arguments; see the header of this file")


if __name__ == "__main__":
    main()
