"""The PowerShell collector cannot run here (no pwsh on Debian), so its text is checked instead:
every cmdlet is read, every property a rule reads is selected, and nothing but Get-/Test- runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.collect import exchange
from auditor.collect.exchange.cmdlets import RULE_PROPERTIES

SCRIPT = Path(exchange.collector_script_path())
RULES_SOURCE = Path(exchange.__file__).resolve().parents[2] / "rules" / "exchange.py"

BRIEF_CMDLETS = (
    "Get-AcceptedDomain",
    "Get-RecipientFilterConfig",
    "Get-TransportAgent",
    "Get-EdgeSubscription",
    "Test-EdgeSynchronization",
    "Get-ContentFilterConfig",
    "Get-SenderFilterConfig",
    "Get-TransportConfig",
    "Get-RemoteDomain",
    "Get-TransportRule",
    "Get-MalwareFilterPolicy",
    "Get-ReceiveConnector",
    "Get-OrganizationConfig",
    "Get-HostedContentFilterPolicy",
    "Get-InboundConnector",
    "Get-ExchangeServer",
    "Get-MailboxAutoReplyConfiguration",
)


def selected() -> dict[str, set[str]]:
    """cmdlet → properties of its Select-Object -Property list, per Invoke-Collect block."""
    text = SCRIPT.read_text(encoding="utf-8")
    blocks = re.split(r"(?m)^\s*Invoke-Collect\s+", text)[1:]
    out: dict[str, set[str]] = {}
    for block in blocks:
        name = re.match(r"'([\w-]+)'", block)
        assert name, block[:80]
        sel = re.search(r"Select-Object\s+-Property\s+([^\r\n}]+)", block)
        assert sel, f"{name.group(1)} has no Select-Object -Property list"
        out[name.group(1)] = {p.strip() for p in sel.group(1).split(",") if p.strip()}
    return out


def test_script_is_package_data() -> None:
    assert SCRIPT.name == "Collect-BackscatterAudit.ps1"
    assert SCRIPT.is_file()


@pytest.mark.parametrize("cmdlet", BRIEF_CMDLETS)
def test_script_reads_cmdlet(cmdlet: str) -> None:
    assert cmdlet in selected()


@pytest.mark.parametrize("cmdlet", sorted(RULE_PROPERTIES))
def test_script_selects_every_property_the_rules_read(cmdlet: str) -> None:
    missing = set(RULE_PROPERTIES[cmdlet]) - selected()[cmdlet]
    assert not missing, f"{cmdlet}: the script does not select {sorted(missing)}"


def test_rules_read_only_declared_properties() -> None:
    """Every property name the rule module reads is declared in RULE_PROPERTIES (hence selected)."""
    src = RULES_SOURCE.read_text(encoding="utf-8")
    read = set(re.findall(r"\b(?:flag|name|items|why_unknown)\(\s*[\w.]+,\s*\"(\w+)\"", src))
    read |= set(re.findall(r"\.(?:text|get)\(\"(\w+)\"\)", src))
    declared = {p for props in RULE_PROPERTIES.values() for p in props}
    assert read, "the pattern found no property reads: the check itself is broken"
    assert read <= declared, f"rules read undeclared properties: {sorted(read - declared)}"


def test_script_is_read_only() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    code = re.sub(r"<#.*?#>", "", text, flags=re.S)  # drop the comment-based help
    harmless = {"New-Object", "Set-StrictMode"}  # PowerShell plumbing, not Exchange changes
    verbs = set(
        re.findall(r"\b(?:Set|New|Remove|Enable|Disable|Start|Stop|Add|Update|Install)-[A-Z]\w+", code)
    )
    assert not verbs - harmless, f"state-changing cmdlets in the collector: {verbs - harmless}"
    assert "Get-AcceptedDomain" in code  # the pattern sees cmdlet names at all


def test_each_cmdlet_is_guarded_and_recorded() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    body = text[text.index("function Invoke-Collect") : text.index("function Test-Cmdlet")]
    assert "try {" in body and "catch {" in body and "$entry.error" in body
    assert "[void]$Manifest.cmdlets.Add($entry)" in body
    assert "backscatter-audit-exchange/1" in text and "-Depth 6" in text
    assert re.search(r"Get-Mailbox -ResultSize \$MaxMailboxes", text), "mailbox reads must be bounded"
    assert "[switch]$IncludeAutoReplies" in text
