"""The engine against well-behaved fakes: verdicts, session splitting, pipelining, greylisting."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import pytest

from auditor.collect.smtp.engine import Engine, describe, make_plan, random_local_part
from auditor.collect.smtp.scenarios import load
from auditor.model import InputError
from auditor.observations.smtp import ProbeResult
from auditor.rules.smtp_verdicts import Verdict, classify
from tests.conftest import need
from tests.unit.smtp.fakes import (
    RcptHandler,
    Scripted,
    aiosmtpd_server,
    fast_settings,
    known_only,
    mx_for,
    running,
)

pytestmark = pytest.mark.timeout(60)


async def _run(port: int, domains: list[str], **kw: Any) -> list[ProbeResult]:
    settings = fast_settings(port, **kw)
    plan = make_plan(mx_for(domains), settings, load(settings.scenarios_dir), domains)
    return await Engine(settings).run(plan)


def scripted(srv: Scripted, domains: list[str], **kw: Any) -> list[ProbeResult]:
    async def go() -> list[ProbeResult]:
        async with running(srv):
            return await _run(srv.port, domains, **kw)

    return asyncio.run(go())


def with_aiosmtpd(handler: Any, domains: list[str], **kw: Any) -> list[ProbeResult]:
    async def go() -> list[ProbeResult]:
        async with aiosmtpd_server(handler) as port:
            return await _run(port, domains, **kw)

    return asyncio.run(go())


def validating(valid: set[str]) -> RcptHandler:
    def decide(_peer: str, _sender: str, rcpt: str) -> str:
        if rcpt.lower() in valid or rcpt.lower().startswith("postmaster@"):
            return "250 2.1.5 Ok"
        return "550 5.1.1 User unknown in relay recipient table"

    return RcptHandler(decide)


def test_random_local_part_shape() -> None:
    parts = {random_local_part("bsaxq") for _ in range(50)}
    assert len(parts) == 50
    for p in parts:
        assert re.fullmatch(r"bsaxq[a-z0-9]{11,19}", p)
        assert 16 <= len(p) <= 24


def test_validating_server_rejects_unknown() -> None:
    handler = validating({"alice@example.test"})
    [r] = with_aiosmtpd(handler, ["example.test"], controls=("alice@example.test",))
    assert classify(r).verdict is Verdict.REJECTS_UNKNOWN, (classify(r).reason, classify(r).detail)
    unknown = r.outcome("unknown")
    assert unknown is not None and unknown.reply is not None and unknown.reply.code == 550
    assert unknown.address.startswith("bsaxq")
    control = r.outcome("control")
    assert control is not None and control.reply is not None and control.reply.code == 250
    null = r.outcome("null-postmaster")
    assert null is not None and null.mail_reply is not None and null.mail_reply.code == 250
    assert any(line.startswith("C: MAIL FROM:<>") for line in r.transcript)
    assert any(line.startswith("S: 550") for line in r.transcript)
    # The random recipient was really asked of the server, and no DATA was ever sent.
    assert any(a == unknown.address for a, _ in handler.rcpts)
    assert not any("DATA" in line for line in r.transcript)


def test_accept_all_server() -> None:
    handler = RcptHandler(lambda _p, _s, _r: "250 2.1.5 Ok")
    [r] = with_aiosmtpd(handler, ["example.test"])
    assert classify(r).verdict is Verdict.ACCEPTS_UNKNOWN
    sub = r.outcome("subdomain")
    assert sub is not None and sub.reply is not None and sub.reply.code == 250
    assert re.fullmatch(r"bsaxq[a-z0-9]+@bsaxq[a-z0-9]+\.example\.test", sub.address)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("554 5.7.1 Client host rejected: listed at dnsbl", "client-blocklisted"),
        ("550 5.7.1 Access denied", "control-rejected"),
    ],
)
def test_everything_rejected_is_inconclusive_not_pass(answer: str, reason: str) -> None:
    handler = RcptHandler(lambda _p, _s, _r: answer)
    [r] = with_aiosmtpd(handler, ["example.test"])
    assert classify(r).verdict is Verdict.INCONCLUSIVE
    assert classify(r).reason == reason


def test_sessions_split_before_postfix_soft_error_limit() -> None:
    domains = [f"d{i:02d}.test" for i in range(30)]
    srv = Scripted(rcpt=known_only(set()))
    results = scripted(srv, domains, null_sender_per_address=5)
    assert len(results) == 30
    assert all(classify(r).verdict is Verdict.REJECTS_UNKNOWN for r in results), {
        classify(r).reason for r in results
    }
    # Every domain: unknown + subdomain rejected = 60 rejections, at most 9 per session.
    assert max(srv.rejections_per_session) <= 9
    assert sum(srv.rejections_per_session) == 60
    assert srv.connections == math.ceil(60 / 9)
    # 5 null-sender transactions + one shared MAIL transaction per session, not one per domain.
    assert srv.mail_commands == 5 + srv.connections
    # Only the null-sender ones and the first shared transaction got an accepted recipient (Postfix
    # in_flow_delay tokens): every postmaster@ went into the first session's transaction.
    assert srv.accepted_transactions == 5 + 1


def test_pipelining_not_used_unless_advertised() -> None:
    srv = Scripted(reply_delay=0.05)
    [r] = scripted(srv, ["example.test"])
    assert classify(r).verdict is Verdict.REJECTS_UNKNOWN
    assert srv.early_talk == 0


def test_pipelining_used_when_advertised() -> None:
    srv = Scripted(reply_delay=0.05, extensions=("PIPELINING",))
    [r] = scripted(srv, ["example.test"], controls=("alice@example.test",))
    assert classify(r).verdict is Verdict.REJECTS_UNKNOWN
    assert srv.early_talk > 0  # MAIL and the RCPTs went out as one group
    assert max(srv.rejections_per_session) <= 9


def test_pipelined_groups_respect_the_error_budget() -> None:
    domains = [f"d{i:02d}.test" for i in range(12)]
    srv = Scripted(extensions=("PIPELINING",))
    results = scripted(srv, domains, null_sender_per_address=0)
    assert all(classify(r).verdict is Verdict.REJECTS_UNKNOWN for r in results)
    assert max(srv.rejections_per_session) <= 9


def _greylister(persistent: bool) -> RcptHandler:
    seen: set[tuple[str, str, str]] = set()

    def decide(peer: str, sender: str, rcpt: str) -> str:
        key = (peer, sender, rcpt)
        if rcpt.startswith("postmaster@"):
            if persistent or key in seen:
                return "250 2.1.5 Ok"
            seen.add(key)
            return "450 4.7.1 Greylisted, try again later"
        if persistent:
            return "450 4.1.1 Recipient address rejected: unverified address"
        if key in seen:
            return "550 5.1.1 User unknown"
        seen.add(key)
        return "450 4.7.1 Greylisted, try again later"

    return RcptHandler(decide)


def test_greylisting_told_apart_by_retry() -> None:
    [r] = with_aiosmtpd(_greylister(persistent=False), ["example.test"], retry_after=1.0)
    assert classify(r).verdict is Verdict.REJECTS_UNKNOWN
    assert classify(r).reason == "greylisted"
    unknown = r.outcome("unknown")
    assert unknown is not None and unknown.reply is not None and unknown.retry is not None
    assert (unknown.reply.code, unknown.retry.code) == (450, 550)


def test_persistent_4xx_stays_deferred() -> None:
    [r] = with_aiosmtpd(_greylister(persistent=True), ["example.test"], retry_after=1.0)
    assert classify(r).verdict is Verdict.DEFERS_UNKNOWN
    assert classify(r).reason == "persistent-4xx"


def test_4xx_without_retry_is_not_judged_as_persistent() -> None:
    [r] = with_aiosmtpd(_greylister(persistent=True), ["example.test"])
    assert classify(r).verdict is Verdict.DEFERS_UNKNOWN
    assert classify(r).reason == "not-retried"


def test_null_sender_sample_is_bounded_per_address() -> None:
    domains = [f"d{i}.test" for i in range(4)]
    srv = Scripted()
    results = scripted(srv, domains, null_sender_per_address=2)
    assert sum(r.null_sender_tested for r in results) == 2
    assert srv.mail_commands == 2 + srv.connections


def test_external_mx_is_not_probed_without_consent() -> None:
    from auditor.observations.dns import DnsMx, MxHost

    settings = fast_settings(1)
    mx = [
        DnsMx(target="example.test", hosts=(MxHost("mx.backup.example", 20, ("127.0.0.1",), external=True),))
    ]
    plan = make_plan(mx, settings, load(), ["example.test"])
    assert plan.targets == []
    [r] = asyncio.run(Engine(settings).run(plan))
    assert classify(r).verdict is Verdict.NOT_PROBED and classify(r).reason == "external-mx"
    allowed = make_plan(mx, fast_settings(1, allow_external_mx=True), load(), ["example.test"])
    assert [t.address for t in allowed.targets] == ["127.0.0.1"]


def test_trusted_vantage_is_inconclusive_without_connecting() -> None:
    srv = Scripted()
    [r] = scripted(srv, ["example.test"], trusted_networks=("127.0.0.0/8",))
    assert srv.connections == 0
    assert classify(r).verdict is Verdict.INCONCLUSIVE and classify(r).reason == "trusted-vantage"


def test_relay_probe_only_to_the_named_domain() -> None:
    with pytest.raises(InputError):
        make_plan(
            mx_for(["example.test"]),
            fast_settings(1, relay_test_domain="example.test"),
            load(),
            ["example.test"],
        )
    srv = Scripted()
    [r] = scripted(srv, ["example.test"], relay_test_domain="relaytest.example")
    relay = r.outcome("relay")
    assert relay is not None and relay.address.endswith("@relaytest.example")
    assert relay.reply is not None and relay.reply.code == 550


def test_control_outside_scope_is_never_sent() -> None:
    srv = Scripted()
    [r] = scripted(srv, ["example.test"], controls=("a@other.test", "b@example.test"))
    assert not any("other.test" in c for c in srv.commands)
    assert [o.address for o in r.roles("control")] == ["b@example.test"]


def test_dry_run_description_lists_every_rcpt() -> None:
    settings = fast_settings(25)
    plan = make_plan(mx_for(["a.test", "b.test"], host="mx.a.test"), settings, load(), ["a.test", "b.test"])
    text = "\n".join(describe(plan, settings))
    assert "127.0.0.1" in text and "postmaster@a.test" in text and "postmaster@b.test" in text
    assert text.count("MAIL FROM:<>") == 2


def _two_addresses(host_a: str, host_b: str, concurrency: int) -> tuple[Scripted, list[ProbeResult]]:
    from auditor.observations.dns import DnsMx, MxHost

    srv = Scripted(reply_delay=0.05)
    mx = [
        DnsMx(target="a.test", hosts=(MxHost(host_a, 10, ("127.0.0.1",)),)),
        DnsMx(target="b.test", hosts=(MxHost(host_b, 10, ("127.0.0.2",)),)),
    ]

    async def go() -> list[ProbeResult]:
        async with running(srv, also=("127.0.0.2",)):
            settings = fast_settings(srv.port, concurrency=concurrency)
            return await Engine(settings).run(make_plan(mx, settings, load(), ["a.test", "b.test"]))

    return srv, asyncio.run(go())


def test_global_concurrency_across_hosts() -> None:
    srv, results = _two_addresses("mx.a.test", "mx.b.test", concurrency=2)
    assert all(classify(r).verdict is Verdict.REJECTS_UNKNOWN for r in results)
    assert srv.max_active == 2
    srv, _ = _two_addresses("mx.a.test", "mx.b.test", concurrency=1)
    assert srv.max_active == 1


def test_one_session_per_host_even_across_its_addresses() -> None:
    srv, results = _two_addresses("mx.shared.test", "mx.shared.test", concurrency=4)
    assert len(results) == 2 and srv.connections == 2
    assert srv.max_active == 1


def test_delay_between_sessions_to_the_same_host() -> None:
    domains = [f"d{i}.test" for i in range(8)]  # 16 refusals: two sessions
    srv = Scripted()
    scripted(srv, domains, session_delay=0.4, null_sender_per_address=0)
    assert srv.connections == 2
    assert srv.connect_times[1] - srv.connect_times[0] >= 0.4


def test_recipients_per_transaction_are_capped() -> None:
    domains = [f"d{i:02d}.test" for i in range(12)]
    srv = Scripted(rcpt=lambda _a, _s, _srv: "250 2.1.5 Ok")  # accept-all: no refusal ever ends a session
    results = scripted(srv, domains, null_sender_per_address=0, max_rcpts_per_transaction=10)
    assert all(classify(r).verdict is Verdict.ACCEPTS_UNKNOWN for r in results)
    rcpts = sum(1 for c in srv.commands if c.startswith("RCPT"))
    assert rcpts == 36  # postmaster, unknown, subdomain per domain
    # ceil(36 / 10) transactions of at most 10 RCPTs, all in one session (no refusal spent the
    # error budget), an RSET after each.
    assert srv.mail_commands == 4
    assert srv.connections == 1
    assert sum(1 for c in srv.commands if c == "RSET") == 4


def test_ipv6_mx_address() -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        need(False, "an IPv6 loopback address (::1)")
    srv = Scripted()

    async def go() -> list[ProbeResult]:
        server = await asyncio.start_server(srv.handle, "::1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            settings = fast_settings(port)
            plan = make_plan(mx_for(["example.test"], address="::1"), settings, load(), ["example.test"])
            return await Engine(settings).run(plan)
        finally:
            server.close()

    [r] = asyncio.run(go())
    assert r.address == "::1" and classify(r).verdict is Verdict.REJECTS_UNKNOWN
    assert r.source_address == "::1"
    assert "[::1]" in r.target


def test_audit_timeout_during_the_greylisting_wait() -> None:
    [r] = with_aiosmtpd(_greylister(persistent=True), ["example.test"], retry_after=30.0, audit_timeout=2.0)
    unknown = r.outcome("unknown")
    assert unknown is not None and unknown.reply is not None and unknown.reply.klass == 4
    assert unknown.retry is None and unknown.retry_error == "audit-timeout"
    assert classify(r).verdict is Verdict.DEFERS_UNKNOWN and classify(r).reason == "retry-failed"


def test_backup_mx_whose_address_lookup_failed_is_inconclusive_not_skipped() -> None:
    """A timed-out A/AAAA lookup hides an MX we could not measure: inconclusive, never not-probed."""
    from auditor.observations.dns import DnsMx, MxHost

    mx = [
        DnsMx(
            "example.test",
            hosts=(
                MxHost("mx1.example.test", 10, ("127.0.0.1",)),
                MxHost("mx2.example.test", 20, (), status="timeout", detail="mx2.example.test A: timeout"),
                MxHost("mx3.example.test", 30, (), status="nodata"),
            ),
        )
    ]
    plan = make_plan(mx, fast_settings(2525), load(), ["example.test"])
    skipped = {a.host: a.result() for a in plan.skipped}
    assert classify(skipped["mx2.example.test"]).verdict is Verdict.INCONCLUSIVE
    assert classify(skipped["mx3.example.test"]).verdict is Verdict.NOT_PROBED


def test_a_new_probe_file_is_judged_by_the_rule_it_feeds(tmp_path: Any) -> None:
    """Adding a probe is one file: a second unknown-recipient probe (a plus-address) feeding
    SMTP-RCPT-001 is asked by the engine and judged by the rule, every answer of the role."""
    import shutil

    from auditor.collect.smtp.scenarios import default_dir
    from auditor.judge import evaluate
    from auditor.model import Status

    for name in ("postmaster.toml", "unknown-recipient.toml"):
        shutil.copy(default_dir() / name, tmp_path)
    (tmp_path / "plus-address.toml").write_text(
        'name = "plus-address"\ndescription = "a random extension of postmaster"\nrole = "unknown"\n'
        'steps = ["MAIL FROM:<{mail_from}>", "RCPT TO:<postmaster+{random}@{domain}>"]\n'
        'expect = "5xx"\nfeeds = ["SMTP-RCPT-001"]\n'
    )

    def decide(_peer: str, _sender: str, rcpt: str) -> str:
        # Validates bare local parts, but accepts any +extension: the new probe finds it.
        return "250 2.1.5 Ok" if rcpt.startswith("postmaster") else "550 5.1.1 User unknown"

    [r] = with_aiosmtpd(RcptHandler(decide), ["example.test"], scenarios_dir=str(tmp_path))
    plus = [o for o in r.outcomes if o.scenario == "plus-address"]
    assert len(plus) == 1 and plus[0].reply is not None and plus[0].reply.code == 250
    assert plus[0].feeds == ("SMTP-RCPT-001",)
    findings = [f for f in evaluate([r]) if f.rule_id == "SMTP-RCPT-001"]
    assert [f.status for f in findings] == [Status.FAIL]
    assert "postmaster+" in findings[0].message
