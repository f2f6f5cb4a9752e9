"""The CI formats: SARIF for GitHub code scanning (security-severity, security tag, helpUri,
automationDetails), GitHub workflow annotations with the runner's escaping, GitLab code quality."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from auditor.model import Evidence, Finding, Location, Severity, Status
from auditor.render import github, gitlab, render, sarif
from auditor.render._common import PROJECT_URL, rule_url, run_key
from tests.unit.render.fixtures import RUN, golden_report, hosting_report, judged
from tests.unit.render.test_schema_sarif_junit import _sarif_validator

_BANDS = {"critical": (9.0, 10.0), "high": (7.0, 8.9), "medium": (4.0, 6.9), "low": (0.1, 3.9)}


def test_every_sarif_rule_carries_github_security_metadata() -> None:
    log = sarif.to_sarif(golden_report())
    _sarif_validator().validate(log)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules
    for r in rules:
        props = r["properties"]
        assert "security" in props["tags"]
        score = float(props["security-severity"])
        assert isinstance(props["security-severity"], str)
        band = "low" if props["problem.severity"] == "info" else props["problem.severity"]
        lo, hi = _BANDS[band]
        assert lo <= score <= hi, (r["id"], score)
        assert r["defaultConfiguration"]["level"] in ("error", "warning", "note")
        assert r["helpUri"] == f"{PROJECT_URL}/blob/main/docs/rules/{r['id']}.md"


def test_sarif_automation_id_is_category_then_run() -> None:
    run = sarif.to_sarif(golden_report())["runs"][0]
    ident = run["automationDetails"]["id"]
    assert ident == "backscatter-audit/audit/example.com,example.net/2026-11-26T09:00:00+00:00"
    lint = judged((), dataclasses.replace(RUN, command="lint postfix /etc/postfix", scope=()))
    assert run_key(lint) == "lint-postfix/site.toml,postfix-backup"
    big = run_key(hosting_report(200))
    assert len(big) < 100 and big.startswith("audit/customer0000.example+199-")


def test_github_annotations_and_escaping() -> None:
    out = github.render(golden_report())
    lines = out.splitlines()
    assert lines[0].startswith(
        "::error file=etc/postfix-backup/main.cf,line=12,title=PF-RCPT-003 critical%3A "
    )
    assert any(line.startswith("::warning title=SMTP-NULL-001 could not be measured") for line in lines)
    assert any(line.startswith("::notice file=ndr/mx2-0001.eml,line=7,") for line in lines)
    assert not any("PF-DSN-001" in line for line in lines)  # suppressed: no annotation
    assert lines[-1].startswith("backscatter-audit: FAIL")
    assert github.escape_data("100%\r\nx") == "100%25%0D%0Ax"
    assert github.escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_github_report_text_cannot_inject_a_command() -> None:
    evil = Finding(
        "SMTP-RCPT-002",
        Status.FAIL,
        Severity.CRITICAL,
        "mx,title=x::y",
        "250 ok\n::set-env name=PATH::/tmp\r\n::add-mask::x",
        evidence=(Evidence("e", location=Location("a,b:c.cf", 3)),),
    )
    out = github.render(judged((evil,)))
    assert len(out.splitlines()) == 2  # the annotation and the verdict: no smuggled line
    head, _, message = out.splitlines()[0].partition("::")[2].partition("::")
    assert head.startswith("error file=a%2Cb%3Ac.cf,line=3,title=")
    assert "%0A::set-env" in message and "\n" not in message


def test_gitlab_code_quality_fields() -> None:
    issues = json.loads(gitlab.render(golden_report()))
    assert {i["check_name"] for i in issues} == {
        "PF-RCPT-003", "SMTP-RCPT-002", "LDAP-SYNC-001", "DNS-NULLMX-001", "NDR-FMT-005", "SMTP-NULL-001"
    }  # fmt: skip
    for i in issues:
        assert set(i) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert i["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert i["location"]["path"] and i["location"]["lines"]["begin"] >= 1
        assert re.fullmatch(r"[0-9a-f]{32}", i["fingerprint"])
    by = {i["check_name"]: i for i in issues}
    assert by["PF-RCPT-003"]["location"] == {"path": "etc/postfix-backup/main.cf", "lines": {"begin": 12}}
    assert by["PF-RCPT-003"]["severity"] == "blocker"
    assert by["SMTP-RCPT-002"]["location"]["path"] == "site.toml"  # the run's first input
    assert (
        by["SMTP-NULL-001"]["severity"] == "info"
        and "could not be measured" in by["SMTP-NULL-001"]["description"]
    )
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    # stable across runs: the fingerprint is the finding's identity, not its position
    again = json.loads(gitlab.render(judged(tuple(reversed(golden_report().findings)))))
    assert {i["fingerprint"] for i in again} == {i["fingerprint"] for i in issues}


@pytest.mark.parametrize("fmt", ["github", "gitlab", "sarif", "junit", "json", "csv"])
def test_machine_formats_never_carry_colour(fmt: str) -> None:
    from auditor.render._options import RenderOptions

    assert "\033[" not in render(golden_report(), fmt, RenderOptions(color=True))


def test_rule_url() -> None:
    assert rule_url("PF-RCPT-003").endswith("/docs/rules/PF-RCPT-003.md")
