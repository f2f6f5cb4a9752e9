"""Probe engine cost: sessions, MAIL transactions and wall time for many domains; and the real lab.

Usage:
  PYTHONPATH=. python3 benchmarks/probe_bench.py loopback [N ...]   # scripted validating server on 127.0.0.1
  sudo PYTHONPATH=. python3 benchmarks/probe_bench.py lab [RUNS]    # real Postfix lab (session lock)

Loopback: N domains all served by one MX address (a scripted server that rejects unknown
recipients), session delay 0, null-sender sample 20 per address (the default). Prints, with and
without PIPELINING: sessions, MAIL transactions, the most refusals one session carried, wall time.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from auditor.collect.smtp import ProbeSettings, probe_domains
from auditor.collect.smtp.engine import Engine, make_plan
from auditor.collect.smtp.model import ProbeResult, Verdict
from auditor.collect.smtp.scenarios import load
from tests.unit.smtp.fakes import Scripted, fast_settings, mx_for, running

SESSION_LOCK = Path("/run/bsa-lab.session.lock")  # the same lock the integration tests take


def loopback(n: int, pipelining: bool) -> str:
    srv = Scripted(extensions=("PIPELINING",) if pipelining else ("SIZE 1000000",))
    domains = [f"d{i:04d}.test" for i in range(n)]

    async def go() -> tuple[float, int]:
        async with running(srv):
            settings = fast_settings(srv.port, timeout=10.0, audit_timeout=600.0)
            plan = make_plan(mx_for(domains, host="mx.shared.test"), settings, load(), domains)
            t0 = time.monotonic()
            results = await Engine(settings).run(plan)
            ok = sum(r.verdict is Verdict.REJECTS_UNKNOWN for r in results)
            return time.monotonic() - t0, ok

    took, ok = asyncio.run(go())
    return (
        f"{n:5d} domains, pipelining={'yes' if pipelining else 'no '}: {srv.connections} sessions, "
        f"{srv.mail_commands} MAIL transactions ({srv.accepted_transactions} with an accepted RCPT), "
        f"max {max(srv.rejections_per_session)} refusals/session, "
        f"{ok}/{n} rejects-unknown, {took:.2f} s"
    )


def lab(runs: int) -> None:
    from auditor.lab import Lab

    SESSION_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(SESSION_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # wait for any integration test session using the lab
        lab = Lab(os.environ.get("BSA_LAB_DIR") or "/run/bsa-lab-test")
        try:
            info = lab.up()
            controls = tuple(
                a
                for d in info.domains
                if d.in_scope
                for a in d.valid_recipients
                if not a.startswith("postmaster@")
            )
            for retry in (0.0, float(info.greylist_delay_s + 1)):
                times = []
                for _ in range(runs):
                    settings = ProbeSettings(
                        nameservers=(str(info.nameserver),),
                        controls=controls,
                        mail_from=f"{info.probe_prefix}bench@{info.sink_domain}",
                        session_delay=0.2,
                        retry_after=retry,
                    )
                    t0 = time.monotonic()
                    obs = probe_domains(list(info.scope()), settings)
                    times.append(time.monotonic() - t0)
                verdicts = Counter(o.verdict.value for o in obs if isinstance(o, ProbeResult))
                n = sum(verdicts.values())
                print(
                    f"lab: {len(info.scope())} domains, {n} (domain, MX address) results, "
                    f"retry_after={retry:g} s: min {min(times):.2f} s, "
                    f"median {statistics.median(times):.2f} s, max {max(times):.2f} s ({runs} runs); "
                    f"last run's verdicts: {dict(verdicts)}",
                    flush=True,
                )
        finally:
            lab.down()
            fcntl.flock(lock, fcntl.LOCK_UN)


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "loopback"
    if mode == "loopback":
        for n in [int(a) for a in sys.argv[2:]] or [30, 100, 500]:
            for pipelining in (False, True):
                print(loopback(n, pipelining), flush=True)
        return 0
    if mode == "lab":
        lab(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
