"""The sink's own inputs: its limits, its Maildir, and the content check every message goes through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.collect.sink import Maildir, SinkHandler, SinkLimits, TokenStore, mime_containers
from auditor.model import InputError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_message_bytes", -1),
        ("max_message_bytes", 0),
        ("max_line_bytes", -4096),
        ("max_recipients", 0),
        ("max_mime_parts", -5),
        ("session_timeout", -1.0),
        ("session_timeout", float("nan")),
        ("session_timeout", float("inf")),
        ("max_connections", 0),
        ("max_connections_per_peer", -1),
        ("max_recipients", True),
        ("max_recipients", 2.5),
    ],
)
def test_limits_must_be_positive(field: str, value: object) -> None:
    with pytest.raises(InputError, match=field):
        SinkLimits(**{field: value})  # type: ignore[arg-type]


def test_default_limits_are_valid() -> None:
    assert SinkLimits().max_mime_parts == 500


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_maildir_on_a_regular_file_is_an_input_error(tmp_path: Path) -> None:
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    with pytest.raises(InputError, match="cannot use as a Maildir"):
        Maildir(str(f))
    (tmp_path / "md").mkdir()
    (tmp_path / "md" / "new").write_text("x")  # a Maildir whose new/ is a file
    with pytest.raises(InputError, match="not a directory"):
        Maildir(str(tmp_path / "md"))


def test_cli_sink_bad_maildir_and_negative_limit_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    base = ["sink", "--domain", "sink.test", "--token-dir", str(tmp_path / "t"), "--listen", "127.0.0.1:1"]
    r = _cli(*base, "--maildir", str(f))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    [line] = r.stderr.strip().splitlines()  # one line naming the file, whichever check saw it first
    assert line.startswith(f"backscatter-audit: error: {f}: ") and "not a directory" in line
    r = _cli(*base, "--maildir", str(tmp_path / "md"), "--max-message-bytes", "-1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--max-message-bytes" in r.stderr and "'-1'" in r.stderr


def _handler(tmp_path: Path, **limits: int) -> SinkHandler:
    return SinkHandler("sink.test", TokenStore(), Maildir(str(tmp_path / "md")), SinkLimits(**limits))


def _nested_rfc822(depth: int) -> bytes:
    # Each level is a whole message inside a message/rfc822 part: no multipart at all.
    return b"".join(b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % i for i in range(depth))


def test_nested_message_rfc822_counts_as_mime_nesting(tmp_path: Path) -> None:
    h = _handler(tmp_path)
    assert h.check_message(_nested_rfc822(5000)) == "554 5.6.0 Too many MIME parts"
    assert h.check_message(_nested_rfc822(10)) is None


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Type:\r\n multipart/mixed; boundary=b\r\n",  # folded onto the next line
        b"X-A: 1\rContent-Type: multipart/mixed; boundary=b\r\n",  # bare CR ends a line for email
        b"CONTENT-TYPE : Multipart/Mixed; boundary=b\r\n",
        b"Content-Type: message/global\r\n",
    ],
)
def test_container_header_variants_are_counted(header: bytes) -> None:
    assert mime_containers(header * 600) == 600


def test_count_stops_early() -> None:
    assert mime_containers(_nested_rfc822(100_000), stop=501) == 501


def test_oversized_content_is_refused_by_the_check(tmp_path: Path) -> None:
    h = _handler(tmp_path, max_message_bytes=1000)
    assert h.check_message(b"x" * 1001) == "552 5.3.4 Message too big"
    assert h.check_message(b"Subject: ok\r\n\r\nfine\r\n") is None
