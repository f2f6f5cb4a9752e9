"""Reading reports of the older schema ``backscatter-audit/1``.

A /1 file has findings and observations but no assessment, plan, compliance table or rule
entries. Those are computed here, once, at load: this is the one place where a saved report is
judged again without being asked to (a /2 file is rendered exactly as saved). The threshold of a
/1 file was not recorded, so its assessment is at the default ``--fail-on low``.
"""

from __future__ import annotations

from typing import Any

from auditor.judge.build import judge
from auditor.model import InputError, Report
from auditor.schema.codec import SCHEMA_V1, decode_parts


def from_v1(doc: Any, path: str = "<report>") -> Report:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_V1:
        raise InputError(f"not a {SCHEMA_V1} report (missing or different 'schema')", path)
    # decode_parts turns the /1 remediation strings into {text, commands: []}.
    run, findings, observations = decode_parts(doc, path)
    # The only place a saved report is judged again unasked: /1 files lack what /2 files carry.
    return judge(findings, observations, run=run)


__all__ = ["from_v1"]
