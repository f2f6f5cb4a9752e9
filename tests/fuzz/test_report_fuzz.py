"""Saved reports as hostile input: `report FILE` and `report diff OLD NEW` exit 2 with one line.

The loader is ``auditor.serialize.load_report``; it reads through :func:`auditor.safeio.load_json`
(a regular file with a size cap, integers past ``int_max_str_digits`` and unpaired surrogates
refused as InputErrors). The safeio tests below pin that helper's own behaviour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.cli import main
from auditor.model import InputError
from auditor.safeio import load_json, loads, read_regular

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "reports" / "examples" / "report.json"


def _report_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def _hostile(kind: str) -> str:
    doc = json.loads(_report_text())
    text = json.dumps(doc, indent=2)
    target = json.dumps(doc["findings"][0]["target"])
    if kind == "bigint":
        return text.replace('"findings": [', '"padding": ' + "9" * 5000 + ',\n  "findings": [', 1)
    if kind == "surrogate":
        return text.replace(target, '"\\ud800 mx"', 1)
    raise AssertionError(kind)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["report", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("kind", ["bigint", "surrogate"])
@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_report_of_hostile_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, fmt: str
) -> None:
    path = tmp_path / "r.json"
    path.write_text(_hostile(kind), encoding="utf-8")
    code, err = _run(capsys, "--format", fmt, str(path))
    assert code == 2 and err.count("\n") == 1 and str(path) in err


@pytest.mark.parametrize("kind", ["bigint", "surrogate"])
def test_report_diff_of_hostile_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "new.json"
    path.write_text(_hostile(kind), encoding="utf-8")
    code, err = _run(capsys, "diff", str(EXAMPLE), str(path))
    assert code == 2 and err.count("\n") == 1 and str(path) in err


def test_report_of_a_fifo_is_exit_2(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # a plain open() waits for a writer forever: run it where it can be killed
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "auditor", "report", str(tmp_path / "pipe")],
        capture_output=True, text=True, env=env, timeout=10,
    )  # fmt: skip
    assert r.returncode == 2 and "not a regular file" in r.stderr


def test_valid_report_still_renders(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, str(EXAMPLE))
    assert code in (0, 1, 3) and err == ""


# -- the helper the loader should use -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ('{\n"a": ' + "1" * 4301 + "}", "number with more than 4300 digits", 2),
        ('{\n"a": -' + "1" * 4301 + "}", "number with more than 4300 digits", 2),
        ('{"a":\n\n "\\ud800"}', "unpaired UTF-16 surrogate (\\ud800)", 3),
        ('{"\\uDFFF": 1}', "unpaired UTF-16 surrogate (\\udfff)", 1),
        ('{"a": [' * 100_000 + "]}" * 100_000, "JSON nested too deeply", None),
        ('{"a": 1,}', "not valid JSON", 1),
    ],
)
def test_loads_refuses_with_a_line(text: str, message: str, line: int | None) -> None:
    with pytest.raises(InputError) as err:
        loads(text, "r.json")
    assert message in err.value.message and err.value.line == line and err.value.path == "r.json"


def test_loads_keeps_valid_values() -> None:
    assert loads('{"a": ' + "7" * 4300 + ', "e": "\\ud83d\\ude00"}', "r.json") == {
        "a": int("7" * 4300),
        "e": "\U0001f600",
    }


def test_load_json_regular_files_only_and_capped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match="not a regular file"):
        load_json(str(tmp_path / "pipe"))
    with pytest.raises(InputError, match="not a regular file"):
        load_json("/dev/zero")
    (tmp_path / "big.json").write_bytes(b"[" + b"0," * 1000 + b"0]")
    with pytest.raises(InputError, match="file too large"):
        load_json(str(tmp_path / "big.json"), max_bytes=1000)
    (tmp_path / "bad.json").write_bytes(b'{"a":\n"\xff"}')
    with pytest.raises(InputError, match="not UTF-8") as err:
        load_json(str(tmp_path / "bad.json"))
    assert err.value.line == 2
    assert read_regular(str(tmp_path / "bad.json"), 100) == b'{"a":\n"\xff"}'


FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    cut=st.floats(0, 1),
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(b'{}[]",:0\\u9e-')), max_size=8
    ),
)
def test_mutated_report_never_escapes(
    tmp_path_factory: pytest.TempPathFactory, cut: float, flips: list
) -> None:
    data = bytearray(_report_text().encode()[: max(1, int(cut * EXAMPLE.stat().st_size))])
    for where, value in flips:
        data[int(where * len(data))] = value
    path = tmp_path_factory.mktemp("r") / "r.json"
    path.write_bytes(bytes(data))
    # main() turns InputError into 2; anything else escaping (a traceback) fails the test.
    out = path.with_name("out.json")
    assert main(["report", "--format", "json", "--output", str(out), str(path)]) in (0, 1, 2, 3)
