"""Connection floods against the real sink in a subprocess with a low open-files limit.

The sink must refuse what is over its caps with a 421 (never run out of descriptors because of
one client), log a bounded number of lines (no traceback per failed accept), and accept a valid
bounce once the flood is gone. Traffic stays on loopback (127.0.0.0/8: the flooder's source
addresses are 127.0.0.2 and up).
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor.collect.sink import TokenStore, new_token, token_address

NOFILE = 256
ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    proc: subprocess.Popen[str]
    port: int
    budget: int
    token_dir: Path

    def command(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self) -> str:
        """The sink's whole log (stderr)."""
        _out, err = self.proc.communicate("stop\n", timeout=30)
        return err


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.sink.flood_sink", str(tmp_path / "Maildir"),
         str(tmp_path / "tokens"), str(NOFILE), str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first[:1] == ["budget"], proc.stderr.read() if proc.stderr else first
    s = Sink(proc, port, int(first[1]), tmp_path / "tokens")
    yield s
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _open(port: int, source: str) -> tuple[socket.socket, bytes]:
    """One connection from ``source`` and the sink's first reply line (b"" when none came)."""
    c = socket.socket()
    c.settimeout(1)
    c.bind((source, 0))
    c.connect(("127.0.0.1", port))
    try:
        line = c.makefile("rb").readline()
    except OSError:
        line = b""
    return c, line


def _flood(port: int, sources: list[str], per_source: int) -> tuple[list[socket.socket], dict[bytes, int]]:
    """Connections from each source in turn; stops once 3 in a row got no reply (the sink is not
    accepting: what follows would only wait for the same timeout)."""
    held: list[socket.socket] = []
    replies: dict[bytes, int] = {}
    silent = 0
    for src in sources:
        for _ in range(per_source):
            try:
                c, line = _open(port, src)
            except OSError:  # listen queue full: the kernel drops the SYN
                c, line = None, b""
            if c is not None:
                held.append(c)
            replies[line[:3]] = replies.get(line[:3], 0) + 1
            silent = silent + 1 if not line else 0
            if silent == 3:
                return held, replies
    return held, replies


def _bounce(port: int, token_dir: Path, source: str = "127.0.0.1") -> dict[str, tuple[int, bytes]]:
    token = new_token()
    TokenStore(str(token_dir)).add(token)
    addr = token_address(token, "sink.test")
    msg = f"From: MAILER-DAEMON@mx.example.test\r\nTo: {addr}\r\nSubject: Undelivered\r\n\r\nbounce\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as c:
        return c.sendmail("", [addr], msg)


def _close(socks: list[socket.socket]) -> None:
    for c in socks:
        c.close()


def test_flood_is_capped_per_peer_and_globally(sink: Sink) -> None:
    assert 0 < sink.budget <= NOFILE - 64
    one_peer, replies = _flood(sink.port, ["127.0.0.1"], 40)
    assert replies.get(b"220") == 10 and replies.get(b"421") == 30  # per-peer cap
    # A bounce from another address still gets in while that peer holds its sessions.
    assert _bounce(sink.port, sink.token_dir, "127.0.0.250") == {}
    sources = [f"127.0.0.{i}" for i in range(2, 2 + 3 * sink.budget // 10 + 1)]
    many, replies = _flood(sink.port, sources, 10)
    assert replies.get(b"220", 0) == sink.budget - 10  # the global cap, with one_peer's 10
    assert replies.get(b"421", 0) > 0
    _close(one_peer + many)
    assert _bounce(sink.port, sink.token_dir) == {}
    stats = json.loads(sink.command("stats"))
    log = sink.stop()
    assert stats["accepted"] == 2 and stats["refused_connections"] >= 30
    assert "Traceback" not in log
    assert len(log.splitlines()) <= 10, log[:2000]


def test_out_of_descriptors_logs_bounded_and_recovers(sink: Sink) -> None:
    # Something else in the process took all but 8 descriptors: accept() itself fails (EMFILE).
    assert sink.command("fill 8") == "filled"
    held, replies = _flood(sink.port, [f"127.0.0.{i}" for i in range(2, 42)], 5)
    assert replies.get(b"220", 0) < 20  # most could not even be accepted
    _close(held)
    assert sink.command("unfill") == "unfilled"
    assert _bounce(sink.port, sink.token_dir) == {}
    log = sink.stop()
    assert "Traceback" not in log
    assert "cannot accept connections: Too many open files" in log
    assert len(log.splitlines()) <= 10, log[:2000]
