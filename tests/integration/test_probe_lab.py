"""The probe engine against the real lab: Postfix instances in network namespaces, dnsmasq, greylisting.

One probe run of every in-scope lab domain (module fixture), then each test checks one property
against the expectations the lab publishes (auditor/lab/topology.py via LabInfo).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from auditor.collect.smtp import ProbeResult, ProbeSettings, probe_domains
from auditor.judge import evaluate
from auditor.model import Finding, Observation, Status
from auditor.observations.dns import DnsMx
from auditor.rules.smtp_verdicts import Verdict, classify
from tests.integration.conftest import assert_lab_routed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _settings(lab: Any, domains: tuple[str, ...] = (), **kw: Any) -> ProbeSettings:
    scope = domains or lab.scope()
    controls = tuple(
        a
        for d in lab.domains
        if d.domain in scope
        for a in d.valid_recipients
        if not a.startswith("postmaster@")
    )
    base: dict[str, Any] = {
        "nameservers": (str(lab.nameserver),),
        "controls": controls,
        "ehlo": "prober.lab.test",
        "mail_from": f"{lab.probe_prefix}probe@{lab.sink_domain}",
        "timeout": 10.0,
        "audit_timeout": 120.0,
        "session_delay": 0.2,
        "retry_after": float(lab.greylist_delay_s + 1),
    }
    base.update(kw)
    return ProbeSettings(**base)


@pytest.fixture(scope="module")
def run(lab: Any) -> dict[str, Any]:
    assert_lab_routed(lab)
    obs = probe_domains(list(lab.scope()), _settings(lab))
    return {"obs": obs, "findings": evaluate(obs)}


def probes(run: dict[str, Any]) -> dict[tuple[str, str], ProbeResult]:
    return {(o.domain, o.address): o for o in run["obs"] if isinstance(o, ProbeResult)}


def findings(run: dict[str, Any], rule_id: str) -> dict[str, Finding]:
    return {f.target: f for f in run["findings"] if f.rule_id == rule_id}


def test_every_expected_mx_address_is_probed_with_the_expected_verdict(lab: Any, run: dict[str, Any]) -> None:
    got = probes(run)
    expected = {(d.domain, mx.address): mx for d in lab.domains if d.in_scope for mx in d.mx}
    assert set(got) == set(expected)
    wrong = {
        k: classify(got[k]) for k, mx in expected.items() if classify(got[k]).verdict.value != mx.verdict
    }
    assert not wrong, wrong


def test_sloppy_backup_fails_rcpt_002_and_primary_passes(lab: Any, run: dict[str, Any]) -> None:
    got = probes(run)
    primary, backup = (got[("example.test", a)] for a in lab.mx_addresses("example.test"))
    assert (
        classify(primary).verdict is Verdict.REJECTS_UNKNOWN
        and classify(backup).verdict is Verdict.ACCEPTS_UNKNOWN
    )
    rcpt002 = findings(run, "SMTP-RCPT-002")
    assert rcpt002[backup.target].status is Status.FAIL
    assert rcpt002[primary.target].status is Status.PASS
    assert findings(run, "SMTP-RCPT-001")[backup.target].status is Status.FAIL
    # The real Postfix reply names the table that validated (show_user_unknown_table_name).
    unknown = primary.outcome("unknown")
    assert unknown is not None and unknown.reply is not None and unknown.reply.code == 550
    assert "relay recipient table" in unknown.reply.text


def test_greylisting_told_apart_from_persistent_4xx(lab: Any, run: dict[str, Any]) -> None:
    got = probes(run)
    grey = got[("grey.test", lab.mx_addresses("grey.test")[0])]
    unknown = grey.outcome("unknown")
    assert unknown is not None and unknown.reply is not None and unknown.reply.klass == 4
    assert unknown.retry is not None and unknown.retry.klass == 5
    assert classify(grey).verdict is Verdict.REJECTS_UNKNOWN and classify(grey).reason == "greylisted"
    assert findings(run, "SMTP-RCPT-003")[grey.target].status is Status.PASS
    for domain in ("softbounce.test", "tempfail.test"):
        pr = got[(domain, lab.mx_addresses(domain)[0])]
        assert classify(pr).verdict is Verdict.DEFERS_UNKNOWN and classify(pr).reason == "persistent-4xx", (
            classify(pr).reason,
            classify(pr).detail,
        )
        assert findings(run, "SMTP-RCPT-003")[pr.target].status is Status.FAIL


def test_null_sender_and_postmaster_accepted_by_strict_primary(lab: Any, run: dict[str, Any]) -> None:
    got = probes(run)
    primary = got[("example.test", lab.mx_addresses("example.test")[0])]
    null = primary.outcome("null-postmaster")
    assert null is not None and null.mail_reply is not None and null.mail_reply.code == 250
    assert null.reply is not None and null.reply.code == 250
    assert findings(run, "SMTP-NULL-001")[primary.target].status is Status.PASS
    assert findings(run, "SMTP-PM-001")[primary.target].status is Status.PASS


def test_dns_shapes_of_the_lab(lab: Any, run: dict[str, Any]) -> None:
    dns = {o.target: o for o in run["obs"] if isinstance(o, DnsMx)}
    assert dns["implicit.test"].implicit
    assert [h.preference for h in dns["example.test"].hosts] == [10, 20]
    if "nullmx.test" in dns:
        assert dns["nullmx.test"].null_mx
        assert not any(p.domain == "nullmx.test" for p in probes(run).values())


def test_no_postfix_error_limit_or_pipelining_complaint(lab: Any, run: dict[str, Any]) -> None:
    for pf in lab.postfix:
        log = Path(pf.maillog)
        assert log.exists(), f"{pf.name}: no maillog at {log}"
        text = log.read_text(errors="replace")
        assert "connect from" in text, f"{pf.name}: the maillog shows no SMTP session at all"
        assert "too many errors" not in text, pf.name
        assert "improper command pipelining" not in text, pf.name


def test_session_splitting_against_real_postfix(lab: Any) -> None:
    """With a budget of 2 refusals per session, the strict primary needs several sessions, same verdicts."""
    domains = ["example.test", "implicit.test"]
    settings = dataclasses.replace(
        _settings(lab, tuple(domains), retry_after=0.0), max_rejections_per_session=2
    )
    obs: list[Observation] = probe_domains(domains, settings)
    strict = [
        o for o in obs if isinstance(o, ProbeResult) and o.address == lab.mx_addresses("example.test")[0]
    ]
    assert {o.domain for o in strict} == set(domains)
    assert all(classify(o).verdict is Verdict.REJECTS_UNKNOWN for o in strict), [
        (classify(o).reason, classify(o).detail) for o in strict
    ]
    assert max(o.sessions for o in strict) >= 2
