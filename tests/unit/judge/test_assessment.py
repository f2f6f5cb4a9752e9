"""The headline: verdict and exit code decided together, at the --fail-on threshold."""

from __future__ import annotations

import pytest

from auditor.exitcodes import ExitCode
from auditor.judge import assess, exit_code
from auditor.model import Finding, ReportVerdict, Severity, Status

F, INC, P, S, N = Status.FAIL, Status.INCONCLUSIVE, Status.PASS, Status.SUPPRESSED, Status.NOT_APPLICABLE
CRIT, HIGH, MED, LOW, INFO = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO


def _f(status: Status, severity: Severity) -> Finding:
    return Finding("X-1", status, severity, "t", "m")


@pytest.mark.parametrize(
    ("found", "fail_on", "verdict", "code"),
    [
        ([(F, LOW)], LOW, ReportVerdict.FAIL, ExitCode.FINDINGS),
        ([(F, LOW)], HIGH, ReportVerdict.PASS, ExitCode.OK),  # measured; failed below the threshold
        ([(INC, CRIT)], HIGH, ReportVerdict.INCONCLUSIVE, ExitCode.INCONCLUSIVE),
        ([(INC, MED)], HIGH, ReportVerdict.NOT_ASSESSED, ExitCode.OK),  # never "pass" for the unmeasured
        ([(INC, HIGH), (F, HIGH)], LOW, ReportVerdict.FAIL, ExitCode.FINDINGS),
        ([(P, CRIT), (S, CRIT)], LOW, ReportVerdict.PASS, ExitCode.OK),
        ([(S, CRIT)], LOW, ReportVerdict.NOT_ASSESSED, ExitCode.OK),
        ([(N, CRIT)], LOW, ReportVerdict.NOT_ASSESSED, ExitCode.OK),
        ([(F, INFO), (P, LOW)], LOW, ReportVerdict.PASS, ExitCode.OK),
        ([], LOW, ReportVerdict.NOT_ASSESSED, ExitCode.OK),
    ],
)
def test_verdict_and_exit_code_agree(
    found: list[tuple[Status, Severity]], fail_on: Severity, verdict: ReportVerdict, code: int
) -> None:
    findings = [_f(s, sev) for s, sev in found]
    a = assess(findings, fail_on)
    assert (a.verdict, a.exit_code, a.fail_on) == (verdict, code, fail_on)
    assert exit_code(findings, fail_on) == code
    assert sum(a.by_status.values()) == len(findings)


def test_summary_names_what_failed_below_the_threshold_and_a_partial_run() -> None:
    a = assess([_f(F, LOW), _f(F, MED), _f(P, HIGH)], HIGH, partial=True)
    assert a.verdict is ReportVerdict.PASS
    assert "2 findings below high failed" in a.summary and "partial" in a.summary
    assert a.failed_by_severity[LOW] == 1 and a.failed_by_severity[MED] == 1
    worst = assess([_f(F, LOW), _f(F, CRIT)], LOW)
    assert worst.summary.startswith("2 findings at or above low to fix (worst: critical)")


def test_exit_code_table() -> None:
    """The README's table: lab down has its own code, distinct from 'could not measure'."""
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 130, 141]
    assert ExitCode.LAB_DOWN != ExitCode.INCONCLUSIVE
