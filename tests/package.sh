#!/usr/bin/env bash
# The Debian package, end to end, as root on Debian bookworm:
#  1. builds it with dpkg-buildpackage -us -uc -b from a copy of the tree in $PKG_DIR (default
#     build-pkg/; dpkg-buildpackage writes into the parent of the tree it builds, so the copy
#     keeps the .deb, .buildinfo and .changes out of the checkout's parent directory);
#  2. checks the .deb: files, conffiles, no MTA or Redis among its relations, lintian errors;
#  3. installs it with apt-get and checks the user, the directories, the units (systemd-analyze
#     verify), --version against debian/changelog, the shipped conf and policy; starts both
#     daemons the way their units do (the runtime directory, user and group of the unit, the
#     unit's ExecStart) and checks their sockets;
#  4. purges it again.
# Not root: steps 1 and 2, then exit 77 (skipped). A preflight package installed before is left
# alone: the script stops unless PREFLIGHT_PKG_REPLACE=1. KEEP_PACKAGE=1 skips the purge.
# JOBS (default 2) is the build's parallel=. Every wait is bounded.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PKG_DIR=${PKG_DIR:-$here/build-pkg}
JOBS=${JOBS:-2}
start=$SECONDS
fails=0 passes=0
check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1"; fi; }
ok() { "$@" >/dev/null 2>&1; echo $?; }  # the exit status of a command, for check
die() { echo "package: $*" >&2; exit 1; }
step() { echo "=== package: $1 (at $((SECONDS - start)) s)"; }
wait_for() { local n=$1 i; shift; for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }
root=0; [ "$(id -u)" -eq 0 ] && root=1

if [ $root -eq 1 ]; then
  bash "$here/contrib/install-deps.sh" || die "contrib/install-deps.sh failed"
fi
for tool in dpkg-buildpackage dpkg-parsechangelog dh; do
  command -v $tool >/dev/null || die "$tool is missing (contrib/install-deps.sh installs it)"
done

full=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version) || die "debian/changelog does not parse"
upstream=${full#*:}
upstream=${upstream%-*}
arch=$(dpkg --print-architecture)
deb=$PKG_DIR/preflight_${full#*:}_${arch}.deb

# 1. Build, in a copy: the files git knows plus new ones it does not ignore (so build*/ stays out);
# outside a git checkout, the tree without build*/ and .git.
step "dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS nocheck parallel=$JOBS; log $PKG_DIR/build.log)"
case $PKG_DIR in /|"$here"|"$here/") die "PKG_DIR=$PKG_DIR would remove the tree" ;; esac
rm -rf "$PKG_DIR"
mkdir -p "$PKG_DIR/preflight" || die "cannot create $PKG_DIR"
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$here" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
    tar -xf - -C "$PKG_DIR/preflight" || die "cannot copy the tree"
else
  tar -C "$here" --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$PKG_DIR/preflight" ||
    die "cannot copy the tree"
fi
(cd "$PKG_DIR/preflight" &&
  DEB_BUILD_OPTIONS="nocheck noddebs parallel=$JOBS" timeout 1800 dpkg-buildpackage -us -uc -b) \
  >"$PKG_DIR/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ] || [ ! -f "$deb" ]; then
  tail -40 "$PKG_DIR/build.log"
  die "dpkg-buildpackage failed (exit $rc; no $deb?)"
fi
rm -rf "$PKG_DIR/preflight"  # the copy and its obj-* build tree; the artefacts stay
ls "$PKG_DIR"
echo "built $deb in $((SECONDS - start)) s"

# 2. The .deb itself.
step "dpkg-deb -c / -I"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for f in /usr/sbin/preflight-milter /usr/bin/preflight-classify \
  /usr/share/man/man1/preflight-classify.1.gz /usr/share/man/man5/preflight.conf.5.gz \
  /usr/share/man/man5/preflight-rules.5.gz /usr/share/man/man5/preflight-tenants.5.gz \
  /usr/share/man/man8/preflight-milter.8.gz \
  /lib/systemd/system/preflight-milter.service /lib/systemd/system/preflight-status-filter.service \
  /etc/preflight/preflight.conf /etc/preflight/status-policy.conf \
  /usr/lib/sysusers.d/preflight.conf /usr/lib/tmpfiles.d/preflight.conf \
  /usr/share/doc/preflight/copyright /usr/share/doc/preflight/changelog.Debian.gz \
  /usr/share/preflight/contrib/postfix/main.cf.snippet /usr/share/preflight/contrib/sendmail/preflight.mc \
  /usr/share/preflight/examples/preflight.conf; do
  grep -qxF "$f" <<<"$contents"; check "the package has $f" $?
done
# The units in one place only.
n=$(grep -c '\.service$' <<<"$contents"); check "the package has 2 unit files, not $n" "$([ "$n" -eq 2 ]; echo $?)"
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null)
for f in /etc/preflight/preflight.conf /etc/preflight/status-policy.conf; do
  grep -qxF "$f" <<<"$conffiles"; check "$f is a conffile" $?
