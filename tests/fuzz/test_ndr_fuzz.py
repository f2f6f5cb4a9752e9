"""Fuzz the NDR analyser: mutated corpus messages and random bytes never raise and stay fast.

Bounded: 50-60 examples per property, no example database written. No wall-clock assertions (the
machine is shared): the analyser's limits bound the work, its notes say what was skipped, and
benchmarks/ndr_bench.py measures the time.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.bounces import analyse_bytes
from auditor.observations.ndr import KINDS, RETURNED
from tests.conftest import CORPUS
from tests.unit.bounces import messages as m

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seeds() -> list[bytes]:
    seeds = [
        m.dsn(),
        m.dsn(third="rfc822"),
        m.QMAIL,
        m.EXIM,
        m.SENDMAIL_USER_UNKNOWN,
        m.EXCHANGE_2003,
        m.AUTOREPLY,
        m.ARF,
        m.PLAIN,
    ]
    corpus = CORPUS / "ndr" / "sisimai" / "maildir" / "bsd"
    if corpus.is_dir():
        files = sorted(corpus.glob("*.eml"))
        seeds += [f.read_bytes() for f in files[:: max(1, len(files) // 40)]]
    return seeds


SEEDS = _seeds()


def _check(data: bytes) -> None:
    a = analyse_bytes(data, "fuzz")
    assert a.kind in KINDS
    assert a.returned in RETURNED
    for r in a.recipients:
        assert isinstance(r.address, str) and isinstance(r.status, str)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=40),
)
def test_byte_flips(seed: bytes, flips: list[tuple[float, int]]) -> None:
    data = bytearray(seed)
    for where, value in flips:
        data[int(where * len(data))] = value
    _check(bytes(data))


@FUZZ
@given(seed=st.sampled_from(SEEDS), cut=st.floats(0, 1))
def test_truncation(seed: bytes, cut: float) -> None:
    _check(seed[: int(cut * len(seed))])


@FUZZ
@given(seed=st.sampled_from(SEEDS), times=st.integers(1, 200), which=st.integers(0, 30))
def test_header_duplication(seed: bytes, times: int, which: int) -> None:
    head, sep, body = seed.partition(b"\r\n\r\n") if b"\r\n\r\n" in seed else seed.partition(b"\n\n")
    lines = head.splitlines(keepends=True) or [b"X: y\n"]
    line = lines[which % len(lines)]
    _check(b"".join(lines) + line * times + sep + body)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    depth=st.integers(1, 60),
    ctype=st.sampled_from(
        ["multipart/mixed", "multipart/report; report-type=delivery-status", "message/rfc822"]
    ),
)
def test_nested_multiparts(seed: bytes, depth: int, ctype: str) -> None:
    data = seed
    for i in range(depth):
        if ctype == "message/rfc822":
            data = b"Content-Type: message/rfc822\r\n\r\n" + data
        else:
            b = b"n%d" % i
            data = (
                b"Content-Type: "
                + ctype.encode()
                + b'; boundary="'
                + b
                + b'"\r\n\r\n--'
                + b
                + b"\r\n"
                + data
                + b"\r\n--"
                + b
                + b"--\r\n"
            )
    _check(data)


@settings(max_examples=60, deadline=None, database=None)
@given(st.binary(max_size=20000))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=50, deadline=None, database=None)
@given(
    st.text(
        alphabet=st.sampled_from(list('From:<>@ ;\r\n-="Content-Type multipart/report boundary=x')),
        max_size=5000,
    )
)
def test_mime_like_noise(text: str) -> None:
    _check(text.encode())


def _nested_bomb(levels: int) -> bytes:
    out = [b"From: MAILER-DAEMON@bomb.example\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"]
    for i in range(levels):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\nhello\r\n")
    out.extend(b"--b%d--\r\n" % i for i in reversed(range(levels)))
    return b"".join(out)


@pytest.mark.parametrize("levels", [500, 1500, 10_000])
def test_mime_bomb_nested(levels: int) -> None:
    data = _nested_bomb(levels)
    a = analyse_bytes(data, "bomb")
    assert a.kind in KINDS
    assert a.notes  # the analyser says what it skipped


def test_mime_bomb_flat() -> None:
    part = b"--x\r\nContent-Type: text/plain\r\n\r\nhi nobody@victim.example\r\n"
    data = b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n' + part * 10_000 + b"--x--\r\n"
    a = analyse_bytes(data, "flat")
    assert any("MIME parts" in n for n in a.notes)


_HEAD = (
    b"From: MAILER-DAEMON@x.example\r\nSubject: Undelivered Mail\r\n\r\nThe following addresses failed:\r\n"
)


@pytest.mark.parametrize(
    "data",
    [
        _HEAD + b"a@b.example " * 1_500_000,  # 18 MB of addresses
        _HEAD + b"x" * 19_000_000,  # one 19 MB line
        _HEAD + (b"a" * 63 + b"!") * 200_000,  # long almost-local-parts (regex work)
        b"X-A: b\r\n" * 1_000_000 + b"\r\nbody",  # header flood
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\n' + b"X-A: b\r\n" * 1_000_000,
        b"Content-Type: text/html\r\n\r\n" + b"<a " * 3_000_000,
    ],
    ids=["addresses", "long-line", "local-parts", "header-flood", "part-header-flood", "html-tags"],
)
def test_hostile_large_messages_are_bounded(data: bytes) -> None:
    _check(data)
