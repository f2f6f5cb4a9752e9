"""Markdown (GitHub-flavoured) for tickets, wikis and pull requests; rule ids appear literally.

Control characters from the report (a hostile server's reply) are written as visible escapes.
"""

from __future__ import annotations

import re

from auditor.model import ControlStatus, Finding, PlanStep, Report, Status
from auditor.render._options import RenderOptions
from auditor.render._common import visible
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
    a = v.report.assessment
    out = [f"# Backscatter audit: {esc(v.site)}", ""]
    if run.partial:
        out += ["> **PARTIAL REPORT** — the audit was interrupted; unmeasured checks are inconclusive.", ""]
    out += [f"**Verdict: {a.verdict.word}** — {esc(a.summary)}", ""]
    out += [f"Judged at `--fail-on {a.fail_on.value}`: exit code {a.exit_code}.", ""]
    out += ["| | |", "|---|---|"]
    out.append(f"| Site | {esc(v.site)} |")
    if run.scope:
        out.append(f"| Scope | {esc(', '.join(run.scope))} |")
    out.append(f"| Time | {esc(run.started)} – {esc(run.finished)} |")
    out.append(f"| Tool | {esc(run.tool)} {esc(run.tool_version)} |")
    out.append(f"| Command | {code('backscatter-audit ' + run.command)} |")
    out.append("")
    out += ["| " + " | ".join(s.value for s in STATUS_ORDER) + " |", "|" + "---:|" * len(STATUS_ORDER)]
    out.append("| " + " | ".join(str(a.by_status.get(s, 0)) for s in STATUS_ORDER) + " |")
    fails = a.failed_by_severity
    if any(fails.values()):
        out += [
            "",
            "Failed findings by severity: " + ", ".join(f"{n} {s.value}" for s, n in fails.items() if n),
        ]
    return out


def _step(n: str, step: PlanStep) -> list[str]:
    out = ["", f"**Step {n}** — answers:", ""]
    for r in step.findings:
        where = f" ({code(str(r.location))})" if r.location else ""
        out.append(f"- **{esc(r.rule_id)}** {esc(r.target)}{where}")
    if step.text:
        out += ["", *block(step.text)]
    if step.commands:
        out += ["", *block("\n".join(c.line for c in step.commands), "sh")]
        if step.to_fill:
            out += ["", "Fill in first: " + ", ".join(code(p) for p in step.to_fill)]
    return out


def _plan(v: ReportView) -> list[str]:
    out = ["", "## Remediation plan", ""]
    if not v.report.plan:
        return [*out, "No failing findings: nothing to fix."]
    out.append("Grouped by root cause: one change can answer several findings. Worst first, then quickest.")
    for n, item in enumerate(v.report.plan, 1):
        count, steps = len(item.findings), len(item.steps)
        out += ["", f"### {n}. {esc(item.title)}", ""]
        out.append(
            f"Severity **{item.severity.value}** · effort: {item.effort.value} · answers {count} "
            f"finding{'s' if count != 1 else ''} in {steps} step{'s' if steps != 1 else ''}."
        )
        for m, step in enumerate(item.steps, 1):
            out += _step(f"{n}.{m}", step)
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
    for r in v.report.compliance:
        rules = ", ".join(esc(rid) for rid in r.rule_ids) or "—"
        out.append(f"| {esc(r.source)} | {esc(r.requirement)} | {_STATUS_MARK[r.status]} | {rules} |")
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


def render(report: Report, options: RenderOptions | None = None) -> str:
    v = build_view(report)
    lines = _summary(v) + _plan(v) + _controls(v) + _findings(v) + _appendix(v)
    # Markdown itself writes no control character: any in the output came from the report.
    return visible("\n".join(lines) + "\n")


__all__ = ["FORMAT", "render"]
