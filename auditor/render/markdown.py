"""Markdown (GitHub-flavoured) for tickets, wikis and pull requests; rule ids appear literally."""

from __future__ import annotations

import re

from auditor.compliance import ControlStatus
from auditor.model import Finding, Report, Status
from auditor.render._common import RuleLookup, registry_lookup
from auditor.render._view import STATUS_HEADINGS, STATUS_ORDER, ReportView, build_view

FORMAT = "markdown"

# What can start emphasis, code, links, HTML or a table cell mid-line; "_" only at a word edge
# (GFM ignores intraword underscores, so relay_domains stays readable).
_SPECIAL = re.compile(r"([\\`*\[\]<>|~]|(?<!\w)_|_(?!\w))")
_STATUS_MARK = {
    ControlStatus.FAIL: "❌ fail",
    ControlStatus.INCONCLUSIVE: "⚠️ inconclusive",
    ControlStatus.ACCEPTED_RISK: "➖ accepted risk",
    ControlStatus.PASS: "✅ pass",
    ControlStatus.NOT_ASSESSED: "not assessed",
}


def esc(text: str) -> str:
    """Inline text: Markdown/HTML specials escaped, line breaks folded (tables need one line)."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def code(text: str) -> str:
    """Inline code that survives backticks inside."""
    text = " ".join(text.split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def block(text: str, lang: str = "") -> list[str]:
    """A fenced code block longer than any backtick run inside."""
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return [fence + lang, *text.splitlines(), fence]


def _summary(v: ReportView) -> list[str]:
    run = v.report.run
    out = [f"# Backscatter audit: {esc(v.site)}", ""]
    if run.partial:
        out += ["> **PARTIAL REPORT** — the audit was interrupted; unmeasured checks are inconclusive.", ""]
    out += [f"**Verdict: {v.verdict.word}** — {esc(v.verdict.sentence)}", ""]
    out += ["| | |", "|---|---|"]
    out.append(f"| Site | {esc(v.site)} |")
    if run.scope:
        out.append(f"| Scope | {esc(', '.join(run.scope))} |")
    out.append(f"| Time | {esc(run.started)} – {esc(run.finished)} |")
    out.append(f"| Tool | {esc(run.tool)} {esc(run.tool_version)} |")
    out.append(f"| Command | {code('backscatter-audit ' + run.command)} |")
    out.append("")
    out += ["| " + " | ".join(s.value for s in STATUS_ORDER) + " |", "|" + "---:|" * len(STATUS_ORDER)]
    out.append("| " + " | ".join(str(v.status_counts[s]) for s in STATUS_ORDER) + " |")
    fails = v.fail_severity_counts
    if any(fails.values()):
        out += [
            "",
            "Failed findings by severity: " + ", ".join(f"{n} {s.value}" for s, n in fails.items() if n),
        ]
    return out


def _plan(v: ReportView) -> list[str]:
    out = ["", "## Remediation plan", ""]
    if not v.plan:
        return [*out, "No failing findings: nothing to fix."]
    out.append("Grouped by root cause: one change can answer several findings. Worst first, then quickest.")
    for n, item in enumerate(v.plan, 1):
        c = item.cause
        out += ["", f"### {n}. {esc(c.title)}", ""]
        out.append(
            f"Severity **{item.severity.value}** · effort: {c.effort_label} · answers {len(item.findings)} "
        )
        out[-1] += "finding" + ("s" if len(item.findings) != 1 else "") + ":"
        out.append("")
        for f in item.findings:
            where = f" ({code(str(f.location))})" if f.location else ""
            out.append(f"- **{f.rule_id}** {esc(f.target)}{where}")
        out += ["", "Change:", "", *block(c.change)]
        if item.verify:
            out += ["", "Verify:", "", *block("\n".join(item.verify), "sh")]
    return out


def _controls(v: ReportView) -> list[str]:
    out = [
        "",
        "## Compliance",
        "",
        "| Control | Requirement | Status | Rules with findings |",
        "|---|---|---|---|",
    ]
    for r in v.controls:
        rules = ", ".join(dict.fromkeys(f.rule_id for f in r.findings)) or "—"
        out.append(
            f"| {esc(r.control.source)} | {esc(r.control.requirement)} | {_STATUS_MARK[r.status]} | {rules} |"
        )
    return out


def _finding(f: Finding, title: str) -> list[str]:
    out = ["", f"#### {f.rule_id} — {esc(title)}", ""]
    out.append(f"- **Status:** {f.status.value} · **Severity:** {f.severity.value}")
    out.append(f"- **Target:** {esc(f.target)}")
    if f.location:
        out.append(f"- **Where:** {code(str(f.location))}")
    out.append(f"- **Finding:** {esc(f.message)}")
    if f.note:
        out.append(f"- **Note:** {esc(f.note)}")
    for ev in f.evidence:
        where = f" ({code(str(ev.location))})" if ev.location else ""
        out.append(f"- **Evidence:** {esc(ev.summary)}{where}")
        if ev.transcript:
            out += ["", *["  " + line for line in block("\n".join(ev.transcript))]]
    if f.remediation and f.status in (Status.FAIL, Status.INCONCLUSIVE):
        out += ["", "How to fix:", "", *block(f.remediation.as_text())]
    return out


def _findings(v: ReportView) -> list[str]:
    out = ["", "## Findings"]
    for st, members in v.sections:
        out += ["", f"### {STATUS_HEADINGS[st]} ({len(members)})"]
        if st in (Status.PASS, Status.NOT_APPLICABLE):
            out += ["", "| Rule | Severity | Target | Message |", "|---|---|---|---|"]
            out += [
                f"| {f.rule_id} | {f.severity.value} | {esc(f.target)} | {esc(f.message)} |" for f in members
            ]
            continue
        for f in members:
            out += _finding(f, v.titles.get(f.rule_id, f.rule_id))
    if not v.sections:
        out += ["", "No findings."]
    return out


def _appendix(v: ReportView) -> list[str]:
    run = v.report.run
    out = ["", "## Observations", ""]
    if v.observations:
        out += ["| Kind | Target | Details |", "|---|---|---|"]
        out += [f"| {esc(o.kind)} | {esc(o.target)} | {esc(o.details)} |" for o in v.observations]
    else:
        out.append("No observations in this report.")
    out += ["", "## Run metadata", ""]
    out.append(f"- Command: {code('backscatter-audit ' + run.command)}")
    out.append(f"- Started: {esc(run.started)}; finished: {esc(run.finished)}")
    if run.inputs:
        out.append("- Inputs: " + ", ".join(code(i) for i in run.inputs))
    out.append(f"- Partial: {'yes' if run.partial else 'no'}")
    out += [f"- Note: {esc(n)}" for n in run.notes]
    return out


def render_with(report: Report, rules: RuleLookup = registry_lookup) -> str:
    v = build_view(report, rules)
    lines = _summary(v) + _plan(v) + _controls(v) + _findings(v) + _appendix(v)
    return "\n".join(lines) + "\n"


def render(report: Report) -> str:
    return render_with(report, registry_lookup)


__all__ = ["FORMAT", "render", "render_with"]
