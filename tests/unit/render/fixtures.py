"""The golden Report: fixed times, every status, several severities, file locations, SMTP
transcripts, a DN target, a suppressed finding, fix commands, text that needs escaping in every
format and a control sequence from a hostile server.

It is judged with a fixed catalog (:data:`CATALOG`), never the registry, so the golden files do not
change when rules are added or reworded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from auditor.judge import judge
from auditor.model import (
    Evidence,
    Finding,
    FixCommand,
    Location,
    Observation,
    Remediation,
    Report,
    RuleInfo,
    RunInfo,
    Severity,
    Status,
)


@dataclass(frozen=True)
class GoldenProbe(Observation):
    """A stand-in probe observation (the real ones belong to the collectors)."""

    kind = "test.golden-probe"

    verdict: str = ""
    replies: tuple[str, ...] = ()


RUN = RunInfo(
    tool="backscatter-audit",
    tool_version="0.1.0",
    started="2026-11-26T09:00:00+00:00",
    finished="2026-11-26T09:00:42+00:00",
    command="audit site.toml",
    scope=("example.com", "example.net"),
    inputs=("site.toml", "etc/postfix-backup"),
    notes=("probes ran from 198.51.100.7",),
)

MX2_TRANSCRIPT = (
    "S: 220 mx2.example.com ESMTP",
    "C: EHLO probe.example.org",
    "S: 250 mx2.example.com",
    "C: MAIL FROM:<bsa-probe@example.org>",
    "S: 250 2.1.0 Ok",
    "C: RCPT TO:<bsa-9f3k2q7z@example.com>",
    "S: 250 2.1.5 Ok",
    "C: QUIT",
)

RELOAD = FixCommand("postfix -c etc/postfix-backup reload", changes="reload", directory="etc/postfix-backup")

FINDINGS = (
    Finding(
        rule_id="SMTP-RCPT-002",
        status=Status.FAIL,
        severity=Severity.CRITICAL,
        target="mx2.example.com[192.0.2.25]",
        title="backup/secondary MX weaker than primary",
        message="backup MX accepts a random recipient that the primary MX rejects",
        evidence=(
            Evidence("RCPT of a random local part answered 250", transcript=MX2_TRANSCRIPT),
            Evidence("primary mx1.example.com[192.0.2.10] answered 550 5.1.1"),
        ),
        remediation=Remediation(
            "Give the backup MX the recipient list (relay_recipient_maps).",
            (RELOAD,),
        ),
    ),
    Finding(
        rule_id="PF-RCPT-003",
        status=Status.FAIL,
        severity=Severity.CRITICAL,
        target="etc/postfix-backup/main.cf",
        title="relay domains without a recipient list (gateway / backup MX)",
        message="relay_domains = example.com but relay_recipient_maps is empty",
        evidence=(
            Evidence(
                "relay_domains = example.com",
                location=Location("etc/postfix-backup/main.cf", 12),
                data={"parameter": "relay_domains"},
            ),
        ),
        remediation=Remediation(
            "Point relay_recipient_maps at a table of the valid addresses.",
            (
                FixCommand(
                    "postconf -c etc/postfix-backup -e 'relay_recipient_maps = lmdb:<table>'",
                    changes="main.cf relay_recipient_maps",
                    safe=False,
                    placeholders=("<table>",),
                    directory="etc/postfix-backup",
                ),
                RELOAD,
            ),
        ),
        references=("postconf(5) relay_recipient_maps",),
    ),
    Finding(
        rule_id="LDAP-SYNC-001",
        status=Status.FAIL,
        severity=Severity.HIGH,
        target="uid=old.user,ou=people,dc=example,dc=com",
        title="MTA recipient list vs directory drift",
        message="old.user@example.com is accepted at the edge but has no mailbox in the directory",
        evidence=(Evidence("DN uid=old.user,ou=people,dc=example,dc=com has no mail attribute"),),
    ),
    Finding(
        rule_id="DNS-NULLMX-001",
        status=Status.FAIL,
        severity=Severity.LOW,
        target="example.net",
        title="non-mail domains lack a null MX",
        message='no MX; A record only <web & "mail"> | forged senders bounce here',
        remediation=Remediation('example.net. IN MX 0 .\nexample.net. IN TXT "v=spf1 -all"'),
    ),
    Finding(
        rule_id="NDR-FMT-005",
        status=Status.FAIL,
        severity=Severity.INFO,
        target="ndr/mx2-0001.eml",
        title="Auto-Submitted: auto-generated on a DSN",
        message="the NDR carries Auto-Submitted: auto-generated",
        evidence=(Evidence("header line", location=Location("ndr/mx2-0001.eml", 7)),),
    ),
    Finding(
        rule_id="SMTP-NULL-001",
        status=Status.INCONCLUSIVE,
        severity=Severity.HIGH,
        target="mx1.example.com[192.0.2.10]",
        title="null reverse-path refused",
        message="421 at connect: could not test MAIL FROM:<>",
        evidence=(Evidence("session", transcript=("S: 421 4.7.0 Try again later\x1b[2J\x1b]0;pwned\x07",)),),
        remediation=Remediation("Re-run the probe later from an address the MX does not throttle."),
    ),
    Finding(
        rule_id="PF-DSN-001",
        status=Status.SUPPRESSED,
        severity=Severity.MEDIUM,
        target="etc/postfix-backup/main.cf",
        title="NDRs carry the full original message",
        message="bounce_size_limit = 50000 returns whole messages",
        evidence=(
            Evidence("default bounce_size_limit", location=Location("etc/postfix-backup/main.cf", 40)),
        ),
        note="accepted until the backup MX is retired",
    ),
    Finding(
        rule_id="SMTP-PM-001",
        status=Status.PASS,
        severity=Severity.MEDIUM,
        target="example.com",
        title="postmaster not accepted",
        message="postmaster@example.com accepted on every MX",
    ),
    Finding(
        rule_id="EX-RCPT-001",
        status=Status.NOT_APPLICABLE,
        severity=Severity.CRITICAL,
        target="(site)",
        title="Recipient Lookup disabled",
        message="no Exchange exports were given",
    ),
)

OBSERVATIONS: tuple[Observation, ...] = (
    GoldenProbe(target="mx2.example.com[192.0.2.25]", verdict="accepts-unknown", replies=("250 2.1.5 Ok",)),
    GoldenProbe(target="mx1.example.com[192.0.2.10]", verdict="rejects-unknown", replies=("550 5.1.1",)),
)


def _entry(rule_id: str, family: str, severity: Severity, cause: str = "", *controls: str) -> RuleInfo:
    return RuleInfo(
        id=rule_id,
        title=next(f.title for f in FINDINGS if f.rule_id == rule_id),
        family=family,
        severity=severity,
        cause=cause,
        controls=controls,
        remediation=f"The catalog's fix for {rule_id}.",
    )


CATALOG: dict[str, RuleInfo] = {
    r.id: r
    for r in (
        _entry("SMTP-RCPT-002", "smtp", Severity.CRITICAL, "relay-recipients", "RFC5321-6.1"),
        dataclasses.replace(
            _entry("PF-RCPT-003", "postfix", Severity.CRITICAL, "relay-recipients", "RFC5321-6.1"),
            doc="## What it flags\n\nRelay domains accepted without a list.\n\n## How to fix\n\nList them.",
            references=("postconf(5) relay_recipient_maps",),
        ),
        _entry("LDAP-SYNC-001", "directory", Severity.HIGH, "relay-recipients", "RFC5321-6.1"),
        _entry("DNS-NULLMX-001", "dns", Severity.LOW, "dns-hygiene", "RFC7505"),
        _entry("NDR-FMT-005", "ndr", Severity.INFO),
        _entry("SMTP-NULL-001", "smtp", Severity.HIGH, "null-sender-postmaster", "RFC1123-5.2.9"),
        _entry("PF-DSN-001", "postfix", Severity.MEDIUM, "ndr-payload", "RFC3464"),
        _entry("SMTP-PM-001", "smtp", Severity.MEDIUM, "null-sender-postmaster", "RFC5321-4.5.1"),
        _entry("EX-RCPT-001", "exchange", Severity.CRITICAL, "exchange-recipient-filter", "RFC5321-6.1"),
    )
}


def judged(findings: Iterable[Finding], run: RunInfo = RUN, **kw: Any) -> Report:
    """A report of ``findings`` as the judge builds it, with the fixed catalog (no registry)."""
    kw.setdefault("catalog", CATALOG)
    return judge(findings, kw.pop("observations", ()), run=run, registry=False, **kw)


def golden_report(*, partial: bool = False, fail_on: Severity = Severity.LOW) -> Report:
    run = dataclasses.replace(RUN, partial=partial) if partial else RUN
    return judged(FINDINGS, run, observations=OBSERVATIONS, fail_on=fail_on)


def hosting_report(domains: int = 2000) -> Report:
    """A hosting provider's audit: ``domains`` domains, each probed on its MX (with a transcript),
    some accepting unknown recipients, some unmeasured, the rest passing."""
    scope = tuple(f"customer{i:04d}.example" for i in range(domains))
    findings: list[Finding] = []
    for i, d in enumerate(scope):
        mx = f"mx{i % 3}.{d}[192.0.2.{i % 250 + 1}]"
        bad = i % 7 == 0
        findings.append(
            Finding(
                "SMTP-RCPT-002",
                Status.FAIL if bad else Status.PASS,
                Severity.CRITICAL,
                mx,
                "accepts a random recipient: 250 2.1.5 Ok" if bad else "rejects unknown recipients",
                evidence=(Evidence("RCPT of a random local part", transcript=MX2_TRANSCRIPT),),
            )
        )
        findings.append(
            Finding(
                "SMTP-NULL-001",
                Status.INCONCLUSIVE if i % 11 == 0 else Status.PASS,
                Severity.HIGH,
                mx,
                "421 at connect: could not test MAIL FROM:<>" if i % 11 == 0 else "accepts MAIL FROM:<>",
            )
        )
        findings.append(Finding("SMTP-PM-001", Status.PASS, Severity.MEDIUM, d, f"postmaster@{d} accepted"))
    run = dataclasses.replace(RUN, scope=scope, inputs=("site.toml",), command="audit --config site.toml")
    return judged(findings, run)
