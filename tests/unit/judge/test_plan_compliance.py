"""The remediation plan (root causes, steps from the findings' fixes) and the compliance table."""

from __future__ import annotations

import dataclasses

from auditor.judge.compliance import CONTROL_BY_ID, build_compliance
from auditor.judge.plan import CAUSE_BY_ID, build_plan, cause_of
from auditor.model import ControlStatus, Effort, Finding, FixCommand, Remediation, RuleInfo, Severity, Status
from tests.unit.render.fixtures import CATALOG, FINDINGS


def _f(
    rule: str,
    status: Status = Status.FAIL,
    sev: Severity = Severity.HIGH,
    target: str = "t",
    fix: Remediation | None = None,
) -> Finding:
    return Finding(rule, status, sev, target, "m", remediation=fix or Remediation())


def _info(rule: str, cause: str = "", *controls: str) -> RuleInfo:
    return RuleInfo(rule, f"title of {rule}", "postfix", Severity.HIGH, cause=cause, controls=controls)


def test_every_cause_and_control_the_registry_names_is_defined() -> None:
    from auditor.rules import load_all

    rules = load_all().values()
    assert {r.cause for r in rules if r.cause} <= set(CAUSE_BY_ID)
    assert {c for r in rules for c in r.controls} <= set(CONTROL_BY_ID)


def test_relay_recipient_list_answers_the_wire_the_config_and_the_directory() -> None:
    items = build_plan(FINDINGS, CATALOG, "audit site.toml")
    first = items[0]
    assert first.cause == "relay-recipients" and first.effort is Effort.HOURS
    assert set(first.rule_ids) == {"SMTP-RCPT-002", "PF-RCPT-003", "LDAP-SYNC-001"}
    assert first.severity is Severity.CRITICAL
    assert first.verify[-1] == "backscatter-audit audit site.toml"
    # steps in the order of their worst finding; a finding without a fix gets the catalog's
    assert [s.findings[0].rule_id for s in first.steps] == ["PF-RCPT-003", "SMTP-RCPT-002", "LDAP-SYNC-001"]
    assert first.steps[2].text == "The catalog's fix for LDAP-SYNC-001."
    # the reload both fixes need runs once, in the last step that needs it
    assert [c.line for c in first.steps[0].commands] == [
        "postconf -c etc/postfix-backup -e 'relay_recipient_maps = lmdb:<table>'"
    ]
    assert [c.line for c in first.steps[1].commands] == ["postfix -c etc/postfix-backup reload"]
    assert first.steps[0].to_fill == ("<table>",)
    assert first.steps[0].findings[0].location is not None
    # only FAIL findings are planned (the inconclusive SMTP-NULL-001 and suppressed PF-DSN-001 are not)
    planned = {r.rule_id for i in items for r in i.findings}
    assert "SMTP-NULL-001" not in planned and "PF-DSN-001" not in planned


def test_findings_with_the_same_fix_share_a_step() -> None:
    cmd = FixCommand(
        "postconf -c /etc/postfix -e 'smtpd_reject_unlisted_recipient = yes'", directory="/etc/postfix"
    )
    fix = Remediation("Reject unlisted recipients.", (cmd,))
    catalog = {"PF-RCPT-002": _info("PF-RCPT-002", "local-recipients")}
    items = build_plan(
        [_f("PF-RCPT-002", target="a", fix=fix), _f("PF-RCPT-002", target="b", fix=fix)], catalog
    )
    (item,) = items
    (step,) = item.steps
    assert [r.target for r in step.findings] == ["a", "b"] and step.commands == (cmd,)


def test_plan_orders_by_severity_then_effort_and_keeps_rules_without_a_cause() -> None:
    catalog = {
        "PF-DSN-001": _info("PF-DSN-001", "ndr-payload"),  # minutes
        "LDAP-SYNC-001": _info("LDAP-SYNC-001", "relay-recipients"),  # hours
        "PF-RCPT-007": _info("PF-RCPT-007", "permanent-reject"),  # minutes
        "PF-PIPE-001": _info("PF-PIPE-001"),  # no cause in its catalog entry
    }
    findings = [
        _f("PF-DSN-001", sev=Severity.MEDIUM),
        _f("LDAP-SYNC-001", sev=Severity.MEDIUM),
        _f("PF-RCPT-007", sev=Severity.HIGH),
        _f("PF-PIPE-001", sev=Severity.CRITICAL),
        _f("ZZ-NEW-001", sev=Severity.CRITICAL, target="u"),  # in no catalog at all
    ]
    items = build_plan(findings, catalog)
    assert [i.cause for i in items] == [
        "ZZ-NEW-001",  # same severity and effort: by title ("ZZ-NEW-001" < "title of …")
        "PF-PIPE-001",
        "permanent-reject",
        "ndr-payload",
        "relay-recipients",
    ]
    assert items[1].title == "title of PF-PIPE-001" and items[0].title == "ZZ-NEW-001"
    assert items[0].verify == ()  # no command known, no verify step for an ad-hoc group
    assert items[0].steps[0].text == "See `backscatter-audit explain ZZ-NEW-001`."
    assert cause_of("PF-DSN-001", catalog) is CAUSE_BY_ID["ndr-payload"]
    # a cause id this build does not define: the rule is its own group, nothing is lost
    unknown = {"PF-DSN-001": _info("PF-DSN-001", "a-cause-from-another-build")}
    assert [i.cause for i in build_plan([_f("PF-DSN-001")], unknown)] == ["PF-DSN-001"]


def test_control_status_is_the_worst_of_its_findings() -> None:
    results = {r.control: r for r in build_compliance(FINDINGS, CATALOG)}
    assert results["RFC5321-6.1"].status is ControlStatus.FAIL
    assert results["RFC5321-6.1"].rule_ids == ("LDAP-SYNC-001", "PF-RCPT-003", "SMTP-RCPT-002")
    assert results["RFC1123-5.2.9"].status is ControlStatus.INCONCLUSIVE
    assert results["RFC5321-4.5.1"].status is ControlStatus.PASS
    assert results["RFC3464"].status is ControlStatus.ACCEPTED_RISK
    assert results["RFC5321-3.6.2"].status is ControlStatus.NOT_ASSESSED
    pm = {"SMTP-PM-001": CATALOG["SMTP-PM-001"]}
    mixed = build_compliance([_f("SMTP-PM-001", Status.PASS), _f("SMTP-PM-001", Status.INCONCLUSIVE)], pm)
    assert {r.control: r.status for r in mixed}["RFC5321-4.5.1"] is ControlStatus.INCONCLUSIVE


def test_membership_comes_from_the_catalog_entry_only() -> None:
    moved = {"SMTP-PM-001": dataclasses.replace(CATALOG["SMTP-PM-001"], controls=("RFC5321-3.6.2",))}
    results = {r.control: r for r in build_compliance([_f("SMTP-PM-001", Status.FAIL)], moved)}
    assert results["RFC5321-3.6.2"].status is ControlStatus.FAIL
    assert results["RFC5321-4.5.1"].status is ControlStatus.NOT_ASSESSED


def test_not_applicable_does_not_assess_a_control() -> None:
    relay = {"SMTP-RELAY-001": _info("SMTP-RELAY-001", "relay-control", "RFC5321-3.6.2")}
    results = {r.control: r for r in build_compliance([_f("SMTP-RELAY-001", Status.NOT_APPLICABLE)], relay)}
    assert results["RFC5321-3.6.2"].status is ControlStatus.NOT_ASSESSED
    assert results["RFC5321-3.6.2"].rule_ids == ()
