"""SARIF 2.1.0 for code-scanning tools (GitHub code scanning, IDE viewers).

Mapping decisions (SARIF 2.1.0 §3.27):
- FAIL → ``kind: "fail"`` with ``level`` from the severity (critical/high → error, medium → warning,
  low/info → note).
- SUPPRESSED → the same, plus ``suppressions`` (status accepted, the reason as justification): the
  result stays visible and viewers hide it.
- INCONCLUSIVE → ``kind: "review"`` (a human must look); the spec requires ``level: "none"`` for any
  kind other than "fail".
- PASS and NOT-APPLICABLE produce no result (they are in the JSON report).
Every result carries a ``logicalLocation`` naming the target (MX address, DN, domain, file). Its
``physicalLocation`` is the finding's file and line when it has one, else the run's first input (the
site.toml of an audit), because GitHub code scanning rejects a whole SARIF file in which any result
lacks a physical location; a run without inputs leaves such results logical-only.
Every rule carries ``helpUri`` (its page, docs/rules/ID.md in the repository), the ``security`` tag
and ``security-severity`` (GitHub's critical/high/medium/low); the run carries
``automationDetails.id`` ``backscatter-audit/<command>/<scope>/<started>`` (category, then run).
``partialFingerprints`` hash (rule id, target), the same key baselines and ``report diff`` use, so
results are tracked across runs. The invocation's ``exitCode`` and the run's ``verdict`` property are
the report's assessment (so ``--fail-on`` is honoured); rule metadata is the report's own entries.
Control characters from the report are written as visible escapes in every text.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import Any

from auditor.model import Finding, Report, Severity, Status
from auditor.render._common import artifact_uri, family_of, rule_url, run_key, title_of, visible
from auditor.render._options import RenderOptions

FORMAT = "sarif"

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT = "backscatterAuditKey/v1"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


# GitHub code scanning reads ``security-severity`` (a number as a string) into its own scale:
# 9.0 and above critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low. Each of ours sits inside its
# band; info, which GitHub has no band for, is the bottom of "low".
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.1",
}


def level_of(severity: Severity) -> str:
    return _LEVEL[severity]


def project_uri() -> str | None:
    """The project's home page from the installed package metadata, if it declares one."""
    try:
        meta = metadata.metadata("backscatter-auditor")
    except metadata.PackageNotFoundError:
        return None
    for home in meta.get_all("Home-page") or []:
        return str(home)
    for entry in meta.get_all("Project-URL") or []:
        _label, _, url = str(entry).partition(",")
        if url.strip():
            return url.strip()
    return None


def fingerprint(f: Finding) -> str:
    return hashlib.sha256(f"{f.rule_id}\0{f.target}".encode()).hexdigest()[:32]


def _summary(doc: str, fallback: str) -> str:
    """The first prose paragraph of a rule page (skipping headings), else the fallback."""
    para: list[str] = []
    for line in doc.splitlines():
        text = line.strip()
        if text.startswith("#"):
            if para:
                break
            continue
        if not text:
            if para:
                break
            continue
        para.append(text)
    return " ".join(para) or fallback


def _rule(report: Report, rule_id: str, sample: Finding) -> dict[str, Any]:
    info = report.rule(rule_id)
    title = visible(title_of(report, sample))
    severity = info.severity if info else sample.severity
    doc = visible(info.doc if info else "")
    remediation = visible((info.remediation if info else "") or sample.remediation.as_text())
    help_md = doc or f"**{rule_id}: {title}**"
    if remediation and "## How to fix" not in doc:
        help_md += f"\n\n## Remediation\n\n{remediation}"
    references = (info.references if info else ()) or sample.references
    if references:
        help_md += "\n\n## Sources\n\n" + "\n".join(f"- {visible(r)}" for r in references)
    return {
        "id": rule_id,
        "name": "".join(w.capitalize() for w in rule_id.lower().split("-")),
        "shortDescription": {"text": title},
        "fullDescription": {"text": _summary(doc, title)},
        "help": {"text": help_md, "markdown": help_md},
        "helpUri": rule_url(rule_id),
        "defaultConfiguration": {"level": level_of(severity)},
        "properties": {
            # "security" makes GitHub show security-severity (critical/high/medium/low)
            "tags": ["security", "backscatter", family_of(report, rule_id)],
            "security-severity": SECURITY_SEVERITY[severity],
            "problem.severity": severity.value,
        },
    }


