"""Acceptance: the same configuration in all three forms gives the same findings, for every EX rule.

Each scenario exists as the collector's JSON, Export-Clixml files (one per cmdlet) and a console
paste (Format-List, some tables; the onprem-bad paste is UTF-16 with a BOM and CRLF line ends).
"""

from __future__ import annotations

import pytest

from tests.unit.exchange.helpers import FORMS, SCENARIOS, ex_findings, files, summary

FAIL, PASS, NA = "fail", "pass", "not-applicable"

EXPECTED: dict[str, set[tuple[str, str, str]]] = {
    "onprem-bad": {
        ("EX-RELAY-001", FAIL, "Relay everything"),
        ("EX-DOM-001", FAIL, "Fabrikam legacy"),
        ("EX-DOM-001", PASS, "contoso.com"),
        ("EX-RCPT-001", FAIL, "RecipientFilterConfig"),
        ("EX-RCPT-002", FAIL, "Recipient Filter Agent"),
        ("EX-RCPT-002", FAIL, "RecipientFilterConfig"),
        ("EX-RCPT-003", FAIL, "MBX01\\Default Frontend MBX01"),
        ("EX-RCPT-003", NA, "MBX01\\From Gateway"),
        ("EX-CF-001", FAIL, "ContentFilterConfig"),
        ("EX-CF-002", FAIL, "Block executable attachments"),
        ("EX-CF-003", FAIL, "Default"),
        ("EX-NULL-001", FAIL, "SenderFilterConfig"),
        ("EX-DSN-001", FAIL, "Transport Settings"),
        ("EX-AR-001", FAIL, "contoso.com/Users/Alice Lee"),
    },
    "onprem-good": {
        ("EX-RELAY-001", PASS, "accepted domains"),
        ("EX-DOM-001", PASS, "contoso.com"),
        ("EX-DOM-001", PASS, "Fabrikam"),
        ("EX-RCPT-001", PASS, "RecipientFilterConfig"),
        ("EX-RCPT-002", PASS, "Recipient Filter Agent"),
        ("EX-RCPT-002", PASS, "RecipientFilterConfig"),
        ("EX-RCPT-003", PASS, "MBX01\\Default Frontend MBX01"),
        ("EX-EDGE-001", PASS, "EDGE01"),
        ("EX-CF-001", PASS, "ContentFilterConfig"),
        ("EX-CF-002", PASS, "transport rules"),
        ("EX-CF-003", PASS, "Default"),
        ("EX-NULL-001", PASS, "SenderFilterConfig"),
        ("EX-DSN-001", PASS, "Transport Settings"),
        ("EX-AR-001", PASS, "contoso.com/Users/Alice Lee"),
    },
    "edge-bad": {("EX-EDGE-001", FAIL, "EDGE01")},
    "exo-bad": {
        ("EX-RELAY-001", PASS, "accepted domains"),
        ("EX-DOM-002", FAIL, "contoso.com"),
        ("EX-DOM-002", PASS, "contoso.onmicrosoft.com"),
        ("EX-CF-003", FAIL, "Default"),
    },
    "exo-good": {
        ("EX-RELAY-001", PASS, "accepted domains"),
        ("EX-DOM-002", PASS, "contoso.com"),
        ("EX-DOM-002", PASS, "contoso.onmicrosoft.com"),
        ("EX-CF-003", PASS, "Default"),
    },
}

CATALOG_RULES = {
    "EX-RCPT-001",
    "EX-RCPT-002",
    "EX-RCPT-003",
    "EX-EDGE-001",
    "EX-DOM-001",
    "EX-DOM-002",
    "EX-CF-001",
    "EX-CF-002",
    "EX-CF-003",
    "EX-NULL-001",
    "EX-DSN-001",
    "EX-AR-001",
    "EX-RELAY-001",
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_findings(scenario: str, form: str) -> None:
    assert summary(ex_findings(files(scenario, form))) == EXPECTED[scenario]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_three_forms_agree(scenario: str) -> None:
    by_form = {form: summary(ex_findings(files(scenario, form))) for form in FORMS}
    assert by_form["collector"] == by_form["clixml"] == by_form["format-list"]


def test_every_rule_has_a_failing_and_a_passing_scenario() -> None:
    failing = {rid for exp in EXPECTED.values() for rid, status, _ in exp if status == FAIL}
    passing = {rid for exp in EXPECTED.values() for rid, status, _ in exp if status == PASS}
    assert failing == CATALOG_RULES
    assert passing == CATALOG_RULES


def test_remediation_names_the_real_identity() -> None:
    by_rule = {(f.rule_id, f.target): f for f in ex_findings(files("onprem-bad", "collector"))}
    assert (
        by_rule[("EX-DOM-001", "Fabrikam legacy")]
        .remediation.as_text()
        .startswith('Set-AcceptedDomain -Identity "Fabrikam legacy" -DomainType Authoritative')
    )
    assert 'Remove-AcceptedDomain -Identity "Relay everything"' in (
        by_rule[("EX-RELAY-001", "Relay everything")].remediation.as_text()
    )
    cf2 = by_rule[("EX-CF-002", "Block executable attachments")]
    assert (
        'Set-TransportRule -Identity "Block executable attachments" -DeleteMessage $true'
        in cf2.remediation.as_text()
    )
    assert (
        "Set-MailboxAutoReplyConfiguration"
        in by_rule[("EX-AR-001", "contoso.com/Users/Alice Lee")].remediation.as_text()
    )


def test_evidence_points_at_the_console_line() -> None:
    findings = ex_findings(files("onprem-bad", "format-list"))
    rcpt = next(f for f in findings if f.rule_id == "EX-RCPT-001")
    loc = rcpt.location
    assert loc is not None and loc.path.endswith("format-list.txt")
    # "RecipientValidationEnabled : False" is on line 38 of the paste.
    assert loc.line == 38


@pytest.mark.parametrize(("form", "line"), [("collector", 30), ("clixml", 87)])
def test_evidence_lines_in_json_and_clixml(form: str, line: int) -> None:
    # The '*' accepted domain's DomainName: line 30 of collector.json (third object of the
    # array, one per line); line 87 of the UTF-16 CLIXML export (<Obj N="DomainName">).
    findings = ex_findings(files("onprem-bad", form))
    relay = next(f for f in findings if f.rule_id == "EX-RELAY-001")
    loc = relay.location
    assert loc is not None and loc.line == line
