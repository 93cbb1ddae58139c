#!/usr/bin/env bash
# The main job, on this machine alone: build preflight and classify a set of real-world
# downstream replies into status, bounce type, category and the action a relay should take.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash contrib/install-deps.sh >/dev/null
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" --target preflight-classify >/dev/null
echo "== preflight-classify reply --format text < tests/data/sample-replies.txt"
# Exit 1 only means some line could not be classified; the table is still the point.
build/preflight-classify reply --format text < tests/data/sample-replies.txt || true
echo
echo "== one reply as an argument, JSON for scripts"
build/preflight-classify reply --format json "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown"