def _locations(f: Finding, anchor: str | None) -> dict[str, Any]:
    location: dict[str, Any] = {}
    loc = f.location
    if loc is not None:
        region: dict[str, int] = {}
        if loc.line:
            region["startLine"] = loc.line
            if loc.column:
                region["startColumn"] = loc.column
            if loc.end_line and loc.end_line >= loc.line:
                region["endLine"] = loc.end_line
        physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(loc.path)}}
        if region:
            physical["region"] = region
        location["physicalLocation"] = physical
    elif anchor:
        location["physicalLocation"] = {"artifactLocation": {"uri": artifact_uri(anchor)}}
    location["logicalLocations"] = [{"fullyQualifiedName": visible(f.target), "kind": "resource"}]
    return {"locations": [location]}


def _message(f: Finding) -> str:
    text = f"{f.target}: {f.message}" if f.target and f.target not in f.message else f.message
    return visible(text or f.rule_id)


def _result(f: Finding, index: int, anchor: str | None) -> dict[str, Any]:
    res: dict[str, Any] = {"ruleId": f.rule_id, "ruleIndex": index}
    if f.status is Status.INCONCLUSIVE:
        res["kind"] = "review"
        res["level"] = "none"
    else:
        res["kind"] = "fail"
        res["level"] = level_of(f.severity)
    res["message"] = {"text": _message(f)}
    res.update(_locations(f, anchor))
    res["partialFingerprints"] = {FINGERPRINT: fingerprint(f)}
    if f.status is Status.SUPPRESSED:
        res["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": visible(f.note or "")}
        ]
    props: dict[str, Any] = {
        "status": f.status.value,
        "severity": f.severity.value,
        "target": visible(f.target),
    }
    if f.evidence:
        props["evidence"] = [
            {
                "summary": visible(ev.summary),
                **({"transcript": [visible(t) for t in ev.transcript]} if ev.transcript else {}),
            }
            for ev in f.evidence
        ]
    if f.note and f.status is not Status.SUPPRESSED:
        props["note"] = visible(f.note)
    res["properties"] = props
    return res


def to_sarif(report: Report, information_uri: str | None = None) -> dict[str, Any]:
    """The SARIF log as plain data."""
    shown = [f for f in report.findings if f.status in (Status.FAIL, Status.SUPPRESSED, Status.INCONCLUSIVE)]
    samples: dict[str, Finding] = {}
    for f in report.findings:  # every rule that ran, so viewers can explain passes too
        samples.setdefault(f.rule_id, f)
    rule_ids = sorted(samples)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    driver: dict[str, Any] = {
        "name": report.run.tool,
        "version": report.run.tool_version,
        "semanticVersion": report.run.tool_version,
    }
    if information_uri:
        driver["informationUri"] = information_uri
    driver["rules"] = [_rule(report, rid, samples[rid]) for rid in rule_ids]
    a = report.assessment
    invocation: dict[str, Any] = {
        "executionSuccessful": not report.run.partial,
        "commandLine": visible(f"backscatter-audit {report.run.command}"),
        "exitCode": a.exit_code,
    }
    if report.run.started:
        invocation["startTimeUtc"] = _utc(report.run.started)
    if report.run.finished:
        invocation["endTimeUtc"] = _utc(report.run.finished)
    if report.run.partial or report.run.notes:
        notes = list(report.run.notes) or ["the audit was interrupted: partial report"]
        invocation["toolExecutionNotifications"] = [
            {"level": "warning" if report.run.partial else "note", "message": {"text": visible(n)}}
            for n in notes
        ]
    anchor = report.run.inputs[0] if report.run.inputs else None
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        # GitHub takes everything before the last "/" as the analysis category: one per command
        # and scope, so a new upload replaces that analysis only; the start time is the run id.
        "automationDetails": {"id": f"backscatter-audit/{run_key(report)}/{report.run.started or 'run'}"},
        "invocations": [invocation],
        "results": [_result(f, index[f.rule_id], anchor) for f in shown],
        "columnKind": "unicodeCodePoints",
        "properties": {
            "scope": list(report.run.scope),
            "inputs": list(report.run.inputs),
            "verdict": a.verdict.value,
            "failOn": a.fail_on.value,
            "summary": visible(a.summary),
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _utc(stamp: str) -> str:
    """SARIF wants ISO 8601 UTC with a 'Z'; reports store '+00:00'."""
    return stamp[:-6] + "Z" if stamp.endswith("+00:00") else stamp


def render_with(report: Report, information_uri: str | None = None) -> str:
    return json.dumps(to_sarif(report, information_uri), indent=2, ensure_ascii=False) + "\n"


def render(report: Report, options: RenderOptions | None = None) -> str:
    return render_with(report, project_uri())
