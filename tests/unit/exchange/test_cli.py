"""Bad input through the real CLI: one clear line naming the file and exit 2, or a report — never a
traceback, never a hang. Plus a bounded fuzz of the three parsers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.cli import main
from auditor.collect.exchange import read_file
from auditor.model import InputError
from tests.unit.exchange.helpers import files


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["lint", "exchange", *args, "--format", "json"])
    out, err = capsys.readouterr()
    return code, out, err


BAD_INPUTS: dict[str, bytes] = {
    "empty.json": b"",
    "blank.txt": b"\r\n  \r\n",
    "garbage.bin": bytes(range(256)) * 4,
    "garbage.txt": b"hello world\nthis is not an export\n",
    "broken.json": b'{"schema": "backscatter-audit-exchange/1", "manifest": ',
    "doctype.xml": b'<!DOCTYPE x [<!ENTITY a "b">]><Objs xmlns="http://schemas.microsoft.com/powershell/2004/04"/>',
    "other.xml": b"<html><body>not clixml</body></html>",
    "list-of-numbers.json": b"[1, 2, 3]",
    "utf16-garbage.txt": b"\xff\xfe" + "just some words\r\n".encode("utf-16-le"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_file(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_INPUTS[name])
    code, out, err = run([str(path)], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and "Traceback" not in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([str(tmp_path / "nope.json")], capsys)
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1


def test_utf16_crlf_format_list_paste_gives_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = files("onprem-bad", "format-list")
    assert Path(path).read_bytes()[:2] == b"\xff\xfe" and b"\r\x00\n\x00" in Path(path).read_bytes()
    code, out, err = run([path], capsys)
    doc = json.loads(out)
    assert code == 1  # failing findings at or above the default threshold
    assert {"EX-RELAY-001", "EX-RCPT-001"} <= {f["rule_id"] for f in doc["findings"] if f["status"] == "fail"}
    assert "Traceback" not in err


def test_depth_truncated_json_gives_inconclusive_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = [{"Identity": "RecipientFilterConfig", "Enabled": True, "ExternalMailEnabled": True,
            "RecipientValidationEnabled": "System.Collections.Hashtable"}]  # fmt: skip
    path = tmp_path / "rf.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out, _ = run([str(path)], capsys)
    found = {(f["rule_id"], f["status"]) for f in json.loads(out)["findings"]}
    assert ("EX-RCPT-001", "inconclusive") in found
    assert code == 3  # could not measure, nothing failed


def test_collector_flag_prints_existing_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "exchange", "--collector"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.endswith("Collect-BackscatterAudit.ps1") and Path(printed).is_file()


def test_good_configuration_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(files("onprem-good", "clixml"), capsys)
    statuses = {f["status"] for f in json.loads(out)["findings"]}
    assert statuses == {"pass"} and code == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from([b"", b"{", b"[", b"<Objs xmlns='http://schemas.microsoft.com/powershell/2004/04'>",
                            b"\xff\xfe", b"Identity : x\n", b"PS C:\\> Get-AcceptedDomain\n"]),
    body=st.binary(max_size=400),
)  # fmt: skip
def test_fuzz_parsers_never_crash(tmp_path: Path, prefix: bytes, body: bytes) -> None:
    path = tmp_path / "fuzz"
    path.write_bytes(prefix + body)
    try:
        parsed = read_file(str(path))
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        assert parsed.outputs
