"""The NDR- rules, one table per rule: observation in, finding status out."""

from __future__ import annotations

import pytest

from auditor.bounces import CapturedNdr, analyse_bytes
from auditor.judge import evaluate
from auditor.model import Status
from auditor.rules import load_all
from tests.unit.bounces import messages as m


def _status(rule_id: str, obs: CapturedNdr) -> Status:
    rules = [load_all()[rule_id]]
    findings = evaluate([obs], rules)
    assert len(findings) == 1
    assert findings[0].rule_id == rule_id
    return findings[0].status


@pytest.mark.parametrize(
    ("raw", "envelope_sender", "expected"),
    [
        (m.dsn(return_path="<>"), None, Status.PASS),
        (m.dsn(return_path="<postmaster@victim.example>"), None, Status.FAIL),
        (m.dsn(), "bounces@victim.example", Status.FAIL),  # the SMTP envelope beats the header
        (m.SENDMAIL_USER_UNKNOWN, None, Status.INCONCLUSIVE),  # no Return-Path at all
        (m.PLAIN, "", Status.NOT_APPLICABLE),
        (m.ARF, "", Status.NOT_APPLICABLE),
    ],
)
def test_ndr_env_001(raw: bytes, envelope_sender: str | None, expected: Status) -> None:
    obs = CapturedNdr.from_analysis(analyse_bytes(raw, "f.eml"), envelope_sender=envelope_sender)
    assert _status("NDR-ENV-001", obs) is expected


@pytest.mark.parametrize(
    ("raw", "rcpt", "env", "hdr", "expected"),
    [
        (m.AUTOREPLY, "hdr@sink.example", "env@sink.example", "hdr@sink.example", Status.FAIL),
        (m.dsn(), "HDR@sink.example", "", "hdr@sink.example", Status.FAIL),  # answered a <> probe
        (m.AUTOREPLY, "env@sink.example", "env@sink.example", "hdr@sink.example", Status.PASS),
        (m.dsn(), "env@sink.example", "env@sink.example", "env@sink.example", Status.INCONCLUSIVE),
        (m.dsn(), None, "env@sink.example", "hdr@sink.example", Status.INCONCLUSIVE),
        (m.dsn(), "x@else.example", "env@sink.example", "hdr@sink.example", Status.INCONCLUSIVE),
        (m.dsn(), "hdr@sink.example", None, None, Status.NOT_APPLICABLE),
        (m.PLAIN, "hdr@sink.example", "env@sink.example", "hdr@sink.example", Status.NOT_APPLICABLE),
    ],
)
def test_ndr_env_002(
    raw: bytes, rcpt: str | None, env: str | None, hdr: str | None, expected: Status
) -> None:
    a = analyse_bytes(raw)
    obs = CapturedNdr.from_analysis(
        a, envelope_recipient=rcpt, probe_envelope_from=env, probe_header_from=hdr, probe_token="t"
    )
    if rcpt is None:
        assert obs.envelope_recipient is None
    assert _status("NDR-ENV-002", obs) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (m.dsn(third="rfc822"), Status.FAIL),
        (m.QMAIL, Status.FAIL),  # inline copy with the body
        (m.dsn(third="rfc822-headers"), Status.PASS),
        (m.dsn(third="none"), Status.PASS),
        (m.dsn(action="delivered", status="2.0.0", third="rfc822"), Status.NOT_APPLICABLE),
        (m.AUTOREPLY, Status.NOT_APPLICABLE),
    ],
)
def test_ndr_fmt_002(raw: bytes, expected: Status) -> None:
    assert _status("NDR-FMT-002", CapturedNdr.from_analysis(analyse_bytes(raw))) is expected


def test_rule_pages_have_sections() -> None:
    for rid in ("NDR-ENV-001", "NDR-ENV-002", "NDR-FMT-002"):
        r = load_all()[rid]
        assert "## What it flags" in r.doc and "## Why it" in r.doc
        assert r.remediation and "## How to fix" not in r.doc  # the fix lives in the catalog entry only


def test_captured_ndr_round_trips_through_json() -> None:
    from auditor.serialize import from_jsonable, to_jsonable

    obs = CapturedNdr.from_analysis(analyse_bytes(m.dsn(third="rfc822"), "f.eml"), probe_token="tok123")
    data = to_jsonable(obs)
    assert data["kind"] == "ndr.captured"
    assert from_jsonable(CapturedNdr, data) == obs


def test_report_with_captured_ndrs_round_trips() -> None:
    import json

    from auditor.judge import build_report
    from auditor.serialize import report_from_dict, report_to_json

    obs = [
        CapturedNdr.from_analysis(analyse_bytes(raw, f"{i}.eml")) for i, raw in enumerate((m.QMAIL, m.ARF))
    ]
    report = build_report(obs, command="ndr --judge", started="2026-11-26T00:00:00+00:00")
    again = report_from_dict(json.loads(report_to_json(report)))
    assert again.observations == report.observations
    assert again.findings == report.findings
