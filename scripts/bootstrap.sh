#!/usr/bin/env bash
# Set up everything Backscatter Auditor and its tests need on a fresh Debian 12 machine, as root:
# the Debian packages of the lab (Postfix, slapd, dnsmasq, swaks, chromium) and a virtualenv in .venv.
# Safe to run again: installed packages are skipped, the venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

APT_PACKAGES=(
  postfix postfix-ldap postfix-pcre postfix-lmdb   # the MTA under test, with its lookup-table plugins
  slapd ldap-utils                                  # the recipient directory of the lab
  dnsmasq-base                                      # the lab's DNS server (binary only, no service)
  iproute2 bsdutils procps                          # ip netns, script(1), pkill
  openssl ca-certificates                           # the lab's test CA (LDAPS, STARTTLS)
  swaks                                             # benchmark baseline
  chromium                                          # HTML report test (headless)
  libidn12                                          # the extracted Exim binary (below) links it
  python3 python3-venv
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  # Daemons must not start from postinst (slapd would grab :389): the lab runs its own instances.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  debconf-set-selections <<'P'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string lab.test
slapd slapd/no_configuration boolean true
P
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Only for the install: leave the host's service policy as it was.
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# Exim cannot be installed beside Postfix (both are the system MTA), so its packages are unpacked
# into /opt/exim4: `lint exim` tests use that binary as their oracle (exim -C FILE -bP).
EXIM_ROOT=/opt/exim4
if [ ! -x "$EXIM_ROOT/usr/sbin/exim4" ]; then
  debs=/opt/exim4-debs
  mkdir -p "$debs"
  (cd "$debs" && apt-get download exim4-daemon-light exim4-base exim4-config) ||
    { apt-get update -q && (cd "$debs" && apt-get download exim4-daemon-light exim4-base exim4-config); }
  for d in exim4-daemon-light exim4-base exim4-config; do dpkg-deb -x "$debs/${d}"_*.deb "$EXIM_ROOT"; done
fi
# The binary runs as its compiled-in user; useradd (package passwd) is on every Debian system.
getent passwd Debian-exim >/dev/null ||
  useradd --system --user-group --home-dir /var/spool/exim4 --no-create-home \
    --shell /usr/sbin/nologin Debian-exim

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev,lab]'
echo "bootstrap: ready (.venv/bin/backscatter-audit)" >&2
