"""JSON: the source of truth (``"schema": "backscatter-audit/2"``); every other format is a view of it.

Lossless: strings are written as they are. JSON escapes C0 control characters itself; the C1
controls and bidirectional overrides it would leave raw are written as ``\\u`` escapes, so a
terminal showing the file is not driven by them, and the document still decodes to the same data.
"""

from __future__ import annotations

from auditor.model import Report
from auditor.render._common import json_safe
from auditor.render._options import RenderOptions
from auditor.schema.codec import report_to_json

FORMAT = "json"


def render(report: Report, options: RenderOptions | None = None) -> str:
    return json_safe(report_to_json(report))
