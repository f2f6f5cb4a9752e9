"""The directory rules on hand-made observations: each fires on its fact, passes without, and says
inconclusive (never pass) when the directory read did not finish."""

from __future__ import annotations

from dataclasses import replace

import pytest

from auditor.judge import evaluate
from auditor.model import Finding, Status
from auditor.observations.directory import (
    AddressRef,
    DirectoryRecipients,
    DisabledEntry,
    DuplicateAddress,
    RestrictedGroup,
)
from auditor.observations.postfix import LdapMapCheck, LookupTable, ParamValue, PostfixConfig
from auditor.rules import load_all

CLEAN = DirectoryRecipients(
    target="ldaps://dir.example.test",
    profile="ad",
    base="dc=example,dc=test",
    accepted_domains=("example.test",),
    complete=True,
    entries=3,
    pages=1,
    recipients={"example.test": {"a@example.test": "cn=a", "b@example.test": "cn=b"}},
    disabled=(DisabledEntry("cn=shared", 514, ("info@example.test",), 4, "shared mailbox"),),
)
PARTIAL = replace(CLEAN, complete=False, error="size limit exceeded after 2 entries")

DEFECTS = {
    "LDAP-ADDR-002": {"catch_alls": (AddressRef("@example.test", "cn=b", "proxyAddresses"),)},
    "LDAP-ACCT-001": {"disabled": (DisabledEntry("cn=leaver", 514, ("l@example.test",), 1, ""),)},
    "LDAP-DUP-001": {"duplicates": (DuplicateAddress("a@example.test", ("cn=a", "cn=a2")),)},
    "LDAP-DOM-001": {"out_of_domain": (AddressRef("a@old.test", "cn=a", "proxyAddresses"),)},
    "LDAP-DOM-002": {"accepted_domains": ("example.test", "empty.test"), "empty_domains": ("empty.test",)},
    "LDAP-GRP-001": {"restricted_groups": (RestrictedGroup("cn=g", ("g@example.test",), "x=TRUE"),)},
}


def _run(rule_id: str, *obs: object) -> list[Finding]:
    r = load_all()[rule_id]
    return [f for f in evaluate(obs, [r])]  # type: ignore[arg-type]


@pytest.mark.parametrize("rule_id", sorted(DEFECTS))
def test_rule_fires_on_its_defect_only(rule_id: str) -> None:
    bad = replace(CLEAN, **DEFECTS[rule_id])  # type: ignore[arg-type]
    assert {f.status for f in _run(rule_id, bad)} == {Status.FAIL}
    assert {f.status for f in _run(rule_id, CLEAN)} == {Status.PASS}
    # other rules do not react to this defect
    for other in DEFECTS:
        if other != rule_id:
            assert Status.FAIL not in {f.status for f in _run(other, bad)}, other


@pytest.mark.parametrize("rule_id", [*sorted(DEFECTS), "LDAP-ADDR-001"])
def test_partial_read_is_never_a_pass(rule_id: str) -> None:
    statuses = {f.status for f in _run(rule_id, PARTIAL)}
    assert statuses == {Status.INCONCLUSIVE}


def test_defect_in_partial_read_still_fails() -> None:
    bad = replace(PARTIAL, **DEFECTS["LDAP-ADDR-002"])  # type: ignore[arg-type]
    assert {f.status for f in _run("LDAP-ADDR-002", bad)} == {Status.FAIL}


def test_read_failure_is_high_inconclusive() -> None:
    down = DirectoryRecipients(target="ldap://x", complete=False, error="no LDAP server answered: refused")
    (f,) = _run("LDAP-ADDR-001", down)
    assert f.status is Status.INCONCLUSIVE and f.severity.value == "high" and "refused" in f.message


def test_openldap_profile_has_no_disabled_flag() -> None:
    ol = replace(CLEAN, profile="openldap")
    assert {f.status for f in _run("LDAP-ACCT-001", ol)} == {Status.NOT_APPLICABLE}
    assert {f.status for f in _run("LDAP-GRP-001", ol)} == {Status.NOT_APPLICABLE}


