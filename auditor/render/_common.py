"""Helpers every renderer shares: rule metadata lookup, verdict, counts, families, locations.

Renderers must work on a report alone (``report`` re-renders a saved JSON file, possibly from a
build whose rule registry differs), so rule metadata is looked up through a :data:`RuleLookup`
that may return ``None``; the finding's own title is then the fallback.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote

from auditor.model import Finding, Report, Severity, Status


@dataclass(frozen=True)
class RuleMeta:
    """What a renderer wants to know about a rule beyond the finding."""

    id: str
    title: str
    family: str
    severity: Severity
    doc: str = ""
    remediation: str = ""
    references: tuple[str, ...] = ()


RuleLookup = Callable[[str], RuleMeta | None]


def no_rules(_rule_id: str) -> RuleMeta | None:
    """A lookup that knows no rule: renderers fall back to what the findings carry (golden tests)."""
    return None


def registry_lookup(rule_id: str) -> RuleMeta | None:
    """Rule metadata from the registry, or ``None`` when the rule is unknown to this build."""
    try:
        from auditor.rules import get

        r = get(rule_id)
    except Exception:  # a broken rule module must not stop a saved report from being re-rendered
        return None
    if r is None:
        return None
    return RuleMeta(
        id=r.id,
        title=r.title,
        family=r.family,
        severity=r.severity,
        doc=r.doc,
        remediation=r.remediation,
        references=r.references,
    )


# Family names by id prefix (rules.md §0.1), for rules this build does not know.
_FAMILY_BY_PREFIX = {
    "SMTP": "smtp",
    "DNS": "dns",
    "PF": "postfix",
    "EX": "exchange",
    "EXIM": "exim",
    "QMAIL": "qmail",
    "SENDMAIL": "sendmail",
    "CF": "content-filter",
    "AR": "autoresponder",
    "FWD": "forwarding",
    "LDAP": "directory",
    "NDR": "ndr",
}


def family_of(rule_id: str, rules: RuleLookup) -> str:
    meta = rules(rule_id)
    if meta is not None and meta.family:
        return meta.family
    return _FAMILY_BY_PREFIX.get(rule_id.split("-", 1)[0].upper(), "other")


def title_of(finding: Finding, rules: RuleLookup) -> str:
    meta = rules(finding.rule_id)
    return (meta.title if meta else "") or finding.title or finding.rule_id


def status_counts(findings: Iterable[Finding]) -> dict[Status, int]:
    counts = {s: 0 for s in Status}
    for f in findings:
        counts[f.status] += 1
    return counts


def severity_counts(findings: Iterable[Finding], status: Status = Status.FAIL) -> dict[Severity, int]:
    counts = {s: 0 for s in Severity}
    for f in findings:
        if f.status is status:
            counts[f.severity] += 1
    return counts


@dataclass(frozen=True)
class Verdict:
    """The one line a manager reads first."""

    word: str  # FAIL / INCONCLUSIVE / PASS / NOT ASSESSED
    css: str  # fail / inconclusive / pass / none
    sentence: str


def verdict(report: Report) -> Verdict:
    counts = status_counts(report.findings)
    fails = [f for f in report.findings if f.status is Status.FAIL]
    partial = " The audit was interrupted: this report is partial." if report.run.partial else ""
    if fails:
        worst = max(fails, key=lambda f: f.severity.rank).severity.value
        n = len(fails)
        return Verdict(
            "FAIL",
            "fail",
            f"{n} finding{'s' if n != 1 else ''} to fix (worst: {worst}): "
            f"this site can generate backscatter.{partial}",
        )
    if counts[Status.INCONCLUSIVE]:
        n = counts[Status.INCONCLUSIVE]
        return Verdict(
            "INCONCLUSIVE",
            "inconclusive",
            f"Nothing failed, but {n} check{'s' if n != 1 else ''} could not be measured.{partial}",
        )
    if counts[Status.PASS]:
        return Verdict("PASS", "pass", f"Every measured check passed.{partial}")
    return Verdict("NOT ASSESSED", "none", f"No check produced a result.{partial}")


def site_of(report: Report) -> str:
    """What was audited, in words: the scope, else the inputs, else the command."""
    if report.run.scope:
        return ", ".join(report.run.scope)
    if report.run.inputs:
        return ", ".join(report.run.inputs)
    return report.run.command


def artifact_uri(path: str) -> str:
    """A URI for a file path: relative paths stay relative (SARIF viewers resolve them against the
    checkout), absolute ones become ``file://`` URIs."""
    norm = posixpath.normpath(path.replace("\\", "/"))
    if norm.startswith("/"):
        return "file://" + quote(norm)
    return quote(norm)


def evidence_text(finding: Finding) -> str:
    """All evidence of a finding as plain text (JUnit bodies, CSV-free views)."""
    out: list[str] = []
    for ev in finding.evidence:
        head = ev.summary
        if ev.location is not None:
            head = f"{ev.location}: {head}" if head else str(ev.location)
        out.append(head)
        out.extend("  " + line for line in ev.transcript)
    return "\n".join(out)
