#!/usr/bin/env bash
# Smoke test of the installed package: a fresh venv outside the checkout, the wheel installed into it
# (dependencies from the package index), every command run from a scratch directory with no PYTHONPATH,
# so nothing can be read from the source tree.
#
# Usage: scripts/wheel_smoke.sh [WHEEL]     without WHEEL, one is built first (python -m build)
# PYTHON: the interpreter for the build and the venv (default: .venv/bin/python, else python3).
# Network: only pip talks to the index. The probe runs --dry-run with the MX given as 127.0.0.1 and a
# loopback nameserver, so no DNS query and no SMTP connection leaves the machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
  # A relative path (.ci/run passes .venv/bin/python) must survive the cd below.
  case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac
elif [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python
else PY=python3
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS

wheel=${1:-}
if [ -z "$wheel" ]; then
  "$PY" -m build --wheel --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
  wheel=$(echo "$WORK"/dist/*.whl)
fi
wheel=$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")
# Nothing may point at the checkout: with it on sys.path (PYTHONPATH, or the cwd of `python -m pip`),
# pip takes its egg-info for an installed copy and skips the wheel.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
cd "$WORK"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
echo "wheel_smoke: installed $(basename "$wheel") in $((SECONDS - start)) s" >&2

BSA=$WORK/venv/bin/backscatter-audit
passed=0
failed=0

# check NAME CODES NEEDLE CMD...: CMD must exit with one of CODES and print NEEDLE (stdout or stderr).
check() {
  local name=$1 codes=$2 needle=$3 out rc=0
  shift 3
  out=$("$@" 2>&1) || rc=$?
  if [[ " $codes " != *" $rc "* ]]; then
    echo "FAIL $name: exit $rc, expected one of: $codes" >&2
  elif ! grep -qF -- "$needle" <<<"$out"; then
    echo "FAIL $name: output lacks '$needle'" >&2
  else
    echo "ok   $name" >&2
    passed=$((passed + 1))
    return 0
  fi
  printf '%s\n' "$out" | tail -n 20 | sed 's/^/     | /' >&2
  failed=$((failed + 1))
}

mkdir -p postfix x
cat >postfix/main.cf <<'EOF'
myhostname = mx.example.test
mydomain = example.test
mydestination = $myhostname, localhost, example.test
local_recipient_maps =
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
EOF

check "version" 0 "backscatter-audit 0." "$BSA" --version
check "rules" 0 "PF-RCPT-003" "$BSA" rules
check "explain" 0 "PF-RCPT-003" "$BSA" explain PF-RCPT-003
check "init" 0 "[site]" sh -c 'mkdir -p x && "$1" init x/site.toml && cat x/site.toml' sh "$BSA"
# Findings fail the lint (exit 1): the empty local_recipient_maps is PF-RCPT-001.
check "lint postfix" 1 "PF-RCPT-001" "$BSA" lint postfix postfix
check "lint postfix json" 1 '"schema": "backscatter-audit/2"' \
  sh -c '"$1" lint postfix postfix --format json --output saved.json; rc=$?; cat saved.json; exit $rc' sh "$BSA"
# The scenarios come from the installed package: the unknown-recipient probe is planned.
check "probe --dry-run" 0 "(unknown-recipient)" "$BSA" probe example.test --dry-run \
  --mx-override example.test=127.0.0.1 --nameserver 127.0.0.1
check "report html" 1 "PF-RCPT-001" \
  sh -c '"$1" report saved.json --format html --output report.html; rc=$?; cat report.html; exit $rc' sh "$BSA"
check "exchange collector script" 0 "Collect-BackscatterAudit.ps1" \
  sh -c 'p=$("$1" lint exchange --collector) && test -s "$p" && echo "$p"' sh "$BSA"
check "report schema" 0 "backscatter-audit/2" "$WORK/venv/bin/python" -c \
  'from auditor.schema import load_report_schema; import json; print(json.dumps(load_report_schema()))'
check "man page" 0 "BACKSCATTER" cat "$WORK/venv/share/man/man1/backscatter-audit.1"
check "bash completion" 0 "complete" cat "$WORK/venv/share/bash-completion/completions/backscatter-audit.bash"

echo "wheel_smoke: $((SECONDS - start)) s" >&2
echo "wheel smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
