"""The human-readable view of a report that Markdown and HTML share: a per-domain summary, findings
in reading order, titles, a brief observations appendix. Everything judged (verdict, counts, plan,
compliance) is the report's own data; this only arranges it — the per-domain table groups the
findings by the scope domain their target names and shows the worst status among them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from auditor.model import Finding, Report, Severity, Status
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


# Worst first: the status a domain row shows is the first of these among its findings.
_WORST = (Status.FAIL, Status.INCONCLUSIVE, Status.SUPPRESSED, Status.PASS, Status.NOT_APPLICABLE)
SITE_WIDE = "(configuration, directory, NDRs)"  # the row of findings whose target names no domain
_TOKENS = re.compile(r"[\s@\[\](),;<>]+")


@dataclass(frozen=True)
class DomainRow:
    domain: str
    worst: Status | None  # None: no finding names the domain
    fails: int
    inconclusive: int
    worst_severity: Severity | None  # of its failures
    css: str

    @property
    def word(self) -> str:
        return self.worst.value if self.worst else "not assessed"


def domain_of(target: str, domains: Sequence[str] | dict[str, str]) -> str:
    """The scope domain a target names (``mx2.example.com[192.0.2.25]`` → ``example.com``), the
    most specific one if several match; "" when it names none (a file, a DN)."""
    lookup = domains if isinstance(domains, dict) else {d.lower().rstrip("."): d for d in domains}
    best = ""
    for token in _TOKENS.split(target.lower()):
        labels = token.rstrip(".").split(".")
        for i in range(len(labels)):  # the name itself, then each parent: the first hit is the longest
            hit = lookup.get(".".join(labels[i:]))
            if hit:
                if len(hit) > len(best):
                    best = hit
                break
    return best


def domain_rows(report: Report) -> list[DomainRow]:
    """One row per scope domain, worst first, then one for findings that name no domain."""
    domains = list(report.run.scope)
    groups: dict[str, list[Finding]] = {d: [] for d in domains}
    other: list[Finding] = []
    lookup = {d.lower().rstrip("."): d for d in domains}
    for f in report.findings:
        d = domain_of(f.target, lookup) if lookup else ""
        (groups[d] if d else other).append(f)
    rank = {st: n for n, st in enumerate(_WORST)}
    rows = sorted(
        (_row(d, fs) for d, fs in groups.items()),
        key=lambda r: (
            rank[r.worst] if r.worst else len(_WORST),
            -(r.worst_severity.rank if r.worst_severity else -1),
            -r.fails,
            -r.inconclusive,
            r.domain,
        ),
    )
    if other:
        rows.append(_row(SITE_WIDE, other))
    return rows


def _row(domain: str, fs: list[Finding]) -> DomainRow:
    present = {f.status for f in fs}
    worst = next((st for st in _WORST if st in present), None)
    failed = [f.severity for f in fs if f.status is Status.FAIL]
    sev = max(failed, key=lambda s: s.rank) if failed else None
    css = {Status.FAIL: "fail", Status.INCONCLUSIVE: "inconclusive", Status.PASS: "pass"}.get(worst, "none")  # type: ignore[arg-type]
    return DomainRow(
        domain=domain,
        worst=worst,
        fails=len(failed),
        inconclusive=sum(f.status is Status.INCONCLUSIVE for f in fs),
        worst_severity=sev,
        css=css,
    )


def site_title(report: Report, limit: int = 3) -> str:
    """The report's title: the site's name when the report carries one, else the scope (the first
    few domains and how many more), else the inputs or command."""
    if report.run.site_name:
        return report.run.site_name
    scope = report.run.scope
    if len(scope) > limit:
        return f"{', '.join(scope[:limit])} and {len(scope) - limit} more domains"
    return site_of(report)


@dataclass(frozen=True)
class ObservationLine:
    kind: str
    target: str
    details: str


@dataclass(frozen=True)
class ReportView:
    report: Report
    site: str
    title: str
    verdict_css: str
    domains: list[DomainRow]
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
        title=site_title(report),
        verdict_css=VERDICT_CSS[report.assessment.verdict],
        domains=domain_rows(report),
        sections=[(st, by_status[st]) for st in STATUS_ORDER if st in by_status],
        titles={f.rule_id: title_of(report, f) for f in report.findings},
        observations=observation_lines(report),
    )
