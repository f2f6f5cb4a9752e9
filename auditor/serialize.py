"""Saved reports in, saved reports out: the JSON document (:mod:`auditor.schema.codec`) plus
reading every schema version this build understands.

``backscatter-audit/2`` is read exactly as saved; ``backscatter-audit/1`` is migrated
(:mod:`auditor.judge.migrate`).
"""

from __future__ import annotations

from typing import Any

from auditor.judge.migrate import from_v1
from auditor.model import Report
from auditor.schema.codec import (
    SCHEMA_ID,
    SCHEMA_V1,
    from_jsonable,
    read_json,
    report_to_dict,
    report_to_json,
    to_jsonable,
)
from auditor.schema.codec import report_from_dict as _report_from_dict_v2


def report_from_dict(doc: Any, path: str = "<report>") -> Report:
    """A report document of schema /2 as saved, or of schema /1 migrated."""
    if isinstance(doc, dict) and doc.get("schema") == SCHEMA_V1:
        return from_v1(doc, path)
    return _report_from_dict_v2(doc, path)


def load_report(path: str) -> Report:
    """Read a saved JSON report; any problem is an :class:`~auditor.model.InputError` naming the file."""
    return report_from_dict(read_json(path), path)


__all__ = [
    "SCHEMA_ID",
    "SCHEMA_V1",
    "from_jsonable",
    "load_report",
    "report_from_dict",
    "report_to_dict",
    "report_to_json",
    "to_jsonable",
]
