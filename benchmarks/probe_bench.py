"""Probe engine cost: sessions, MAIL transactions and wall time for many domains; and the real lab.

Usage:
  PYTHONPATH=. python3 benchmarks/probe_bench.py loopback [N ...]   # scripted validating server on 127.0.0.1
  sudo PYTHONPATH=. python3 benchmarks/probe_bench.py lab [RUNS]    # real Postfix lab (session lock)
  sudo PYTHONPATH=. python3 benchmarks/probe_bench.py compare [RUNS [DOMAINS [SWAKS_DOMAINS]]]
      # issue 6: the bench site (auditor/lab/bench.py), engine vs smtplib vs swaks, side by side
  sudo PYTHONPATH=. python3 benchmarks/probe_bench.py scale [RUNS [DOMAINS [dnsmasq|unbound]]]
      # issue 12: the engine alone (PIPELINING) on a site of DOMAINS x 2 MX: DNS and SMTP phase,
      # CPU, peak RSS, error sleeps, 421s, every verdict

Loopback: N domains all served by one MX address (a scripted server that rejects unknown
recipients), session delay 0, null-sender sample 20 per address (the default). Prints, with and
without PIPELINING: sessions, MAIL transactions, the most refusals one session carried, wall time.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import resource
import secrets
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.smtp import ProbeSettings, plan_probes, probe_domains
from auditor.collect.smtp import engine as engine_mod
from auditor.collect.smtp.client import SmtpClient
from auditor.collect.smtp.engine import Engine, make_plan
from auditor.collect.smtp.scenarios import default_dir, load
from auditor.lab.bench import BenchInfo, LogWindow, MaillogView, control_address, iter_targets
from auditor.observations.smtp import ProbeResult, Reply
from auditor.rules.smtp_verdicts import Verdict, classify
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
            ok = sum(classify(r).verdict is Verdict.REJECTS_UNKNOWN for r in results)
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
                verdicts = Counter(classify(o).verdict.value for o in obs if isinstance(o, ProbeResult))
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


# --- issue 6: our engine vs smtplib vs swaks against the bench site (auditor/lab/bench.py) ----------

SLOW_REPLY_S = 0.9  # Postfix's error sleep and in_flow_delay are 1 s each: a reply this late had one
EHLO = "prober.bench.test"
SENDER = "probe@prober.bench.test"
RANDOM_PREFIX = "bsaxq"


@dataclass
class Measured:
    method: str
    pairs: int  # (domain, MX) pairs measured
    sessions: int
    wall: float
    cpu: float
    slow_replies: int | None  # None: the method cannot time single replies (swaks)
    verdicts_ok: bool
    verdict_note: str
    view: MaillogView
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class _Counters:
    sessions: int = 0
    slow: int = 0
    lockstep: bool = False


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children (swaks, bash)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _instrumented(counters: _Counters) -> type[SmtpClient]:
    """The engine's client, counting sessions and replies that came > SLOW_REPLY_S after the last
    write or reply; with ``counters.lockstep`` it forgets PIPELINING after EHLO, so the engine takes
    its lock-step path (there is no setting for that). Benchmark instrumentation only."""

    class Client(SmtpClient):
        _mark = 0.0

        async def connect(self, host: str, port: int, source_address: str = "") -> Reply:
            counters.sessions += 1
            self._mark = time.monotonic()
            return await super().connect(host, port, source_address)

        async def _write(self, data: str) -> None:
            self._mark = time.monotonic()
            await super()._write(data)

        async def read_reply(self, stage: str) -> Reply:
            reply = await super().read_reply(stage)
            now = time.monotonic()
            counters.slow += now - self._mark > SLOW_REPLY_S
            self._mark = now
            return reply

        async def ehlo(self, name: str) -> Reply:
            reply = await super().ehlo(name)
            if counters.lockstep:
                self.extensions.pop("PIPELINING", None)
            return reply

    return Client


@contextmanager
def _patched_client(counters: _Counters) -> Iterator[None]:
    original = engine_mod.SmtpClient
    engine_mod.SmtpClient = _instrumented(counters)  # type: ignore[misc]
    try:
        yield
    finally:
        engine_mod.SmtpClient = original  # type: ignore[misc]


def _judge(info: BenchInfo, verdicts: list[tuple[bool, str]], n: int) -> tuple[bool, str]:
    """All n primaries must reject the unknown recipient, all n backups accept it."""
    c = Counter((("primary" if p else "backup"), v) for p, v in verdicts)
    ok = (
        c[("primary", "rejects-unknown")] == n
        and c[("backup", "accepts-unknown")] == n
        and sum(c.values()) == 2 * n
    )
    return ok, ", ".join(f"{k[0]} {k[1]}: {v}" for k, v in sorted(c.items()))


def run_engine(info: BenchInfo, scenarios_dir: str, lockstep: bool, audit_timeout: float = 300.0) -> Measured:
    settings = ProbeSettings(
        nameservers=(info.nameserver,),
        controls=info.controls,
        mail_from=SENDER,
        ehlo=EHLO,
        session_delay=0.0,  # the reference prober had no delay either (default: 1 s)
        timeout=10.0,
        audit_timeout=audit_timeout,
        random_prefix=RANDOM_PREFIX,
        scenarios_dir=scenarios_dir,
    )
    counters = _Counters(lockstep=lockstep)
    window = LogWindow(info.maillogs)
    c0, t0 = _cpu(), time.monotonic()
    _mx, plan = plan_probes(list(info.domains), settings)
    t_dns = time.monotonic()
    c_dns = _cpu()
    with _patched_client(counters):
        results = asyncio.run(Engine(settings).run(plan))
    wall, cpu = time.monotonic() - t0, _cpu() - c0
    view = window.read(counters.sessions)
    verdicts = [(r.address == info.primary_address, classify(r).verdict.value) for r in results]
    ok, note = _judge(info, verdicts, len(info.domains))
    return Measured(
        "engine, lock-step" if lockstep else "engine, PIPELINING",
        len(results),
        counters.sessions,
        wall,
        cpu,
        counters.slow,
        ok,
        note,
        view,
        {
            "dns_s": t_dns - t0,
            "dns_cpu_s": c_dns - c0,
            "smtp_s": wall - (t_dns - t0),
            "smtp_cpu_s": cpu - (c_dns - c0),
        },
    )


def _verdict(unknown: int, control: int) -> str:
    if unknown // 100 == 5 and control // 100 == 2:
        return "rejects-unknown"
    if unknown // 100 == 2:
        return "accepts-unknown"
    return f"other ({unknown}/{control})"


def run_smtplib(info: BenchInfo, cap_s: float) -> Measured:
    """One session per (domain, MX): EHLO, MAIL, RCPT unknown, RCPT control, QUIT.

    Every session has an accepted recipient, so past Postfix's in_flow_delay token supply each one
    waits 1 s: the loop stops after ``cap_s`` and the rest is extrapolated from its last 20 pairs.
    """
    window = LogWindow(info.maillogs)
    slow = sessions = 0
    verdicts: list[tuple[bool, str]] = []
    durations: list[float] = []

    def timed(fn: Callable[..., tuple[int, bytes]], *args: str) -> int:
        nonlocal slow
        t = time.monotonic()
        code = fn(*args)[0]
        slow += time.monotonic() - t > SLOW_REPLY_S
        return code

    c0, t0 = _cpu(), time.monotonic()
    for domain, ip, primary in iter_targets(info):
        if time.monotonic() - t0 > cap_s:
            break
        t_pair = time.monotonic()
        unknown = f"{RANDOM_PREFIX}{secrets.token_hex(8)}@{domain}"
        with smtplib.SMTP(ip, 25, local_hostname=EHLO, timeout=10) as s:
            sessions += 1
            timed(s.ehlo)
            timed(s.mail, SENDER)
            u = timed(s.rcpt, unknown)
            c = timed(s.rcpt, control_address(domain))
        verdicts.append((primary, _verdict(u, c)))
        durations.append(time.monotonic() - t_pair)
    wall, cpu = time.monotonic() - t0, _cpu() - c0
    done = len(verdicts) // 2
    ok, note = _judge(info, verdicts[: 2 * done], done)
    m = Measured("smtplib loop", len(verdicts), sessions, wall, cpu, slow, ok, note, window.read(sessions))
    left = 2 * len(info.domains) - len(verdicts)
    if left:
        tail = durations[-20:]
        m.phases["extrapolated_s"] = wall + left * sum(tail) / len(tail)
        m.method = f"smtplib loop (stopped at {cap_s:g} s)"
    return m


_SWAKS_LOOP = """while read -r ip rcpt; do
  swaks --server "$ip" --ehlo "$EHLO" --from "$FROM" --to "$rcpt" --quit-after RCPT --hide-all --timeout 10
  echo "$ip $rcpt $?"
