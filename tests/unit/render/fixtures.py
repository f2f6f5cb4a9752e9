"""The golden Report: fixed times, every status, several severities, file locations, SMTP
transcripts, a DN target, a suppressed finding and text that needs escaping in every format."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from auditor.model import (
    Evidence,
    Finding,
    Location,
    Observation,
    Remediation,
    Report,
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
        remediation=Remediation("Give the backup MX the recipient list (relay_recipient_maps)."),
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
        remediation=Remediation("postconf -e 'relay_recipient_maps = lmdb:/etc/postfix/relay_recipients'"),
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
        evidence=(Evidence("session", transcript=("S: 421 4.7.0 Try again later",)),),
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


def golden_report(*, partial: bool = False) -> Report:
    run = dataclasses.replace(RUN, partial=partial) if partial else RUN
    return Report(run=run, findings=FINDINGS, observations=OBSERVATIONS)
