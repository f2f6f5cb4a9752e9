"""Markdown (GitHub-flavoured) for tickets, wikis and pull requests; rule ids appear literally.

It opens with the verdict, a table of contents and one row per domain (worst status, failures,
inconclusive), like a hosting provider's dashboard; evidence and transcripts are collapsed
(``<details>``). A GitHub comment holds at most 65,536 characters: a report longer than
:data:`LIMIT` is written as a summary view that says it is cut short and where the full report is.
Control characters from the report (a hostile server's reply) are written as visible escapes.
"""

from __future__ import annotations

import html
import re

from auditor.model import ControlStatus, Finding, PlanStep, Report, Status
from auditor.render._common import visible
from auditor.render._options import DEFAULT, RenderOptions
from auditor.render._view import STATUS_HEADINGS, STATUS_ORDER, DomainRow, ReportView, build_view

FORMAT = "markdown"

GITHUB_COMMENT_MAX = 65_536
# Headroom under GitHub's limit for what a CI job wraps around the report (a heading, a link) and
# for characters GitHub counts twice (UTF-16 surrogate pairs).
LIMIT = GITHUB_COMMENT_MAX - 4_096
SECTIONS = (
    ("Domains", "domains"),
    ("Remediation plan", "remediation-plan"),
    ("Compliance", "compliance"),
    ("Findings", "findings"),
    ("Observations", "observations"),
    ("Run metadata", "run-metadata"),
)
_DOMAIN_MARK = {"fail": "❌ fail", "inconclusive": "⚠️ inconclusive", "pass": "✅ pass"}

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


def _head(v: ReportView) -> list[str]:
    run = v.report.run
    a = v.report.assessment
    out = [f"# Backscatter audit: {esc(v.title)}", ""]
    if run.partial:
        out += ["> **PARTIAL REPORT** — the audit was interrupted; unmeasured checks are inconclusive.", ""]
    out += [f"**Verdict: {a.verdict.word}** — {esc(a.summary)}", ""]
    out += [f"Judged at `--fail-on {a.fail_on.value}`: exit code {a.exit_code}.", ""]
    return out


def _toc() -> list[str]:
    return ["Contents: " + " · ".join(f"[{name}](#{anchor})" for name, anchor in SECTIONS), ""]


def _domain_line(r: DomainRow) -> str:
    worst = _DOMAIN_MARK.get(r.css, esc(r.word))
    sev = r.worst_severity.value if r.worst_severity else "—"
    return f"| {esc(r.domain)} | {worst} | {r.fails} | {r.inconclusive} | {sev} |"


_DOMAIN_HEAD = ["| Domain | Worst | Failed | Inconclusive | Worst failure |", "|---|---|---:|---:|---|"]


def _domains(v: ReportView) -> list[str]:
    out = ["## Domains", ""]
    if not v.domains:
        return [*out, "No domains in scope: the findings are about configuration files and exports."]
    return [*out, *_DOMAIN_HEAD, *(_domain_line(r) for r in v.domains)]


def _summary(v: ReportView) -> list[str]:
    run = v.report.run
    a = v.report.assessment
    out = ["", "| | |", "|---|---|"]
    out.append(f"| Site | {esc(v.title)} |")
    if run.scope:
        out.append(f"| Scope | {len(run.scope)} domain{'s' if len(run.scope) != 1 else ''} |")
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
    out = ["", "## Remediation plan", ""]  # (the heading's anchor is #remediation-plan)
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


def _finding(f: Finding, title: str, evidence: bool = True) -> list[str]:
    out = ["", f"#### {f.rule_id} — {esc(title)}", ""]
    out.append(f"- **Status:** {f.status.value} · **Severity:** {f.severity.value}")
    out.append(f"- **Target:** {esc(f.target)}")
    if f.location:
        out.append(f"- **Where:** {code(str(f.location))}")
    out.append(f"- **Finding:** {esc(f.message)}")
    if f.note:
        out.append(f"- **Note:** {esc(f.note)}")
    if f.evidence and evidence:
        n = len(f.evidence)
        first = f.evidence[0].summary
        label = f"Evidence ({n}): {first}" if n > 1 else f"Evidence: {first}"
        out += ["", "<details>", f"<summary>{html.escape(' '.join(label.split()))}</summary>", ""]
        for ev in f.evidence:
            where = f" ({code(str(ev.location))})" if ev.location else ""
            out.append(f"- {esc(ev.summary)}{where}")
            if ev.transcript:
                out += ["", *["  " + line for line in block("\n".join(ev.transcript))], ""]
        out += ["", "</details>"]
    if f.remediation and f.status in (Status.FAIL, Status.INCONCLUSIVE):
        out += ["", "How to fix:", "", *block(f.remediation.as_text())]
    return out


def _findings(v: ReportView, level: int = 0) -> list[str]:
    out = ["", "## Findings"]
    for st, members in v.sections:
        out += ["", f"### {STATUS_HEADINGS[st]} ({len(members)})"]
        if st in (Status.PASS, Status.NOT_APPLICABLE) and level >= 1:
            out += ["", f"{len(members)} findings: listed in the full report."]
            continue
        if st in (Status.PASS, Status.NOT_APPLICABLE):
            out += ["", "| Rule | Severity | Target | Message |", "|---|---|---|---|"]
            out += [
                f"| {f.rule_id} | {f.severity.value} | {esc(f.target)} | {esc(f.message)} |" for f in members
            ]
            continue
        for f in members:
            out += _finding(f, v.titles.get(f.rule_id, f.rule_id), evidence=level < 2)
    if not v.sections:
        out += ["", "No findings."]
    return out


