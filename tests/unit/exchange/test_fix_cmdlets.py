"""Every Exchange cmdlet and parameter a fix names is one the collector reads (so the audit can
see the change take effect): checked against Collect-BackscatterAudit.ps1 and cmdlets.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.collect.exchange.cmdlets import RULE_PROPERTIES
from auditor.rules import load_all

SCRIPT = Path(__file__).resolve().parents[3] / "auditor/collect/exchange/Collect-BackscatterAudit.ps1"
RULE_SOURCES = [
    Path(__file__).resolve().parents[3] / f"auditor/rules/{m}.py" for m in ("exchange", "ndr", "directory")
]
# Cmdlets that act rather than configure a property the collector reads back; each one's effect is
# read by the Get- cmdlet named here.
ACTIONS = {
    "New-EdgeSubscription": "Get-EdgeSubscription",
    "Start-EdgeSynchronization": "Test-EdgeSynchronization",
    "Test-EdgeSynchronization": "Test-EdgeSynchronization",
    "Enable-TransportAgent": "Get-TransportAgent",
    "Install-AntiSpamAgents": "Get-TransportAgent",
    "Remove-AcceptedDomain": "Get-AcceptedDomain",
    "New-AcceptedDomain": "Get-AcceptedDomain",
    "New-TransportRule": "Get-TransportRule",
}
# Named by directory rules: their effect is read back from LDAP by the directory stage.
READ_BY_DIRECTORY = {"Set-Mailbox"}
_CMDLET = re.compile(
    r"\b(Set|New|Enable|Remove|Start|Test|Install)-([A-Z][A-Za-z]+)((?:\s+-\w+(?:\s+(?!-)[^\s;,)`'\"]+)?)*)"
)


def _selected() -> dict[str, set[str]]:
    text = SCRIPT.read_text()
    out: dict[str, set[str]] = {}
    for m in re.finditer(r"((?:Get|Test)-\w+)\s*\|\s*Select-Object -Property ([\w, ]+)", text):
        out.setdefault(m.group(1), set()).update(p.strip() for p in m.group(2).split(","))
    for cmdlet, props in RULE_PROPERTIES.items():
        out.setdefault(cmdlet, set()).update(props)
    return out


def _named() -> list[tuple[str, str, tuple[str, ...]]]:
    texts = [p.read_text() for p in RULE_SOURCES] + [r.remediation for r in load_all().values()]
    found = []
    for text in texts:
        for m in _CMDLET.finditer(text):
            params = tuple(re.findall(r"-(\w+)", m.group(3)))
            found.append((f"{m.group(1)}-{m.group(2)}", m.group(0), params))
    return found


def test_the_script_is_parsed() -> None:
    sel = _selected()
    assert "AllowedOOFType" in sel["Get-RemoteDomain"] and len(sel) >= 15


@pytest.mark.parametrize(("cmdlet", "text", "params"), sorted(set(_named())))
def test_fix_cmdlet_is_read_back_by_the_collector(cmdlet: str, text: str, params: tuple[str, ...]) -> None:
    sel = _selected()
    if cmdlet in READ_BY_DIRECTORY:
        return  # converting a leaver's mailbox changes its directory entry, which LDAP shows
    if cmdlet in ACTIONS:
        assert ACTIONS[cmdlet] in sel, text
        return
    assert cmdlet.startswith("Set-"), text
    getter = "Get-" + cmdlet[4:]
    assert getter in sel, f"{text}: the collector does not run {getter}"
    unknown = [p for p in params if p not in sel[getter] and p != "Identity"]
    assert not unknown, f"{text}: {getter} does not export {unknown}"
