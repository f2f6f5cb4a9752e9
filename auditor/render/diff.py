"""Compare two saved reports: which FAIL findings are new, fixed or unchanged.

Findings are matched by :attr:`~auditor.model.Finding.key` (rule id, target), the identity that
baselines and SARIF fingerprints also use. Not a report format (no ``FORMAT``): ``report diff``
prints it as text or JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from auditor.exitcodes import ExitCode
from auditor.model import Finding, Report, Severity, Status
from auditor.render._common import visible
from auditor.render._fit import MIN_WIDTH, cut_middle, wrap
from auditor.render._options import DEFAULT, RenderOptions
from auditor.schema.codec import to_jsonable

DIFF_SCHEMA = "backscatter-audit-diff/1"


@dataclass(frozen=True)
class Fixed:
    finding: Finding  # as it failed in the old report
    now: str  # its status in the new report, or "absent"


@dataclass(frozen=True)
class ReportDiff:
    old: Report
    new: Report
    new_fails: tuple[Finding, ...]
    fixed: tuple[Fixed, ...]
    unchanged: tuple[Finding, ...]  # as they fail in the new report


def _fails(report: Report) -> dict[tuple[str, str], Finding]:
    out: dict[tuple[str, str], Finding] = {}
    for f in report.findings:
        if f.status is Status.FAIL:
            out.setdefault(f.key, f)
    return out


def _order(f: Finding) -> tuple[int, str, str]:
    return (-f.severity.rank, f.rule_id, f.target)


def diff_reports(old: Report, new: Report) -> ReportDiff:
    before, after = _fails(old), _fails(new)
    now = {f.key: f.status.value for f in new.findings}
    return ReportDiff(
        old=old,
        new=new,
        new_fails=tuple(sorted((f for k, f in after.items() if k not in before), key=_order)),
        fixed=tuple(
            Fixed(f, now.get(k, "absent"))
            for k, f in sorted(before.items(), key=lambda kv: _order(kv[1]))
            if k not in after
        ),
        unchanged=tuple(sorted((f for k, f in after.items() if k in before), key=_order)),
    )


def diff_exit_code(d: ReportDiff, fail_on: Severity) -> int:
    """1 when a new FAIL is at or above ``fail_on``, else 0."""
    new = any(f.severity.at_least(fail_on) for f in d.new_fails)
    return ExitCode.FINDINGS if new else ExitCode.OK


def _run(report: Report) -> dict[str, Any]:
    r = report.run
    return {"command": r.command, "started": r.started, "tool_version": r.tool_version, "partial": r.partial}


def diff_to_dict(d: ReportDiff) -> dict[str, Any]:
    return {
        "schema": DIFF_SCHEMA,
        "old": _run(d.old),
        "new": _run(d.new),
        "summary": {"new": len(d.new_fails), "fixed": len(d.fixed), "unchanged": len(d.unchanged)},
        "new_fails": [to_jsonable(f) for f in d.new_fails],
        "fixed": [{"now": x.now, "finding": to_jsonable(x.finding)} for x in d.fixed],
        "unchanged": [to_jsonable(f) for f in d.unchanged],
    }


def render_diff_json(d: ReportDiff) -> str:
    return json.dumps(diff_to_dict(d), indent=2, ensure_ascii=False) + "\n"


def _entries(rows: list[tuple[Finding, str]], width: int) -> list[str]:
    """One line per finding (severity, rule, target cut in the middle), its text indented below."""
    if not rows:
        return ["  (none)"]
    rw = max(len(visible(f.rule_id)) for f, _ in rows)
    out: list[str] = []
    for f, text in rows:
        head = f"  {f.severity.value:<8}  {visible(f.rule_id):<{rw}}  "
        out.append(head + cut_middle(visible(f.target), max(8, width - len(head))))
        if text:
            out.extend(wrap(visible(text), width, "      "))
    return out


def render_diff_text(d: ReportDiff, options: RenderOptions | None = None) -> str:
    """The diff for a terminal, within ``options.width`` columns; report text is made visible."""
    w = max(MIN_WIDTH, (options or DEFAULT).width)
    out = wrap(visible(f"old: {d.old.run.started}  {d.old.run.command}"), w, "", "     ")
    out += wrap(visible(f"new: {d.new.run.started}  {d.new.run.command}"), w, "", "     ")
    if d.old.run.partial or d.new.run.partial:
        out += wrap("note: a partial report is compared; missing failures may be unmeasured, not fixed", w)
    out += ["", f"NEW failures ({len(d.new_fails)}):"]
    out += _entries([(f, f.message) for f in d.new_fails], w)
    out += ["", f"FIXED ({len(d.fixed)}):"]
    out += _entries([(x.finding, f"now: {x.now}") for x in d.fixed], w)
    out += ["", f"UNCHANGED failures ({len(d.unchanged)}):"]
    out += _entries([(f, "") for f in d.unchanged], w)
    out += ["", f"summary: {len(d.new_fails)} new, {len(d.fixed)} fixed, {len(d.unchanged)} unchanged"]
    return "\n".join(out) + "\n"


__all__ = [
    "DIFF_SCHEMA",
    "Fixed",
    "ReportDiff",
    "diff_exit_code",
    "diff_reports",
    "diff_to_dict",
    "render_diff_json",
    "render_diff_text",
]
