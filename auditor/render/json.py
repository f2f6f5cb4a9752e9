"""JSON: the source of truth (``"schema": "backscatter-audit/1"``); every other format is a view of it."""

from __future__ import annotations

from auditor.model import Report
from auditor.serialize import report_to_json

FORMAT = "json"


def render(report: Report) -> str:
    return report_to_json(report)