done
check "Package is preflight" "$([ "$(dpkg-deb -f "$deb" Package)" = preflight ]; echo $?)"
check "Version is debian/changelog's $full" "$([ "$(dpkg-deb -f "$deb" Version)" = "$full" ]; echo $?)"
# What apt installs with the package (Depends, Pre-Depends, Recommends) names no MTA and no Redis.
relations=$(dpkg-deb -f "$deb" Depends Pre-Depends Recommends)
echo "$relations"
names=$(sed 's/^[A-Za-z-]*: //' <<<"$relations" | tr ',|' '\n' | sed 's/([^)]*)//; s/\[.*\]//; s/^ *//; s/ *$//; s/:.*//')
bad=$(grep -E '^(postfix|sendmail|exim4|redis|mail-transport-agent|default-mta)([a-z0-9.+-]*)$' <<<"$names")
check "Depends/Pre-Depends/Recommends name no MTA and no Redis: ${bad:-none}" "$([ -z "$bad" ]; echo $?)"
grep -q '^Depends: .*libmilter' <<<"$relations"; check "Depends has the shared libraries (libmilter...)" $?

if command -v lintian >/dev/null; then
  step "lintian"
  # Root is told it should not run lintian; the checks are the same.
  lint=$(timeout 300 lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v '^running with root privileges')
  echo "${lint:-(nothing)}"
  ! grep -q '^E: ' <<<"$lint"; check "lintian reports no error" $?
else
  echo "package: lintian not installed, not run"
fi

if [ $root -eq 0 ]; then
  echo "package: $passes passed, $fails failed; skip: installing needs root"
  [ "$fails" -eq 0 ] || exit 1
  exit 77
fi

# 3. Installed.
if dpkg-query -W -f='${Status}' preflight 2>/dev/null | grep -q 'ok installed'; then
  [ "${PREFLIGHT_PKG_REPLACE:-}" = 1 ] ||
    die "a preflight package is installed already; PREFLIGHT_PKG_REPLACE=1 purges it and goes on"
  timeout 600 apt-get purge -y -q preflight >/dev/null || die "cannot purge the installed preflight"
fi
pids=()
installed=0
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ $installed -eq 1 ] && [ -z "${KEEP_PACKAGE:-}" ]; then
    timeout 600 apt-get purge -y -q preflight >/dev/null 2>&1
  fi
}
trap cleanup EXIT
step "apt-get install $deb"
export DEBIAN_FRONTEND=noninteractive
timeout 600 apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 "$deb" \
  >"$PKG_DIR/install.log" 2>&1
rc=$?
installed=1
[ $rc -eq 0 ] || { cat "$PKG_DIR/install.log"; die "apt-get install failed (exit $rc)"; }
grep -E '^(Setting up|Creating)' "$PKG_DIR/install.log"
check "dpkg says preflight $full is installed" \
  "$([ "$(dpkg-query -W -f='${Status} ${Version}' preflight)" = "install ok installed $full" ]; echo $?)"
for p in postfix sendmail-bin redis-server; do
  # Postfix and Redis may be here for the test suite; the package must not have brought them.
  grep -q "^Setting up $p " "$PKG_DIR/install.log"; check "installing preflight did not install $p" "$((1 - $?))"
done