def _appendix(v: ReportView, level: int = 0) -> list[str]:
    run = v.report.run
    out = ["", "## Observations", ""]
    if v.observations and level >= 1:
        out.append(f"{len(v.observations)} observations: listed in the full report.")
    elif v.observations:
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


# What each shorter level leaves out (level 0 is the whole report).
_LEFT_OUT = {
    1: "the observations and the passed and not-applicable findings are counted, not listed",
    2: "the observations, the passed and not-applicable findings and each finding's evidence are left out",
}


def _full(v: ReportView, level: int = 0, note: str = "") -> str:
    lines = _head(v)
    if note:
        lines += [note, ""]
    lines += _toc() + _domains(v) + _summary(v) + _plan(v) + _controls(v) + _findings(v, level)
    lines += _appendix(v, level)
    # Markdown itself writes no control character: any in the output came from the report.
    return visible("\n".join(lines) + "\n")


class _Budget:
    """Lines added while they fit in ``limit`` characters (the trailer's room is kept free)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lines: list[str] = []
        self.size = 0

    def add(self, line: str) -> bool:
        line = visible(line)
        if self.size + len(line) + 1 > self.limit:
            return False
        self.lines.append(line)
        self.size += len(line) + 1
        return True

    def extend(self, lines: list[str]) -> bool:
        return all(self.add(line) for line in lines)


def _where_full(opts: RenderOptions) -> str:
    if opts.full_report:
        return f"The full report: {code(opts.full_report)}."
    return (
        "The full report is in the JSON report of this run; render it with "
        "`backscatter-audit report REPORT.json --format html` (or `--format markdown --output FILE`)."
    )


def _condensed(v: ReportView, full_size: int, opts: RenderOptions) -> str:
    """The last resort for a report too long for a GitHub comment even without observations and
    evidence: the verdict, the domains that need attention, the plan's root causes and the failing
    findings, each as far as room allows."""
    a = v.report.assessment
    b = _Budget(LIMIT - 1_000)  # room for the closing note
    b.extend(_head(v))
    b.extend(
        [
            f"> **Summary view, truncated:** the full report has {full_size:,} characters, more than a "
            f"GitHub comment holds ({GITHUB_COMMENT_MAX:,}). {_where_full(opts)}",
            "",
        ]
    )
    left: list[str] = []
    attention = [r for r in v.domains if r.fails or r.inconclusive]
    quiet = len(v.domains) - len(attention)
    b.extend(
        [
            "## Domains",
            "",
            f"{len(attention)} of {len(v.domains)} rows need attention; {quiet} passed "
            "or have nothing measured.",
            "",
            *_DOMAIN_HEAD,
        ]
    )
    shown = 0
    for r in attention:
        if not b.add(_domain_line(r)):
            break
        shown += 1
    if shown < len(attention):
        left.append(f"{len(attention) - shown} more domains that need attention")
    if v.report.plan:
        b.extend(["", "## Remediation plan (root causes)", ""])
        for n, item in enumerate(v.report.plan, 1):
            count = len(item.findings)
            if not b.add(f"{n}. **{esc(item.title)}** — {item.severity.value}, answers {count} finding(s)"):
                left.append(f"{len(v.report.plan) - n + 1} more root causes")
                break
    fails = [f for f in v.report.findings if f.status in (Status.FAIL, Status.INCONCLUSIVE)]
    b.extend(
        [
            "",
            "## Failed and unmeasured findings",
            "",
            "| Rule | Status | Severity | Target | Message |",
            "|---|---|---|---|---|",
        ]
    )
    for n, f in enumerate(fails):
        cells = (esc(f.rule_id), f.status.value, f.severity.value, esc(f.target), esc(f.message))
        line = "| " + " | ".join(cells) + " |"
        if not b.add(line):
            left.append(f"{len(fails) - n} more failed or unmeasured findings")
            break
    tail = ["", f"Counts: {', '.join(f'{n} {s.value}' for s, n in a.by_status.items() if n)}."]
    if left:
        tail += ["", "**Not shown here:** " + "; ".join(left) + ". " + _where_full(opts)]
    return "\n".join(b.lines + [visible(t) for t in tail]) + "\n"


def render(report: Report, options: RenderOptions | None = None) -> str:
    opts = options or DEFAULT
    v = build_view(report)
    text = _full(v)
    if len(text) <= LIMIT:
        return text
    # Too long for a GitHub comment: leave out the bulkiest parts first, the findings last.
    size = len(text)
    for level, what in _LEFT_OUT.items():
        note = (
            f"> **Summary view, truncated:** the full report has {size:,} characters, more than a GitHub "
            f"comment holds ({GITHUB_COMMENT_MAX:,}): {what}. {_where_full(opts)}"
        )
        text = _full(v, level, note)
        if len(text) <= LIMIT:
            return text
    return _condensed(v, size, opts)


__all__ = ["FORMAT", "render"]