def test_domain_rules_need_accepted_domains() -> None:
    nodom = replace(CLEAN, accepted_domains=())
    assert {f.status for f in _run("LDAP-DOM-001", nodom)} == {Status.NOT_APPLICABLE}
    assert {f.status for f in _run("LDAP-DOM-002", nodom)} == {Status.NOT_APPLICABLE}


def _check(sample: str, result: tuple[str, ...] | None, **kw: object) -> LdapMapCheck:
    return LdapMapCheck(
        target="ldap:/m.cf",
        map_path="/m.cf",
        sample=sample,
        address=f"{sample}@x",
        queried=True,
        result=result,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("checks", "statuses", "severity"),
    [
        ([_check("known", ("k",)), _check("alias", ("k",)), _check("random", None)], {Status.PASS}, None),
        ([_check("known", ("k",)), _check("random", ("k",))], {Status.FAIL}, "high"),
        (
            [_check("known", ("k",)), _check("random", None), _check("catchall", ("k",))],
            {Status.FAIL},
            "high",
        ),
        (
            [_check("known", ("k",)), _check("random", None), _check("metachar", ("x",))],
            {Status.FAIL},
            "high",
        ),
        ([_check("known", None), _check("random", None)], {Status.FAIL}, "medium"),
        (
            [_check("known", ("k",)), _check("random", None, error="bind rejected")],
            {Status.INCONCLUSIVE},
            None,
        ),
        ([_check("random", None)], {Status.INCONCLUSIVE}, None),  # no known sample: cannot judge
        # postmap is the truth when it ran
        ([_check("known", ("k",)), _check("random", None, postmap_result="k")], {Status.FAIL}, "high"),
        (
            [_check("known", ("k",), postmap_result="k"), _check("random", ("z",), postmap_result=None)],
            {Status.INCONCLUSIVE},
            None,
        ),
    ],
)
def test_map_drift(checks: list[LdapMapCheck], statuses: set[Status], severity: str | None) -> None:
    found = _run("LDAP-SYNC-001", *checks)
    assert {f.status for f in found} == statuses
    if severity:
        assert {f.severity.value for f in found if f.status is Status.FAIL} == {severity}


def _cfg(value: str, tables: tuple[LookupTable, ...] = ()) -> PostfixConfig:
    p = ParamValue("relay_recipient_maps", value, value, "main.cf")
    return PostfixConfig(target="/etc/postfix", params={"relay_recipient_maps": p}, tables=tables)


@pytest.mark.parametrize(
    ("value", "tables", "status"),
    [
        ("ldap:/etc/postfix/ldap.cf, static:OK", (), Status.FAIL),
        ("proxy:ldap:/etc/postfix/ldap.cf static:{OK}", (), Status.FAIL),
        (
            "mysql:/etc/postfix/m.cf, pcre:/etc/postfix/all.pcre",
            (LookupTable("pcre:/etc/postfix/all.pcre", "pcre", "/etc/postfix/all.pcre", random_lookup="OK"),),
            Status.FAIL,
        ),
        (
            "ldap:/etc/postfix/ldap.cf, hash:/etc/postfix/extra",
            (LookupTable("hash:/etc/postfix/extra", "hash", "/etc/postfix/extra", random_lookup=None),),
            Status.PASS,
        ),
        (
            "static:OK, ldap:/etc/postfix/ldap.cf",
            (),
            Status.PASS,
        ),  # fallback BEFORE is PF-RCPT-004's business
        ("hash:/etc/postfix/relay_recipients", (), Status.NOT_APPLICABLE),
        ("ldap:/etc/postfix/{{ ldap_file }}, static:OK", (), Status.INCONCLUSIVE),
    ],
)
def test_permissive_fallback(value: str, tables: tuple[LookupTable, ...], status: Status) -> None:
    assert {f.status for f in _run("LDAP-QUERY-001", _cfg(value, tables))} == {status}


