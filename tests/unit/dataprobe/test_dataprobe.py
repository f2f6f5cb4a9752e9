"""DATA probes against small aiosmtpd fakes on 127.0.0.1, with the real bounce sink catching NDRs.

The end-to-end version against real Postfix instances is tests/integration/test_dataprobe_lab.py.
"""

from __future__ import annotations

import smtplib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from auditor.collect.dataprobe import run_data_probes, sink_reader
from auditor.collect.sink import BounceSink
from auditor.judge import evaluate
from auditor.model import Status
from auditor.observations.smtp import DataOutcome, DataProbeResult, ProbeResult, ProbeSettings

SINK = "sink.test"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Mta:
    """A fake MX: ``mode`` = reject-rcpt | reject-eod | silent | bounce (accept, then NDR to the sender)."""

    def __init__(self, mode: str, sink_port: int, to_header: bool = False) -> None:
        self.mode, self.sink_port, self.to_header = mode, sink_port, to_header
        self.received: list[bytes] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, opts: Any) -> str:
        if self.mode == "reject-rcpt":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.original_content)
        if self.mode == "defer-eod":
            return "451 4.7.1 Try again later"
        if self.mode == "reject-eod":
            return "550 5.1.1 User unknown"
        if self.mode == "silent":
            return "250 2.0.0 Ok: queued"
        text = envelope.original_content.decode()
        header_from = next(ln.split("<")[1].rstrip(">") for ln in text.splitlines() if ln.startswith("From:"))
        to = header_from if self.to_header else envelope.mail_from
        ndr = (
            f"From: MAILER-DAEMON@fake.test\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Content-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not\r\n"
            f"be delivered to one or more recipients.\r\n\r\n<{envelope.rcpt_tos[0]}>: User unknown\r\n\r\n"
            + text
        )
        port = self.sink_port
        threading.Thread(target=lambda: _deliver(port, to, ndr), daemon=True).start()
        return "250 2.0.0 Ok: queued"


def _deliver(port: int, to: str, ndr: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.sendmail("", [to], ndr.encode())


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[BounceSink]:
    with BounceSink(SINK, str(tmp_path / "Maildir"), port=_port()) as s:
        yield s


def _run(sink: BounceSink, mode: str, to_header: bool = False) -> list[Any]:
    port = _port()
    ctl = Controller(_Mta(mode, sink.port, to_header), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        target = ProbeResult(
            "example.test@127.0.0.1",
            domain="example.test",
            mx_host="mx.example.test",
            address="127.0.0.1",
            primary=True,
        )
        settings = ProbeSettings(port=port, timeout=5, session_delay=0, ehlo="prober.test")
        return run_data_probes(
            [target],
            sink_domain=SINK,
            settings=settings,
            register=sink.tokens.add,
            reader=sink_reader(sink),
            wait=10,
        )
    finally:
        ctl.stop()


def test_accept_then_bounce_is_confirmed(sink: BounceSink) -> None:
    obs = _run(sink, "bounce")
    (p,) = [o for o in obs if isinstance(o, DataProbeResult)]
    assert p.outcome is DataOutcome.ACCEPTED and p.bounce_seconds is not None and p.bounce_seconds < 10
    assert not p.bounce_to_header_from
    assert any("DATA" in line for line in p.transcript)
    findings = {(f.rule_id, f.status) for f in evaluate(obs)}
    assert ("SMTP-NDR-001", Status.FAIL) in findings
    assert ("SMTP-NDR-002", Status.PASS) in findings


def test_reject_at_rcpt_sends_no_data(sink: BounceSink) -> None:
    obs = _run(sink, "reject-rcpt")
    (p,) = [o for o in obs if isinstance(o, DataProbeResult)]
    assert p.outcome is DataOutcome.REJECTED_AT_RCPT
    assert not any(line.startswith("C: DATA") for line in p.transcript)
    statuses = {(f.rule_id, f.status) for f in evaluate(obs)}
    assert ("SMTP-NDR-001", Status.PASS) in statuses and ("SMTP-RCPT-004", Status.PASS) in statuses


def test_end_of_data_reject_is_rcpt_004(sink: BounceSink) -> None:
    obs = _run(sink, "reject-eod")
    (p,) = [o for o in obs if isinstance(o, DataProbeResult)]
    assert p.outcome is DataOutcome.REJECTED_AFTER_DATA
    assert ("SMTP-RCPT-004", Status.FAIL) in {(f.rule_id, f.status) for f in evaluate(obs)}


def test_bounce_to_header_from_is_ndr_002(sink: BounceSink) -> None:
    obs = _run(sink, "bounce", to_header=True)
    (p,) = [o for o in obs if isinstance(o, DataProbeResult)]
    assert p.bounce_to_header_from and p.bounce_seconds is None
    statuses = {(f.rule_id, f.status) for f in evaluate(obs)}
    assert ("SMTP-NDR-002", Status.FAIL) in statuses
    assert ("SMTP-NDR-001", Status.INCONCLUSIVE) in statuses


def _run_content(sink: BounceSink, mode: str) -> tuple[list[Any], _Mta]:
    port = _port()
    mta = _Mta(mode, sink.port)
    ctl = Controller(mta, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        target = ProbeResult(
            "example.test@127.0.0.1",
            domain="example.test",
            mx_host="mx.example.test",
            address="127.0.0.1",
            primary=True,
        )
        settings = ProbeSettings(port=port, timeout=5, session_delay=0, ehlo="prober.test")
        obs = run_data_probes(
            [target],
            sink_domain=SINK,
            settings=settings,
            register=sink.tokens.add,
            reader=sink_reader(sink),
            wait=5,
            content_mailbox="spamtest@example.test",
        )
        return obs, mta
    finally:
        ctl.stop()


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        ("bounce", Status.FAIL),
        ("reject-eod", Status.PASS),
        ("silent", Status.PASS),  # with the minimum watch lowered below the test's 5 s
        ("defer-eod", Status.INCONCLUSIVE),
    ],
)
def test_gtube_and_eicar_probes(
    sink: BounceSink, mode: str, status: Status, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.rules import content_probe

    monkeypatch.setattr(content_probe, "MIN_SILENCE", 1.0)
    obs, mta = _run_content(sink, mode)
    probes = {o.probe: o for o in obs if isinstance(o, DataProbeResult)}
    assert set(probes) == {"unknown-recipient", "gtube", "eicar"}
    assert probes["gtube"].recipient == "spamtest@example.test"
    sent = b"\n".join(mta.received)
    assert b"GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL" in sent and b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" in sent
    found = {(f.rule_id, f.status) for f in evaluate(obs)}
    assert ("CF-PROBE-001", status) in found and ("CF-PROBE-002", status) in found


def test_silence_over_a_short_watch_is_not_a_pass(sink: BounceSink) -> None:
    obs, _ = _run_content(sink, "silent")  # waited at most 5 s, below MIN_SILENCE
    found = {(f.rule_id, f.status) for f in evaluate(obs)}
    assert ("CF-PROBE-001", Status.INCONCLUSIVE) in found


def test_a_deferred_probe_is_not_a_pass(sink: BounceSink) -> None:
    obs = _run(sink, "defer-eod")
    (p,) = [o for o in obs if isinstance(o, DataProbeResult)]
    assert p.outcome == "deferred"
    statuses = {(f.rule_id, f.status) for f in evaluate(obs)}
    assert ("SMTP-NDR-001", Status.INCONCLUSIVE) in statuses
    assert ("SMTP-RCPT-004", Status.INCONCLUSIVE) in statuses
