"""The committed JSON Schema of the report document (``"schema": "backscatter-audit/1"``)."""

from __future__ import annotations

import json
from typing import Any

from auditor import resources

REPORT_SCHEMA_PATH = resources.path(__name__, "report-1.schema.json")


def load_report_schema() -> dict[str, Any]:
    with open(REPORT_SCHEMA_PATH, encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema
