#!/usr/bin/env python3
"""Generate auditor/collect/postfix/postfix_defaults.json from a real Postfix installation.

Run on a machine with Postfix installed: ``python3 scripts/gen_postfix_defaults.py [--postconf PATH]``.
It records, for the installed version:

- ``defaults``: every parameter's *raw* built-in default as ``postconf -d`` prints it, so that
  ``$myhostname``-style defaults expand against the linted configuration, not this machine. The
  compatibility-level dependent defaults come out as ``${{$compatibility_level} <level {2} ? … }``
  expressions, which the parser evaluates like Postfix does.
- ``raw_parameters``: parameters that Postfix does not ``$name``-expand at configuration load
  (``luser_relay``, ``mailbox_command``, …), found by asking ``postconf -x`` to expand a probe.
- ``computed``: defaults computed at run time from the host (hostname, interfaces).
- ``stock_master_cf``: the services of the distribution's stock master.cf, used when a linted
  directory has no master.cf.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "auditor" / "collect" / "postfix" / "postfix_defaults.json"
PROBE = "zz_bsa_probe"
# Host-dependent defaults (postconf(5): myhostname, mydomain, mynetworks are computed at run time).
ALWAYS_COMPUTED = ("myhostname", "mydomain", "mynetworks")


def run(postconf: str, *args: str) -> str:
    proc = subprocess.run([postconf, *args], capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def parse_lines(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            out[name] = value
        elif line.endswith(" ="):
            out[line[:-2]] = ""
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postconf", default=shutil.which("postconf") or "/usr/sbin/postconf")
    ap.add_argument("--master-proto", default="/etc/postfix/master.cf.proto")
    ap.add_argument("--output", default=str(OUT))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "main.cf").write_text("")
        proto = Path(args.master_proto)
        (d / "master.cf").write_text(proto.read_text() if proto.exists() else "")
        defaults = parse_lines(run(args.postconf, "-c", tmp, "-d"))
        version = defaults.get("mail_version", "")
        services = run(args.postconf, "-c", tmp, "-M").splitlines() if proto.exists() else []

        # Which parameters does postconf leave unexpanded? Set each to $PROBE and look.
        names = sorted(n for n in defaults if n != "compatibility_level")
        lines = [f"{PROBE} = expanded"] + [f"{n} = ${PROBE}" for n in names]
        (d / "main.cf").write_text("\n".join(lines) + "\n")
        expanded = run(args.postconf, "-c", tmp, "-x", "-h", *names).splitlines()
        raw = sorted(n for n, v in zip(names, expanded, strict=True) if v.strip() == f"${PROBE}")

    host = socket.gethostname().split(".")[0]
    computed = sorted(
        set(ALWAYS_COMPUTED)
        | {n for n, v in defaults.items() if host and host in v.replace(",", " ").split()}
    )
    data = {
        "generated_by": "scripts/gen_postfix_defaults.py (postconf -d, postconf -x probe, postconf -M)",
        "postfix_version": version,
        "defaults": dict(sorted(defaults.items())),
        "raw_parameters": raw,
        "computed": computed,
        "stock_master_cf": services,
    }
    Path(args.output).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(
        f"wrote {args.output}: Postfix {version}, {len(defaults)} defaults, {len(raw)} raw", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
