"""Probes that survive hardened MXs (issue 12 §2): tarpits, postscreen, the probe's own identity."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from auditor.collect.smtp import identity
from auditor.collect.smtp.engine import Engine, make_plan
from auditor.collect.smtp.scenarios import load
from auditor.judge import evaluate
from auditor.model import Status
from auditor.observations.smtp import ProbeResult, ProbeSettings
from auditor.rules.smtp_verdicts import Verdict, Why, classify
from tests.unit.dns.fakedns import serve
from tests.unit.smtp.fakes import Scripted, fast_settings, known_only, mx_for, running

pytestmark = pytest.mark.timeout(60)
DOMAIN = "example.test"


def _probe(srv: Scripted, **kw: Any) -> list[ProbeResult]:
    async def go() -> list[ProbeResult]:
        async with running(srv):
            settings = fast_settings(srv.port, **kw)
            plan = make_plan(mx_for([DOMAIN]), settings, load(), [DOMAIN])
            return await Engine(settings).run(plan)

    return asyncio.run(go())


def _tarpit(seconds: float) -> Any:
    return lambda reply: seconds if reply.startswith("5") else 0.0


def test_exchange_style_tarpit_is_waited_out_within_the_stage_timeout() -> None:
    """A pause before each 550 5.1.1 is correct behaviour: the verdict is the real one."""
    srv = Scripted(rcpt=known_only({"alice@example.test"}), rcpt_delay=_tarpit(0.6))
    [r] = _probe(srv, timeout=1.5, controls=("alice@example.test",))
    assert classify(r).verdict is Verdict.REJECTS_UNKNOWN, classify(r)
    assert max(srv.rejections_per_session) <= 9
    unknown = r.outcome("unknown")
    assert unknown is not None and unknown.elapsed >= 0.5  # the latency is recorded (fingerprint)


def test_tarpit_longer_than_the_stage_timeout_names_the_setting() -> None:
    srv = Scripted(rcpt=known_only(set()), rcpt_delay=_tarpit(3.0))
    [r] = _probe(srv, timeout=1.0)
    j = classify(r)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.TARPIT, j
    assert "--timeout" in j.fix
    judged = {f.rule_id: f.status for f in evaluate([r])}
    assert all(judged[rid] is Status.INCONCLUSIVE for rid in ("SMTP-RCPT-001", "SMTP-RCPT-003")), judged


class _PostfixTarpit:
    """Postfix smtpd with smtpd_soft_error_limit = 1, reduced to what matters (the lab's tarpit
    listener): once the client has erred it sleeps before every reply, and it holds the replies to
    pipelined commands until the client's input is drained, so one sleep delays the whole group."""

    def __init__(self, sleep: float) -> None:
        self.sleep = sleep
        self.tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        errors, held = 0, []
        try:
            writer.write(b"220 tarpit.test ESMTP\r\n")
            for _ in range(200):
                line = (await reader.readline()).decode().strip()
                if not line:
                    return
                verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
                addr = line.partition(":")[2].strip("<> ")
                reply = {
                    "EHLO": "250-tarpit.test\r\n250 PIPELINING",
                    "QUIT": "221 2.0.0 Bye",
                    "RCPT": "250 2.1.5 Ok"
                    if addr.startswith("postmaster@")
                    else f"550 5.1.1 <{addr}>: Recipient address rejected: User unknown",
                }.get(verb, "250 2.0.0 Ok")
                if errors >= 1:
                    await asyncio.sleep(self.sleep)
                errors += reply.startswith(("4", "5"))
                held.append(reply + "\r\n")
                if not reader._buffer:  # type: ignore[attr-defined]
                    writer.write("".join(held).encode())
                    held.clear()
                    await writer.drain()
                if verb == "QUIT":
                    return
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def _probe_tarpit(sleep: float, **kw: Any) -> ProbeResult:
    async def go() -> ProbeResult:
        srv = _PostfixTarpit(sleep)
        server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        try:
            settings = fast_settings(server.sockets[0].getsockname()[1], **kw)
            plan = make_plan(mx_for([DOMAIN]), settings, load(), [DOMAIN])
            [r] = await Engine(settings).run(plan)
            return r
        finally:
            server.close()
            for task in srv.tasks:
                task.cancel()

    return asyncio.run(go())


def test_postfix_error_sleep_holding_a_pipelined_group_is_named_a_tarpit() -> None:
    """Past the stage timeout the wait shows on the group's first reply (RSET), not on a RCPT."""
    r = _probe_tarpit(1.0, timeout=0.5)
    assert r.detail.startswith("RSET"), r.detail
    j = classify(r)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.TARPIT, j
    assert "--timeout" in j.fix
    # Within the stage timeout the same server gets its real verdict.
    assert classify(_probe_tarpit(0.3, timeout=1.5)).verdict is Verdict.REJECTS_UNKNOWN


@dataclasses.dataclass
class _Postscreen:
    """postscreen after its after-220 tests: the first session's RCPTs all get 450 4.3.2."""

    seen: int = 0

    def __call__(self, addr: str, sender: str, srv: Scripted) -> str:
        if srv.connections == 1:
            return "450 4.3.2 Service currently unavailable"
        return known_only(set())(addr, sender, srv)


def test_postscreen_after_220_deferral_reconnects_once() -> None:
    srv = Scripted(rcpt=_Postscreen())
    [r] = _probe(srv, reconnect_pause=0.1)
    assert srv.connections == 2
    assert r.reconnects > 0
    assert classify(r).verdict is Verdict.REJECTS_UNKNOWN, classify(r)
    assert all(o.reply is not None and o.reply.code != 450 for o in r.outcomes)


