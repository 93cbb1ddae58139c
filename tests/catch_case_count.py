#!/usr/bin/env python3
"""catch_case_count.py BUILD_DIR JUNIT_XML: did ctest run every Catch2 test case exactly once?

For each Catch2 test executable, the cases it lists itself (--list-test-names-only: every
visible case) are compared with the entries of ctest's JUnit report (ctest --output-junit): each
listed case must have exactly one entry, PREFIX + its name, that ran, passed and whose output says
Catch2 ran one test case. Prints one line per executable; exits 1 on any case that did not run,
ran more than once or ran along with others, and 2 when the inputs are not what it expects.
"""
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

# Every Catch2 executable under BUILD_DIR/tests and the prefix of its ctest entries
# (tests/CMakeLists.txt, preflight_catch_tests).
CATCH_EXES = {"unit_tests": "unit.", "milter_unit_tests": "milter."}
# Catch2's closing line for a run of one case: "All tests passed (N assertions in 1 test case)"
# or "test cases: 1 | 1 passed".
ONE_CASE = re.compile(r"in 1 test case\)|^test cases: 1 \|", re.M)


def listed_cases(exe):
    out = subprocess.run([str(exe), "--list-test-names-only"], capture_output=True, text=True,
                         timeout=120, check=False)
    if out.returncode < 0:
        sys.exit(f"catch_case_count: {exe} --list-test-names-only died of signal {-out.returncode}")
    names = []
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        # Catch2 quotes names that start with '#'
        names.append(line[1:-1] if line.startswith('"#') and line.endswith('"') else line)
    return names


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build, junit = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    generated = {p.name[:-len("_cases.cmake")] for p in (build / "tests").glob("*_cases.cmake")}
    if generated != set(CATCH_EXES):
        print(f"catch_case_count: Catch2 executables in {build}/tests are {sorted(generated)}, "
              f"this check knows {sorted(CATCH_EXES)}: update CATCH_EXES", file=sys.stderr)
        return 2
    try:
        cases = ET.parse(junit).getroot().iter("testcase")
    except (OSError, ET.ParseError) as e:
        print(f"catch_case_count: {junit}: {e}", file=sys.stderr)
        return 2
    runs = {}
    for tc in cases:
        runs.setdefault(tc.get("name"), []).append(tc)

    bad = 0
    for exe_name, prefix in CATCH_EXES.items():
        names = listed_cases(build / "tests" / exe_name)
        ran_once = 0
        for name in names:
            entries = runs.get(prefix + name, [])
            problem = None
            if len(entries) != 1:
                problem = f"{len(entries)} ctest entries"
            else:
                tc = entries[0]
                out = tc.findtext("system-out") or ""
                if tc.get("status") != "run":
                    problem = f"status {tc.get('status')}"
                elif tc.find("failure") is not None:
                    problem = "failed"
                elif not ONE_CASE.search(out):
                    problem = "its output does not say Catch2 ran one test case"
            if problem:
                bad += 1
                print(f"catch_case_count: {exe_name}: case '{name}': {problem}", file=sys.stderr)
            else:
                ran_once += 1
        print(f"catch cases: {exe_name}: {len(names)} listed, {ran_once} ran once under ctest")
        if not names:
            print(f"catch_case_count: {exe_name} lists no test case", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
