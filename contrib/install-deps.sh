#!/usr/bin/env bash
# Install every build and test dependency of preflight on Debian bookworm.
# Idempotent: packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config
  # libraries preflight links against
  libmilter-dev libspf2-dev libopendkim-dev libldns-dev libre2-dev
  libgmime-3.0-dev libxlsxwriter-dev zlib1g-dev
  # bounce parser the dsn benchmark compares against
  libsisimai-perl
  # tests and benchmarks
  catch2 libbenchmark-dev
  # HTTP server of the metrics endpoint
  libcpp-httplib-dev
  # real components used by integration tests
  postfix swaks python3-aiosmtpd python3-dnslib python3-openpyxl dnsutils openssl
  # benchmark baseline of preflight-classify log
  pflogsumm
  # docs
  mandoc time
)

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
