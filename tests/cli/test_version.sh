#!/usr/bin/env bash
# One version everywhere. Its source is the first entry of debian/changelog (CMakeLists.txt reads
# it); dpkg-parsechangelog, Debian's own parser, reads it here independently. Both binaries'
# --version and the .Os line of every built man page must carry its upstream part (no epoch, no
# Debian revision), and CMake must not have fallen back to another number.
set -u
CLASSIFY=${1:?usage: test_version.sh PREFLIGHT-CLASSIFY PREFLIGHT-MILTER SOURCE_DIR BINARY_DIR}
MILTER=${2:?usage: test_version.sh PREFLIGHT-CLASSIFY PREFLIGHT-MILTER SOURCE_DIR BINARY_DIR}
SRC=${3:?usage: test_version.sh PREFLIGHT-CLASSIFY PREFLIGHT-MILTER SOURCE_DIR BINARY_DIR}
BUILD=${4:?usage: test_version.sh PREFLIGHT-CLASSIFY PREFLIGHT-MILTER SOURCE_DIR BINARY_DIR}
fails=0 passes=0
check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi; }

command -v dpkg-parsechangelog >/dev/null || { echo "FAIL: dpkg-parsechangelog (dpkg-dev) is not installed"; exit 1; }
full=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version) || { echo "FAIL: debian/changelog does not parse"; exit 1; }
source=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Source)
check "debian/changelog is the changelog of preflight, not '$source'" "$([ "$source" = preflight ]; echo $?)"
upstream=${full#*:}         # no epoch
upstream=${upstream%-*}     # no Debian revision
[[ $full == *-* ]]; check "debian/changelog's version $full has a Debian revision" $?
[[ $upstream =~ ^[0-9]+(\.[0-9]+)*([~+][A-Za-z0-9.~+]*)?$ ]]
check "the upstream version '$upstream' starts with numbers CMake's project() can take" $?
echo "debian/changelog: $full, upstream $upstream"

out=$("$CLASSIFY" --version); check "preflight-classify --version exits 0" $?
engine=$(sed -n 2p <<<"$out")
out=$(head -n 1 <<<"$out")
check "preflight-classify --version says '$out', want 'preflight-classify $upstream'" \
  "$([ "$out" = "preflight-classify $upstream" ]; echo $?)"
[[ $engine =~ ^rule\ engine:\ (hyperscan\ [0-9.]+|re2)$ ]]
check "preflight-classify --version's second line names the rule engine: '$engine'" $?
out=$("$MILTER" --version); check "preflight-milter --version exits 0" $?
check "preflight-milter --version says '$out', want 'preflight-milter $upstream'" \
  "$([ "$out" = "preflight-milter $upstream" ]; echo $?)"

pages=0
for src_page in "$SRC"/man/*.[0-9]; do
  name=${src_page##*/}
  built=$BUILD/man/$name
  pages=$((pages + 1))
  [ -f "$built" ]; check "man/$name is built into $built" $?
  os=$(grep '^\.Os' "$built" 2>/dev/null)
  check "$name: .Os line '$os', want '.Os preflight $upstream'" "$([ "$os" = ".Os preflight $upstream" ]; echo $?)"
  # The page is the source page but for that line.
  diff <(grep -v '^\.Os' "$src_page") <(grep -v '^\.Os' "$built" 2>/dev/null) >/dev/null
  check "$name: the built page differs from man/$name only in its .Os line" $?
done
check "man pages found in $SRC/man: $pages" "$([ "$pages" -ge 4 ]; echo $?)"

echo "version: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
