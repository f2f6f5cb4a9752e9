"""The human-readable view of a report that Markdown and HTML share: verdict, counts, plan,
compliance, findings in reading order, a brief observations appendix."""

from __future__ import annotations

import json
from dataclasses import dataclass

from auditor.compliance import ControlResult, assess
from auditor.model import Finding, Report, Severity, Status
from auditor.remediation import PlanItem, plan
from auditor.render._common import (
    RuleLookup,
    Verdict,
    severity_counts,
    site_of,
    status_counts,
    title_of,
    verdict,
)
from auditor.serialize import to_jsonable

# Reading order of the findings sections: what needs action first.
STATUS_ORDER = (Status.FAIL, Status.INCONCLUSIVE, Status.SUPPRESSED, Status.PASS, Status.NOT_APPLICABLE)
STATUS_HEADINGS = {
    Status.FAIL: "Failed",
    Status.INCONCLUSIVE: "Could not be measured",
    Status.SUPPRESSED: "Suppressed (accepted risk)",
    Status.PASS: "Passed",
    Status.NOT_APPLICABLE: "Not applicable",
}


@dataclass(frozen=True)
class ObservationLine:
    kind: str
    target: str
    details: str


@dataclass(frozen=True)
class ReportView:
    report: Report
    site: str
    verdict: Verdict
    status_counts: dict[Status, int]
    fail_severity_counts: dict[Severity, int]
    plan: list[PlanItem]
    controls: list[ControlResult]
    sections: list[tuple[Status, list[Finding]]]
    titles: dict[str, str]  # rule id → title
    observations: list[ObservationLine]


def _brief(value: object, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def observation_lines(report: Report, max_fields: int = 6) -> list[ObservationLine]:
    out = []
    for o in report.observations:
        data = to_jsonable(o)
        skip = ("kind", "target")
        fields = [(k, v) for k, v in data.items() if k not in skip and v not in ("", [], {}, None)]
        parts = [f"{k}={_brief(v)}" for k, v in fields[:max_fields]]
        if len(fields) > max_fields:
            parts.append(f"(+{len(fields) - max_fields} more)")
        out.append(ObservationLine(type(o).kind, o.target, "; ".join(parts)))
    return out


def build_view(report: Report, rules: RuleLookup) -> ReportView:
    sections = []
    for st in STATUS_ORDER:
        members = [f for f in report.findings if f.status is st]
        members.sort(key=lambda f: (-f.severity.rank, f.rule_id, f.target))
        if members:
            sections.append((st, members))
    return ReportView(
        report=report,
        site=site_of(report),
        verdict=verdict(report),
        status_counts=status_counts(report.findings),
        fail_severity_counts=severity_counts(report.findings),
        plan=plan(report.findings, report.run.command),
        controls=assess(report.findings),
        sections=sections,
        titles={f.rule_id: title_of(f, rules) for f in report.findings},
        observations=observation_lines(report),
    )