step "user, directories, conffiles"
pw=$(getent passwd preflight); check "user preflight exists" $?
IFS=: read -r _ _ _ gid _ home shell <<<"$pw"
check "preflight's home is /var/lib/preflight, not $home" "$([ "$home" = /var/lib/preflight ]; echo $?)"
check "preflight's shell is nologin, not $shell" "$([[ $shell == */nologin ]]; echo $?)"
check "preflight's group is preflight" "$([ "$(getent group "$gid" | cut -d: -f1)" = preflight ]; echo $?)"
st=$(stat -c '%U:%G %a' /var/lib/preflight 2>&1)
check "/var/lib/preflight is preflight:preflight 750, not $st" "$([ "$st" = "preflight:preflight 750" ]; echo $?)"
check "user preflight can write /var/lib/preflight" "$(ok runuser -u preflight -- test -w /var/lib/preflight)"
st=$(stat -c '%U:%G %a' /etc/preflight/preflight.conf /etc/preflight/status-policy.conf | sort -u)
check "the conf files are root:root 644, not $st" "$([ "$st" = "root:root 644" ]; echo $?)"
cf=$(dpkg-query -W -f='${Conffiles}' preflight)
for f in /etc/preflight/preflight.conf /etc/preflight/status-policy.conf; do
  grep -q "^ $f " <<<"$cf"; check "dpkg knows $f as a conffile" $?
