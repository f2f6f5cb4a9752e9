"""The bounce sink: an SMTP server (aiosmtpd) that catches the NDRs our DATA probes provoke.

It must never become a backscatter source itself, so it decides everything during the session:
only recipients that carry a live probe token (``bsa-<token>@<sink domain>``) are accepted at RCPT,
every other recipient gets a 550, and oversized, over-long-line, too-many-recipient or MIME-bomb
messages are refused with a 5xx before the end of DATA is acknowledged. What it accepts is written
atomically to a Maildir (tmp/ then new/), never anywhere else.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import re
import resource
import secrets
import socket
import stat
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from auditor.model import InputError

TOKEN_PREFIX = "bsa-"
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz234567"
_TOKEN_RE = re.compile(r"bsa-([a-z2-7]{16})", re.IGNORECASE)
# Every MIME container: multipart/* and message/* (a message/rfc822 part holds a whole message,
# so 5,000 of them nest as deep as 5,000 multiparts). Python's email parser also ends a line at a
# bare CR, and the value may be folded onto the next line: both are matched.
_CONTAINER_RE = re.compile(
    rb"(?:^|(?<=\r))content-type[ \t]*:\s*(?:multipart|message)/", re.IGNORECASE | re.MULTILINE
)
_log = logging.getLogger("auditor.sink")


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
    """What one client may cost the sink; every field must be positive (InputError otherwise)."""

    max_message_bytes: int = 10 * 1024 * 1024
    max_line_bytes: int = 4096  # RFC 5321 says 1000; real NDRs are sloppier, refusing them would lose them
    max_recipients: int = 20
    max_mime_parts: int = 500  # MIME containers (multipart/*, message/*) in one message; bombs nest thousands
    session_timeout: float = 60.0  # a client that stalls (also mid-DATA) is dropped after this
    # Open sessions. Past either cap a new connection gets a 421 and is closed at once, so a flood
    # costs one file descriptor per connection only for an instant. The global cap is further
    # lowered to fit the process's RLIMIT_NOFILE when the sink starts.
    max_connections: int = 100
    max_connections_per_peer: int = 10

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = float if f.type in ("float", float) else int
            ok = (
                not isinstance(value, bool)
                and isinstance(value, (int, float) if kind is float else int)
                and math.isfinite(value)
                and value > 0
            )
            if not ok:
                what = "a positive number" if kind is float else "a positive integer"
                raise InputError(f"sink limit {f.name} must be {what}, not {value!r}")


@dataclass
class SinkStats:
    accepted: int = 0
    rejected_rcpt: int = 0
    refused_messages: int = 0
    refused_connections: int = 0  # over a connection cap: 421 and closed
    paths: list[str] = field(default_factory=list)


class RateLimitedLog:
    """At most one log line per kind of event per ``interval`` seconds, then a count of the rest.

    A hostile client decides how often an event happens (a connection flood makes every accept
    fail), so the log must not grow with it: no tracebacks, one line per kind per interval.
    """

    def __init__(self, logger: logging.Logger = _log, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            missed = self._suppressed.pop(key, 0)
        if missed:
            message += f" ({missed} more like this in the last {now - (last or now):.0f} s)"
        self.logger.warning("sink: %s", message)


class Maildir:
    """Write-only Maildir delivery: a unique name in tmp/, fsync, rename into new/.

    Not ``mailbox.Maildir.add``: it does not fsync before the rename, and the sink answers 250 to a
    bounce only once the bounce is on disk (a 250 followed by a lost file is a lost NDR).
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        for where in (self.root, *(os.path.join(self.root, sub) for sub in ("tmp", "new", "cur"))):
            try:
                if not os.path.lexists(where):
                    os.makedirs(where)
                st = os.stat(where)
            except OSError as exc:
                raise InputError(f"cannot use as a Maildir: {exc.strerror or exc}", where) from None
            if not stat.S_ISDIR(st.st_mode):
                raise InputError("cannot use as a Maildir: not a directory", where)
            if not os.access(where, os.W_OK | os.X_OK):
                raise InputError("cannot use as a Maildir: not writable", where)
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


