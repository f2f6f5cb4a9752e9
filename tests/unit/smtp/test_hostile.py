"""Hostile servers: each one ends within its stage timeout as an inconclusive verdict with the reason."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from auditor.collect.smtp.engine import Engine, make_plan
from auditor.collect.smtp.scenarios import load
from auditor.observations.smtp import ProbeResult
from auditor.rules.smtp_verdicts import Verdict, classify
from tests.unit.smtp.fakes import Scripted, fast_settings, mx_for, running

pytestmark = pytest.mark.timeout(30)


async def _probe(srv: Scripted, **kw: Any) -> list[ProbeResult]:
    async with running(srv):
        settings = fast_settings(srv.port, **kw)
        plan = make_plan(mx_for(["example.test"]), settings, load(), ["example.test"])
        return await Engine(settings).run(plan)


def probe(srv: Scripted, **kw: Any) -> tuple[ProbeResult, float]:
    t0 = time.monotonic()
    results = asyncio.run(_probe(srv, **kw))
    assert len(results) == 1
    return results[0], time.monotonic() - t0


@pytest.mark.parametrize(
    ("srv", "reason"),
    [
        (Scripted(banner_delay=60), "timeout"),
        (Scripted(hostile="endless-multiline"), "reply-too-many-lines"),
        (Scripted(hostile="huge-line"), "reply-too-long"),
        (Scripted(hostile="garbage"), "garbage-reply"),
        (Scripted(hostile="drop-after-rcpt"), "connection-closed"),
        (Scripted(banner=b"421 4.3.2 Service shutting down\r\n"), "421"),
        (Scripted(banner=b"554 5.7.1 No SMTP service here\r\n"), "banner-554"),
        (Scripted(extensions=("STARTTLS",), hostile="tls-broken"), "tls-failure"),
        (Scripted(rcpt=lambda _a, _s, _srv: "421 4.7.0 Too many errors, closing"), "421"),
    ],
    ids=[
        "tarpit",
        "endless-multiline",
        "10MB-line",
        "garbage",
        "drop-after-rcpt",
        "421",
        "554",
        "tls-broken",
        "421-at-rcpt",
    ],
)
def test_hostile_server_is_inconclusive_with_reason(srv: Scripted, reason: str) -> None:
    result, took = probe(srv)
    assert classify(result).verdict is Verdict.INCONCLUSIVE
    assert classify(result).reason == reason
    # Bounded: a stage timeout is 1.5 s; even the 421 back-off path stays far below the tarpit's 60 s.
    assert took < 10, took
    assert result.transcript, "the transcript is the evidence"


def test_421_backs_off_once_then_gives_up() -> None:
    srv = Scripted(banner=b"421 4.7.0 Too many connections\r\n")
    result, _ = probe(srv)
    assert srv.connections == 2  # first try + exactly one retry after the back-off
    assert classify(result).reason == "rate-limited"  # "too many connections": named, with the fix
    assert "session-delay" in classify(result).fix


def test_connection_refused() -> None:
    async def closed_port() -> int:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return int(port)

    port = asyncio.run(closed_port())
    settings = fast_settings(port)
    plan = make_plan(mx_for(["example.test"]), settings, load(), ["example.test"])
    [result] = asyncio.run(Engine(settings).run(plan))
    assert classify(result).verdict is Verdict.INCONCLUSIVE
    assert classify(result).reason == "connection-refused"


def test_audit_timeout_bounds_the_whole_run() -> None:
    srv = Scripted(reply_delay=1.0)  # every reply 1 s: the whole probe needs far longer than 2 s
    result, took = probe(srv, timeout=5.0, audit_timeout=2.0)
    assert took < 6
    assert classify(result).verdict is Verdict.INCONCLUSIVE
    assert classify(result).reason == "audit-timeout"


def test_huge_transcript_lines_are_truncated() -> None:
    srv = Scripted(hostile="huge-line")
    result, _ = probe(srv)
    assert all(len(line) < 1000 for line in result.transcript)
