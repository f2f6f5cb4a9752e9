"""The bounce sink: an SMTP server (aiosmtpd) that catches the NDRs our DATA probes provoke.

It must never become a backscatter source itself, so it decides everything during the session:
only recipients that carry a live probe token (``bsa-<token>@<sink domain>``) are accepted at RCPT,
every other recipient gets a 550, and oversized, over-long-line, too-many-recipient or MIME-bomb
messages are refused with a 5xx before the end of DATA is acknowledged. What it accepts is written
atomically to a Maildir (tmp/ then new/), never anywhere else.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

TOKEN_PREFIX = "bsa-"
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz234567"
_TOKEN_RE = re.compile(r"bsa-([a-z2-7]{16})", re.IGNORECASE)
_MULTIPART_RE = re.compile(rb"^content-type:[ \t]*multipart/", re.IGNORECASE | re.MULTILINE)


def new_token() -> str:
    """16 base32 characters (80 bits): unguessable, so a forger cannot get mail accepted by the sink."""
    return "".join(secrets.choice(_TOKEN_CHARS) for _ in range(16))


def token_address(token: str, sink_domain: str) -> str:
    return f"{TOKEN_PREFIX}{token}@{sink_domain}"


def find_tokens(text: str) -> set[str]:
    return {m.group(1).lower() for m in _TOKEN_RE.finditer(text)}


class TokenStore:
    """Live probe tokens, each with an expiry.

    In one process (``audit`` with DATA probes) the prober registers tokens directly. A sink run
    separately (``backscatter-audit sink`` on the host the sink domain's MX points at) reads them
    from a directory: one file per token, named after it, live until its mtime + ttl.
    """

    def __init__(self, directory: str | None = None, ttl: float = 7 * 86400) -> None:
        self.directory = directory
        self.ttl = ttl
        self._live: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, token: str, ttl: float | None = None) -> None:
        with self._lock:
            self._live[token.lower()] = time.time() + (self.ttl if ttl is None else ttl)
        if self.directory:
            os.makedirs(self.directory, exist_ok=True)
            Path(self.directory, token.lower()).touch()

    def is_live(self, token: str) -> bool:
        token = token.lower()
        now = time.time()
        with self._lock:
            expiry = self._live.get(token)
        if expiry is not None:
            return expiry > now
        if self.directory and re.fullmatch(r"[a-z2-7]{16}", token):
            try:
                return os.stat(os.path.join(self.directory, token)).st_mtime + self.ttl > now
            except OSError:
                return False
        return False


@dataclass(frozen=True)
class SinkLimits:
    max_message_bytes: int = 10 * 1024 * 1024
    max_line_bytes: int = 4096  # RFC 5321 says 1000; real NDRs are sloppier, refusing them would lose them
    max_recipients: int = 20
    max_mime_parts: int = 500  # multipart containers in one message (MIME bombs nest thousands)
    session_timeout: float = 60.0  # a client that stalls (also mid-DATA) is dropped after this


@dataclass
class SinkStats:
    accepted: int = 0
    rejected_rcpt: int = 0
    refused_messages: int = 0
    paths: list[str] = field(default_factory=list)


class Maildir:
    """Write-only Maildir delivery: a unique name in tmp/, fsync, rename into new/.

    Not ``mailbox.Maildir.add``: it does not fsync before the rename, and the sink answers 250 to a
    bounce only once the bounce is on disk (a 250 followed by a lost file is a lost NDR).
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        self._n = 0
        self._host = socket.gethostname().replace("/", "_").replace(":", "_") or "sink"

    def deliver(self, data: bytes) -> str:
        self._n += 1
        name = f"{time.time():.6f}.P{os.getpid()}Q{self._n}R{secrets.token_hex(4)}.{self._host}"
        tmp = os.path.join(self.root, "tmp", name)
        dst = os.path.join(self.root, "new", name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, dst)
        return dst


def _mime_containers(data: bytes) -> int:
    # Counted on the raw bytes: parsing a 10,000-deep bomb with the email package is the very cost
    # we refuse to pay.
    return len(_MULTIPART_RE.findall(data))


class SinkHandler:
    """aiosmtpd handler: the acceptance policy and the Maildir delivery."""

    def __init__(
        self, sink_domain: str, tokens: TokenStore, maildir: Maildir, limits: SinkLimits | None = None
    ) -> None:
        self.sink_domain = sink_domain.lower().rstrip(".")
        self.tokens = tokens
        self.maildir = maildir
        self.limits = limits or SinkLimits()
        self.stats = SinkStats()

    def _token_of(self, address: str) -> str | None:
        local, _, domain = address.rpartition("@")
        if domain.lower().rstrip(".") != self.sink_domain:
            return None
        m = re.fullmatch(r"bsa-([a-z2-7]{16})", local, re.IGNORECASE)
        return m.group(1).lower() if m else None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.limits.max_recipients:
            self.stats.rejected_rcpt += 1
            return "452 4.5.3 Too many recipients"
        token = self._token_of(address)
        if token is None or not self.tokens.is_live(token):
            self.stats.rejected_rcpt += 1
            return "550 5.1.1 No such user here (audit bounce sink: only live probe tokens)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        if _mime_containers(raw) > self.limits.max_mime_parts:
            self.stats.refused_messages += 1
            return "554 5.6.0 Too many MIME parts"
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        mail_from = (envelope.mail_from or "").strip()
        if mail_from == "<>":  # some clients send MAIL FROM:<<>>; the null sender either way
            mail_from = ""
        trace = (
            f"Return-Path: <{mail_from}>\r\n"
            f"X-BSA-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-BSA-Peer: {peer}\r\n"
            f"X-BSA-Received: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\r\n"
        ).encode("ascii", "replace")
        path = await asyncio.get_running_loop().run_in_executor(None, self.maildir.deliver, trace + raw)
        self.stats.accepted += 1
        self.stats.paths.append(path)
        return "250 2.0.0 Bounce received, thank you"


class _LimitedSMTP(SMTP):
    """aiosmtpd's SMTP with our line-length limit (it enforces it for commands and DATA lines)."""

    def __init__(self, handler: Any, *, max_line_bytes: int, **kw: Any) -> None:
        super().__init__(handler, **kw)
        self.line_length_limit = max_line_bytes


def make_smtp(handler: SinkHandler, hostname: str | None = None) -> SMTP:
    """The aiosmtpd protocol object with the sink's limits (size, line length, session timeout)."""
    lim = handler.limits
    return _LimitedSMTP(
        handler,
        max_line_bytes=lim.max_line_bytes,
        data_size_limit=lim.max_message_bytes,
        timeout=lim.session_timeout,
        hostname=hostname,
    )


class _Controller(Controller):
    def __init__(self, handler: SinkHandler, **kw: Any) -> None:
        self._limits = handler.limits
        super().__init__(handler, **kw)

    def factory(self) -> SMTP:
        return make_smtp(self.handler, self.hostname if isinstance(self.hostname, str) else None)


class BounceSink:
    """Run the sink in a background thread (aiosmtpd Controller); a context manager."""

    def __init__(
        self,
        sink_domain: str,
        maildir: str,
        *,
        host: str = "127.0.0.1",
        port: int = 2525,
        tokens: TokenStore | None = None,
        limits: SinkLimits | None = None,
    ) -> None:
        self.tokens = tokens or TokenStore()
        self.handler = SinkHandler(sink_domain, self.tokens, Maildir(maildir), limits)
        self.host, self.port = host, port
        self._controller = _Controller(self.handler, hostname=host, port=port, server_hostname=sink_domain)

    @property
    def stats(self) -> SinkStats:
        return self.handler.stats

    def start(self) -> BounceSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> BounceSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def new_probe_address(self, ttl: float | None = None) -> tuple[str, str]:
        token = new_token()
        self.tokens.add(token, ttl)
        return token, token_address(token, self.handler.sink_domain)

    def wait_for(self, token: str, timeout: float, poll: float = 0.1) -> str | None:
        """Path of the first accepted message addressed to ``token``, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        want = token.lower()
        while True:
            for path in list(self.stats.paths):
                if want in _envelope_tokens(path):
                    return path
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll)


def _envelope_tokens(path: str) -> set[str]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("latin-1")
    except OSError:
        return set()
    for line in head.splitlines():
        if line.lower().startswith("x-bsa-envelope-to:"):
            return find_tokens(line)
    return set()
