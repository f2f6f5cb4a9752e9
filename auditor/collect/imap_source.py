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
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                settings.host, settings.port, ssl_context=_context(settings), timeout=settings.timeout
            )
        else:
            conn = imaplib.IMAP4(settings.host, settings.port, timeout=settings.timeout)
            if settings.tls == "starttls":
                conn.starttls(ssl_context=_context(settings))
        conn.login(settings.user, settings.password())
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise ImapError(f"IMAP {settings.host}:{settings.port}: {exc}") from None
    try:
        typ, _ = conn.select(_quote(settings.folder), readonly=True)
        if typ != "OK":
            raise ImapError(f"IMAP folder {settings.folder!r} cannot be opened")
        typ, data = conn.uid("SEARCH", f"UID {since_uid + 1}:*")
        if typ != "OK":
            raise ImapError("IMAP SEARCH failed")
        uids = [int(u) for u in (data[0] or b"").split() if u.isdigit() and int(u) > since_uid]
        for uid in uids[-MAX_MESSAGES:]:
            # The size first: a hostile or huge message is skipped before any of it is downloaded.
            typ, meta = conn.uid("FETCH", str(uid), "(RFC822.SIZE)")
            size = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(m for m in meta if isinstance(m, bytes)))
            if typ != "OK" or size is None or int(size.group(1)) > MAX_MESSAGE_BYTES:
                continue
            typ, parts = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
            if typ != "OK":
                continue
            for part in parts:
                if isinstance(part, tuple) and len(part) == 2:
                    yield f"imap://{settings.host}/{settings.folder};UID={uid}", bytes(part[1])
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"IMAP {settings.host}: {exc}") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
