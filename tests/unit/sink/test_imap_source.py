"""IMAP bounce source: read-only (EXAMINE + BODY.PEEK), password never on the command line.

A small fake IMAP4rev1 server on 127.0.0.1 stands in for the mailbox provider (a unit-test fake).
"""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from auditor.collect.imap_source import ImapError, ImapSettings, fetch_messages
from auditor.model import InputError

MESSAGES = {
    7: b"From: MAILER-DAEMON@x.test\r\nSubject: Undelivered bsa-aaaaaaaaaaaaaaaa\r\n\r\nbody 7\r\n",
    9: b"From: someone@x.test\r\nSubject: hello\r\n\r\nbody 9\r\n",
}


SIZES: dict[int, int] = {}
HOSTILE: set[str] = set()  # misbehaviours of the fake server for the hostile-server tests


class _Fake(socketserver.StreamRequestHandler):
    commands: ClassVar[list[str]] = []
    bodies_sent: ClassVar[list[int]] = []

    def handle(self) -> None:
        self.wfile.write(b"* OK fake IMAP ready\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            text = line.decode().rstrip("\r\n")
            _Fake.commands.append(text)
            tag, _, rest = text.partition(" ")
            verb = rest.split(" ")[0].upper()
            if verb == "CAPABILITY":
                self.wfile.write(b"* CAPABILITY IMAP4rev1\r\n")
            elif verb == "LOGIN":
                if '"secret"' not in rest and " secret" not in rest:
                    self.wfile.write(f"{tag} NO login failed\r\n".encode())
                    continue
            elif verb == "EXAMINE":
                self.wfile.write(b"* 2 EXISTS\r\n")
                self.wfile.write(f"{tag} OK [READ-ONLY] done\r\n".encode())
                continue
            elif verb == "UID" and " SEARCH " in rest.upper():
                low = int(re.search(r"UID (\d+):\*", rest).group(1))  # type: ignore[union-attr]
                found = [str(u).encode() for u in MESSAGES if u >= low]
                if "long-uid" in HOSTILE:
                    found.append(b"9" * 5000)
                self.wfile.write(b"* SEARCH " + b" ".join(found) + b"\r\n")
            elif verb == "UID" and " FETCH " in rest.upper():
                uid = int(rest.split()[2])
                body = MESSAGES[uid]
                if "BODY.PEEK" not in rest.upper():
                    size = (
                        b"1" * 5000
                        if "long-size" in HOSTILE and uid == 9
                        else b"%d" % SIZES.get(uid, len(body))
                    )
                    self.wfile.write(b"* 1 FETCH (UID %d RFC822.SIZE %s)\r\n" % (uid, size))
                elif "huge-literal" in HOSTILE or "long-literal" in HOSTILE:
                    # Announces a small message, then a literal far larger than any message (or
                    # one whose size Python will not even convert), and sends little of it.
                    n = b"9" * 5000 if "long-literal" in HOSTILE else b"%d" % (50 * 1024**3)
                    self.wfile.write(b"* 1 FETCH (UID %d BODY[] {%s}\r\n" % (uid, n) + b"x" * 1000)
                    return
                else:
                    _Fake.bodies_sent.append(uid)
                    self.wfile.write(
                        b"* 1 FETCH (UID %d BODY[] {%d}\r\n" % (uid, len(body)) + body + b")\r\n"
                    )
            elif verb == "LOGOUT":
                self.wfile.write(b"* BYE\r\n" + f"{tag} OK bye\r\n".encode())
                return
            self.wfile.write(f"{tag} OK done\r\n".encode())


@pytest.fixture
def server() -> Iterator[int]:
    _Fake.commands = []
    _Fake.bodies_sent = []
    SIZES.clear()
    HOSTILE.clear()
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Fake)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield int(srv.server_address[1])
    srv.shutdown()
    srv.server_close()


def test_fetches_read_only(server: int, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    s = ImapSettings("127.0.0.1", "auditor", port=server, tls="none", password_file=str(pw))
    got = dict(fetch_messages(s))
    assert got == {f"imap://127.0.0.1/INBOX;UID={u}": body for u, body in MESSAGES.items()}
    verbs = " ".join(_Fake.commands).upper()
    assert "EXAMINE" in verbs and "BODY.PEEK[]" in verbs
    assert "SELECT" not in verbs and "STORE" not in verbs and "EXPUNGE" not in verbs
    assert list(dict(fetch_messages(s, since_uid=7))) == ["imap://127.0.0.1/INBOX;UID=9"]


def test_login_refused_and_missing_password(
    server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BSA_IMAP_PASSWORD", "wrong")
    with pytest.raises(ImapError):
        list(fetch_messages(ImapSettings("127.0.0.1", "auditor", port=server, tls="none")))
    monkeypatch.delenv("BSA_IMAP_PASSWORD")
    with pytest.raises(InputError, match="BSA_IMAP_PASSWORD"):
        list(fetch_messages(ImapSettings("127.0.0.1", "auditor", port=server, tls="none")))


def test_unreachable_is_an_imap_error() -> None:
    s = ImapSettings("127.0.0.1", "a", port=1, tls="none", password_env="HOME", timeout=2)
    with pytest.raises(ImapError):
        list(fetch_messages(s))


def test_oversized_messages_are_not_downloaded(server: int, tmp_path: Path) -> None:
    from auditor.collect.imap_source import MAX_MESSAGE_BYTES

    SIZES[9] = MAX_MESSAGE_BYTES + 1  # the server announces a huge message
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    s = ImapSettings("127.0.0.1", "auditor", port=server, tls="none", password_file=str(pw))
    assert list(dict(fetch_messages(s))) == ["imap://127.0.0.1/INBOX;UID=7"]
    assert _Fake.bodies_sent == [7]


@pytest.mark.parametrize("mode", ["long-uid", "huge-literal", "long-literal"])
def test_hostile_server_is_an_imap_error(server: int, tmp_path: Path, mode: str) -> None:
    HOSTILE.add(mode)
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    s = ImapSettings("127.0.0.1", "auditor", port=server, tls="none", password_file=str(pw), timeout=5)
    with pytest.raises(ImapError) as err:
        list(fetch_messages(s))
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


def test_absurd_size_is_skipped(server: int, tmp_path: Path) -> None:
    HOSTILE.add("long-size")  # RFC822.SIZE of 5,000 digits for UID 9
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    s = ImapSettings("127.0.0.1", "auditor", port=server, tls="none", password_file=str(pw))
    assert list(dict(fetch_messages(s))) == ["imap://127.0.0.1/INBOX;UID=7"]
