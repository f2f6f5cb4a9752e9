"""A hostile LDAP server (garbage, a wrong BER tag) ends as a clear 'no answer', never a traceback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from auditor.cli import main
from auditor.collect.ldap import DirectoryQuery, LdapSettings, collect

ANSWERS = {
    # LDAPMessage { messageID 1, [APPLICATION 20] } — a tag ldap3's decoder has no entry for.
    "unknown-tag": b"\x30\x05\x02\x01\x01\x74\x00",
    "garbage": b"\x30\x84\xff\xff\xff\xff" + b"\x00" * 32,
    "http": b"HTTP/1.1 400 Bad Request\r\n\r\n",
}


@pytest.fixture(params=sorted(ANSWERS))
def hostile(request: pytest.FixtureRequest) -> Iterator[int]:
    answer = ANSWERS[request.param]
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(answer)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join(2)
    srv.close()


def test_collector_reports_no_usable_answer(hostile: int) -> None:
    settings = LdapSettings(urls=(f"ldap://127.0.0.1:{hostile}",), bind_dn="cn=x", password="pw", timeout=2)
    obs = collect(settings, DirectoryQuery(base="dc=x", domains=("example.test",)))
    assert not obs.complete
    assert obs.error


def test_cli_exit_code_is_not_a_traceback(hostile: int, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    pw = tmp_path / "pw"
    pw.write_text("pw\n")
    rc = main(
        [
            "directory",
            "--ldap-url",
            f"ldap://127.0.0.1:{hostile}",
            "--bind-dn",
            "cn=x",
            "--password-file",
            str(pw),
            "--base",
            "dc=x",
            "--domain",
            "example.test",
            "--timeout",
            "2",
            "--format",
            "json",
        ]
    )
    assert rc in (2, 3)
    assert "Traceback" not in capsys.readouterr().err
