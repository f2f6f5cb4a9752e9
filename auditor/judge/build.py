"""The judging step: findings → the whole :class:`~auditor.model.Report`, decided once.

Everything a report says beyond the findings — the headline (``assessment``), the remediation
``plan``, the ``compliance`` table and the catalog entries of its rules — is computed here and
nowhere else; renderers only draw it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence

from auditor import __version__
from auditor.judge.assessment import assess
from auditor.judge.catalog import entries
from auditor.judge.compliance import build_compliance
from auditor.judge.evaluate import evaluate, sort_findings
from auditor.judge.plan import build_plan
from auditor.model import Finding, Observation, Report, RuleInfo, RunInfo, Severity
from auditor.suppress import Suppression, apply_suppressions


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _today() -> _dt.date:
    return _dt.datetime.now(_dt.UTC).date()


def judge(
    findings: Iterable[Finding],
    observations: Sequence[Observation] = (),
    *,
    run: RunInfo,
    fail_on: Severity = Severity.LOW,
    suppressions: Sequence[Suppression] = (),
    today: _dt.date | None = None,
    catalog: Mapping[str, RuleInfo] | None = None,
    registry: bool = True,
) -> Report:
    """Apply the suppressions, order the findings and decide assessment, plan and compliance.

    Rule metadata comes from ``catalog`` first, then (when ``registry``) the rule registry, then
    the findings themselves.
    """
    found = list(findings)
    if suppressions:
        found = apply_suppressions(found, suppressions, today or _today())
    found = sort_findings(found)
    rules = entries(found, catalog, registry=registry)
    return Report(
        run=run,
        findings=tuple(found),
        observations=tuple(observations),
        assessment=assess(found, fail_on, run.partial),
        plan=build_plan(found, rules, run.command),
        compliance=build_compliance(found, rules),
        rules=tuple(rules.values()),
    )


def revise(
    report: Report,
    *,
    fail_on: Severity | None = None,
    suppressions: Sequence[Suppression] = (),
    today: _dt.date | None = None,
) -> Report:
    """A judged report with other options: the least that changes is judged again.

    Suppressions change findings, so everything is judged again (with the report's own rule
    entries first); a threshold alone changes only the assessment; neither returns ``report`` as is.
    """
    threshold = fail_on or report.assessment.fail_on
    if suppressions:
        return judge(
            report.findings,
            report.observations,
            run=report.run,
            fail_on=threshold,
            suppressions=suppressions,
            today=today,
            catalog={r.id: r for r in report.rules},
        )
    if threshold is not report.assessment.fail_on:
        return dataclasses.replace(report, assessment=assess(report.findings, threshold, report.run.partial))
    return report


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
    fail_on: Severity = Severity.LOW,
    suppressions: Sequence[Suppression] = (),
    site_name: str = "",
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
        site_name=site_name,
    )
    found = evaluate(observations) if findings is None else findings
    return judge(found, observations, run=run, fail_on=fail_on, suppressions=suppressions)


__all__ = ["build_report", "judge", "now_iso", "revise"]
