"""Boundary renaming (auditor.bounces.boundaries): the parsed structure and texts never change."""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.bounces.boundaries import _TOKEN, Renamed, rename
from tests.conftest import CORPUS, need


def _shape(msg: Message, unmap: Renamed | None = None) -> object:
    """Everything the parser produced, with renamed boundaries mapped back."""

    def back(text: object) -> object:
        return unmap.unmap(text) if unmap is not None and isinstance(text, str) else text

    payload = msg.get_payload()
    body: object
    if isinstance(payload, list):
        body = [_shape(p, unmap) if isinstance(p, Message) else back(p) for p in payload]
    else:
        body = back(payload)
    return (
        [(back(k), back(str(v))) for k, v in msg.items()],
        body,
        back(msg.preamble),
        back(msg.epilogue),
        [type(d).__name__ for d in msg.defects],
    )


def _same_parse(data: bytes) -> Renamed:
    renamed = rename(data)
    before = email.message_from_bytes(data, policy=email.policy.compat32)
    after = email.message_from_bytes(renamed.data, policy=email.policy.compat32)
    assert _shape(after, renamed) == _shape(before)
    return renamed


def test_corpus_messages_parse_the_same() -> None:
    roots = [CORPUS / "ndr" / "sisimai" / "maildir", CORPUS / "ndr" / "bounceparser" / "messages"]
    need(all(r.is_dir() for r in roots), "the NDR corpora")
    files = [f for r in roots for f in sorted(Path(r).rglob("*")) if f.is_file()]
    renamed = sum(bool(_same_parse(f.read_bytes()).tokens) for f in files)
    assert len(files) == 719
    assert renamed >= 350  # most multipart messages are renamed (measured 397 of 514)


def _multipart(boundaries: list[str], texts: list[str], crlf: bool) -> bytes:
    nl = "\r\n" if crlf else "\n"
    inner = nl.join(
        [f'Content-Type: multipart/alternative; boundary="{boundaries[1]}"', ""]
        + [f"--{boundaries[1]}{nl}Content-Type: text/plain{nl}{nl}{t}" for t in texts]
        + [f"--{boundaries[1]}--", ""]
    )
    lines = [
        "From: a@example.org",
        f"Content-Type: multipart/mixed; boundary={boundaries[0]}",
        "",
        "preamble --" + boundaries[1],
        f"--{boundaries[0]}",
        "Content-Type: text/plain",
        "",
        f'quoted: x; boundary="{boundaries[1]}"{nl}--{boundaries[0]}x not a delimiter',
        f"--{boundaries[0]}",
        inner,
        f"--{boundaries[0]}--",
        "epilogue",
    ]
    return nl.join(lines).encode("utf-8", "surrogateescape")


_BCHARS = "0123456789abcXYZ'()+_,./:=?-"


@settings(max_examples=300, deadline=1000, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    boundaries=st.lists(st.text(_BCHARS, min_size=1, max_size=12), min_size=2, max_size=2),
    texts=st.lists(st.text("ab -=\n\r\"'" + _TOKEN.decode() + "0123Z", max_size=30), min_size=1, max_size=3),
    crlf=st.booleans(),
)
def test_generated_multiparts_parse_the_same(boundaries: list[str], texts: list[str], crlf: bool) -> None:
    _same_parse(_multipart(boundaries, texts, crlf))


def test_renames_and_maps_back() -> None:
    data = _multipart(["outer-1", "inner.2"], ["hello"], crlf=False)
    renamed = _same_parse(data)
    assert set(renamed.tokens.values()) == {"outer-1", "inner.2"}
    assert b"\n--outer-1\n" not in renamed.data and b"\n--inner.2--\n" not in renamed.data
    first = _TOKEN + b"0001Z"
    assert b"\n--" + first + b"\n" in renamed.data and b"boundary=" + first + b"\n" in renamed.data
    assert b"preamble --inner.2" in renamed.data  # not at the start of a line: not a delimiter
    assert renamed.unmap(f"see --{first.decode()}") == "see --outer-1"


def test_unsafe_forms_are_left_alone() -> None:
    base = _multipart(["outer-1", "inner.2"], ["hello"], crlf=False)
    for data in (
        base.replace(b"boundary=outer-1", b"boundary*=us-ascii''outer-1"),  # RFC 2231
        base.replace(b"boundary=outer-1", b"boundary=outer-1 junk"),  # not what the stdlib reads
        base.replace(b"inner.2", b"outer-1.2"),  # one boundary is a prefix of another
        base.replace(b"hello", b"he\rllo"),  # a lone CR ends a line for the parser
        base.replace(b"hello", _TOKEN + b"0001Z"),  # the token is in the message
        base.replace(b"text/plain", b"text/plain; charset=iso-2022-jp", 1),  # stateful charset
        base.replace(b"text/plain", b"text/plain; charset=utf-16", 1),  # not an ASCII superset
        base.replace(b"outer-1", b"outer=41"),  # "=41" would decode to "A" in quoted-printable
    ):
        renamed = _same_parse(data)
        assert renamed.tokens == {} and renamed.data == data
