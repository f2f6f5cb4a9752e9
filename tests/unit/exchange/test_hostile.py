"""Hostile Exchange exports: each is a one-line error naming the file (and line), exit 2, never a
traceback — including when the report is written, in every output format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.collect import exchange
from auditor.collect.exchange.clixml import MAX_DEPTH
from auditor.model import InputError

NS = 'xmlns="http://schemas.microsoft.com/powershell/2004/04"'
TN = '<TN RefId="0"><T>Microsoft.Exchange.Data.Directory.SystemConfiguration.AcceptedDomain</T></TN>'


def _domain_xml(name: str = "a.example", extra: str = "") -> str:
    return (
        f'<Objs Version="1.1.0.1" {NS}>\n<Obj RefId="0">{TN}<Props>\n'
        f'<S N="Name">{name}</S>\n<S N="DomainName">a.example</S>\n<S N="DomainType">Authoritative</S>\n'
        f"{extra}</Props></Obj>\n</Objs>\n"
    )


def _json(value: str) -> str:
    return '[\n{"Name": "x", "DomainName": "a.example",\n "DomainType": ' + value + "}\n]\n"


CASES = {
    "bigint.json": (_json("9" * 5000), "bigint.json:3: number with more than 4300 digits"),
    "negbigint.json": (_json("-" + "9" * 4400), "negbigint.json:3: number with more than 4300 digits"),
    "surrogate.json": (
        _json('"\\ud800"'),
        "surrogate.json:3: string with an unpaired UTF-16 surrogate (\\ud800)",
    ),
    "lowsurrogate.json": (
        '[{"Name": "x", "DomainName": "a.example", "\\uDC00": 1}]',
        "lowsurrogate.json:1: string with an unpaired UTF-16 surrogate (\\udc00)",
    ),
    "surrogate.xml": (
        _domain_xml("_xD800_"),
        "surrogate.xml:2: text with an unpaired UTF-16 surrogate (_xD800_)",
    ),
    "deep.xml": (
        _domain_xml(
            extra='<Obj N="X"><LST>' + "<Obj><LST>" * 20_000 + "</LST></Obj>" * 20_000 + "</LST></Obj>"
        ),
        f"deep.xml:6: XML nested deeper than {MAX_DEPTH} elements",
    ),
    "commented-doctype.xml": (
        '<!-- <Objs -->\n<!DOCTYPE Objs [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>\n'
        + _domain_xml("&b;"),
        "commented-doctype.xml:2: XML with a DOCTYPE/ENTITY declaration refused",
    ),
    "late-doctype.xml": (
        _domain_xml() + "<!DOCTYPE x>",
        "late-doctype.xml:8: ",  # after the root: expat calls it junk, either way refused
    ),
    "external.xml": (
        '<!DOCTYPE Objs SYSTEM "http://198.51.100.1/x.dtd">\n' + _domain_xml(),
        "external.xml:1: XML with a DOCTYPE/ENTITY declaration refused",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_export_is_a_one_line_input_error(tmp_path: Path, name: str) -> None:
    text, expected = CASES[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        exchange.collect([str(path)])
    assert str(err.value).startswith(f"{tmp_path}/{expected}"), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "markdown", "html"])
@pytest.mark.parametrize("name", ["bigint.json", "surrogate.json", "surrogate.xml", "deep.xml"])
def test_cli_exit_2_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, fmt: str
) -> None:
    path = tmp_path / name
    path.write_text(CASES[name][0], encoding="utf-8")
    assert main(["lint", "exchange", "--format", fmt, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("backscatter-audit: error: ") and "Traceback" not in err


def test_surrogate_pair_escapes_are_one_character(tmp_path: Path) -> None:
    # An emoji written by Export-Clixml as its two escaped UTF-16 halves is valid text.
    path = tmp_path / "Get-AcceptedDomain.xml"
    path.write_text(_domain_xml("x_xD83D__xDE00_y"), encoding="utf-8")
    (out,) = [o for o in exchange.collect([str(path)]) if hasattr(o, "objects")]
    assert out.objects[0].props["Name"].value == "x\U0001f600y"  # type: ignore[attr-defined]


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    levels = (MAX_DEPTH - 6) // 2  # Objs > Obj > Props > Obj > LST > (Obj > LST)* > S
    inner = (
        '<Obj N="Deep"><LST>'
        + "<Obj><LST>" * levels
        + "<S>leaf</S>"
        + "</LST></Obj>" * levels
        + "</LST></Obj>"
    )
    path = tmp_path / "Get-AcceptedDomain.xml"
    path.write_text(_domain_xml(extra=inner), encoding="utf-8")
    (out,) = [o for o in exchange.collect([str(path)]) if hasattr(o, "objects")]
    assert out.objects[0].props["Deep"].items == ("leaf",)  # type: ignore[attr-defined]


def test_inputs_of_one_run_are_capped_in_bytes_and_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = tmp_path / "Get-AcceptedDomain.xml"
    one.write_text(_domain_xml(), encoding="utf-8")
    size = one.stat().st_size
    two = tmp_path / "two.xml"
    two.write_text(_domain_xml(), encoding="utf-8")
    monkeypatch.setattr(exchange, "MAX_BYTES", size + 10)
    exchange.collect([str(one)])  # within the cap
    with pytest.raises(InputError, match=f"exports total {2 * size} bytes, more than the {size + 10}"):
        exchange.collect([str(one), str(two)])
    monkeypatch.setattr(exchange, "MAX_BYTES", 10**9)
    rows = ",".join(f'{{"Identity": "u{i}", "AutoReplyState": "Enabled"}}' for i in range(30))
    many = tmp_path / "many.json"
    many.write_text(f"[{rows}]", encoding="utf-8")
    monkeypatch.setattr(exchange, "MAX_OBJECTS", 29)
    with pytest.raises(InputError, match="more than 29 objects"):
        exchange.collect([str(many)])


def test_fifo_and_device_exports_are_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.json")
    for path in (str(tmp_path / "pipe.json"), "/dev/zero"):
        with pytest.raises(InputError, match="not a regular file"):
            exchange.collect([path])
