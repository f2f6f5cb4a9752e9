"""`backscatter-audit ndr`: JSON array, text table, --judge report, input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.cli import main
from tests.unit.bounces import messages as m


def test_json_array(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.eml").write_bytes(m.dsn())
    (tmp_path / "b.eml").write_bytes(m.AUTOREPLY)
    assert main(["ndr", "--format", "json", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, list)
    assert [d["kind"] for d in doc] == ["failure", "autoreply"]
    assert doc[0]["recipients"][0] == {
        "address": "nobody@victim.example",
        "status": "5.1.1",
        "action": "failed",
        "diagnostic": "550 5.1.1 <nobody@victim.example>: Recipient address rejected",
    }
    assert doc[0]["returned"] == "headers"


def test_text_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "q.eml").write_bytes(m.QMAIL)
    assert main(["ndr", str(tmp_path / "q.eml")]) == 0
    out = capsys.readouterr().out
    assert "qmail" in out and "nobody@victim.example 5.1.1" in out and "1 failure" in out


def test_judge_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "full.eml").write_bytes(m.dsn(third="rfc822"))
    assert main(["ndr", "--judge", "--format", "json", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = {f["rule_id"] for f in report["findings"] if f["status"] == "fail"}
    assert failed == {"NDR-FMT-002"}


def test_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ndr", str(tmp_path / "missing.eml")]) == 2
    err = capsys.readouterr().err
    assert "missing.eml" in err and "Traceback" not in err


def test_list_format_must_be_text_or_json(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(m.QMAIL)
    assert main(["ndr", "--format", "sarif", str(tmp_path)]) == 2
