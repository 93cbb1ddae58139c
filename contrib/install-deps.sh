#!/usr/bin/env bash
# Install every build and test dependency of preflight on Debian bookworm.
# Idempotent: packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config
  # libraries preflight links against
  libmilter-dev libspf2-dev libopendkim-dev libldns-dev libre2-dev
  libgmime-3.0-dev libxlsxwriter-dev zlib1g-dev nlohmann-json3-dev
  # organisational domains for DMARC (the Public Suffix List: libpsl, and the list's own package,
  # newer than libpsl's built-in copy)
  libpsl-dev publicsuffix
  # quota stores: SQLite (embedded) and Redis through hiredis (cluster; the test starts its own
  # redis-server on a loopback port and never uses the system service)
  libsqlite3-dev libhiredis-dev redis-server
  # time zones of plan periods (PlanTimeZone; the unit tests use Europe/Berlin, America/Santiago)
  tzdata
  # Redis as a cluster runs it (integration.redis_cluster): TLS between relay and Redis through
  # stunnel (contrib/redis-tls/); Sentinel is redis-server --sentinel, nothing more to install
  stunnel4
  # suppression list: the trace header's HMAC-SHA256 (OpenSSL's libcrypto)
  libssl-dev
  # bounce parser the dsn benchmark compares against
  libsisimai-perl
  # tests and benchmarks
  catch2 libbenchmark-dev
  # HTTP server of the metrics endpoint
  libcpp-httplib-dev
  # fuzzing (tests/fuzz, -DPREFLIGHT_FUZZ=ON): clang with libFuzzer and the sanitizer runtimes,
  # which clang-14 only recommends
  clang libclang-rt-14-dev
  # real components used by integration tests
  postfix swaks python3-aiosmtpd python3-dnslib python3-openpyxl dnsutils openssl
  # benchmark baseline of preflight-classify log
  pflogsumm
  # Sendmail test: sendmail-bin conflicts with postfix, so the test downloads and unpacks it
  # (apt-get download, needs the package lists of apt-get update); installed here are m4 for its
  # sendmail.cf and the shared libraries of the unpacked binary
  m4 libwrap0 libdb5.3 libnsl2 libldap-2.5-0 libsasl2-2 libssl3
  # docs
  mandoc time
  # the Debian package (tests/package.sh): dpkg-buildpackage, debhelper, lintian; systemd for
  # systemd-sysusers, systemd-tmpfiles and systemd-analyze verify of the installed units
  dpkg-dev debhelper lintian systemd
)
# The classifier's rule engine: Hyperscan exists for amd64 only; elsewhere the build uses RE2.
if [ "$(dpkg --print-architecture)" = amd64 ]; then PACKAGES+=(libhyperscan-dev); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix must not configure or start a system MTA: tests run their own throwaway instances.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