def mime_containers(data: bytes, stop: int | None = None) -> int:
    """MIME containers (multipart/*, message/*) in a raw message, counting up to ``stop``.

    Counted on the raw bytes: parsing a 10,000-deep bomb with the email package is the very cost
    we refuse to pay. An upper bound: a Content-Type line quoted in a body counts too.
    """
    n = 0
    for _ in _CONTAINER_RE.finditer(data):
        n += 1
        if stop is not None and n >= stop:
            break
    return n


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
        self.log = RateLimitedLog()
        # Open sessions, touched only on the event loop's thread.
        self.max_connections = self.limits.max_connections
        self.open_sessions = 0
        self.open_by_peer: dict[str, int] = {}

    def check_message(self, raw: bytes) -> str | None:
        """The 5xx reply that refuses this message's content, or None to accept it."""
        if len(raw) > self.limits.max_message_bytes:
            return "552 5.3.4 Message too big"
        if mime_containers(raw, self.limits.max_mime_parts + 1) > self.limits.max_mime_parts:
            return "554 5.6.0 Too many MIME parts"
        return None

    def admit(self, peer: str) -> str | None:
        """Count a new session from ``peer``; the 421 reply when it is over a cap (not counted)."""
        if self.open_sessions >= self.max_connections:
            reason = "421 4.7.0 Too many connections to the bounce sink, try again later"
        elif self.open_by_peer.get(peer, 0) >= self.limits.max_connections_per_peer:
            reason = "421 4.7.0 Too many connections from your address, try again later"
        else:
            self.open_sessions += 1
            self.open_by_peer[peer] = self.open_by_peer.get(peer, 0) + 1
            return None
        self.stats.refused_connections += 1
        self.log.warning("refused", f"connection from {peer} refused: {reason[10:]}")
        return reason

    def release(self, peer: str) -> None:
        self.open_sessions -= 1
        left = self.open_by_peer.get(peer, 1) - 1
        if left > 0:
            self.open_by_peer[peer] = left
        else:
            self.open_by_peer.pop(peer, None)

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd logs a traceback per failed session otherwise; a full disk fails every one.
        self.log.warning(type(error).__name__, f"session failed: {type(error).__name__}: {error}")
        return "451 4.3.0 Local error in processing, try again later"

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
        refusal = self.check_message(raw)
        if refusal is not None:
            self.stats.refused_messages += 1
            return refusal
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


def _peer_host(peer: object) -> str:
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


class _LimitedSMTP(SMTP):
    """aiosmtpd's SMTP with our line-length limit (it enforces it for commands and DATA lines) and
    the connection caps (checked before a session starts, so a refused one costs no task)."""

    def __init__(self, handler: SinkHandler, *, max_line_bytes: int, **kw: Any) -> None:
        super().__init__(handler, **kw)
        self.line_length_limit = max_line_bytes
        self._sink = handler
        self._peer_key: str | None = None  # set while this session is counted
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._peer_key is None and not self._refused:  # not the STARTTLS re-entry
            peer = _peer_host(transport.get_extra_info("peername"))
            reason = self._sink.admit(peer)
            if reason is not None:
                self._refused = True
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(reason.encode("ascii") + b"\r\n")
                transport.close()
                return
            self._peer_key = peer
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._peer_key is not None:
            self._sink.release(self._peer_key)
            self._peer_key = None
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._refused else super().eof_received()


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


_FD_RESERVE = 64  # descriptors kept for everything else: Maildir writes, DNS, logs, the prober


def connection_budget(limits: SinkLimits, backlog: int) -> int:
    """The global session cap that fits RLIMIT_NOFILE: each session holds one descriptor, and one
    accept round can take ``backlog`` more before the refused ones are closed."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    room = soft - len(os.listdir("/proc/self/fd")) - backlog - _FD_RESERVE
    if room < 1:
        raise InputError(
            f"the open-files limit ({soft}) leaves no room for sink connections; raise it (ulimit -n)"
        )
    return min(limits.max_connections, room)


_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _Controller(Controller):
    def __init__(self, handler: SinkHandler, **kw: Any) -> None:
        self._limits = handler.limits
        super().__init__(handler, **kw)
        # asyncio logs a traceback for every accept() that fails (EMFILE repeats it per pending
        # connection, many thousands a second): one line per interval instead.
        self.loop.set_exception_handler(self._loop_exception)
        # The accept loop takes up to `backlog` connections per round, and the listen queue holds
        # that many more: keep both small next to the descriptor budget.
        self.backlog = 32

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        sink: SinkHandler = self.handler
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES:
            sink.log.warning("accept", f"cannot accept connections: {exc.strerror or exc}")
            return
        what = f"{type(exc).__name__}: {exc}" if exc is not None else str(context.get("message"))
        sink.log.warning("loop", f"event loop error: {what}")

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker,
            host=self.hostname,
            port=self.port,
            ssl=self.ssl_context,
            backlog=self.backlog,
        )

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
        self.handler.max_connections = connection_budget(self.handler.limits, self._controller.backlog)
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
