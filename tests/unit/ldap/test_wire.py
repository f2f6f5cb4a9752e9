"""The hand-written BER reader: real encodings decode exactly, garbage ends as BerError (fuzzed),
and the openldap fast path folds entries exactly like the general path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.collect.ldap.accumulate import Accumulator
from auditor.collect.ldap.profiles import entry_facts, make_profile
from auditor.collect.ldap.search import PAGED_RESULTS_OID
from auditor.collect.ldap.wire import MAX_MESSAGE, BerError, _decode_done, _decode_entry, _message_end, _tlv


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def entry_message(msg_id: int, dn: str, attrs: dict[str, list[str]]) -> bytes:
    parts = b"".join(
        tlv(0x30, tlv(0x04, k.encode()) + tlv(0x31, b"".join(tlv(0x04, v.encode()) for v in vs)))
        for k, vs in attrs.items()
    )
    op = tlv(0x64, tlv(0x04, dn.encode()) + tlv(0x30, parts))
    return tlv(0x30, tlv(0x02, bytes([msg_id])) + op)


def done_message(code: int, diag: str, cookie: bytes | None) -> bytes:
    op = tlv(0x65, tlv(0x0A, bytes([code])) + tlv(0x04, b"") + tlv(0x04, diag.encode()))
    ctrl = b""
    if cookie is not None:
        value = tlv(0x30, tlv(0x02, b"\x00") + tlv(0x04, cookie))
        ctrl = tlv(0xA0, tlv(0x30, tlv(0x04, PAGED_RESULTS_OID.encode()) + tlv(0x04, value)))
    return tlv(0x30, tlv(0x02, b"\x05") + op + ctrl)


def decode(msg: bytes) -> tuple[int, int, int, int]:
    buf = bytearray(msg)
    end = _message_end(buf, 0)
    _, body, _ = _tlv(buf, 0)
    _, _, id_end = _tlv(buf, body)
    op, s, e = _tlv(buf, id_end)
    return op, s, e, end


def test_entry_roundtrip_with_long_lengths() -> None:
    vals = [f"user{i}@example.test" for i in range(20)]  # forces long-form lengths
    msg = entry_message(3, "uid=ü,dc=x", {"mail": vals, "objectClass": ["top"], "cn": ["x" * 300]})
    op, s, e, end = decode(msg)
    assert op == 0x64 and end == len(msg)
    dn, attrs = _decode_entry(bytearray(msg), s, e, frozenset({"mail", "cn"}))
    assert dn == "uid=ü,dc=x"
    assert attrs == {"mail": vals, "cn": ["x" * 300]}


@pytest.mark.parametrize("cookie", [b"abc", b"", None])
def test_done_with_paged_cookie(cookie: bytes | None) -> None:
    msg = done_message(4, "limit", cookie)
    op, s, e, end = decode(msg)
    assert op == 0x65
    assert _decode_done(bytearray(msg), s, e, end) == (4, "limit", cookie if cookie is not None else None)


def test_incomplete_and_oversized_messages() -> None:
    msg = entry_message(1, "cn=a", {"mail": ["a@x.test"]})
    assert _message_end(bytearray(msg[:-1]), 0) == -1  # wait for more bytes
    assert _message_end(bytearray(msg[:1]), 0) == -1
    with pytest.raises(BerError):
        _message_end(bytearray(b"\x04\x01a"), 0)
    huge = bytearray(b"\x30\x84") + (MAX_MESSAGE + 1).to_bytes(4, "big")
    with pytest.raises(BerError):
        _message_end(huge, 0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_entry_body_is_berror_or_data(data: bytes) -> None:
    try:
        dn, attrs = _decode_entry(bytearray(data), 0, len(data), frozenset({"mail"}))
    except BerError:
        return
    assert isinstance(dn, str) and all(isinstance(v, list) for v in attrs.values())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_done_body_is_berror_or_data(data: bytes) -> None:
    try:
        code, diag, cookie = _decode_done(bytearray(data), 0, len(data) // 2, len(data))
    except BerError:
        return
    assert isinstance(code, int) and isinstance(diag, str)
    assert cookie is None or isinstance(cookie, bytes)


ADDR = st.one_of(
    st.sampled_from(["a@x.test", "A@X.TEST", " b@y.test ", "@x.test", "nodomain", "", "c@", "d@x.test"]),
    st.from_regex(r"[a-c]{1,2}@(x|y|z)\.test", fullmatch=True),
)
ENTRY = st.dictionaries(
    st.sampled_from(["mail", "mailLocalAddress", "mailAlternateAddress"]), st.lists(ADDR, max_size=4)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ENTRY, max_size=8), st.sampled_from([(), ("x.test",), ("x.test", "y.test")]))
def test_fast_path_equals_general_path(
    entries: list[dict[str, list[str]]], accepted: tuple[str, ...]
) -> None:
    profile = make_profile("openldap")
    slow, fast = Accumulator(accepted), Accumulator(accepted)
    for n, attrs in enumerate(entries):
        dn = f"uid=u{n % 3},dc=x"  # the same DN may come back: duplicates are across DNs only
        slow.add(entry_facts(profile, dn, attrs))
        fast.add_plain(dn, attrs)
    assert fast.recipients == slow.recipients
    assert sorted(fast.duplicate_list(), key=repr) == sorted(slow.duplicate_list(), key=repr)
    assert sorted(fast.catch_alls, key=repr) == sorted(slow.catch_alls, key=repr)
    assert sorted(fast.out_of_domain, key=repr) == sorted(slow.out_of_domain, key=repr)
    assert fast.entries == slow.entries and fast.empty_domains() == slow.empty_domains()
