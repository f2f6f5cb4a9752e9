"""DNS rules on hand-made DnsMx observations."""

from __future__ import annotations

import pytest

from auditor.model import Observation, Severity, Status
from auditor.observations.dns import DnsMx, MxHost
from auditor.observations.smtp import Expect, Outcome, ProbeResult, RcptOutcome, Reply, Role
from auditor.rules import Observations, load_all

MX1 = MxHost("mx1.example.test", 10, ("198.18.0.11",))
EXT = MxHost("backup.provider.example", 20, ("192.0.2.7",), external=True)


def run(rule_id: str, *obs: Observation) -> list[tuple[Status, Severity]]:
    r = load_all()[rule_id]
    return [(f.status, f.severity) for f in r.check(Observations(obs), r)]


CASES = [
    ("DNS-MX-001", [DnsMx("example.test", hosts=(MX1,))], [(Status.PASS, Severity.INFO)]),
    ("DNS-MX-001", [DnsMx("example.test", hosts=(MX1, EXT))], [(Status.FAIL, Severity.MEDIUM)]),
    ("DNS-MX-001", [DnsMx("example.test", status="timeout")], [(Status.INCONCLUSIVE, Severity.HIGH)]),
    ("DNS-MX-001", [DnsMx("example.test", status="servfail")], [(Status.INCONCLUSIVE, Severity.HIGH)]),
    # Nothing measured is never green: a domain that does not exist, or has no path at all.
    ("DNS-MX-001", [DnsMx("example.test", status="nxdomain")], [(Status.FAIL, Severity.HIGH)]),
    ("DNS-MX-001", [DnsMx("example.test", status="nodata")], [(Status.FAIL, Severity.HIGH)]),
    ("DNS-MX-001", [DnsMx("example.test", overridden=True)], [(Status.FAIL, Severity.HIGH)]),
    (
        "DNS-MX-001",
        [DnsMx("i.test", status="nodata", implicit=True, hosts=(MX1,))],
        [(Status.PASS, Severity.INFO)],
    ),
    (
        "DNS-MX-001",
        [DnsMx("a.test", hosts=(MxHost("m.a.test", 10, ("1.2.3.4",), cname="r.a.test"),))],
        [(Status.FAIL, Severity.LOW)],
    ),
    ("DNS-NULLMX-001", [DnsMx("parked.test", null_mx=True, non_mail=True)], [(Status.PASS, Severity.LOW)]),
    (
        "DNS-NULLMX-001",
        [DnsMx("parked.test", status="nodata", implicit=True, hosts=(MX1,), non_mail=True)],
        [(Status.FAIL, Severity.LOW)],
    ),
    ("DNS-NULLMX-001", [DnsMx("parked.test", status="nodata", non_mail=True)], [(Status.FAIL, Severity.LOW)]),
    (
        "DNS-NULLMX-001",
        [DnsMx("parked.test", status="timeout", non_mail=True)],
        [(Status.INCONCLUSIVE, Severity.LOW)],
    ),
    # A normal mail domain without MX is not judged by the null-MX rule.
    ("DNS-NULLMX-001", [DnsMx("mail.test", status="nodata")], []),
    (
        "DNS-NULLMX-002",
        [DnsMx("bad.test", malformed_null_mx=True, hosts=(MX1,))],
        [(Status.FAIL, Severity.LOW)],
    ),
]


@pytest.mark.parametrize(("rule_id", "obs", "want"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_dns_rule_table(rule_id: str, obs: list[Observation], want: list[tuple[Status, Severity]]) -> None:
    assert run(rule_id, *obs) == want


def _answered(role: Role, code: int, expect: Expect) -> RcptOutcome:
    return RcptOutcome(
        role, f"{role}@example.test", expect=expect, outcome=Outcome.ANSWERED, reply=Reply(code)
    )


def test_external_mx_cleared_by_a_validating_probe() -> None:
    control = _answered(Role.POSTMASTER, 250, Expect.ACCEPT)
    mx = DnsMx("example.test", hosts=(MX1, EXT))
    probe = ProbeResult(
        target="t",
        domain="example.test",
        mx_host=EXT.name,
        address="192.0.2.7",
        outcomes=(control, _answered(Role.UNKNOWN, 550, Expect.REFUSE)),
    )
    assert run("DNS-MX-001", mx, probe) == [(Status.PASS, Severity.INFO)]
    accepting = ProbeResult(
        target="t",
        domain="example.test",
        mx_host=EXT.name,
        address="192.0.2.7",
        outcomes=(control, _answered(Role.UNKNOWN, 250, Expect.REFUSE)),
    )
    assert run("DNS-MX-001", mx, accepting) == [(Status.FAIL, Severity.MEDIUM)]


def test_unprobed_external_mx_names_the_consent_switch() -> None:
    alias = MxHost("mx.example.test", 10, ("192.0.2.9",), cname="mx.provider.example", external=True)
    skipped = ProbeResult(target="t", domain="example.test", mx_host=alias.name, address="")
    r = load_all()["DNS-MX-001"]
    (f,) = r.check(Observations([DnsMx("example.test", hosts=(MX1, alias)), skipped]), r)
    assert f.status is Status.FAIL
    assert "CNAME to mx.provider.example" in f.message
    assert "--allow-external-mx" in f.message and "probe.allow_external_mx" in f.message
