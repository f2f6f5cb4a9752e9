"""`report FILE` re-renders; `report diff OLD NEW` compares; both through the real CLI entry point."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.model import Finding, Report, Severity, Status
from auditor.observations import KINDS
from auditor.serialize import report_to_json
from tests.unit.render.fixtures import GoldenProbe, golden_report, judged


def _save(path: Path, report: Report) -> str:
    path.write_text(report_to_json(report), encoding="utf-8")
    return str(path)


def _newer() -> Report:
    """The golden report a week later: PF-RCPT-003 fixed, an open relay appeared."""
    old = golden_report()
    findings = [
        dataclasses.replace(f, status=Status.PASS) if f.rule_id == "PF-RCPT-003" else f for f in old.findings
    ]
    findings.append(Finding("SMTP-RELAY-001", Status.FAIL, Severity.CRITICAL, "mx2.example.com", "relays"))
    findings.append(Finding("PF-DSN-002", Status.FAIL, Severity.LOW, "main.cf", "delay DSNs"))
    return judged(findings, old.run)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str]:
    return _save(tmp_path / "old.json", golden_report()), _save(tmp_path / "new.json", _newer())


def test_report_rerenders_a_saved_file(
    pair: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KINDS, GoldenProbe.kind, GoldenProbe)  # the fixture's test-only observation kind
    assert main(["report", pair[0], "--format", "json"]) == 1  # it has failures at or above low
    assert json.loads(capsys.readouterr().out)["assessment"]["by_status"]["fail"] == 5
    assert main(["report", pair[0], "--format", "csv", "--fail-on", "critical"]) == 1
    assert capsys.readouterr().out.startswith("rule_id,status")
    # the saved JSON is reproduced exactly: nothing is judged again
    assert main(["report", pair[0], "--format", "json"]) == 1
    assert capsys.readouterr().out == Path(pair[0]).read_text(encoding="utf-8")


def test_report_applies_suppressions(
    pair: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = tmp_path / "s.toml"
    sup.write_text('[[suppress]]\nrule = "PF-RCPT-003"\ntarget = "*"\nreason = "known"\n', encoding="utf-8")
    assert main(["report", pair[0], "--format", "json", "--suppressions", str(sup)]) == 1
    doc = json.loads(capsys.readouterr().out)
    pf = next(f for f in doc["findings"] if f["rule_id"] == "PF-RCPT-003")
    assert pf["status"] == "suppressed" and pf["note"] == "known"


def test_diff_text_lists_new_fixed_unchanged(
    pair: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "diff", *pair]) == 1
    out = capsys.readouterr().out
    new_part = out.split("NEW failures (2):")[1].split("FIXED")[0]
    assert "SMTP-RELAY-001" in new_part and "PF-DSN-002" in new_part
    fixed_part = out.split("FIXED (1):")[1].split("UNCHANGED")[0]
    assert "PF-RCPT-003" in fixed_part and "pass" in fixed_part
    assert "UNCHANGED failures (4):" in out
    assert "summary: 2 new, 1 fixed, 4 unchanged" in out


def test_diff_json_and_fail_on(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "diff", *pair, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == {"new": 2, "fixed": 1, "unchanged": 4}
    assert [f["rule_id"] for f in doc["new_fails"]] == ["SMTP-RELAY-001", "PF-DSN-002"]
    assert doc["fixed"][0]["now"] == "pass"
    # reversed: PF-RCPT-003 fails again, the relay is fixed
    assert main(["report", "diff", pair[1], pair[0], "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["summary"]["new"], doc["summary"]["fixed"]) == (1, 2)
    # the same report twice: nothing new, exit 0 although failures remain
    assert main(["report", "diff", pair[0], pair[0], "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == {"new": 0, "fixed": 0, "unchanged": 5}
    assert main(["report", "diff", *pair, "--fail-on", "critical"]) == 1  # the new relay is critical


def test_diff_threshold_ignores_lower_new_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = golden_report()
    new = judged((*old.findings, Finding("PF-DSN-002", Status.FAIL, Severity.LOW, "main.cf", "m")))
    a, b = _save(tmp_path / "a.json", old), _save(tmp_path / "b.json", new)
    assert main(["report", "diff", a, b, "--fail-on", "medium"]) == 0
    assert main(["report", "diff", a, b, "--fail-on", "low"]) == 1
    capsys.readouterr()


def test_usage_errors(pair: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "diff", pair[0]]) == 2
    assert "needs OLD.json and NEW.json" in capsys.readouterr().err
    assert main(["report", "diff", *pair, "--format", "sarif"]) == 2
    assert "text or json" in capsys.readouterr().err
    assert main(["report", pair[0], pair[1]]) == 2
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    # a file really named "diff" is still re-rendered when given alone
    _save(tmp_path / "diff", golden_report())
    assert main(["report", str(tmp_path / "diff"), "--format", "json", "--fail-on", "critical"]) == 1


def test_diff_applies_suppressions_to_both_sides(
    pair: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = tmp_path / "s.toml"
    sup.write_text(
        '[[suppress]]\nrule = "SMTP-RELAY-001"\ntarget = "mx2.*"\nreason = "lab host"\n'
        '[[suppress]]\nrule = "PF-DSN-002"\ntarget = "main.cf"\nreason = "wanted"\n',
        encoding="utf-8",
    )
    assert main(["report", "diff", *pair, "--format", "json", "--suppressions", str(sup)]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == {"new": 0, "fixed": 1, "unchanged": 4}


def _edited(tmp_path: Path) -> tuple[str, dict[str, object]]:
    """The golden report saved, then edited by hand: the plan's first step and the headline."""
    doc = json.loads(report_to_json(golden_report()))
    step = doc["plan"][0]["steps"][0]
    step["text"] = "EDITED: ask the mail team for the recipient export."
    step["commands"][0]["line"] = "edited-command --now"
    doc["plan"][0]["title"] = "Edited root cause title"
    doc["compliance"][0]["status"] = "pass"
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path), doc


