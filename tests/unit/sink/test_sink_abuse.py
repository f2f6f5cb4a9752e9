"""The bounce sink under abuse: it keeps serving, loses no accepted NDR, writes only to its Maildir.

These run the real aiosmtpd server on 127.0.0.1 and talk to it with smtplib and raw sockets.
"""

from __future__ import annotations

import os
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.bounces import iter_messages
from auditor.collect.sink import BounceSink, SinkLimits, find_tokens

DOMAIN = "sink.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[BounceSink]:
    limits = SinkLimits(max_message_bytes=5 * 1024 * 1024, session_timeout=1.5)
    s = BounceSink(DOMAIN, str(tmp_path / "Maildir"), port=_free_port(), limits=limits)
    with s:
        yield s


def _ndr(to: str, extra: bytes = b"") -> bytes:
    return (
        b"From: MAILER-DAEMON@mx2.example.test\r\nTo: " + to.encode() + b"\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n" + extra + b"\r\nThe mail system\r\n"
    )


def _send(sink: BounceSink, rcpts: list[str], data: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
        return c.sendmail("", rcpts, data)


def test_only_live_tokens_are_accepted(sink: BounceSink) -> None:
    token, addr = sink.new_probe_address()
    assert _send(sink, [addr], _ndr(addr)) == {}
    assert sink.wait_for(token, 5) is not None
    for bad in (f"bsa-{'a' * 16}@{DOMAIN}", f"postmaster@{DOMAIN}", f"{addr.split('@')[0]}@other.test"):
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            _send(sink, [bad], _ndr(bad))


def test_a_thousand_unknown_recipients_are_rejected_and_service_continues(sink: BounceSink) -> None:
    rejected = 0
    for session in range(50):
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.ehlo("abuser.test")
            c.mail("")
            for i in range(20):
                code, _ = c.rcpt(f"user{session}-{i}@{DOMAIN}")
                rejected += code == 550
                if code == 452:  # recipient cap per transaction
                    break
            c.rset()
    assert rejected == 1000
    token, addr = sink.new_probe_address()
    _send(sink, [addr], _ndr(addr))
    assert sink.wait_for(token, 5) is not None
    assert sink.stats.accepted == 1


def test_oversized_message_is_refused_in_session(sink: BounceSink) -> None:
    token, addr = sink.new_probe_address()
    # Just over the 5 MB limit: the whole transfer must fit in the 1.5 s session timeout on a busy host.
    big = _ndr(addr) + (b"x" * 998 + b"\r\n") * (6 * 1024 * 1024 // 1000)
    # A client that declares SIZE is refused at MAIL FROM ...
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        _send(sink, [addr], big)
    assert refused.value.smtp_code == 552
    # ... and one that does not is refused at the end of DATA, after the sink discarded the bytes.
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=30) as c:
        c.ehlo("big.test")
        assert c.mail("")[0] == 250 and c.rcpt(addr)[0] == 250
        code, _ = c.data(big)
    assert code == 552
    assert sink.wait_for(token, 0.2) is None
    _send(sink, [addr], _ndr(addr))
    assert sink.wait_for(token, 5) is not None


def test_mime_bomb_is_refused(sink: BounceSink) -> None:
    _token, addr = sink.new_probe_address()
    parts = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(10_000)
    )
    t0 = time.monotonic()
    with pytest.raises(smtplib.SMTPDataError) as err:
        _send(sink, [addr], _ndr(addr) + parts)
    assert err.value.smtp_code == 554 and time.monotonic() - t0 < 10
    assert sink.stats.refused_messages == 1


def test_invalid_utf8_headers_are_kept_byte_exact(sink: BounceSink) -> None:
    token, addr = sink.new_probe_address()
    body = _ndr(addr, extra=b"X-Broken: \xff\xfe\xc3(\r\n")
    _send(sink, [addr], body)
    path = sink.wait_for(token, 5)
    assert path is not None
    stored = Path(path).read_bytes()
    assert b"X-Broken: \xff\xfe\xc3(\r\n" in stored
    assert token in find_tokens(stored.decode("latin-1"))


def test_stalled_client_mid_data_does_not_block_others(sink: BounceSink, tmp_path: Path) -> None:
    token, addr = sink.new_probe_address()
    stalled = socket.create_connection(("127.0.0.1", sink.port), timeout=10)
    try:
        f = stalled.makefile("rb")
        f.readline()
        for cmd in (b"EHLO staller.test", b"MAIL FROM:<>", f"RCPT TO:<{addr}>".encode(), b"DATA"):
            stalled.sendall(cmd + b"\r\n")
            line = f.readline()
            while line[3:4] == b"-":
                line = f.readline()
        stalled.sendall(b"Subject: half a message\r\n")  # ... and never finish
        other_token, other = sink.new_probe_address()
        _send(sink, [other], _ndr(other))
        assert sink.wait_for(other_token, 5) is not None
        # The sink drops the staller after its session timeout (1.5 s here).
        stalled.settimeout(10)
        t0 = time.monotonic()
        rest = b""
        while time.monotonic() - t0 < 10:
            chunk = stalled.recv(4096)
            if not chunk:
                break
            rest += chunk
        assert time.monotonic() - t0 < 10
    finally:
        stalled.close()
    assert sink.wait_for(token, 0.2) is None
    maildir = tmp_path / "Maildir"
    assert len(list(iter_messages([str(maildir)]))) == 1
    assert os.listdir(maildir / "tmp") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Maildir"]
