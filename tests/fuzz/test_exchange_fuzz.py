"""Fuzz the three Exchange export readers: generated and mutated exports either parse or give an
InputError naming the file; nothing else escapes, and whatever parses can be written to a report.

Bounded: 40-60 examples per property, no deadline (the machine is shared), no example database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.collect import exchange
from auditor.collect.exchange.clixml import parse_clixml
from auditor.collect.exchange.formatlist import parse_format_list
from auditor.collect.exchange.jsonform import parse_json
from auditor.collect.exchange.parsed import ParsedFile
from auditor.model import InputError
from tests.unit.exchange.helpers import FIXTURES

FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NS = "http://schemas.microsoft.com/powershell/2004/04"
# Property names the readers know, so generated objects reach the cmdlet inference and the values.
NAMES = ["Name", "DomainName", "DomainType", "Identity", "Enabled", "RecipientValidationEnabled",
         "Bindings", "RemoteIPRanges", "PermissionGroups", "AuthMechanism", "MaxMessageSize",
         "NDREnabled", "AllowedOOFType", "Value", "Address", "LowerBound", "UpperBound", "Port"]  # fmt: skip
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)  # includes lone surrogates


def _writable(parsed: ParsedFile) -> None:
    """Every text a report would carry encodes as UTF-8 (a lone surrogate would not)."""
    for out in parsed.outputs:
        out.cmdlet.encode("utf-8")
        for obj in out.objects:
            for key, v in obj.props.items():
                key.encode("utf-8")
                for text in (v.value or "", *v.items):
                    text.encode("utf-8")


def _parses_or_input_error(parse: Any, text: str, path: str) -> None:
    try:
        parsed = parse(text, path)
    except InputError as exc:
        assert exc.path == path and "\n" not in str(exc)
        return
    _writable(parsed)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False)
    | TEXT
    | st.sampled_from(["/Date(1700000000000)/", "/Date(-99999999999999999)/", "...", "{a, b...}"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES) | TEXT, inner, max_size=5)
    ),
    max_leaves=25,
)
objects = st.dictionaries(st.sampled_from(NAMES), json_values, min_size=1, max_size=8)


@FUZZ
@given(
    rows=st.lists(objects, max_size=5),
    wrap=st.sampled_from(["list", "one", "value", "collector"]),
    big=st.sampled_from(["", "9" * 4301, "-" + "1" * 5000, "1e99999", "0." + "1" * 5000]),
)
def test_json_exports(rows: list[dict[str, Any]], wrap: str, big: str) -> None:
    doc: Any = {
        "list": rows,
        "one": rows[0] if rows else {},
        "value": {"value": rows, "Count": len(rows)},
    }.get(wrap)
    if wrap == "collector":
        doc = {
            "schema": "backscatter-audit-exchange/1",
            "manifest": {"cmdlets": []},
            "data": {"Get-AcceptedDomain": rows},
        }
    text = json.dumps(doc, indent=1)  # ensure_ascii: lone surrogates become "\ud800" escapes
    if big and rows:
        text = text.replace("{", '{"MaxMessageSize": ' + big + ",", 1)
    _parses_or_input_error(parse_json, text, "f.json")


def _escape(draw: Any) -> str:
    return draw(
        st.sampled_from(
            ["", "_x000A_", "_xD800_", "_xDC00_", "_xD83D__xDE00_", "_x0000_", "_x005F_", "_xZZZZ_"]
        )
    )


@st.composite
def clixml_value(draw: Any, depth: int = 0) -> str:
    name = draw(st.sampled_from(NAMES))
    tag = draw(st.sampled_from(["S", "B", "I32", "I64", "Nil", "TS", "Ref", "Obj", "DT", "Db", "Weird"]))
    text = draw(
        st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_characters="<&"), max_size=12)
    )
    text += _escape(draw)
    if tag == "Obj" and depth < 6:
        inner = "".join(draw(st.lists(clixml_value(depth + 1), max_size=3)))
        kind = draw(st.sampled_from(["LST", "IE", "DCT", "ToString", "MS"]))
        body = f"<ToString>{text}</ToString>" if kind == "ToString" else f"<{kind}>{inner}</{kind}>"
        ref = draw(st.sampled_from(["", ' RefId="1"', ' RefId="2"']))
        return f'<Obj N="{name}"{ref}>{body}</Obj>'
    if tag == "Ref":
        return f'<Ref N="{name}" RefId="{draw(st.sampled_from(["1", "2", "9"]))}" />'
    if tag == "Nil":
        return f'<Nil N="{name}" />'
    return f'<{tag} N="{name}">{text}</{tag}>'


@FUZZ
@given(
    objs=st.lists(st.lists(clixml_value(), max_size=6), max_size=4),
    prefix=st.sampled_from(
        ["", '<?xml version="1.0" encoding="utf-16"?>', "<!-- <Objs -->", "<!DOCTYPE Objs>"]
    ),
    type_name=st.sampled_from(["AcceptedDomain", "ReceiveConnector", "Unknown", "RemoteDomain"]),
)
def test_clixml_exports(objs: list[list[str]], prefix: str, type_name: str) -> None:
    tn = f'<TN RefId="0"><T>Microsoft.Exchange.Data.{type_name}</T></TN>'
    tnref = '<TNRef RefId="0" />'
    body = "".join(
        f'<Obj RefId="{i}">{tn if i == 0 else tnref}<Props>{"".join(props)}</Props></Obj>'
        for i, props in enumerate(objs)
    )
    _parses_or_input_error(
        parse_clixml, f'{prefix}<Objs Version="1.1.0.1" xmlns="{NS}">{body}</Objs>', "Get-X.xml"
    )


FL_LINE = st.one_of(
    st.tuples(st.sampled_from(NAMES), TEXT.filter(lambda t: "\n" not in t and "\r" not in t)).map(
        lambda kv: f"{kv[0]:<24}: {kv[1]}"
    ),
    st.sampled_from(
        ["", "   continued value", "{a, b, c...}",
         "PS C:\\> Get-AcceptedDomain | fl", "[PS] C:\\>Get-RemoteDomain",
         "Name  DomainName", "----  ----------", "x     y", "WARNING: something", "-" * 300,
         "Name : " + "v" * 5000, ": no key", "    : "]
    ),
)  # fmt: skip


@FUZZ
@given(lines=st.lists(FL_LINE, max_size=40))
def test_format_list_pastes(lines: list[str]) -> None:
    _parses_or_input_error(parse_format_list, "\n".join(lines), "paste.txt")


SEEDS = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix in (".json", ".xml", ".txt"))


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=20),
    cut=st.floats(0.05, 1),
)
def test_mutated_fixture_files(
    tmp_path_factory: Any, seed: Path, flips: list[tuple[float, int]], cut: float
) -> None:
    data = bytearray(seed.read_bytes())
    data = data[: max(1, int(cut * len(data)))]
    for where, value in flips:
        data[int(where * len(data))] = value
    path = tmp_path_factory.mktemp("ex") / seed.name
    path.write_bytes(bytes(data))
    try:
        parsed = exchange.read_file(str(path))
    except InputError as exc:
        assert exc.path == str(path)
        return
    _writable(parsed)


def test_hand_written_hostile_exports(tmp_path: Path) -> None:
    cases = {
        "huge-line.txt": "Name : " + "x" * 2_000_000 + "\n",
        "many-objects.txt": ("Name : a\nDomainName : a.example\n\n" * 20_000),
        "wide-table.txt": "Name " + "   Col" * 5000 + "\n" + "---- " + "   ---" * 5000 + "\n",
        "brace-bomb.txt": "Name : " + "{" * 100_000 + "\n",
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep-object.json": '[{"Name": ' + '{"Value": ' * 900 + "1" + "}" * 900 + "}]",
        "many-keys.json": json.dumps([{f"K{i}": i for i in range(50_000)} | {"DomainName": "a"}]),
        "entity.xml": '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><Objs xmlns="'
        + NS
        + '">&e;</Objs>',
        "utf16-nobom.txt": "Name : x\r\n".encode("utf-16-le").decode("latin-1"),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="latin-1" if name.startswith("utf16") else "utf-8")
        try:
            parsed = exchange.read_file(str(path))
        except InputError as exc:
            assert exc.path == str(path), name
            continue
        _writable(parsed)