done
for u in preflight-milter preflight-status-filter; do
  ! ls /etc/systemd/system/*.wants/$u.service >/dev/null 2>&1; check "$u.service is not enabled" $?
done

unit_key_any() {  # unit_key_any UNIT KEY: every value of KEY in the unit, any section
  sed -n "s/^$2=//p" "/lib/systemd/system/$1.service" | tr '\n' ' '
}
step "systemd-analyze verify"
# Works without systemd as PID 1: it loads the unit and the units it names, checks every key and
# value, that ExecStart's programs exist and that Documentation='s man pages open. Unknown keys
# and bad values are printed but exit 0, so any output fails too.
for u in preflight-milter preflight-status-filter; do
  out=$(timeout 60 systemd-analyze verify "/lib/systemd/system/$u.service" 2>&1)
  rc=$?
  echo "systemd-analyze verify $u.service: exit $rc${out:+, }$out"
  check "systemd-analyze verify $u.service says nothing and exits 0" "$([ $rc -eq 0 ] && [ -z "$out" ]; echo $?)"
done

for u in preflight-milter preflight-status-filter; do
  # Debian's Postfix runs smtpd and the delivery agents in postfix@-.service.
  before=$(unit_key_any "$u" Before)
  check "$u.service comes before postfix@-.service and postfix.service: Before=$before" \
    "$([[ " $before " == *" postfix@-.service "* && " $before " == *" postfix.service "* ]]; echo $?)"
done

step "versions, shipped conf and policy"
out=$(/usr/sbin/preflight-milter --version 2>&1)
check "preflight-milter --version: '$out', want 'preflight-milter $upstream'" \
  "$([ "$out" = "preflight-milter $upstream" ]; echo $?)"
out=$(/usr/bin/preflight-classify --version 2>&1)
check "preflight-classify --version: '$(head -n 1 <<<"$out")', want 'preflight-classify $upstream'" \
  "$([ "$(head -n 1 <<<"$out")" = "preflight-classify $upstream" ]; echo $?)"
# The package is built with the rule engine Debian has for the architecture: Hyperscan on amd64.
want_engine=re2
[ "$(dpkg --print-architecture)" = amd64 ] && want_engine=hyperscan
check "preflight-classify --version names rule engine $want_engine: '$(sed -n 2p <<<"$out")'" \
  "$([[ $(sed -n 2p <<<"$out") == "rule engine: $want_engine"* ]]; echo $?)"
for page in man1/preflight-classify.1 man5/preflight.conf.5 man5/preflight-rules.5 man5/preflight-tenants.5 \
  man8/preflight-milter.8; do
  os=$(zcat "/usr/share/man/$page.gz" | grep '^\.Os')
  check "$page: '$os', want '.Os preflight $upstream'" "$([ "$os" = ".Os preflight $upstream" ]; echo $?)"
done
out=$(/usr/sbin/preflight-milter -n -c /etc/preflight/preflight.conf 2>&1)
check "preflight-milter -n -c /etc/preflight/preflight.conf: $out" $?
out=$(/usr/bin/preflight-classify serve --check --policy /etc/preflight/status-policy.conf 2>&1)
check "preflight-classify serve --check on the shipped policy: ${out%%$'\n'*}" $?

# A key of a unit's [Service] section, continuation lines joined.
unit_key() {  # unit_key UNIT KEY
  awk -v key="$2" '
    /^\[/ { service = ($0 == "[Service]") }
    service && !more && index($0, key "=") == 1 { value = substr($0, length(key) + 2); more = /\\$/; if (!more) print value; next }
    more { value = value "\n" $0; more = /\\$/; if (!more) print value }
  ' "/lib/systemd/system/$1.service" | sed 's/\\$//' | tr '\n' ' ' | sed 's/  */ /g; s/ $//'
}
# Start a unit's ExecStart as systemd would (its RuntimeDirectory, if any, with its mode, made
# for User= and Group=; its ExecStartPre=+ commands as root; the process as that user and group),
# wait for SOCKET, and leave the PID in $run_pid.
run_unit() {  # run_unit UNIT SOCKET LOG
  local unit=$1 sock=$2 log=$3 user group dir mode cmd pre
  user=$(unit_key "$unit" User) group=$(unit_key "$unit" Group)
  dir=$(unit_key "$unit" RuntimeDirectory) mode=$(unit_key "$unit" RuntimeDirectoryMode)
  cmd=$(unit_key "$unit" ExecStart)
  [ -n "$cmd" ] || { echo "$unit: no ExecStart"; return 1; }
  if [ -n "$dir" ]; then
    dir=/run/$dir
    rm -rf "$dir"
    install -d -m "${mode:-0755}" -o "${user:-root}" -g "${group:-${user:-root}}" "$dir" || return 1
  fi
  while IFS= read -r pre; do
    case $pre in
      +*) echo "$unit: ExecStartPre=$pre"
          # shellcheck disable=SC2086
          ${pre#+} || { echo "$unit: ExecStartPre=$pre failed"; return 1; } ;;
    esac
  done < <(sed -n 's/^ExecStartPre=//p' "/lib/systemd/system/$unit.service")
  echo "$unit: ${user:+User=$user }${group:+Group=$group }${dir:+$dir (${mode:-0755}); }$cmd"
  if [ -n "$user" ]; then
    # shellcheck disable=SC2086  # the unit's command line, split as systemd splits it (no quotes in it)
    timeout 120 setpriv --reuid="$user" --regid="${group:-$user}" --init-groups $cmd </dev/null >"$log" 2>&1 &
  else
    # shellcheck disable=SC2086
    timeout 120 $cmd </dev/null >"$log" 2>&1 &
  fi
  run_pid=$!
  pids+=("$run_pid")
  wait_for 100 test -S "$sock" || { echo "$unit: no socket $sock after 10 s: $(cat "$log")"; return 1; }
}
# The process under timeout(1).
daemon_of() { ps -o pid= --ppid "$1" | tr -d ' '; }
stop_unit() {  # stop_unit PID DIR: SIGTERM to the daemon, wait at most 20 s, remove the runtime dir
  local d
  d=$(daemon_of "$1")
  [ -n "$d" ] && kill -TERM "$d" 2>/dev/null
  wait_for 200 eval "! kill -0 $1 2>/dev/null"
  local rc=$?
  rm -rf "$2"
  return $rc
}

step "preflight-milter as preflight-milter.service starts it"
run_unit preflight-milter /run/preflight-milter/milter.sock "$PKG_DIR/milter.log"
check "the milter started with the shipped unit and conf" $?
cat "$PKG_DIR/milter.log"
st=$(stat -c '%U:%G %a' /run/preflight-milter/milter.sock 2>&1)
check "its socket is preflight:preflight 660 (UserID preflight), not $st" "$([ "$st" = "preflight:preflight 660" ]; echo $?)"
d=$(daemon_of "$run_pid")
who=$(ps -o euser:32=,egroup:32= -p "${d:-0}" 2>&1 | tr -s ' ' | sed 's/^ //; s/ $//')
check "it dropped root: runs as '$who'" "$([ "$who" = "preflight preflight" ]; echo $?)"
stop_unit "$run_pid" /run/preflight-milter; check "it stopped on SIGTERM" $?
grep -q 'stopping' "$PKG_DIR/milter.log"; check "it logged its stop" $?

