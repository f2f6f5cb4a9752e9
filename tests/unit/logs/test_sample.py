"""The committed sample log: every rarer Postfix line shape, with exact expected counts.

The sample (data/postfix-sample.log, anonymised, written from Postfix's own log formats) holds:
a notification whose original entered before the log starts, local and virtual unknown users,
an after-queue content-filter reject whose notice bounces (double bounce + postmaster copy),
a content-filter re-injection ("queued as") with long queue ids ending over quota, an XFORWARD
re-injection (orig_queue_id=), local submission (pickup), an inside client and a SASL client,
a delay notice and the expiry of the same message five days later, a success notice, a second
host (RFC 3339, RFC 5424 and journald short-iso lines) using the same queue id as the first
host at the same time, a queue id reused after a restart, a local(8) forward, foreign programs,
a truncated line, an empty line, garbage, and a year change (December → January).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.collect.logs import collect_postfix_logs, parse_networks
from auditor.judge import evaluate
from auditor.model import Status
from auditor.observations.logs import PostfixLogEvidence

SAMPLE = Path(__file__).parent / "data" / "postfix-sample.log"
INSIDE = "192.0.2.0/24"


@pytest.fixture(scope="module")
def ev() -> PostfixLogEvidence:
    return collect_postfix_logs([str(SAMPLE)], trusted_networks=parse_networks(INSIDE), year=2026)


def test_totals(ev: PostfixLogEvidence) -> None:
    assert ev.complete and ev.lines_read == 178
    assert ev.notifications == 15
    assert ev.postmaster_notifications == 1
    assert ev.by_kind == {"non-delivery": 13, "delay": 1, "delivery-status": 1}
    assert ev.by_zone == {"outside": 10, "inside": 4, "unknown": 1}
    assert ev.backscatter_notifications == 10
    assert ev.unattributed_notifications == 1
    assert ev.unattributed_by_cause == {"inside-server-reject": 1}
    assert ev.double_bounces == 1 and ev.backscatter_double_bounces == 1


def test_breakdowns(ev: PostfixLogEvidence) -> None:
    assert ev.backscatter_by_kind == {"non-delivery": 8, "delay": 1, "delivery-status": 1}
    assert ev.backscatter_by_cause == {
        "unknown-recipient": 2,  # local(8) and virtual(8) after acceptance
        "content-filter": 2,  # amavis after the queue; the forward's next hop
        "quota": 1,
        "success-requested": 1,
        "relay-access": 1,
        "next-hop-unavailable": 1,  # the delay notice
        "expiry": 1,
        "inside-server-reject": 1,
    }
    assert ev.backscatter_by_day == {"2026-12-04": 8, "2026-12-09": 1, "2027-01-01": 1}
    assert ev.backscatter_by_domain == {
        "victim-a.example": 2,
        "victim-d.example": 2,
        "victim-b.example": 1,
        "victim-c.example": 1,
        "victim-e.example": 1,
        "victim-f.example": 1,
        "victim-g.example": 1,
        "victim-h.example": 1,
    }
    assert ev.backscatter_by_entry == {"smtpd": 10}
    assert "unknown[203.0.113.15]" in ev.backscatter_by_client  # the second host's client


def test_lifecycle_counters(ev: PostfixLogEvidence) -> None:
    assert ev.hosts == ("mx1", "mx2")
    assert ev.restarts == 2
    assert ev.reused_queue_ids == 1  # AB12CD34EF: outside mail, restart, then local submission
    assert ev.linked_reinjections == 3  # queued as, orig_queue_id=, forwarded as
    assert ev.evicted_records == 0
    assert ev.open_at_end == 3  # notices whose delivery is not in the log
    assert ev.first_time == "2026-12-04T09:59:50" and ev.last_time == "2027-01-01T00:00:07"


def test_skipped_lines_are_numbered(ev: PostfixLogEvidence) -> None:
    assert ev.other_program_lines == 2  # dovecot, amavis
    assert ev.skipped_lines == 4
    assert [(s.line, s.text.split(":")[0]) for s in ev.skipped_examples] == [
        (151, "not a syslog line"),
        (152, "unrecognised Postfix delivery line"),
        (153, "empty line"),
        (154, "not a syslog line"),
    ]
    assert all(s.file == str(SAMPLE) for s in ev.skipped_examples)


def test_examples_trace_chains(ev: PostfixLogEvidence) -> None:
    by_id = {e.queue_id: e for e in ev.examples}
    quota = by_id["4Yqk3L2cPQzJXm"]  # long queue ids, re-injected by the content filter
    assert quota.cause == "quota" and quota.zone == "outside"
    assert quota.client == "relay.example.org[198.51.100.30]"
    assert quota.via == ("4Yqk3L1bNWzJXk re-injected as 4Yqk3L2cPQzJXm",)
    assert [ln.line for ln in quota.lines] == [32, 40, 42]  # entry of the FIRST copy, failure, notice
    xf = by_id["3C4D5E6F02"]
    assert xf.via == ("orig_queue_id 3C4D5E6F01",) and xf.cause == "unknown-recipient"
    fwd = by_id["C0FFEE0002"]
    assert fwd.via == ("C0FFEE0001 forwarded as C0FFEE0002",) and fwd.notified == "oscar@victim-g.example"
    dbl = by_id["2B3C4D5E01"]
    assert dbl.double_bounce and dbl.cause == "content-filter" and dbl.lines[-1].line == 25
    relay = by_id["91A2B3C401"]
    assert relay.host == "mx2" and relay.cause == "relay-access" and relay.zone == "outside"
    assert by_id["AB12CD34EF"].zone == "inside" and by_id["AB12CD34EF"].entry == "pickup"
    assert by_id["0F0E0D0C01"].zone == "unknown"
    expiry = next(e for e in ev.examples if e.cause == "expiry")
    assert expiry.lines[-2].text.endswith("status=expired, returned to sender")


def test_rule_fails_with_cause_mapping(ev: PostfixLogEvidence) -> None:
    (f,) = [f for f in evaluate([ev]) if f.rule_id == "PF-LOG-001"]
    assert f.status is Status.FAIL and f.severity.value == "high"
    assert f.message.startswith("10 notification(s) sent for mail from outside")
    assert "1 of them bounced themselves" in f.message
    text = f.remediation.text
    assert "- quota (1): " in text and "PF-QUOTA-001" in text
    assert "- unknown-recipient (2): " in text and "PF-RCPT-001" in text
    assert "- relay-access (1): " in text and "PF-RCPT-003" in text
    data = f.evidence[0].data
    assert data["cause_rules"]["content-filter"][0] == "PF-FILTER-001"
    located = [e.location for e in f.evidence[1:] if e.location is not None]
    assert any(loc.path == str(SAMPLE) and loc.line == 32 for loc in located)


def test_cli_json_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["logs", "postfix", str(SAMPLE), "--trusted-networks", INSIDE, "--year", "2026", "-f", "json"])
    assert rc == 1
    doc = json.loads(capsys.readouterr().out)
    (obs,) = [o for o in doc["observations"] if o["kind"] == "log.postfix"]
    assert obs["backscatter_notifications"] == 10
    assert [f["status"] for f in doc["findings"] if f["rule_id"] == "PF-LOG-001"] == ["fail"]


def test_cli_bad_network_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "postfix", str(SAMPLE), "--trusted-networks", "10.0.0.0/33"]) == 2
    err = capsys.readouterr().err
    assert "trusted-network" in err and "10.0.0.0/33" in err and "Traceback" not in err


def test_cli_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "postfix", str(tmp_path / "nope.log")]) == 2
    assert "nope.log" in capsys.readouterr().err


def test_batch_scan_and_line_by_line_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole-batch regex scan and the line-by-line path give the same observation."""
    import dataclasses
    import re

    from auditor.collect.logs.postfix import PostfixLogTracker

    shape = re.compile(rb"[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d \S+ \S+: ")
    lines = [ln for ln in SAMPLE.read_bytes().splitlines() if shape.match(ln)]
    p = tmp_path / "bsd-only.log"
    p.write_bytes(b"\n".join(lines) + b"\n")
    calls: list[bool] = []
    block = PostfixLogTracker._block

    def spy(self: PostfixLogTracker, *a: object) -> bool:
        calls.append(block(self, *a))  # type: ignore[arg-type]
        return calls[-1]

    monkeypatch.setattr(PostfixLogTracker, "_block", spy)
    nets = parse_networks(INSIDE)
    scanned = collect_postfix_logs([str(p)], trusted_networks=nets, year=2026)
    assert calls == [True]  # the batch was scanned whole
    monkeypatch.setattr(PostfixLogTracker, "_block", lambda *a: False)
    per_line = collect_postfix_logs([str(p)], trusted_networks=nets, year=2026)
    assert scanned.backscatter_notifications == 9  # the sample without its RFC 3339/5424 host
    assert dataclasses.asdict(scanned) == dataclasses.asdict(per_line)


def test_saved_report_round_trips(ev: PostfixLogEvidence) -> None:
    """`report FILE` re-renders from JSON: the observation comes back as the same object."""
    from auditor.judge import build_report
    from auditor.serialize import report_from_dict, report_to_dict

    report = build_report([ev], command="logs postfix", started="2026-12-04T00:00:00+00:00")
    back = report_from_dict(json.loads(json.dumps(report_to_dict(report))))
    assert back.observations == (ev,)
