"""SMTP rules on hand-made probe results: one table row per case, and never a pass without data."""

from __future__ import annotations

import pytest

from auditor.collect.smtp.scenarios import load
from auditor.model import Status
from auditor.observations.smtp import Expect, Outcome, ProbeResult, RcptOutcome, Reason, Reply, Role
from auditor.rules import Observations, load_all
from auditor.rules.smtp_verdicts import Verdict, classify
from auditor.serialize import from_jsonable, to_jsonable

# What the shipped probes/*.toml say for each role: the engine copies it into every outcome.
SCENARIOS = {s.role: s for s in load()}

OK = Reply(250, ("2.1.5 Ok",))
UNKNOWN = Reply(550, ("5.1.1 User unknown",))
GREY = Reply(450, ("4.7.1 Greylisted",))
BLOCK = Reply(554, ("5.7.1 Client host rejected",))
RELAY_DENIED = Reply(554, ("5.7.1 <x@relay.test>: Relay access denied",))


def pr(
    *outcomes: RcptOutcome, domain: str = "example.test", address: str = "198.18.0.11", primary: bool = True
) -> ProbeResult:
    return ProbeResult(
        target=f"{domain} mx[{address}]",
        domain=domain,
        mx_host="mx",
        address=address,
        primary=primary,
        outcomes=outcomes,
    )


def o(role: str, reply: Reply | None, retry: Reply | None = None, **kw: object) -> RcptOutcome:
    """One recorded recipient as the engine writes it (scenario, expect and feeds from probes/)."""
    sc = SCENARIOS.get(Role(role))
    base: dict[str, object] = {
        "scenario": sc.name if sc else "control",
        "expect": sc.expect if sc else Expect.ACCEPT,
        "feeds": sc.feeds if sc else (),
        "outcome": Outcome.ANSWERED if reply is not None else Outcome.NOT_ASKED,
        "retried": retry is not None,
        "retry_outcome": Outcome.ANSWERED if retry is not None else Outcome.NOT_ASKED,
    }
    if kw.get("error") == "mail-from-rejected":
        base["outcome"] = Outcome.MAIL_REFUSED
    if "error" in kw:
        kw["error"] = Reason(kw["error"])
    base.update(kw)
    return RcptOutcome(Role(role), f"{role}@example.test", reply=reply, retry=retry, **base)  # type: ignore[arg-type]


def run(rule_id: str, *obs: ProbeResult) -> list[Status]:
    r = load_all()[rule_id]
    return [f.status for f in r.check(Observations(obs), r)]


CASES = [
    ("SMTP-RCPT-001", pr(o("postmaster", OK), o("unknown", OK)), [Status.FAIL]),
    ("SMTP-RCPT-001", pr(o("postmaster", OK), o("unknown", UNKNOWN)), [Status.PASS]),
    ("SMTP-RCPT-001", pr(o("postmaster", BLOCK), o("unknown", BLOCK)), [Status.INCONCLUSIVE]),
    # A 5xx for the unknown address proves validation only if some valid address got a 2xx.
    (
        "SMTP-RCPT-001",
        pr(o("postmaster", None, error="timeout"), o("unknown", UNKNOWN)),
        [Status.INCONCLUSIVE],
    ),
    ("SMTP-RCPT-001", pr(o("postmaster", GREY, GREY), o("unknown", UNKNOWN)), [Status.INCONCLUSIVE]),
    ("SMTP-RCPT-001", pr(o("postmaster", OK), o("unknown", GREY)), [Status.INCONCLUSIVE]),
    ("SMTP-RCPT-001", pr(o("postmaster", OK), o("unknown", GREY, OK)), [Status.FAIL]),
    ("SMTP-RCPT-001", pr(o("postmaster", OK), o("unknown", None, error="timeout")), [Status.INCONCLUSIVE]),
    # The control is asked again on the retry too: a verdict needs it accepted in the same conditions.
    ("SMTP-RCPT-003", pr(o("postmaster", OK, OK), o("unknown", GREY, GREY)), [Status.FAIL]),
    ("SMTP-RCPT-003", pr(o("postmaster", OK), o("unknown", GREY, GREY)), [Status.INCONCLUSIVE]),
    # Issue 11: a persistent 4xx while the control got a 4xx too proves nothing (was a pass).
    ("SMTP-RCPT-001", pr(o("postmaster", GREY, GREY), o("unknown", GREY, GREY)), [Status.INCONCLUSIVE]),
    ("SMTP-RCPT-001", pr(o("postmaster", OK, OK), o("unknown", GREY, GREY)), [Status.PASS]),
    ("SMTP-RCPT-003", pr(o("postmaster", GREY, GREY), o("unknown", GREY, GREY)), [Status.INCONCLUSIVE]),
    ("SMTP-RCPT-003", pr(o("postmaster", GREY, OK), o("unknown", GREY, UNKNOWN)), [Status.PASS]),
    ("SMTP-RCPT-003", pr(o("postmaster", OK), o("unknown", GREY)), [Status.INCONCLUSIVE]),
    ("SMTP-RCPT-006", pr(o("postmaster", OK), o("unknown", UNKNOWN), o("subdomain", OK)), [Status.FAIL]),
    ("SMTP-RCPT-006", pr(o("postmaster", OK), o("unknown", UNKNOWN), o("subdomain", UNKNOWN)), [Status.PASS]),
    ("SMTP-RCPT-006", pr(o("postmaster", OK), o("unknown", UNKNOWN)), [Status.NOT_APPLICABLE]),
    ("SMTP-PM-001", pr(o("control", OK), o("postmaster", UNKNOWN), o("unknown", UNKNOWN)), [Status.FAIL]),
    ("SMTP-PM-001", pr(o("postmaster", OK), o("unknown", UNKNOWN)), [Status.PASS]),
    ("SMTP-RELAY-001", pr(o("postmaster", OK), o("unknown", UNKNOWN), o("relay", OK)), [Status.FAIL]),
    (
        "SMTP-RELAY-001",
        pr(o("postmaster", OK), o("unknown", UNKNOWN), o("relay", RELAY_DENIED)),
        [Status.PASS],
    ),
    (
        "SMTP-RELAY-001",
        pr(o("postmaster", BLOCK), o("unknown", BLOCK), o("relay", BLOCK)),
        [Status.INCONCLUSIVE],
    ),
    ("SMTP-RELAY-001", pr(o("postmaster", OK), o("unknown", UNKNOWN)), [Status.NOT_APPLICABLE]),
    (
        "SMTP-NULL-001",
        pr(
            o("null-postmaster", None, error="mail-from-rejected", mail_reply=BLOCK),
            o("postmaster", OK, mail_reply=OK),
            o("unknown", UNKNOWN),
        ),
        [Status.FAIL],
    ),
    (
        "SMTP-NULL-001",
        pr(
            o("null-postmaster", UNKNOWN, mail_reply=OK),
            o("postmaster", OK, mail_reply=OK),
            o("unknown", UNKNOWN),
        ),
        [Status.FAIL],
    ),
    (
        "SMTP-NULL-001",
        pr(o("null-postmaster", OK, mail_reply=OK), o("postmaster", OK), o("unknown", UNKNOWN)),
        [Status.PASS],
    ),
    ("SMTP-NULL-001", pr(o("postmaster", OK), o("unknown", UNKNOWN)), [Status.NOT_APPLICABLE]),
]


