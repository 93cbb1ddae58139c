#!/usr/bin/env bash
# The classifier's speed figures in one run, each printed next to its target and the ratio to it:
# start-up, the reply classification call (per core), reply end to end over stdin (JSON out),
# dsn against Sisimai (and emails/s on one thread), log against pflogsumm.
#   tests/bench/classifier_figures.sh [BUILD_DIR] [EML_DIR]
# The scripts it runs check their programs' outputs and exit statuses themselves; a failed one
# fails this one. Wall-time figures depend on the machine's load: say how loaded it was.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/tests/bench/bench_lib.sh"
BUILD=${1:-$here/build}
EML=${2:-$here/../shared/corpus/bounces/eml}
BIN=$BUILD/preflight-classify
[[ -x $BIN ]] || bench_die "$BIN is not an executable"
[[ -x $BUILD/tests/bench_classify ]] || bench_die "$BUILD/tests/bench_classify is not built"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $("$BIN" --version 2>&1 | head -n 1)"

# Start-up: the best of 20 one-shot runs (the least disturbed by other load).
# Start-up: wall time of 30 one-shot runs, each started straight from Python (timeout, time(1)
# and date, as bench_timed runs them, add about 3 ms of their own); /bin/true the same way shows
# what starting any process costs.
read -r best median floor < <(/usr/bin/python3 - "$BIN" <<'PY'
import subprocess, sys, time
def runs(args, n=30):
    ts = []
    for _ in range(n):
        a = time.perf_counter()
        if subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            sys.exit(f"{args[0]} failed")
        ts.append(time.perf_counter() - a)
    return sorted(ts)
t = runs([sys.argv[1], "reply", "550 5.1.1 x"])
print(t[0], t[len(t) // 2], runs(["/bin/true"])[0])
PY
) || bench_die "preflight-classify reply \"550 5.1.1 x\" failed"

# The classification call, one core: google-benchmark's CPU time per reply.
"$BUILD/tests/bench_classify" --benchmark_filter='BM_Classify(Engine)?/?[0-9]*$' --benchmark_min_time=2 \
  --benchmark_format=json > "$tmp/classify.json" 2> "$tmp/classify.err" \
  || { tail -n 5 "$tmp/classify.err" >&2; bench_die "bench_classify failed"; }

"$here/tests/bench/e2e_reply.sh" "$BUILD" 2000000 > "$tmp/e2e.txt"
"$here/tests/bench/dsn_vs_sisimai.sh" "$BIN" "$EML" 1 > "$tmp/dsn.txt"
PREFLIGHT_THREADS=1 "$here/tests/bench/dsn_vs_sisimai.sh" "$BIN" "$EML" 1 > "$tmp/dsn1.txt"
"$here/tests/bench/log_vs_pflogsumm.sh" "$BUILD" > "$tmp/log.txt"

for f in e2e dsn dsn1 log; do sed "s/^/  $f | /" "$tmp/$f.txt"; done
/usr/bin/python3 - "$best" "$tmp" "$median" "$floor" <<'PY'
import json, re, sys
best, tmp, median, floor = float(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rows = []
def row(what, figure, target, ratio):
    rows.append((what, figure, target, ratio))
row("start-up: reply \"550 5.1.1 x\" (best of 30)", f"{best * 1000:.1f} ms (median {median * 1000:.1f}; /bin/true {floor * 1000:.2f})",
    "< 10 ms", f"{best * 1000 / 10:.2f} of the limit")
for b in json.load(open(f"{tmp}/classify.json"))["benchmarks"]:
    ns = b["cpu_time"]  # ns per reply
    label = b.get("label") or "default engine"
    row(f"reply call, one core ({b['name']}, {label})", f"{ns:,.0f} ns = {1e9 / ns:,.0f} replies/s",
        ">= 2,000,000/s (500 ns)", f"{1e9 / ns / 2e6:.2f} x target")
e2e = open(f"{tmp}/e2e.txt").read()
m = re.search(r"^json .*?: ([0-9]+) results/s, peak RSS ([0-9]+) KiB", e2e, re.M)
row("reply end to end, stdin, JSON out, 2 M lines", f"{int(m.group(1)):,} lines/s, peak RSS {int(m.group(2)):,} KiB",
    ">= 2,000,000 lines/s, memory flat", f"{int(m.group(1)) / 2e6:.2f} x target")
for name, label in (("dsn", "dsn vs Sisimai, all cores, one run each"), ("dsn1", "dsn vs Sisimai, PREFLIGHT_THREADS=1")):
    t = open(f"{tmp}/{name}.txt").read()
    p = re.search(r"preflight-classify dsn: +[0-9.]+ s, ([0-9,]+) emails/s", t).group(1)
    s = re.search(r"Sisimai: +[0-9.]+ s, ([0-9,]+) emails/s", t).group(1)
    r = float(re.search(r"ratio: ([0-9.]+) x", t).group(1))
    row(label, f"{p} emails/s (Sisimai {s}): {r:.1f} x", ">= 50 x Sisimai", f"{r / 50:.2f} x target")
log = open(f"{tmp}/log.txt").read()
ours = re.search(r"^(preflight-classify log json) +([0-9.]+) s .*? ([0-9]+) lines/s", log, re.M)
pf = re.search(r"^pflogsumm +([0-9.]+) s .*? ([0-9]+) lines/s", log, re.M)
if ours and pf:
    row("log (JSON) vs pflogsumm", f"{int(ours.group(3)):,} lines/s (pflogsumm {int(pf.group(2)):,})", "(no target: reported)",
        f"{int(ours.group(3)) / int(pf.group(2)):.1f} x pflogsumm")
w = max(len(r[0]) for r in rows)
print()
for what, figure, target, ratio in rows:
    print(f"{what:<{w}}  {figure:<44}  target {target:<32}  {ratio}")
PY