@pytest.mark.parametrize("fmt", ["markdown", "html", "text"])
def test_rerender_shows_the_edited_plan_not_a_recomputed_one(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _edited(tmp_path)
    main(["report", path, "--format", fmt])
    out = capsys.readouterr().out
    assert "EDITED: ask the mail team for the recipient export." in out
    assert "edited-command --now" in out and "Edited root cause title" in out
    assert (
        "Point relay_recipient_maps at a table" not in out.split("## Findings")[0].split('id="findings"')[0]
    )
    if fmt == "markdown":
        assert "| RFC 5321 §6.1 |" in out and "✅ pass" in out.split("| RFC 5321 §6.1 |")[1].split("\n")[0]


def test_exit_code_is_the_saved_assessments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, doc = _edited(tmp_path)
    assessment = doc["assessment"]
    assert isinstance(assessment, dict)
    assessment.update(verdict="inconclusive", exit_code=3, summary="EDITED headline")
    Path(path).write_text(json.dumps(doc), encoding="utf-8")
    assert main(["report", path, "--format", "html"]) == 3
    assert "EDITED headline" in capsys.readouterr().out
    # --fail-on judges the headline again, and only the headline: the edited plan stays
    assert main(["report", path, "--format", "markdown", "--fail-on", "critical"]) == 1
    out = capsys.readouterr().out
    assert "**Verdict: FAIL** — 2 findings at or above critical" in out and "EDITED headline" not in out
    assert "EDITED: ask the mail team" in out


def test_fail_on_above_every_failure_gives_a_passing_headline(
    pair: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    only_low = judged([f for f in golden_report().findings if f.severity in (Severity.LOW, Severity.INFO)])
    path = Path(pair[0]).with_name("low.json")
    _save(path, only_low)
    assert main(["report", str(path), "--format", "html"]) == 1
    assert 'verdict-fail"' in capsys.readouterr().out
    assert main(["report", str(path), "--format", "html", "--fail-on", "medium"]) == 0
    page = capsys.readouterr().out
    assert 'verdict-fail"' not in page and "exit code 0" in page


def test_reads_a_version_1_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(report_to_json(golden_report()))
    v1 = {
        "schema": "backscatter-audit/1",
        "run": doc["run"],
        "summary": {"findings": 9, "by_status": doc["assessment"]["by_status"]},
        "findings": [{**f, "remediation": f["remediation"]["text"]} for f in doc["findings"]],
        "observations": [],
    }
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1), encoding="utf-8")
    assert main(["report", str(path), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == "backscatter-audit/2" and out["assessment"]["verdict"] == "fail"
    pf = next(f for f in out["findings"] if f["rule_id"] == "PF-RCPT-003")
    assert pf["remediation"] == {
        "text": "Point relay_recipient_maps at a table of the valid addresses.",
        "commands": [],
    }
    assert out["plan"] and {r["id"] for r in out["rules"]} == {f["rule_id"] for f in out["findings"]}
