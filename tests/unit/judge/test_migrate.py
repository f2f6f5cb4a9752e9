"""Reading version 1 reports: the committed demo example and hand-made /1 documents."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from auditor.model import InputError, ReportVerdict
from auditor.schema import load_report_schema
from auditor.serialize import load_report, report_from_dict, report_to_dict

EXAMPLE = Path(__file__).resolve().parents[3] / "reports" / "examples" / "report.json"


def test_the_committed_example_loads_whatever_its_version() -> None:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    report = load_report(str(EXAMPLE))
    assert {(f["rule_id"], f["target"], f["status"]) for f in doc["findings"]} == {
        (f.rule_id, f.target, f.status.value) for f in report.findings
    }
    assert {r.id for r in report.rules} == {f.rule_id for f in report.findings}
    assert report.assessment.verdict is ReportVerdict.FAIL and report.plan  # the demo site is sloppy
    jsonschema.Draft202012Validator(load_report_schema()).validate(report_to_dict(report))


def _v1(**extra: object) -> dict[str, object]:
    finding = {
        "rule_id": "PF-RCPT-005",
        "status": "fail",
        "severity": "high",
        "target": "/etc/postfix",
        "message": "luser_relay is set",
        "remediation": "postconf -X luser_relay",
    }
    run = {
        "tool": "backscatter-audit",
        "tool_version": "0.1.0",
        "started": "",
        "finished": "",
        "command": "x",
    }
    return {"schema": "backscatter-audit/1", "run": run, "findings": [finding], "observations": [], **extra}


def test_version_1_is_judged_once_at_load_with_the_registry() -> None:
    report = report_from_dict(_v1())
    (f,) = report.findings
    assert f.remediation.text == "postconf -X luser_relay" and f.remediation.commands == ()
    assert report.assessment.exit_code == 1 and report.assessment.fail_on.value == "low"
    (rule,) = report.rules
    assert rule.cause == "local-recipients" and rule.family == "postfix"  # from the registry
    assert report.plan[0].cause == "local-recipients"
    assert {c.control: c.status.value for c in report.compliance}["RFC5321-6.1"] == "fail"


def test_unknown_schema_and_malformed_documents_are_input_errors() -> None:
    with pytest.raises(InputError, match="not a backscatter-audit/2 report"):
        report_from_dict({"schema": "backscatter-audit/9"})
    with pytest.raises(InputError, match="malformed report"):
        report_from_dict(_v1(findings=[{"rule_id": "X"}]))
    with pytest.raises(InputError, match="malformed report"):
        report_from_dict({**_v1(), "schema": "backscatter-audit/2", "findings": []})  # no assessment
