"""Directory collector vs ldapsearch on a 100,000-entry private slapd, side by side in one run.

    python3 benchmarks/ldap_bench.py [--entries 100000] [--page-size 1000] [--rounds 3]

Loads N users into a private slapd (slapadd, loopback only), then alternates, per round:
  * ``ldapsearch -E pr=<page>/noprompt`` for the same filter and attributes, output to a file;
  * the collector (``auditor.collect.ldap.collect``) in a fresh Python process.
Wall time and peak RSS of each child come from ``os.wait4`` (the child's own rusage). The child
collector also reports its in-process collect() time (without interpreter start-up and imports).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.lab.ldap_data import bulk_users  # noqa: E402
from auditor.lab.slapd import Slapd  # noqa: E402

SUFFIX = "dc=example,dc=test"
PASSWORD = "bench-secret"

CHILD = """
import json, sys, time
t0 = time.monotonic()
from auditor.collect.ldap import DirectoryQuery, LdapSettings, collect
t1 = time.monotonic()
url, dn, pw, page = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
query = DirectoryQuery(profile="openldap", page_size=page, domains=("example.test",))
obs = collect(LdapSettings((url,), bind_dn=dn, password=pw), query)
t2 = time.monotonic()
info = {"import_s": t1 - t0, "collect_s": t2 - t1, "complete": obs.complete, "error": obs.error}
info.update(entries=obs.entries, addresses=obs.address_count, pages=obs.pages)
print(json.dumps(info))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_measured(
    cmd: list[str], stdout: int | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, float, bytes]:
    """(wall seconds, CPU seconds, peak RSS MiB, captured stdout) of one child process."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=stdout if stdout is not None else subprocess.PIPE, env=env)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with exit {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bsa-ldap-bench-") as tmp:
        work = Path(tmp)
        s = Slapd(
            work / "slapd", SUFFIX, port=free_port(), tls_port=None, password=PASSWORD, size_limit="unlimited"
        )
        ldif = work / "data.ldif"
        t0 = time.monotonic()
        with open(ldif, "w") as fh:
            fh.write(s.base_ldif())
            for chunk in bulk_users(SUFFIX, args.entries):
                fh.write(chunk)
        s.load_file(ldif)
        print(f"slapadd of {args.entries} entries: {time.monotonic() - t0:.2f} s", file=sys.stderr)
        pwfile = work / "pw"
        pwfile.write_text(PASSWORD)
        pwfile.chmod(0o600)
        s.start(timeout=30)
        try:
            flt = "(|(mail=*)(mailAlternateAddress=*)(mailLocalAddress=*))"
            attrs = ["mail", "mailAlternateAddress", "mailLocalAddress"]  # what the openldap profile asks for
            ldapsearch = [
                "ldapsearch",
                "-x",
                "-LLL",
                "-H",
                s.url,
                "-D",
                s.root_dn,
                "-y",
                str(pwfile),
                "-b",
                SUFFIX,
            ]
            ldapsearch += ["-E", f"pr={args.page_size}/noprompt", flt, *attrs]
            child = [sys.executable, "-c", CHILD, s.url, s.root_dn, PASSWORD, str(args.page_size)]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            rows: dict[str, list[tuple[float, float, float]]] = {"ldapsearch": [], "collector": []}
            inproc: list[float] = []
            for _ in range(args.rounds):
                with open(work / "out.ldif", "wb") as out:
                    w, cpu, rss, _ = run_measured(ldapsearch, stdout=out.fileno())
                rows["ldapsearch"].append((w, cpu, rss))
                w, cpu, rss, out_b = run_measured(child, env=env)
                info = json.loads(out_b)
                if not info["complete"] or info["addresses"] != args.entries:
                    raise SystemExit(f"collector incomplete: {info}")
                rows["collector"].append((w, cpu, rss))
                inproc.append(info["collect_s"])
            with open(work / "out.ldif") as fh:
                n = sum(1 for line in fh if line.startswith("dn: "))
            print(f"entries: {args.entries}, page size {args.page_size}, rounds {args.rounds}")
            print(f"ldapsearch wrote {n} entries; the collector found {info['addresses']} addresses")
            print("| tool | wall s (median) | wall s (min) | client CPU s (median) | peak RSS MiB (max) |")
            print("|---|---|---|---|---|")
            for name, vals in rows.items():
                walls = [v[0] for v in vals]
                cpu = statistics.median(v[1] for v in vals)
                rss = max(v[2] for v in vals)
                print(
                    f"| {name} | {statistics.median(walls):.2f} | {min(walls):.2f} | {cpu:.2f} | {rss:.1f} |"
                )
            med, low = statistics.median(inproc), min(inproc)
            print(f"| collector, collect() call only | {med:.2f} | {low:.2f} | | |")
            ratio = statistics.median(v[0] for v in rows["collector"]) / statistics.median(
                v[0] for v in rows["ldapsearch"]
            )
            print(f"wall-time ratio collector/ldapsearch (medians): {ratio:.2f}")
        finally:
            s.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
