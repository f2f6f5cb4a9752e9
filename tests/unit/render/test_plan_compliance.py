"""Remediation groups by root cause and the compliance table."""

from __future__ import annotations

import re
from collections import Counter

from auditor.compliance import CONTROLS, ControlStatus, assess
from auditor.model import Finding, Severity, Status
from auditor.remediation import CAUSES, cause_of, plan
from tests.conftest import SHARED, need_shared
from tests.unit.render.fixtures import FINDINGS


def _catalog_ids() -> set[str]:
    text = need_shared(SHARED / "rules.md").read_text(encoding="utf-8")
    ids = set(re.findall(r"^### ([A-Z]+-[A-Z]+-\d{3})\b", text, re.M))
    ids |= set(re.findall(r"^\| ([A-Z]+-[A-Z]+-\d{3})\b", text, re.M))
    assert len(ids) > 100  # the catalog holds 109 entries; a parse failure must not pass silently
    return ids


def _f(rule: str, status: Status = Status.FAIL, sev: Severity = Severity.HIGH, target: str = "t") -> Finding:
    return Finding(rule, status, sev, target, "m")


def test_every_rule_id_in_causes_and_controls_is_in_the_catalog() -> None:
    # The catalog's ids, plus the project's documented additions (registered rules, e.g. EX-RELAY-001).
    from auditor.rules import load_all

    ids = _catalog_ids() | set(load_all())
    cause_ids = [rid for c in CAUSES for rid in c.rule_ids]
    assert set(cause_ids) <= ids, set(cause_ids) - ids
    assert not [rid for rid, n in Counter(cause_ids).items() if n > 1]  # one root cause per rule
    control_ids = {rid for c in CONTROLS for rid in c.rule_ids}
    assert control_ids <= ids, control_ids - ids


def test_relay_recipient_list_answers_the_wire_the_config_and_the_directory() -> None:
    items = plan(FINDINGS, "audit site.toml")
    first = items[0]
    assert first.cause.id == "relay-recipients"
    assert set(first.rule_ids) == {"SMTP-RCPT-002", "PF-RCPT-003", "LDAP-SYNC-001"}
    assert first.severity is Severity.CRITICAL
    assert "relay_recipient_maps" in first.cause.change
    assert first.verify[-1] == "backscatter-audit audit site.toml"
    # only FAIL findings are planned (the inconclusive SMTP-NULL-001 and suppressed PF-DSN-001 are not)
    planned = {f.rule_id for i in items for f in i.findings}
    assert "SMTP-NULL-001" not in planned and "PF-DSN-001" not in planned


def test_plan_orders_by_severity_then_effort_and_keeps_unknown_rules() -> None:
    findings = [
        _f("PF-DSN-001", sev=Severity.MEDIUM),  # effort 1
        _f("LDAP-SYNC-001", sev=Severity.MEDIUM),  # effort 2
        _f("PF-RCPT-007", sev=Severity.HIGH),  # effort 1
        _f("ZZ-NEW-001", sev=Severity.CRITICAL),  # in no cause: its own group
    ]
    items = plan(findings)
    assert [i.cause.id for i in items] == [
        "ZZ-NEW-001",
        "permanent-reject",
        "ndr-payload",
        "relay-recipients",
    ]
    assert items[0].verify == ()  # no command known, no verify step for an ad-hoc group
    assert cause_of("pf-rcpt-003") is not None and cause_of("NOPE-000") is None


def test_control_status_is_the_worst_of_its_findings() -> None:
    results = {r.control.id: r for r in assess(FINDINGS)}
    assert results["RFC5321-6.1"].status is ControlStatus.FAIL
    assert results["RFC1123-5.2.9"].status is ControlStatus.INCONCLUSIVE
    assert results["RFC5321-4.5.1"].status is ControlStatus.PASS
    assert results["RFC3464"].status is ControlStatus.ACCEPTED_RISK
    assert results["RFC5321-3.6.2"].status is ControlStatus.NOT_ASSESSED
    mixed = assess([_f("SMTP-PM-001", Status.PASS), _f("SMTP-PM-001", Status.INCONCLUSIVE, target="u")])
    assert {r.control.id: r.status for r in mixed}["RFC5321-4.5.1"] is ControlStatus.INCONCLUSIVE


def test_not_applicable_does_not_assess_a_control() -> None:
    results = {r.control.id: r for r in assess([_f("SMTP-RELAY-001", Status.NOT_APPLICABLE)])}
    assert results["RFC5321-3.6.2"].status is ControlStatus.NOT_ASSESSED
    assert results["RFC5321-3.6.2"].findings == ()
