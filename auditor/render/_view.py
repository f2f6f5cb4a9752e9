"""The human-readable view of a report that Markdown and HTML share: findings in reading order,
titles, a brief observations appendix. Everything judged (verdict, counts, plan, compliance) is
the report's own data; this only arranges it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from auditor.model import Finding, Report, Status
from auditor.render._common import VERDICT_CSS, site_of, title_of
from auditor.schema.codec import to_jsonable

# Reading order of the findings sections: what needs action first (the judge's order of findings).
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
    verdict_css: str
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


def build_view(report: Report) -> ReportView:
    by_status: dict[Status, list[Finding]] = {}
    for f in report.findings:  # already in the judge's order
        by_status.setdefault(f.status, []).append(f)
    return ReportView(
        report=report,
        site=site_of(report),
        verdict_css=VERDICT_CSS[report.assessment.verdict],
        sections=[(st, by_status[st]) for st in STATUS_ORDER if st in by_status],
        titles={f.rule_id: title_of(report, f) for f in report.findings},
        observations=observation_lines(report),
    )
