"""Read bounces from an IMAP folder, for sites that cannot point a domain's MX at the auditor's sink.

Read-only by construction: the folder is opened with EXAMINE and messages are fetched with
``BODY.PEEK[]``, so nothing is marked seen, moved or deleted. The password comes from a file or an
environment variable, never from the command line (where ``ps`` would show it).
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from auditor.model import InputError
from auditor.secrets import read_secret

MAX_MESSAGE_BYTES = 20 * 1024 * 1024
MAX_MESSAGES = 2000
_MAX_DIGITS = 10  # UIDs and sizes are 32-bit numbers (RFC 3501); a longer one is hostile


class _BoundedRead:
    """imaplib reads a literal (``{n}``) of whatever size the server announces into memory: refuse
    one larger than any message we would download."""

    def read(self, size: int) -> bytes:
        if size > MAX_MESSAGE_BYTES + 65536:
            raise imaplib.IMAP4.abort(f"server sent a {size}-byte literal, more than any message read")
        return super().read(size)  # type: ignore[misc]


class _IMAP4(_BoundedRead, imaplib.IMAP4):
    pass


class _IMAP4_SSL(_BoundedRead, imaplib.IMAP4_SSL):
    pass


def _number(raw: bytes) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) <= _MAX_DIGITS else None


@dataclass(frozen=True)
class ImapSettings:
    host: str
    user: str
    port: int = 993
    folder: str = "INBOX"
    tls: str = "ssl"  # "ssl" (IMAPS), "starttls", or "none" (loopback tests only)
    password_file: str = ""
    password_env: str = "BSA_IMAP_PASSWORD"
    ca_file: str = ""
    timeout: float = 30.0

    def password(self) -> str:
        pw = read_secret(self.password_file, self.password_env, "IMAP password")
        if pw is None:
            raise InputError(f"no IMAP password: give a password file or set {self.password_env}")
        return pw


class ImapError(Exception):
    """The IMAP server could not be read (unreachable, login refused, folder missing)."""


def _context(settings: ImapSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=settings.ca_file or None)
    return ctx


def fetch_messages(settings: ImapSettings, *, since_uid: int = 0) -> Iterator[tuple[str, bytes]]:
    """Yield ``(imap://host/folder;UID=n, raw bytes)`` for messages with UID above ``since_uid``."""
    try:
        if settings.tls == "ssl":
            conn: imaplib.IMAP4 = _IMAP4_SSL(
                settings.host, settings.port, ssl_context=_context(settings), timeout=settings.timeout
            )
        else:
            conn = _IMAP4(settings.host, settings.port, timeout=settings.timeout)
            if settings.tls == "starttls":
                conn.starttls(ssl_context=_context(settings))
        conn.login(settings.user, settings.password())
    except (OSError, imaplib.IMAP4.error, ssl.SSLError, ValueError) as exc:
        # ValueError: imaplib's int() of a literal size longer than Python converts
        raise ImapError(f"IMAP {settings.host}:{settings.port}: {exc}") from None
    try:
        typ, _ = conn.select(_quote(settings.folder), readonly=True)
        if typ != "OK":
            raise ImapError(f"IMAP folder {settings.folder!r} cannot be opened")
        typ, data = conn.uid("SEARCH", f"UID {since_uid + 1}:*")
        if typ != "OK":
            raise ImapError("IMAP SEARCH failed")
        uids: list[int] = []
        for raw in (data[0] or b"").split():
            uid = _number(raw)
            if uid is None and raw.isdigit():
                raise ImapError(f"IMAP {settings.host}: SEARCH answered a UID of {len(raw)} digits")
            if uid is not None and uid > since_uid:
                uids.append(uid)
        for uid in uids[-MAX_MESSAGES:]:
            # The size first: a hostile or huge message is skipped before any of it is downloaded.
            typ, meta = conn.uid("FETCH", str(uid), "(RFC822.SIZE)")
            size = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(m for m in meta if isinstance(m, bytes)))
            n = _number(size.group(1)) if size else None
            if typ != "OK" or n is None or n > MAX_MESSAGE_BYTES:
                continue
            typ, parts = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
            if typ != "OK":
                continue
            for part in parts:
                if isinstance(part, tuple) and len(part) == 2:
                    yield f"imap://{settings.host}/{settings.folder};UID={uid}", bytes(part[1])
    except (OSError, imaplib.IMAP4.error, ValueError) as exc:
        raise ImapError(f"IMAP {settings.host}: {exc}") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
