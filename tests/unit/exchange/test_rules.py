"""Rule branches the scenario fixtures do not reach, fed with small console pastes."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.model import Severity
from auditor.rules.exchange_view import covers_everyone, ports
from tests.unit.exchange.helpers import ex_findings, summary


def paste(tmp_path: Path, text: str, name: str = "paste.txt") -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


RULE = """Identity                        : {name}
State                           : {state}
Mode                            : {mode}
FromScope                       : {scope}
RejectMessageReasonText         : Not allowed
RejectMessageEnhancedStatusCode : 5.7.1
"""


def test_transport_rule_states_modes_and_scope(tmp_path: Path) -> None:
    text = "PS C:\\> Get-TransportRule | fl\n\n" + "\n".join(
        [
            RULE.format(name="Off", state="Disabled", mode="Enforce", scope="NotInOrganization"),
            RULE.format(name="Testing", state="Enabled", mode="Audit", scope="NotInOrganization"),
            RULE.format(name="Internal only", state="Enabled", mode="Enforce", scope="InOrganization"),
            RULE.format(name="Anyone", state="Enabled", mode="Enforce", scope=""),
        ]
    )
    findings = {f.target: f for f in ex_findings([paste(tmp_path, text)]) if f.rule_id == "EX-CF-002"}
    assert findings["Off"].status.value == "pass"
    assert findings["Testing"].status.value == "pass"
    assert (
        findings["Internal only"].status.value == "fail"
        and findings["Internal only"].severity is Severity.LOW
    )
    assert findings["Anyone"].status.value == "fail" and findings["Anyone"].severity is Severity.HIGH


def test_oof_blocked_org_wide_passes_despite_mailboxes(tmp_path: Path) -> None:
    text = (
        "PS C:\\> Get-RemoteDomain | fl Identity,DomainName,AllowedOOFType\n\n"
        "Identity       : Default\nDomainName     : *\nAllowedOOFType : None\n\n"
        "PS C:\\> Get-MailboxAutoReplyConfiguration -Identity alice | fl\n\n"
        "Identity         : alice\nAutoReplyState   : Enabled\nExternalAudience : All\n"
    )
    assert summary(ex_findings([paste(tmp_path, text)])) == {("EX-AR-001", "pass", "Default")}


def test_oof_without_mailbox_data_reports_the_remote_domain(tmp_path: Path) -> None:
    text = "Identity       : Default\nDomainName     : *\nAllowedOOFType : ExternalLegacy\n"
    (f,) = ex_findings([paste(tmp_path, text)])
    assert (f.rule_id, f.status.value, f.target) == ("EX-AR-001", "fail", "Default")
    assert 'Set-RemoteDomain -Identity "Default" -AllowedOOFType None' in f.remediation.as_text()


def test_edge_server_without_subscription(tmp_path: Path) -> None:
    text = (
        "PS C:\\> Get-ExchangeServer | fl Name,ServerRole\n\nName       : EDGE01\nServerRole : Edge\n\n"
        "PS C:\\> Get-EdgeSubscription\n"
    )
    assert summary(ex_findings([paste(tmp_path, text)])) == {("EX-EDGE-001", "fail", "EDGE01")}


def test_subscription_without_sync_test_is_inconclusive(tmp_path: Path) -> None:
    text = "PS C:\\> Get-EdgeSubscription | fl\n\nName   : EDGE01\nSite   : Site1\nDomain : contoso.com\n"
    assert summary(ex_findings([paste(tmp_path, text)])) == {("EX-EDGE-001", "inconclusive", "EDGE01")}


def test_recipient_filter_agent_absent(tmp_path: Path) -> None:
    text = (
        "PS C:\\> Get-TransportAgent\n\nIdentity             Enabled Priority\n"
        "--------             ------- --------\n"
        "Transport Rule Agent True    1\nMalware Agent        True    2\n"
    )
    (f,) = ex_findings([paste(tmp_path, text)])
    assert (f.rule_id, f.status.value, f.severity) == ("EX-RCPT-002", "fail", Severity.HIGH)
    assert "Install-AntiSpamAgents.ps1" in f.remediation.as_text()
    assert "Transport Rule Agent, Malware Agent" in f.evidence[0].summary


def test_online_skips_onprem_rules_and_uses_dbeb(tmp_path: Path) -> None:
    hosted = (
        "PS C:\\> Get-HostedContentFilterPolicy | fl Identity,SpamAction\n\n"
        "Identity   : Default\nSpamAction : MoveToJmf\n\n"
    )
    domains = (
        "PS C:\\> Get-AcceptedDomain | fl Identity,DomainName,DomainType\n\n"
        "Identity   : contoso.com\nDomainName : contoso.com\nDomainType : InternalRelay\n\n"
    )
    online = summary(ex_findings([paste(tmp_path, hosted + domains)]))
    assert ("EX-DOM-002", "fail", "contoso.com") in online
    assert not any(rid == "EX-DOM-001" for rid, _, _ in online)
    # Output of both worlds: the environment is unknown, so the on-premises reading applies.
    rfc = "PS C:\\> Get-RecipientFilterConfig | fl\n\nIdentity : RecipientFilterConfig\nEnabled : True\n"
    mixed = summary(ex_findings([paste(tmp_path, hosted + domains + rfc, "mixed.txt")]))
    assert ("EX-DOM-001", "fail", "contoso.com") in mixed
    assert not any(rid == "EX-DOM-002" for rid, _, _ in mixed)


def test_scl_reject_without_connector_data_is_inconclusive(tmp_path: Path) -> None:
    text = "Identity         : ContentFilterConfig\nEnabled          : True\nSCLRejectEnabled : True\n"
    assert summary(ex_findings([paste(tmp_path, text)])) == {
        ("EX-CF-001", "inconclusive", "ContentFilterConfig")
    }


def test_scl_reject_on_the_perimeter_passes(tmp_path: Path) -> None:
    text = (
        "Identity         : ContentFilterConfig\nEnabled          : True\nSCLRejectEnabled : True\n\n"
        "Identity         : EDGE01\\Default internal receive connector EDGE01\n"
        "Bindings         : {0.0.0.0:25}\nRemoteIPRanges   : {0.0.0.0-255.255.255.255}\n"
        "PermissionGroups : AnonymousUsers, ExchangeServers, Partners\n"
    )
    got = summary(ex_findings([paste(tmp_path, text)]))
    assert ("EX-CF-001", "pass", "ContentFilterConfig") in got


def test_powershell_quoting_in_remediation(tmp_path: Path) -> None:
    text = 'Identity   : Odd "name" $x\nDomainName : odd.example\nDomainType : ExternalRelay\n'
    (f,) = [f for f in ex_findings([paste(tmp_path, text)]) if f.rule_id == "EX-DOM-001"]
    assert f.remediation.as_text().startswith(
        'Set-AcceptedDomain -Identity "Odd `"name`" `$x" -DomainType Authoritative'
    )


def test_mailbox_facing_with_unknown_validation_is_inconclusive(tmp_path: Path) -> None:
    text = (
        "PS C:\\> Get-EdgeSubscription\n\n"
        "PS C:\\> Get-RecipientFilterConfig | fl Identity,RecipientValidationEnabled,Enabled\n\n"
        "Identity : RecipientFilterConfig\nRecipientValidationEnabled : True\nEnabled : True\n\n"
        "PS C:\\> Get-ReceiveConnector | fl Identity,Bindings,RemoteIPRanges,PermissionGroups\n\n"
        "Identity         : MBX01\\Default Frontend MBX01\nBindings         : {0.0.0.0:25}\n"
        "RemoteIPRanges   : {0.0.0.0-255.255.255.255}\nPermissionGroups : AnonymousUsers\n"
    )
    got = {f for f in summary(ex_findings([paste(tmp_path, text)])) if f[0] == "EX-RCPT-003"}
    # ExternalMailEnabled was not pasted, there is no Edge: neither pass nor fail can be proven.
    assert got == {("EX-RCPT-003", "inconclusive", "MBX01\\Default Frontend MBX01")}


@pytest.mark.parametrize(
    ("ranges", "everyone"),
    [
        (["0.0.0.0-255.255.255.255"], True),
        (["::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"], True),
        (["0.0.0.0/0"], True),
        (["192.0.2.10", "192.0.2.0/24"], False),
        (["10.0.0.0-10.255.255.255"], False),
        (["not an address"], False),
    ],
)
def test_covers_everyone(ranges: list[str], everyone: bool) -> None:
    assert covers_everyone(ranges) is everyone


def test_ports() -> None:
    assert ports(["[::]:25", "0.0.0.0:587", "10.0.0.5:2525", "junk"]) == {25, 587, 2525}


def test_rcpt002_without_transport_agent_export_is_not_a_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Only Get-RecipientFilterConfig pasted: the agent that applies it is unknown, never 'pass' alone."""
    from auditor.collect.exchange import collect
    from auditor.judge import evaluate
    from auditor.model import Status

    paste = tmp_path / "rfc.txt"
    paste.write_text(
        "Enabled                    : True\n"
        "ExternalMailEnabled        : True\n"
        "RecipientValidationEnabled : True\n"
        "BlockListEnabled           : False\n"
    )
    found = [f for f in evaluate(collect([str(paste)])) if f.rule_id == "EX-RCPT-002"]
    statuses = {f.status for f in found}
    assert Status.INCONCLUSIVE in statuses
    assert any("Get-TransportAgent" in f.message for f in found)
