"""`lint postfix` on bad input: one line on stderr naming the file (and line), exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli import main


def _dir(tmp_path: Path, main_cf: bytes | None) -> Path:
    d = tmp_path / "cfg"
    d.mkdir()
    if main_cf is not None:
        (d / "main.cf").write_bytes(main_cf)
    return d


@pytest.mark.parametrize(
    ("content", "want_line"),
    [
        (b"myhostname = mx.example.test\n\x00\x01\x02\xff binary\n", True),  # a binary file
        (b"compatibility_level = 3.6\nrelay_domains = ${mydomain\n", True),  # unterminated ${
        (b"compatibility_level = 3.6\nthis line has no equals sign\n", True),
        (b"myhostname = " + b"x" * 10_000_000 + b"\nnot a parameter line\n", True),  # a 10 MB line
        (None, False),  # a directory with no main.cf
    ],
    ids=["binary", "unterminated", "no-equals", "10MB-line", "no-main.cf"],
)
def test_one_line_error_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, want_line: bool
) -> None:
    d = _dir(tmp_path, content)
    assert main(["lint", "postfix", str(d), "--no-postconf", "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # machine format: nothing but a report on stdout, and there is none
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert str(d) in lines[0]
    if want_line:
        assert "main.cf:" in lines[0] and lines[0].split("main.cf:")[1][:1].isdigit()


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["lint", "postfix", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]
