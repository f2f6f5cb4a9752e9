"""Terminal text: findings grouped by severity, worst first; colour only when stdout is a tty."""

from __future__ import annotations

import os
import sys
import textwrap

from tabulate import tabulate

from auditor.model import Finding, Report, Severity, Status

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


def render(report: Report) -> str:
    colour = _use_colour()
    out: list[str] = []
    run = report.run
    out.append(f"backscatter-audit {run.tool_version} — {run.command}")
    if run.scope:
        out.append(f"scope: {', '.join(run.scope)}")
    if run.partial:
        out.append("PARTIAL REPORT: the audit was interrupted; unmeasured checks are listed as inconclusive")
    # The terminal shows what needs attention; passes are counted (every other format lists them).
    shown = [f for f in report.findings if f.status in (Status.FAIL, Status.INCONCLUSIVE, Status.SUPPRESSED)]
    for sev in Severity:
        group = [f for f in shown if f.severity is sev]
        if not group:
            continue
        out.append("")
        out.append(f"== {sev.value.upper()} ({len(group)}) ==")
        rows = []
        for f in group:
            loc = f.location
            rows.append(
                [
                    _status(f, colour),
                    f.rule_id,
                    f.target if len(f.target) <= 48 else "…" + f.target[-47:],
                    str(loc) if loc else "",
                    textwrap.fill(f.message, 70),
                ]
            )
        out.append(tabulate(rows, headers=["status", "rule", "target", "where", "message"]))
    fails = [f for f in report.findings if f.status is Status.FAIL]
    if fails:
        out.append("")
        out.append("How to fix:")
        seen: set[tuple[str, str]] = set()
        for f in fails:
            key = (f.rule_id, f.remediation.as_text())
            if key in seen or not f.remediation:
                continue
            seen.add(key)
            out.append(f"  {f.rule_id} {f.title}:")
            out.extend("      " + line for line in f.remediation.as_text().splitlines())
    counts = {s: sum(1 for f in report.findings if f.status is s) for s in Status}
    out.append("")
    out.append(
        "summary: "
        + ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        + (f" ({len(report.findings)} findings)" if report.findings else "no findings")
    )
    if counts[Status.PASS] or counts[Status.NOT_APPLICABLE]:
        out.append("passed and not-applicable checks are listed in the json, html and markdown formats")
    return "\n".join(out) + "\n"
