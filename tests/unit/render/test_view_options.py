"""The common view options through the real CLI: --quiet, --verbose, --color, --min-severity,
--exit-zero; colour never reaches a file or a machine format; JSON keeps every finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.cli.common import terminal_width, use_color
from auditor.observations import KINDS
from auditor.serialize import report_to_json
from tests.unit.render.fixtures import GoldenProbe, golden_report


@pytest.fixture
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(KINDS, GoldenProbe.kind, GoldenProbe)
    monkeypatch.delenv("NO_COLOR", raising=False)
    path = tmp_path / "r.json"
    path.write_text(report_to_json(golden_report()), encoding="utf-8")
    return str(path)


def test_exit_zero_and_min_severity(saved: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", saved]) == 1
    assert main(["report", saved, "--exit-zero"]) == 0
    capsys.readouterr()
    assert main(["report", saved, "--min-severity", "critical", "--exit-zero"]) == 0
    out = capsys.readouterr().out
    assert "== CRITICAL (2) ==" in out and "== HIGH" not in out and "DNS-NULLMX-001" not in out
    assert main(["report", saved, "--format", "json", "--min-severity", "critical"]) == 1
    assert len(json.loads(capsys.readouterr().out)["findings"]) == 9  # the JSON keeps everything


def test_exit_zero_keeps_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    assert main(["report", str(bad), "--exit-zero"]) == 2


def test_quiet_and_verbose(
    saved: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    main(["report", saved, "-q"])
    quiet = capsys.readouterr().out
    main(["report", saved, "-v"])
    verbose = capsys.readouterr().out
    assert quiet.startswith("verdict: FAIL") and len(quiet.splitlines()) < 20
    assert "| S: 220 mx2.example.com ESMTP" in verbose
    assert max(len(line) for line in (quiet + verbose).splitlines()) <= 60
    assert main(["report", saved, "-q", "-v"]) == 2  # one or the other
    assert "not allowed with" in capsys.readouterr().err


def test_colour_only_in_text_on_stdout(
    saved: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["report", saved])  # stdout is not a terminal here: auto means none
    assert "\033[" not in capsys.readouterr().out
    main(["report", saved, "--color", "always"])
    assert "\033[31mfail\033[0m" in capsys.readouterr().out
    target = tmp_path / "r.txt"
    main(["report", saved, "--color", "always", "--output", str(target)])
    assert "\033[" not in target.read_text(encoding="utf-8")
    main(["report", saved, "--color", "always", "--format", "markdown"])
    assert "\033[" not in capsys.readouterr().out


def test_colour_and_width_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not use_color("always", "json", None)
    assert not use_color("always", "text", "report.txt")
    assert use_color("always", "text", "-")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color("auto", "text", None)
    monkeypatch.setenv("COLUMNS", "72")
    assert terminal_width() == 72
    monkeypatch.delenv("COLUMNS")
    assert terminal_width("report.txt") == 80