done
"""


def run_swaks(info: BenchInfo, n_domains: int) -> Measured:
    """A shell loop, one ``swaks --quit-after RCPT`` per (domain, MX, recipient), on the first
    ``n_domains`` domains (swaks is a Perl process per run)."""
    if shutil.which("swaks") is None:
        raise SystemExit("swaks not installed (Debian package swaks)")
    domains = info.domains[:n_domains]
    unknown = {d: f"{RANDOM_PREFIX}{secrets.token_hex(8)}@{d}" for d in domains}
    jobs = [
        (d, ip, primary, rcpt)
        for d, ip, primary in iter_targets(info)
        if d in unknown
        for rcpt in (unknown[d], control_address(d))
    ]
    stdin = "".join(f"{ip} {rcpt}\n" for _, ip, _, rcpt in jobs)
    window = LogWindow(info.maillogs)
    env = dict(os.environ, EHLO=EHLO, FROM=SENDER)
    c0, t0 = _cpu(), time.monotonic()
    proc = subprocess.run(
        ["bash", "-c", _SWAKS_LOOP], input=stdin, env=env, capture_output=True, text=True,
        timeout=60 + 2 * len(jobs), check=False,
    )  # fmt: skip
    wall, cpu = time.monotonic() - t0, _cpu() - c0
    rc: dict[tuple[str, str], int] = {}
    for line in proc.stdout.splitlines():
        ip, rcpt, code = line.split()
        rc[(ip, rcpt)] = int(code)
    verdicts = []
    for d, ip, primary in iter_targets(info):
        if d in unknown:
            # swaks exits 0 when every step passed, 24 when a RCPT was refused
            u, c = rc.get((ip, unknown[d]), -1), rc.get((ip, control_address(d)), -1)
            as_code = {0: 250, 24: 550}
            verdicts.append((primary, _verdict(as_code.get(u, 0), as_code.get(c, 0))))
    ok, note = _judge(info, verdicts, len(domains))
    return Measured(
        f"swaks loop ({len(domains)} domains)", len(verdicts), len(jobs), wall, cpu, None, ok, note,
        window.read(len(jobs)),
    )  # fmt: skip


def _describe(m: Measured) -> str:
    v = m.view
    phases = " ".join(f"{k}={x:.3f}" for k, x in m.phases.items())
    return (
        f"{m.method}: {m.pairs} (domain, MX) pairs, {m.sessions} sessions, wall {m.wall:.3f} s, "
        f"CPU {m.cpu:.3f} s, replies > {SLOW_REPLY_S} s: {'-' if m.slow_replies is None else m.slow_replies}"
        "; "
        f"maillog: {v.connects} connects, {v.disconnects} disconnects, max {v.max_errors_per_session} "
        f"errors/session, {v.sessions_at_soft_limit} sessions at the soft limit, "
        f"{v.too_many_errors} 'too many errors', {v.lines_421} '421', {v.lost_connection} 'lost connection', "
        f"rcpt {v.rcpt_ok}/{v.rcpt_total}; verdicts {'OK' if m.verdicts_ok else 'WRONG'} ({m.verdict_note})"
        + (f"; {phases}" if phases else "")
        + (f"; warnings: {v.warnings}" if v.warnings else "")
    )


def _table(rows: dict[str, list[Measured]], n: int, n_swaks: int) -> str:
    out = [
        "| method | (domain, MX) pairs | sessions | wall min | wall median | of which DNS (median) "
        "| SMTP only min / median | CPU median | replies > 0.9 s "
        "| maillog: max errors/session, too many errors, 421, lost connection | verdicts |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for method, ms in rows.items():
        walls = [m.wall for m in ms]
        cpus = [m.cpu for m in ms]
        last = ms[-1]
        dns = [m.phases["dns_s"] for m in ms if "dns_s" in m.phases]
        smtp = [m.phases.get("smtp_s", m.wall) for m in ms]
        slow = "-" if last.slow_replies is None else str(max(m.slow_replies or 0 for m in ms))
        v = [m.view for m in ms]
        maillog = (
            f"{max(x.max_errors_per_session for x in v)}, {sum(x.too_many_errors for x in v)}, "
            f"{sum(x.lines_421 for x in v)}, {sum(x.lost_connection for x in v)}"
        )
        out.append(
            f"| {method} | {last.pairs} | {last.sessions} | {min(walls):.3f} s | "
            f"{statistics.median(walls):.3f} s | {f'{statistics.median(dns):.3f} s' if dns else '-'} | "
            f"{min(smtp):.3f} / {statistics.median(smtp):.3f} s | {statistics.median(cpus):.3f} s | "
            f"{slow} | {maillog} | "
            f"{'all as expected' if all(m.verdicts_ok for m in ms) else 'WRONG'} |"
        )
        extra = [m.phases["extrapolated_s"] for m in ms if "extrapolated_s" in m.phases]
        if extra:
            out.append(
                f"| smtplib loop, extrapolated to all {2 * n} pairs (last 20 pairs' rate) "
                f"| {2 * n} | {2 * n} "
                f"| {min(extra):.0f} s | {statistics.median(extra):.0f} s "
                "| - | - | - | - | - | (extrapolated) |"
            )
        if n_swaks < n and method.startswith("swaks"):
            scale = n / n_swaks
            out.append(
                f"| swaks loop, linear extrapolation to {n} domains (x{scale:g}) | {2 * n} "
                f"| {last.sessions * scale:.0f} | {min(walls) * scale:.1f} s | "
                f"{statistics.median(walls) * scale:.1f} s | - | - | {statistics.median(cpus) * scale:.1f} s "
                "| - | - | (extrapolated) |"
            )
    return "\n".join(out)


def _sigterm(_sig: int, _frame: object) -> None:
    raise SystemExit(143)  # unwinds the with-blocks: the bench site is always torn down


def compare(runs: int, n: int, n_swaks: int, smtplib_cap_s: float = 60.0) -> int:
    from auditor.lab.bench import BenchSite, leftovers

    if not 1 <= runs <= 20:
        raise SystemExit("RUNS must be 1..20")
    signal.signal(signal.SIGTERM, _sigterm)
    rows: dict[str, list[Measured]] = {}
    with tempfile.TemporaryDirectory() as scen:
        # "unknown + control" as in the issue: only the unknown-recipient scenario; controls per domain.
        shutil.copy(default_dir() / "unknown-recipient.toml", scen)
        site = BenchSite(n)
        with site as info:
            print(f"bench site: {n} domains x 2 MX, up in {info.bringup_seconds:.2f} s", flush=True)
            methods: list[Callable[[], Measured]] = [
                lambda: run_engine(info, scen, lockstep=False),
                lambda: run_engine(info, scen, lockstep=True),
                lambda: run_smtplib(info, smtplib_cap_s),
                lambda: run_swaks(info, min(n_swaks, n)),
            ]
            for run in range(1, runs + 1):
                for fn in methods:
                    restart = site.restart_postfix()  # every method meets a quiet server
                    print(f"  (postfix restarted in {restart:.2f} s)", flush=True)
                    m = fn()
                    rows.setdefault(m.method, []).append(m)
                    print(f"run {run}: {_describe(m)}", flush=True)
    left = leftovers()
    print(f"teardown done; bench network leftovers: {left or 'none'}")
    print(_table(rows, n, min(n_swaks, n)))
    return 0 if all(m.verdicts_ok for ms in rows.values() for m in ms) and not left else 1


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def scale(runs: int, n: int, dns_server: str) -> int:
    """The engine (PIPELINING) alone, ``runs`` times, on a fresh bench site of ``n`` domains."""
    from auditor.lab.bench import BenchSite, leftovers

    if not 1 <= runs <= 20:
        raise SystemExit("RUNS must be 1..20")
    signal.signal(signal.SIGTERM, _sigterm)
    rows: list[Measured] = []
    rss_before = _peak_rss_mib()
    with tempfile.TemporaryDirectory() as scen:
        shutil.copy(default_dir() / "unknown-recipient.toml", scen)
        site = BenchSite(n, dns_server=dns_server)
        with site as info:
            print(
                f"bench site: {n} domains x 2 MX, DNS {dns_server}, up in {info.bringup_seconds:.2f} s",
                flush=True,
            )
            for run in range(1, runs + 1):
                restart = site.restart_postfix()
                print(f"  (postfix restarted in {restart:.2f} s)", flush=True)
                m = run_engine(info, scen, lockstep=False, audit_timeout=1800.0)
                m.phases["peak_rss_mib"] = _peak_rss_mib()
                rows.append(m)
                print(f"run {run}: {_describe(m)}", flush=True)
    left = leftovers()
    print(f"teardown done; bench network leftovers: {left or 'none'}")
    med = statistics.median
    walls, dns, smtp = (
        [m.wall for m in rows],
        [m.phases["dns_s"] for m in rows],
        [m.phases["smtp_s"] for m in rows],
    )
    sleeps = sum(m.view.sessions_at_soft_limit for m in rows)
    print(
        f"| {n} domains x 2 MX ({dns_server}), {runs} runs | wall {min(walls):.2f} / {med(walls):.2f} / "
        f"{max(walls):.2f} s | DNS {min(dns):.2f} / {med(dns):.2f} / {max(dns):.2f} s "
        f"| SMTP {min(smtp):.2f} / {med(smtp):.2f} / {max(smtp):.2f} s "
        f"| CPU median {med([m.cpu for m in rows]):.2f} s "
        f"| sessions {rows[-1].sessions} | peak RSS {_peak_rss_mib():.0f} MiB (at start {rss_before:.0f}) "
        f"| replies > {SLOW_REPLY_S} s: {max(m.slow_replies or 0 for m in rows)} "
        f"| sessions at the soft error limit: {sleeps} | 421: {sum(m.view.lines_421 for m in rows)} "
        f"| too many errors: "
        f"{sum(m.view.too_many_errors for m in rows)} | verdicts: "
        f"{'all as expected' if all(m.verdicts_ok for m in rows) else 'WRONG'} |"
    )
    ok = all(m.verdicts_ok for m in rows) and not sleeps and not left
    return 0 if ok and not any(m.view.lines_421 or m.slow_replies for m in rows) else 1


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
    if mode == "compare":
        args = [int(a) for a in sys.argv[2:5]]
        defaults = [3, 500, 50]
        runs, n, n_swaks = args + defaults[len(args) :]
        return compare(runs, n, n_swaks)
    if mode == "scale":
        runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
        n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
        return scale(runs, n, sys.argv[4] if len(sys.argv) > 4 else "dnsmasq")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
