"""The headline of a report: verdict, exit code and counts, decided together so they never disagree.

Only findings at or above ``fail_on`` decide: a failure there is FAIL (exit 1); else an unmeasured
check there is INCONCLUSIVE (exit 3); else PASS when anything was measured, NOT ASSESSED when
nothing was (both exit 0). Failures below the threshold are named in the sentence, not hidden.
"""

from __future__ import annotations

from collections.abc import Iterable

from auditor.exitcodes import ExitCode
from auditor.model import Assessment, Finding, ReportVerdict, Severity, Status


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def exit_code(findings: Iterable[Finding], fail_on: Severity = Severity.LOW) -> int:
    """0 / 1 / 3 from the findings at or above ``fail_on`` (2 is for input errors, decided earlier)."""
    return assess(findings, fail_on).exit_code


def assess(
    findings: Iterable[Finding], fail_on: Severity = Severity.LOW, partial: bool = False
) -> Assessment:
    found = list(findings)
    by_status = {s: 0 for s in Status}
    failed_by_severity = {s: 0 for s in Severity}
    for f in found:
        by_status[f.status] += 1
        if f.status is Status.FAIL:
            failed_by_severity[f.severity] += 1
    gating = [f for f in found if f.severity.at_least(fail_on)]
    fails = [f for f in gating if f.status is Status.FAIL]
    unmeasured = [f for f in gating if f.status is Status.INCONCLUSIVE]
    below = by_status[Status.FAIL] - len(fails)
    threshold = f"at or above {fail_on.value}"
    tail = f" {_n(below, 'finding')} below {fail_on.value} failed." if below else ""
    if partial:
        tail += " The audit was interrupted: this report is partial."
    if fails:
        worst = max(fails, key=lambda f: f.severity.rank).severity.value
        verdict, code = ReportVerdict.FAIL, ExitCode.FINDINGS
        summary = (
            f"{_n(len(fails), 'finding')} {threshold} to fix (worst: {worst}): "
            f"this site can generate backscatter."
        )
    elif unmeasured:
        verdict, code = ReportVerdict.INCONCLUSIVE, ExitCode.INCONCLUSIVE
        summary = f"Nothing {threshold} failed, but {_n(len(unmeasured), 'check')} could not be measured."
    elif by_status[Status.PASS] or below:
        verdict, code = ReportVerdict.PASS, ExitCode.OK
        summary = f"Every measured check {threshold} passed."
    else:
        verdict, code = ReportVerdict.NOT_ASSESSED, ExitCode.OK
        summary = "No check produced a measured result."
    return Assessment(
        verdict=verdict,
        fail_on=fail_on,
        exit_code=int(code),
        summary=summary + tail,
        by_status=by_status,
        failed_by_severity=failed_by_severity,
    )


__all__ = ["assess", "exit_code"]
