"""False verdicts (issue 11): hostile servers on loopback that used to get a pass.

Each test judges the findings (``auditor.engine.evaluate``), the way a report does: a server that
answers out of protocol, or out of step, or refuses everyone, is never "pass" — it is inconclusive
with the reason and the setting to change.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from auditor.collect.dataprobe import run_data_probes
from auditor.collect.smtp.engine import Engine, make_plan
from auditor.collect.smtp.scenarios import load
from auditor.judge import evaluate
from auditor.model import Finding, Observation, Status
from auditor.observations.smtp import DataProbeResult, ProbeResult, ProbeSettings
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


def _findings(obs: list[Any], rule_id: str) -> list[Finding]:
    return [f for f in evaluate(obs) if f.rule_id == rule_id]


def _statuses(obs: list[Any], rule_id: str) -> list[Status]:
    return [f.status for f in _findings(obs, rule_id)]


# -- (a) DATA probes: only a 5xx is a refusal -------------------------------------------------------


def _data_probe(srv: Scripted) -> list[Observation]:
    async def serve() -> list[Observation]:
        async with running(srv):
            target = ProbeResult(f"{DOMAIN} mx[127.0.0.1]", domain=DOMAIN, mx_host="mx", address="127.0.0.1")
            settings = ProbeSettings(port=srv.port, timeout=2, session_delay=0, ehlo="prober.test")
            return await asyncio.to_thread(
                run_data_probes,
                [target],
                sink_domain="sink.test",
                settings=settings,
                register=lambda _t: None,
                reader=lambda _seen: [],
                wait=0.5,
                poll=0.1,
            )

    return asyncio.run(serve())


def _everything(reply: str) -> Any:
    return lambda _a, _s, _srv: reply


@pytest.mark.parametrize(
    ("srv", "at"),
    [
        # The server that answers 250 to everything: DATA got 250 (it must be 354 or a refusal).
        (Scripted(rcpt=_everything("250 2.1.5 Ok"), data_reply="250 2.0.0 Ok"), "DATA"),
        # A 3xx to RCPT is no refusal at RCPT.
        (Scripted(rcpt=_everything("354 go ahead")), "RCPT"),
        # A 354 after the final dot is no refusal after DATA.
        (Scripted(rcpt=_everything("250 2.1.5 Ok"), eod_reply="354 more please"), "end of DATA"),
    ],
    ids=["250-to-DATA", "354-to-RCPT", "354-after-dot"],
)
def test_data_probe_answer_out_of_protocol_is_inconclusive_never_refused(srv: Scripted, at: str) -> None:
    obs = _data_probe(srv)
    [p] = [o for o in obs if isinstance(o, DataProbeResult)]
    assert p.outcome == "protocol-error", (at, p.outcome, p.reply)
    assert _statuses(obs, "SMTP-NDR-001") == [Status.INCONCLUSIVE]
    assert Status.FAIL not in _statuses(obs, "SMTP-RCPT-004")  # nor "rejected only after DATA"


def test_data_probe_5xx_at_data_is_still_a_refusal() -> None:
    obs = _data_probe(Scripted(rcpt=_everything("250 2.1.5 Ok"), data_reply="554 5.5.1 No valid recipients"))
    [p] = [o for o in obs if isinstance(o, DataProbeResult)]
    assert p.outcome == "rejected-at-data"
    assert _statuses(obs, "SMTP-NDR-001") == [Status.PASS]


# -- (b) reply desync: the server talks out of turn ----------------------------------------------------


@pytest.mark.parametrize(
    "srv",
    [
        # Two complete 220 lines at once: the second would be taken for the EHLO reply.
        Scripted(banner=b"220 fake.test ESMTP\r\n220 fake.test ESMTP again\r\n"),
        # The second 220 arrives late, after we sent EHLO: an EHLO reply must be a 250.
        Scripted(extra_banner=b"220 fake.test ESMTP again\r\n", extra_delay=0.3),
        # A server that answers commands not sent yet.
        Scripted(extra_banner=b"250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"),
        Scripted(ehlo_reply=b"220 fake.test ESMTP\r\n"),
    ],
    ids=["double-220", "late-220", "answers-ahead", "220-to-EHLO"],
)
def test_out_of_step_server_is_inconclusive(srv: Scripted) -> None:
    [r] = _probe(srv)
    for rule_id in ("SMTP-RCPT-001", "SMTP-PM-001", "SMTP-NULL-001", "SMTP-RCPT-006"):
        assert _statuses([r], rule_id) == [Status.INCONCLUSIVE], rule_id
    assert r.failure is not None and r.failure.value in ("server-talked-first", "protocol-error")
    # Nothing was asked after the desync: no reply was attributed to the wrong command.
    assert all(o.reply is None for o in r.outcomes)


# -- (c) no verdict on unknown recipients without an accepted control --------------------------------


def test_persistent_4xx_for_everyone_is_inconclusive_not_pass() -> None:
    srv = Scripted(rcpt=_everything("451 4.3.0 Temporary lookup failure"))
    [r] = _probe(srv, retry_after=0.1)
    [f] = _findings([r], "SMTP-RCPT-001")
    assert f.status is Status.INCONCLUSIVE
    assert "451 4.3.0" in f.message  # the refusal is quoted
    assert "--ehlo" in f.message and "--mail-from" in f.message  # and the settings to check
    assert _statuses([r], "SMTP-RCPT-003") == [Status.INCONCLUSIVE]


def test_sender_refusal_is_named_with_its_fix_and_no_greylisting_advice() -> None:
    """reject_unknown_sender_domain: 450 4.1.8 for every RCPT (smtpd_delay_reject)."""
    refusal = "450 4.1.8 <probe@audit.test>: Sender address rejected: Domain not found"
    [r] = _probe(Scripted(rcpt=_everything(refusal)), retry_after=0.1)
    for rule_id in ("SMTP-RCPT-001", "SMTP-RCPT-003", "SMTP-PM-001"):
        [f] = _findings([r], rule_id)
        assert f.status is Status.INCONCLUSIVE, rule_id
        assert "--mail-from" in f.message, (rule_id, f.message)
        assert "greylist" not in f.message.lower() and "retry-after" not in f.message, f.message


def test_persistent_4xx_next_to_an_accepted_control_is_still_judged() -> None:
    valid = known_only({"alice@example.test"})

    def rcpt(addr: str, sender: str, srv: Scripted) -> str:
        answer = valid(addr, sender, srv)
        return (
            "450 4.2.0 <x>: Recipient address rejected: mailbox unavailable" if answer[0] == "5" else answer
        )

    [r] = _probe(Scripted(rcpt=rcpt), retry_after=0.1, controls=("alice@example.test",))
    assert _statuses([r], "SMTP-RCPT-003") == [Status.FAIL]
    assert _statuses([r], "SMTP-RCPT-001") == [Status.PASS]