@pytest.mark.parametrize(
    ("rule_id", "result", "want"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_table(rule_id: str, result: ProbeResult, want: list[Status]) -> None:
    assert run(rule_id, result) == want


def test_weaker_backup_mx_fails_rcpt_002() -> None:
    primary = pr(o("postmaster", OK), o("unknown", UNKNOWN), address="198.18.0.11", primary=True)
    backup = pr(o("postmaster", OK), o("unknown", OK), address="198.18.0.12", primary=False)
    r = load_all()["SMTP-RCPT-002"]
    found = {f.target: f.status for f in r.check(Observations([primary, backup]), r)}
    assert found == {primary.target: Status.PASS, backup.target: Status.FAIL}


def test_rcpt_002_inconclusive_when_primary_unmeasured() -> None:
    primary = pr(o("postmaster", None, error="timeout"), o("unknown", None, error="timeout"), primary=True)
    backup = pr(o("postmaster", OK), o("unknown", UNKNOWN), address="198.18.0.12", primary=False)
    assert run("SMTP-RCPT-002", primary, backup) == [Status.INCONCLUSIVE, Status.INCONCLUSIVE]


def test_single_address_is_not_applicable_for_rcpt_002() -> None:
    assert run("SMTP-RCPT-002", pr(o("postmaster", OK), o("unknown", UNKNOWN))) == [Status.NOT_APPLICABLE]


def test_not_probed_is_never_pass() -> None:
    skipped = ProbeResult(target="x", domain="x", failure=Reason.EXTERNAL)
    for rid in (
        "SMTP-RCPT-001",
        "SMTP-RCPT-003",
        "SMTP-RCPT-006",
        "SMTP-NULL-001",
        "SMTP-PM-001",
        "SMTP-RELAY-001",
    ):
        assert run(rid, skipped) == [Status.NOT_APPLICABLE]


def test_probe_result_json_round_trip() -> None:
    result = pr(o("postmaster", OK, OK), o("unknown", GREY, UNKNOWN))
    back = from_jsonable(ProbeResult, to_jsonable(result))
    assert back == result
    assert classify(back).verdict is Verdict.REJECTS_UNKNOWN
    assert back.outcomes[1].role is Role.UNKNOWN and back.outcomes[1].feeds == SCENARIOS[Role.UNKNOWN].feeds


def test_every_rule_has_a_page() -> None:
    rules = load_all()
    for rid in (
        "SMTP-RCPT-001",
        "SMTP-RCPT-002",
        "SMTP-RCPT-003",
        "SMTP-RCPT-006",
        "SMTP-NULL-001",
        "SMTP-PM-001",
        "SMTP-RELAY-001",
        "DNS-MX-001",
        "DNS-NULLMX-001",
    ):
        doc = rules[rid].doc
        assert "## What it flags" in doc and "## Why it" in doc, rid
        assert rules[rid].remediation and "## How to fix" not in doc, rid  # the fix: the catalog entry


def test_rcpt_003_is_high_when_a_backup_defers_too() -> None:
    from auditor.model import Severity

    primary = pr(o("postmaster", OK, OK), o("unknown", GREY, GREY), primary=True)
    backup = pr(o("postmaster", OK, OK), o("unknown", GREY, GREY), address="198.18.0.12", primary=False)
    r = load_all()["SMTP-RCPT-003"]
    found = {f.target: f for f in r.check(Observations([primary, backup]), r)}
    assert found[primary.target].status is Status.FAIL and found[primary.target].severity is Severity.HIGH
    alone = {f.target: f for f in r.check(Observations([primary]), r)}
    assert alone[primary.target].severity is Severity.MEDIUM
