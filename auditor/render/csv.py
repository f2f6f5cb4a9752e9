"""CSV for spreadsheets: a header row, one row per finding, fixed columns, then one assessment row.

The last row is the report's headline: rule_id ``(assessment)``, the verdict as status, the
``--fail-on`` threshold as severity, the exit code as title and the verdict's sentence as message.
Control characters from the report are written as visible escapes (``\x1b``), and cells that a
spreadsheet would run as a formula (starting with = + - @ or a tab/CR) get a leading apostrophe:
messages quote SMTP replies and file contents, which an attacker can choose.
"""

from __future__ import annotations

import csv
import io

from auditor.model import Finding, Report
from auditor.render._common import site_of, title_of, visible
from auditor.render._options import RenderOptions

FORMAT = "csv"

COLUMNS = ("rule_id", "status", "severity", "target", "file", "line", "title", "message", "remediation")


ASSESSMENT = "(assessment)"


def _cell(value: str) -> str:
    value = visible(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _row(report: Report, f: Finding) -> list[str]:
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
            title_of(report, f),
            f.message,
            f.remediation.as_text(),
        )
    ]


def _assessment_row(report: Report) -> list[str]:
    a = report.assessment
    cells = (ASSESSMENT, a.verdict.value, a.fail_on.value, site_of(report), "", "")
    return [_cell(v) for v in (*cells, f"exit code {a.exit_code}", a.summary, "")]


def render(report: Report, options: RenderOptions | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(COLUMNS)
    for f in report.findings:
        writer.writerow(_row(report, f))
    writer.writerow(_assessment_row(report))
    return buf.getvalue()
