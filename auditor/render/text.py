"""Terminal text: the verdict, findings grouped by severity, worst first; colour only on a tty.

Control characters from the report (a hostile server's reply) are written as visible escapes
(``\\x1b``) before any colour of our own is added, so a report cannot drive the terminal.
"""

from __future__ import annotations

import os
import sys
import textwrap

from tabulate import tabulate

from auditor.model import Finding, Report, Severity, Status
from auditor.render._common import visible

FORMAT = "text"

_COLOURS = {
    Status.FAIL: "\033[31m",
    Status.INCONCLUSIVE: "\033[33m",
    Status.PASS: "\033[32m",
    Status.SUPPRESSED: "\033[2m",
    Status.NOT_APPLICABLE: "\033[2m",
}
_RESET = "\033[0m"


def _use_colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _status(f: Finding, colour: bool) -> str:
    return f"{_COLOURS[f.status]}{f.status.value}{_RESET}" if colour else f.status.value


def _short(target: str) -> str:
    return target if len(target) <= 48 else "…" + target[-47:]


def render(report: Report) -> str:
    colour = _use_colour()
    v = visible
    out: list[str] = []
    run, a = report.run, report.assessment
    out.append(f"backscatter-audit {v(run.tool_version)} — {v(run.command)}")
    if run.scope:
        out.append(f"scope: {v(', '.join(run.scope))}")
    if run.partial:
        out.append("PARTIAL REPORT: the audit was interrupted; unmeasured checks are listed as inconclusive")
    out.append(f"verdict: {a.verdict.word} — {v(a.summary)}")
    # The terminal shows what needs attention; passes are counted (every other format lists them).
    shown = [f for f in report.findings if f.status in (Status.FAIL, Status.INCONCLUSIVE, Status.SUPPRESSED)]
    for sev in Severity:
        group = [f for f in shown if f.severity is sev]
        if not group:
            continue
        out.append("")
        out.append(f"== {sev.value.upper()} ({len(group)}) ==")
        rows = [
            [
                _status(f, colour),
                v(f.rule_id),
                v(_short(f.target)),
                v(str(f.location)) if f.location else "",
                textwrap.fill(v(f.message), 70),
            ]
            for f in group
        ]
        out.append(tabulate(rows, headers=["status", "rule", "target", "where", "message"]))
    if report.plan:
        out.append("")
        out.append("How to fix (by root cause, worst first):")
        for n, item in enumerate(report.plan, 1):
            out.append(f"  {n}. {v(item.title)} [{item.severity.value}, {item.effort.value}]")
            for step in item.steps:
                answers = ", ".join(f"{r.rule_id} {r.target}" for r in step.findings)
                out.append(f"     - {v(answers)}")
                out.extend("         " + v(line) for line in step.text.splitlines())
                out.extend("         $ " + v(c.line) for c in step.commands)
                if step.to_fill:
                    out.append("         (fill in first: " + v(", ".join(step.to_fill)) + ")")
            out.extend("     verify: " + v(line) for line in item.verify)
    counts = a.by_status
    out.append("")
    out.append(
        "summary: "
        + ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        + (f" ({len(report.findings)} findings)" if report.findings else "no findings")
        + f"; --fail-on {a.fail_on.value}: exit {a.exit_code}"
    )
    if counts.get(Status.PASS) or counts.get(Status.NOT_APPLICABLE):
        out.append("passed and not-applicable checks are listed in the json, html and markdown formats")
    return "\n".join(out) + "\n"
