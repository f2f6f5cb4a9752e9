"""Fuzz the NDR analyser with generated MIME: random trees of multipart, message/rfc822,
delivery-status and text parts, with hostile headers, boundaries, charsets and encodings.

``analyse_bytes`` must never raise and must return a closed-set result; hand-written bombs are
bounded by the parser's limits (notes say what was skipped). 60 examples, no deadline.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.bounces import analyse_bytes
from auditor.observations.ndr import KINDS, RETURNED

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADER_VALUE = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from(
        [b"=?utf-8?b?w6k=?=", b"=?bogus?q?x?=", b"=?utf-8?q?", b"<>", b"<bsa-abc@sink.test>", b"\xff\xfe"]
    ),
)
CHARSET = st.sampled_from(["utf-8", "us-ascii", "iso-8859-1", "utf-16", "x-unknown", "utf-7", '"', ""])
CTE = st.sampled_from(["", "base64", "quoted-printable", "7bit", "8bit", "x-uuencode", "bogus"])


def _headers(draw: Any, ctype: str, boundary: str = "") -> bytes:
    params = f'; boundary="{boundary}"' if boundary else f"; charset={draw(CHARSET)}"
    fold = draw(st.sampled_from([" ", "\r\n ", "\r\n\t", "\r"]))
    cte = draw(CTE)
    lines = [f"Content-Type:{fold}{ctype}{params}".encode()]
    if cte:
        lines.append(f"Content-Transfer-Encoding: {cte}".encode())
    for name in draw(
        st.lists(
            st.sampled_from(["Subject", "From", "To", "Message-ID", "X-Junk", "Return-Path"]), max_size=3
        )
    ):
        lines.append(name.encode() + b": " + draw(HEADER_VALUE))
    return b"\r\n".join(lines) + b"\r\n\r\n"


DSN_FIELDS = st.lists(
    st.sampled_from(
        [b"Reporting-MTA: dns; mx.example", b"Final-Recipient: rfc822; a@b.example", b"Action: failed",
         b"Action: delayed", b"Status: 5.1.1", b"Status: 9.9.9.9", b"Status: ",
         b"Diagnostic-Code: smtp; 550 no",
         b"Original-Recipient: rfc822;", b"Remote-MTA: dns; [", b"Final-Recipient: ;;;", b""]
    ),
    max_size=12,
)  # fmt: skip


@st.composite
def part(draw: Any, depth: int = 0) -> bytes:
    kind = draw(
        st.sampled_from(
            ["text", "dsn", "headers", "rfc822", "multipart", "multipart"] if depth < 5 else ["text", "dsn"]
        )
    )
    if kind == "text":
        return _headers(draw, "text/plain") + draw(st.binary(max_size=200))
    if kind == "dsn":
        return _headers(draw, "message/delivery-status") + b"\r\n".join(draw(DSN_FIELDS)) + b"\r\n"
    if kind == "headers":
        return _headers(draw, "text/rfc822-headers") + b"From: x@y\r\nSubject: probe bsa-abc\r\n"
    if kind == "rfc822":
        return _headers(draw, "message/rfc822") + draw(part(depth + 1))
    # A boundary may repeat an outer one or be a prefix of it: the classic confusions.
    boundary = draw(st.sampled_from(["B", "B1", "BB", "=_x", "a" * 70, " ", "--", "B"]))
    subtype = draw(st.sampled_from(["mixed", "report; report-type=delivery-status", "alternative", "report"]))
    children = draw(st.lists(part(depth + 1), max_size=4))
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + c + b"\r\n" for c in children)
    end = draw(
        st.sampled_from([b"--" + boundary.encode() + b"--\r\n", b"", b"--" + boundary.encode() + b"\r\n"])
    )
    return _headers(draw, f"multipart/{subtype}", boundary) + draw(st.binary(max_size=20)) + body + end


def _check(data: bytes) -> None:
    a = analyse_bytes(data, "fuzz.eml")
    assert a.kind in KINDS and a.returned in RETURNED
    texts = [a.subject, a.header_from, a.reporting_mta, *a.notes]
    texts += [t for r in a.recipients for t in (r.address, r.status, r.diagnostic)]
    for text in texts:
        text.encode("utf-8")  # a report can carry it (no lone surrogate)


@FUZZ
@given(
    root=part(),
    preamble=st.sampled_from([b"", b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\n"]),
)
def test_generated_mime(root: bytes, preamble: bytes) -> None:
    _check(preamble + b"MIME-Version: 1.0\r\n" + root)


BOMBS = {
    "rfc822 x5000": b"".join(
        b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % i for i in range(5000)
    ),
    "multipart x10000": b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(10_000)
    ),
    "100k sibling parts": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 100_000
    + b"--b--\r\n",
    "5 MB header": b"Subject: " + b"a" * 5_000_000 + b"\r\n\r\nbody",
    "500k headers": b"X-A: b\r\n" * 500_000 + b"\r\nbody",
    "500k folded lines": b"Subject: a\r\n" + b" b\r\n" * 500_000 + b"\r\nbody",
    "50k DSN recipients": b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
    + b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n" * 50_000
    + b"--B--\r\n",
    "base64 message/rfc822": b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + b"QUFBQQ==\r\n" * 100_000,
    "200k encoded words": b"Subject: " + b"=?utf-8?b?QUFB?= " * 200_000 + b"\r\n\r\nx",
    "5 MB of NUL": b"\x00" * 5_000_000,
    "bare CR lines": b"Subject: x\r" * 1_000_000,
    "unterminated boundary": b"Content-Type: multipart/mixed; boundary=" + b"x" * 100_000 + b"\r\n\r\n--x",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_hand_written_bombs(name: str) -> None:
    _check(BOMBS[name])
