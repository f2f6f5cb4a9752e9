"""Judge observations with the rules and decide the exit code.

Kept apart from the CLI so that tests, ``audit`` and ``report`` all judge the same way.
"""

from __future__ import annotations

import datetime as _dt
import sys
import traceback
from collections.abc import Iterable, Sequence

from auditor import __version__
from auditor.model import Finding, Observation, Report, RunInfo, Severity, Status
from auditor.rules import Observations, Rule, load_all

# Exit codes (DESIGN.md): 0 nothing at or above the threshold, 1 findings at or above it,
# 2 usage or input error, 3 could not measure (inconclusive at or above it, nothing failed).
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_INCONCLUSIVE = 3

_STATUS_ORDER = {
    Status.FAIL: 0,
    Status.INCONCLUSIVE: 1,
    Status.SUPPRESSED: 2,
    Status.PASS: 3,
    Status.NOT_APPLICABLE: 4,
}


def evaluate(observations: Iterable[Observation], rules: Sequence[Rule] | None = None) -> list[Finding]:
    """Run every applicable rule; a rule that raises becomes an ``inconclusive`` finding, not a crash."""
    obs = Observations(observations)
    findings: list[Finding] = []
    for r in rules if rules is not None else load_all().values():
        if not r.applies(obs):
            continue
        try:
            findings.extend(r.check(obs, r))
        except Exception as exc:  # a rule bug must not lose the rest of the audit
            traceback.print_exc(file=sys.stderr)
            findings.append(
                r.inconclusive("(rule error)", f"rule {r.id} failed: {type(exc).__name__}: {exc}")
            )
    return sort_findings(findings)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (_STATUS_ORDER[f.status], -f.severity.rank, f.rule_id, f.target))


def exit_code(findings: Iterable[Finding], fail_on: Severity = Severity.LOW) -> int:
    """0 / 1 / 3 from the findings at or above ``fail_on`` (2 is for input errors, decided earlier)."""
    failed = inconclusive = False
    for f in findings:
        if not f.severity.at_least(fail_on):
            continue
        if f.status is Status.FAIL:
            failed = True
        elif f.status is Status.INCONCLUSIVE:
            inconclusive = True
    if failed:
        return EXIT_FINDINGS
    return EXIT_INCONCLUSIVE if inconclusive else EXIT_OK


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def build_report(
    observations: Sequence[Observation],
    *,
    command: str,
    started: str,
    scope: Sequence[str] = (),
    inputs: Sequence[str] = (),
    partial: bool = False,
    notes: Sequence[str] = (),
    findings: Sequence[Finding] | None = None,
) -> Report:
    """Judge the observations (unless findings are given) and wrap everything into a Report."""
    run = RunInfo(
        tool="backscatter-audit",
        tool_version=__version__,
        started=started,
        finished=now_iso(),
        command=command,
        scope=tuple(scope),
        inputs=tuple(inputs),
        partial=partial,
        notes=tuple(notes),
    )
    found = evaluate(observations) if findings is None else sort_findings(findings)
    return Report(run=run, findings=tuple(found), observations=tuple(observations))
