"""CSV for spreadsheets: one row per finding, fixed columns, a header row.

Cells that a spreadsheet would run as a formula (starting with = + - @ or a tab/CR) get a leading
apostrophe: messages quote SMTP replies and file contents, which an attacker can choose.
"""

from __future__ import annotations

import csv
import io

from auditor.model import Finding, Report
from auditor.render._common import RuleLookup, registry_lookup, title_of

FORMAT = "csv"

COLUMNS = ("rule_id", "status", "severity", "target", "file", "line", "title", "message", "remediation")


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _row(f: Finding, rules: RuleLookup) -> list[str]:
    loc = f.location
    return [
        _cell(v)
        for v in (
            f.rule_id,
            f.status.value,
            f.severity.value,
            f.target,
            loc.path if loc else "",
            str(loc.line) if loc and loc.line else "",
            title_of(f, rules),
            f.message,
            f.remediation.as_text(),
        )
    ]


def render_with(report: Report, rules: RuleLookup = registry_lookup) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(COLUMNS)
    for f in report.findings:
        writer.writerow(_row(f, rules))
    return buf.getvalue()


def render(report: Report) -> str:
    return render_with(report, registry_lookup)
