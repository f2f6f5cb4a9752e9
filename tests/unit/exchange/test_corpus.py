"""Real data: the CSS-Exchange HealthChecker CLIXML captures and the Format-List snippets in corpus/."""

from __future__ import annotations

import pytest

from auditor.collect.exchange import read_file
from tests.conftest import CORPUS, need_shared
from tests.unit.exchange.helpers import ex_findings, summary

EX = CORPUS / "exchange"
ACCEPTED = {
    "Tests_DataCollection_E16_Exchange_GetAcceptedDomain.xml": None,
    "Tests_DataCollection_E19_Exchange_GetAcceptedDomain.xml": None,
    "Tests_DataCollection_E19_Exchange_GetAcceptedDomain_Bad.xml": "Bad Accepted Domain",
    "Tests_DataCollection_E19_Exchange_GetAcceptedDomain_Problem.xml": "Problem Accepted Domain",
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_wildcard_accepted_domain_is_open_relay(name: str) -> None:
    path = str(need_shared(EX / name))
    relay = {(s, t) for rid, s, t in summary(ex_findings([path])) if rid == "EX-RELAY-001"}
    star = ACCEPTED[name]
    if star is None:
        assert relay == {("pass", "accepted domains")}
    else:
        assert relay == {("fail", star)}


def test_accepted_domain_types_from_typed_enums() -> None:
    parsed = read_file(
        str(need_shared(EX / "Tests_DataCollection_E19_Exchange_GetAcceptedDomain_Problem.xml"))
    )
    (out,) = parsed.outputs
    assert out.cmdlet == "Get-AcceptedDomain" and out.form == "clixml"
    types = {o.text("Name"): o.text("DomainType") for o in out.objects}
    assert types == {
        "Solo.com": "Authoritative",
        "Contoso Wild": "Authoritative",
        "Wild .com": "InternalRelay",
        "Problem Accepted Domain": "InternalRelay",
    }
    # "*.com" is InternalRelay in the normal captures too: EX-DOM-001 reports it.
    findings = summary(ex_findings([parsed.path]))
    assert ("EX-DOM-001", "fail", "Wild .com") in findings


def test_receive_connectors_with_refs_and_lists() -> None:
    path = str(need_shared(EX / "Tests_DataCollection_E19_Exchange_GetReceiveConnector.xml"))
    (out,) = read_file(path).outputs
    assert out.cmdlet == "Get-ReceiveConnector" and len(out.objects) == 5
    frontend = next(o for o in out.objects if o.text("Name") == "Default Frontend WIN-CTD3L0RGEN4")
    b = frontend.get("Bindings")
    assert b is not None and b.multi and set(b.items) == {"[::]:25", "0.0.0.0:25"}
    assert frontend.text("PermissionGroups") == "AnonymousUsers, ExchangeServers, ExchangeLegacyServers"
    assert frontend.text("TarpitInterval") == "00:00:05"
    assert frontend.text("Identity") == "WIN-CTD3L0RGEN4\\Default Frontend WIN-CTD3L0RGEN4"
    # Without Edge/recipient-filter data the Internet-facing frontend connector cannot be judged.
    assert summary(ex_findings([path])) == {
        ("EX-RCPT-003", "inconclusive", "WIN-CTD3L0RGEN4\\Default Frontend WIN-CTD3L0RGEN4")
    }


def test_snippets_parse_and_infer_cmdlets() -> None:
    snippets = EX / "snippets"
    need_shared(snippets)
    seen = {}
    for p in sorted(snippets.glob("*.txt")):
        seen[p.name] = {o.cmdlet: len(o.objects) for o in read_file(str(p)).outputs}
    assert seen["1ask2_ex2007_postmaster.txt"]["Get-ReceiveConnector"] == 1
    assert seen["exchangeserverpro_internal-relay-ndr-550.txt"] == {"Get-AcceptedDomain": 2}
    assert seen["programming4us_get-remotedomain.txt"] == {"Get-RemoteDomain": 2}
    assert seen["recipientfilter_select_example.txt"] == {
        "Get-SenderFilterConfig": 1,
        "Get-RecipientFilterConfig": 1,
    }


def test_snippet_findings() -> None:
    need_shared(EX / "snippets")
    table = summary(ex_findings([str(EX / "snippets" / "exchangeserverpro_internal-relay-ndr-550.txt")]))
    assert ("EX-DOM-001", "fail", "companyb.com") in table
    # DomainName is not in that table view: the wildcard check cannot pass on it.
    assert ("EX-RELAY-001", "inconclusive", "companya.com") in table
    sel = summary(ex_findings([str(EX / "snippets" / "recipientfilter_select_example.txt")]))
    assert ("EX-NULL-001", "fail", "SenderFilterConfig") in sel
    assert ("EX-RCPT-001", "pass", "RecipientFilterConfig") in sel
    # ExternalMailEnabled was not selected in that paste: inconclusive, not pass.
    assert ("EX-RCPT-002", "inconclusive", "RecipientFilterConfig") in sel