def test_every_directory_rule_has_a_page() -> None:
    rules = [r for r in load_all().values() if r.family == "directory"]
    assert len(rules) >= 9
    for r in rules:
        assert "## What it flags" in r.doc and r.remediation, r.id
        assert "## How to fix" not in r.doc, r.id  # the fix is written once, in the decorator


def test_observations_survive_the_json_round_trip() -> None:
    import json

    from auditor.judge import build_report
    from auditor.serialize import report_from_dict, report_to_json

    bad = replace(CLEAN, **DEFECTS["LDAP-ACCT-001"], **DEFECTS["LDAP-ADDR-002"])  # type: ignore[arg-type]
    check = _check("random", ("x@y",), postmap_result=None, postmap_error="")
    report = build_report([bad, check], command="directory", started="2026-01-01T00:00:00+00:00")
    loaded = report_from_dict(json.loads(report_to_json(report)))
    assert loaded.observations == report.observations
    # judged offline from the saved observations: the same findings
    assert [(f.rule_id, f.status, f.target) for f in evaluate(loaded.observations)] == [
        (f.rule_id, f.status, f.target) for f in report.findings
    ]


def _probe(*answers: tuple[str, int | None], verdict: str = "rejects-unknown") -> object:
    from auditor.observations.smtp import Expect, Outcome, ProbeResult, RcptOutcome, Reason, Reply, Role

    outcomes = tuple(
        RcptOutcome(
            role=Role.CONTROL,
            address=a,
            expect=Expect.ACCEPT,
            outcome=Outcome.ANSWERED if code else Outcome.NOT_ASKED,
            reply=Reply(code) if code else None,
            error=None if code else Reason.TIMEOUT,
        )
        for a, code in answers
    )
    if verdict == "rejects-unknown":  # the random recipient refused: the MX was measured
        unknown = Reply(550, ("5.1.1 User unknown",))
        outcomes += (RcptOutcome(Role.UNKNOWN, "x@example.test", outcome=Outcome.ANSWERED, reply=unknown),)
    return ProbeResult(
        target="example.test",
        domain="example.test",
        mx_host="mx2.example.test",
        address="192.0.2.2",
        outcomes=outcomes,
    )


@pytest.mark.parametrize(
    ("answers", "status"),
    [
        ((("a@example.test", 250), ("b@example.test", 250)), Status.PASS),
        ((("a@example.test", 250), ("b@example.test", 550)), Status.FAIL),  # the stale backup MX
        ((("a@example.test", 250), ("b@example.test", None)), Status.INCONCLUSIVE),
        ((("a@example.test", 450),), Status.INCONCLUSIVE),
    ],
)
def test_probe_controls_from_the_directory(
    answers: tuple[tuple[str, int | None], ...], status: Status
) -> None:
    found = _run("LDAP-SYNC-001", CLEAN, _probe(*answers))
    assert {f.status for f in found} == {status}
    assert all("mx2.example.test" in f.target for f in found)


def test_unmeasurable_mx_is_not_called_stale() -> None:
    """Every RCPT refused (our client blocklisted): the probe verdict is inconclusive, so is the sync."""
    answers = (("a@example.test", 554), ("b@example.test", 554))
    found = _run("LDAP-SYNC-001", CLEAN, _probe(*answers, verdict="inconclusive"))
    assert {f.status for f in found} == {Status.INCONCLUSIVE}


def test_probe_without_directory_addresses_is_not_judged() -> None:
    assert _run("LDAP-SYNC-001", _probe(("a@example.test", 550))) == []  # no directory in the run
    assert _run("LDAP-SYNC-001", CLEAN, _probe(("stranger@example.test", 550))) == []


def test_address_set_leaves_disabled_accounts_out_and_says_so() -> None:
    bad = replace(CLEAN, **DEFECTS["LDAP-ACCT-001"])  # type: ignore[arg-type]
    (f,) = _run("LDAP-ADDR-001", bad)
    assert f.status is Status.PASS and f.message.startswith("2 recipient addresses")
    assert "1 address(es) of disabled accounts left out" in f.message
    (g,) = _run("LDAP-ADDR-001", CLEAN)  # the shared mailbox is exempt: nothing left out
    assert "left out" not in g.message