# With a quota, the default store /var/lib/preflight/quota.db: made by the milter as root,
# given to the user it drops to.
# (The conf in a directory of its own that user preflight can read.)
tmp=$(mktemp -d) && chmod 755 "$tmp" || die "mktemp failed"
conf=$tmp/quota.conf
{ cat /etc/preflight/preflight.conf; echo 'QuotaRecipients 100/day'; } >"$conf"
install -d -m 0755 /run/preflight-milter
timeout 120 /usr/sbin/preflight-milter -f -c "$conf" </dev/null >"$PKG_DIR/milter-quota.log" 2>&1 &
run_pid=$! pids+=("$run_pid")
wait_for 100 test -S /run/preflight-milter/milter.sock
check "the milter started with QuotaRecipients set: $(cat "$PKG_DIR/milter-quota.log")" $?
st=$(stat -c '%U:%G' /var/lib/preflight/quota.db 2>&1)
check "/var/lib/preflight/quota.db is preflight's, not $st" "$([ "$st" = preflight:preflight ]; echo $?)"
out=$(runuser -u preflight -- /usr/sbin/preflight-milter --quota-status -c "$conf" 2>&1)
check "user preflight reads the quota store: $out" $?
stop_unit "$run_pid" /run/preflight-milter; check "it stopped on SIGTERM" $?
rm -rf "$tmp"

if getent group postfix >/dev/null; then
  step "preflight-classify serve as preflight-status-filter.service starts it"
  # Its socket's directory is inside Postfix's chroot; the unit makes it (ExecStartPre=+).
  sdir=/var/spool/postfix/preflight-classify
  existed=0; [ -e "$sdir" ] && existed=1
  run_unit preflight-status-filter "$sdir/status.sock" "$PKG_DIR/serve.log"
  check "the status filter started with the shipped unit and policy" $?
  st=$(stat -c '%U:%G %a' "$sdir/status.sock" 2>&1)
  check "its socket is preflight:postfix 660, not $st" "$([ "$st" = "preflight:postfix 660" ]; echo $?)"
  st=$(stat -c '%U:%G %a' "$sdir" 2>&1)
  check "$sdir is preflight:postfix 750, not $st" "$([ "$st" = "preflight:postfix 750" ]; echo $?)"
  # A lookup through the socket, as Postfix's delivery agents make it (user postfix).
  out=$(runuser -u postfix -- python3 - <<'EOF' 2>&1
import socket
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect("/var/spool/postfix/preflight-classify/status.sock")
q = b"status 4.1.1 host mx.example.org said: 450 4.1.1 <bob@example.org>: User unknown"
s.sendall(b"%d:%s," % (len(q), q))
print(s.recv(4096).decode())
EOF
)
  check "user postfix gets a bounce for 450 4.1.1 user unknown: $out" "$([[ $out == *"OK 5.1.1"* ]]; echo $?)"
  # (a directory this check made goes again; one that was there before stays)
  if [ "$existed" = 1 ]; then stop_unit "$run_pid" /nonexistent; else stop_unit "$run_pid" "$sdir"; fi
  check "it stopped on SIGTERM" $?
  cat "$PKG_DIR/serve.log"
else
  echo "package: no group postfix here; the status filter's unit (Group=postfix) not started"
fi

# 4. Purge.
if [ -z "${KEEP_PACKAGE:-}" ]; then
  step "apt-get purge preflight"
  timeout 600 apt-get purge -y -q preflight >"$PKG_DIR/purge.log" 2>&1
  check "apt-get purge preflight: $(tail -1 "$PKG_DIR/purge.log")" $?
  installed=0
  for f in /usr/sbin/preflight-milter /etc/preflight /var/lib/preflight /lib/systemd/system/preflight-milter.service \
      /var/spool/postfix/preflight-classify; do
    [ ! -e "$f" ]; check "purged: $f is gone" $?
  done
fi

echo "package: $passes passed, $fails failed in $((SECONDS - start)) s"
[ "$fails" -eq 0 ]