def test_postscreen_that_keeps_deferring_is_inconclusive_named() -> None:
    srv = Scripted(rcpt=lambda _a, _s, _srv: "450 4.3.2 Service currently unavailable")
    [r] = _probe(srv, reconnect_pause=0.1, retry_after=0.1)
    assert srv.connections >= 2  # the reconnect happened, once per pass
    j = classify(r)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.POSTSCREEN, j
    assert "postscreen" in j.fix


@pytest.mark.parametrize(
    ("refusal", "why", "fix"),
    [
        (
            "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using dnsbl.lab.test",
            Why.DNSBL,
            "blocklist",
        ),
        ("450 4.7.1 <probe.test>: Helo command rejected: Host not found", Why.HELO, "--ehlo"),
        ("450 4.7.1 Error: too many recipients from 127.0.0.1", Why.RATE, "--session-delay"),
        ("550 5.7.23 <probe@audit.test>: SPF validation failed", Why.SENDER, "--mail-from"),
        # Real Postfix 3.7 replies, from the lab's hardened MX (tests/integration/test_hardened_lab.py).
        (
            "554 5.7.1 Service unavailable; Client host [198.18.0.3] blocked using lists.lab.test; "
            "listed in the lab blocklist",
            Why.DNSBL,
            "blocklist",
        ),
        ("450 4.7.1 <nx-helo.vantage.test>: Helo command rejected: Host not found", Why.HELO, "--ehlo"),
        ("504 5.5.2 <vm>: Helo command rejected: need fully-qualified hostname", Why.HELO, "--ehlo"),
        (
            "450 4.1.8 <bsa-probe@nx-sender.test>: Sender address rejected: Domain not found",
            Why.SENDER,
            "--mail-from",
        ),
    ],
)
def test_setup_refusals_are_inconclusive_with_the_thing_to_change(refusal: str, why: Why, fix: str) -> None:
    [r] = _probe(Scripted(rcpt=lambda _a, _s, _srv: refusal), retry_after=0.1)
    j = classify(r)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is why, j
    assert fix in j.fix
    found = [f for f in evaluate([r]) if f.rule_id == "SMTP-RCPT-001"]
    assert [f.status for f in found] == [Status.INCONCLUSIVE] and fix in found[0].message


def test_anvil_connection_rate_limit_at_the_greeting_is_named_and_retried_once() -> None:
    """Postfix smtpd_client_connection_rate_limit answers the greeting with this (real text)."""
    srv = Scripted(banner=b"421 4.7.0 mx.hardened.test Error: too many connections from 198.18.0.7\r\n")
    [r] = _probe(srv)
    assert srv.connections == 2  # one retry after backoff_421, then the address is left alone
    j = classify(r)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.RATE, j
    assert "too many connections" in j.detail and "--session-delay" in j.fix


def test_refused_mail_from_is_a_sender_problem_not_a_verdict() -> None:
    srv = Scripted(
        mail=lambda s: "553 5.1.8 <x>: Sender address rejected: Domain not found" if s else "250 Ok"
    )
    [r] = _probe(srv)
    j = classify(r)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.SENDER, j


def test_postmaster_is_also_asked_with_the_null_sender() -> None:
    def rcpt(addr: str, sender: str, srv: Scripted) -> str:
        if addr.startswith("postmaster@") and not sender:
            return "550 5.7.1 <postmaster@example.test>: Recipient address rejected: no bounces"
        return known_only({"alice@example.test"})(addr, sender, srv)

    [r] = _probe(Scripted(rcpt=rcpt), controls=("alice@example.test",))
    pm = [f for f in evaluate([r]) if f.rule_id == "SMTP-PM-001"]
    assert [f.status for f in pm] == [Status.FAIL], [f.message for f in pm]
    assert "MAIL FROM:<>" not in pm[0].message or "postmaster" in pm[0].message


# -- the identity -------------------------------------------------------------------------------------


def test_default_identity_is_the_machine_fqdn() -> None:
    s = identity.resolve(ProbeSettings())
    assert s.ehlo == identity.machine_fqdn()
    assert s.mail_from == f"backscatter-probe@{s.ehlo}"
    kept = identity.resolve(ProbeSettings(ehlo="a.example", mail_from="me@b.example"))
    assert (kept.ehlo, kept.mail_from) == ("a.example", "me@b.example")


def test_identity_check_warns_with_the_fix() -> None:
    zone = {
        ("prober.example.net", "A"): ["192.0.2.9"],
        ("good.example.net", "MX"): ["10 mx.good.example.net."],
    }
    with serve(zone) as ns:
        bad = ProbeSettings(nameservers=(ns,), ehlo="prober.example.net", mail_from="p@nowhere.invalid")
        got = identity.check(bad, "127.0.0.1", ["example.test"])
        assert got.sender_domain_resolves is False and got.ehlo_matches_source is False
        assert any("--mail-from" in w and "4.1.8" in w for w in got.warnings)
        assert any("--ehlo" in w and "127.0.0.1" in w for w in got.warnings)
        good = dataclasses.replace(bad, mail_from="p@good.example.net")
        ok = identity.check(good, "192.0.2.9", ["example.test"])
        assert ok.sender_domain_resolves is True and ok.ehlo_matches_source is True and not ok.warnings
        own = identity.check(
            dataclasses.replace(good, mail_from="p@example.test"), "192.0.2.9", ["example.test"]
        )
        assert any("domain being audited" in w for w in own.warnings)
