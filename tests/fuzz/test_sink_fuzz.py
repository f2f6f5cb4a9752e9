"""Fuzz the sink's content check (``SinkHandler.check_message``, what decides 250 or 5xx at the
end of DATA) with hostile messages.

The property that matters: whatever the sink accepts, the email parser that reads it later finds
no more MIME containers than the limit, however the Content-Type headers are spelt (folded, bare
CR, mixed case, nested message/rfc822). 50 examples, no deadline.
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.collect.sink import Maildir, SinkHandler, SinkLimits, TokenStore

FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
LIMIT = 8
EOL = st.sampled_from([b"\r\n", b"\n", b"\r"])


def _container_header(draw: Any, ctype: bytes, eol: bytes) -> bytes:
    name = draw(st.sampled_from([b"Content-Type", b"content-type", b"CONTENT-TYPE", b"Content-type"]))
    sep = draw(st.sampled_from([b": ", b":", b":\t", b":" + eol + b" ", b":" + eol + b"\t "]))
    return name + sep + ctype


@st.composite
def message(draw: Any, depth: int = 0) -> bytes:
    eol = draw(EOL)
    junk = b"".join(
        draw(st.lists(st.sampled_from([b"X-A: 1", b"Subject: s", b"From: a@b", b" folded"]), max_size=2))
    )
    kind = draw(st.sampled_from(["leaf", "rfc822", "multipart", "multipart"] if depth < 10 else ["leaf"]))
    if kind == "leaf":
        return junk + eol + b"Content-Type: text/plain" + eol + eol + draw(st.binary(max_size=30)) + eol
    if kind == "rfc822":
        sub = draw(st.sampled_from([b"message/rfc822", b"Message/RFC822", b"message/global"]))
        return junk + eol + _container_header(draw, sub, eol) + eol + eol + draw(message(depth + 1))
    boundary = b"b%d" % depth
    head = _container_header(draw, b'multipart/mixed; boundary="' + boundary + b'"', eol)
    children = draw(st.lists(message(depth + 1), min_size=1, max_size=2))
    body = b"".join(b"--" + boundary + eol + c + eol for c in children) + b"--" + boundary + b"--" + eol
    return junk + eol + head + eol + eol + body


def _containers_seen_by_email(data: bytes) -> int:
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    return sum(1 for p in msg.walk() if p.is_multipart())


@pytest.fixture
def handler(tmp_path: Path) -> SinkHandler:
    limits = SinkLimits(max_mime_parts=LIMIT, max_message_bytes=256 * 1024)
    return SinkHandler("sink.test", TokenStore(), Maildir(str(tmp_path / "md")), limits)


@FUZZ
@given(data=message())
def test_accepted_messages_stay_within_the_mime_limit(handler: SinkHandler, data: bytes) -> None:
    verdict = handler.check_message(data)
    assert verdict is None or verdict.startswith(("552 ", "554 "))
    if verdict is None:
        assert _containers_seen_by_email(data) <= LIMIT


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_get_a_verdict(handler: SinkHandler, data: bytes) -> None:
    verdict = handler.check_message(data)
    assert verdict is None or verdict.startswith(("552 ", "554 "))


HOSTILE = {
    "5000 nested message/rfc822": b"".join(
        b"Content-Type: message/rfc822\r\n\r\nSubject: %d\r\n" % i for i in range(5000)
    ),
    "folded multipart x600": b"Content-Type:\r\n multipart/mixed; boundary=b\r\n\r\n--b\r\n" * 600,
    "bare-CR multipart x600": b"X: y\rContent-Type: multipart/mixed; boundary=b\r\r--b\r" * 600,
    "message/global x600": b"Content-Type: message/global\n\n" * 600,
    "over the size limit": b"x" * (256 * 1024 + 1),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hand_written_hostile_messages_are_refused(tmp_path: Path, name: str) -> None:
    h = SinkHandler(
        "sink.test", TokenStore(), Maildir(str(tmp_path / "md")), SinkLimits(max_message_bytes=256 * 1024)
    )
    assert (h.check_message(HOSTILE[name]) or "").startswith(("552 ", "554 "))
