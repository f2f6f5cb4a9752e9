"""SMTP servers for the probe tests, all on 127.0.0.1 ephemeral ports.

``Scripted`` is a raw asyncio server whose behaviour is a few knobs (hostile servers, pipelining
detection, error counting); ``aiosmtpd_server`` runs the real aiosmtpd protocol with a handler.
Every loop here is bounded, and every server is closed by its context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from auditor.observations.dns import DnsMx, MxHost
from auditor.observations.smtp import ProbeSettings

RcptFn = Callable[[str, str, "Scripted"], str]


def known_only(valid: set[str]) -> RcptFn:
    """250 for the given addresses (and every postmaster@), 550 5.1.1 for the rest."""

    def rcpt(addr: str, _sender: str, _srv: Scripted) -> str:
        if addr.lower() in valid or addr.lower().startswith("postmaster@"):
            return "250 2.1.5 Ok"
        return f"550 5.1.1 <{addr}>: Recipient address rejected: User unknown"

    return rcpt


@dataclass
class Scripted:
    """A scripted SMTP server. Knobs default to a well-behaved, validating server."""

    banner: bytes = b"220 fake.test ESMTP\r\n"
    banner_delay: float = 0.0
    extensions: tuple[str, ...] = ("SIZE 10240000",)
    rcpt: RcptFn = field(default_factory=lambda: known_only(set()))
    mail: Callable[[str], str] = lambda _s: "250 2.1.0 Ok"
    max_messages: int = 0  # > 0: the MAIL commands past this many in one session get a 452
    reply_delay: float = 0.0
    hostile: str = ""  # endless-multiline | huge-line | garbage | drop-after-rcpt | tls-broken
    hard_limit: int = 0  # > 0: after this many refusals in a session, answer 421 and hang up
    # Sent after the banner without being asked (after ``extra_delay`` s): a desynchronising server.
    extra_banner: bytes = b""
    extra_delay: float = 0.0
    ehlo_reply: bytes = b""  # replaces the normal EHLO answer (e.g. a 220)
    data_reply: str = "354 End data with <CR><LF>.<CR><LF>"  # the answer to DATA
    eod_reply: str = "250 2.0.0 Ok: queued"  # the answer after the final dot
    rcpt_delay: Callable[[str], float] = lambda _reply: 0.0  # a tarpit: seconds before a RCPT reply
    data_commands: int = 0
    messages_received: int = 0
    # What the server saw.
    connections: int = 0
    commands: list[str] = field(default_factory=list)
    early_talk: int = 0  # commands that arrived before the previous reply was sent
    rejections_per_session: list[int] = field(default_factory=list)
    session_commands: list[list[str]] = field(default_factory=list)
    # Postfix-style "junk" commands (EHLO/HELO/RSET/NOOP) per session: smtpd_junk_command_limit.
    junk_per_session: list[int] = field(default_factory=list)
    out_of_sequence: int = 0  # MAIL inside a transaction or RCPT outside one (answered 503)
    mail_commands: int = 0
    accepted_transactions: int = 0  # MAIL transactions with at least one 2xx RCPT (Postfix in_flow tokens)
    port: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    active: int = 0
    max_active: int = 0
    connect_times: list[float] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        self.connections += 1
        self.connect_times.append(time.monotonic())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.rejections_per_session.append(0)
        self.session_commands.append([])
        self.junk_per_session.append(0)
        try:
            await self._talk(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.active -= 1
            writer.close()

    async def _talk(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.banner_delay:
            await asyncio.sleep(self.banner_delay)
        if self.hostile == "endless-multiline":
            for _ in range(200_000):  # bounded; the client gives up long before
                writer.write(b"220-still greeting you\r\n")
                await writer.drain()
            return
        if self.hostile == "huge-line":
            writer.write(b"220 " + b"A" * (10 * 1024 * 1024) + b"\r\n")
            await writer.drain()
            return
        if self.hostile == "garbage":
            writer.write(b"\x00\xff\xfe garbage \x1b[31m\r\n")
            await writer.drain()
            await asyncio.sleep(5)
            return
        writer.write(self.banner)
        await writer.drain()
        if self.extra_banner:
            if self.extra_delay:
                await asyncio.sleep(self.extra_delay)
            writer.write(self.extra_banner)
            await writer.drain()
        if not self.banner.startswith(b"220"):
            await asyncio.sleep(0.2)
            return
        sender = ""
        accepted = False
        in_transaction = False  # RFC 5321 §4.1.4: MAIL inside a transaction / RCPT outside is a 503
        messages = 0
        for _ in range(10_000):
            line = await reader.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            self.commands.append(cmd)
            self.session_commands[-1].append(cmd)
            if self.reply_delay:
                await asyncio.sleep(self.reply_delay)
                # Anything already buffered was sent before our reply: an early talker.
                if reader._buffer:  # type: ignore[attr-defined]
                    self.early_talk += 1
            verb = cmd.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb in ("EHLO", "HELO", "RSET", "NOOP"):
                self.junk_per_session[-1] += 1
            if verb == "EHLO" and self.ehlo_reply:
                writer.write(self.ehlo_reply)
            elif verb == "EHLO":
                exts = ["fake.test", *self.extensions]
                text = "".join(f"250-{e}\r\n" for e in exts[:-1]) + f"250 {exts[-1]}\r\n"
                writer.write(text.encode())
            elif verb == "STARTTLS":
                writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                await writer.drain()
                if self.hostile == "tls-broken":
                    await reader.read(100)  # part of the ClientHello
                    writer.write(b"\x16\x03\x01\x00\x05garbage-not-tls")
                    await writer.drain()
                    await asyncio.sleep(0.2)
                    return
            elif verb == "MAIL":
                self.mail_commands += 1
                messages += 1
                accepted = False
                if in_transaction:
                    self.out_of_sequence += 1
                    reply = "503 5.5.1 Error: nested MAIL command"
                elif self.max_messages and messages > self.max_messages:
                    reply = "452 4.5.3 Error: too many messages in this session"
                else:
                    sender = cmd.partition(":")[2].strip().strip("<>")
                    reply = self.mail(sender)
                    in_transaction = reply.startswith("2")
                self._count(reply)
                writer.write(reply.encode() + b"\r\n")
            elif verb == "RCPT":
                addr = cmd.partition(":")[2].strip().strip("<>")
                reply = "503 5.5.1 Error: need MAIL command"
                if in_transaction:
                    reply = self.rcpt(addr, sender, self)
                else:
                    self.out_of_sequence += 1
                if self.hard_limit and self.rejections_per_session[-1] >= self.hard_limit:
                    # Postfix under stress (smtpd_hard_error_limit 1): 421, then hang up.
                    writer.write(b"421 4.7.0 fake.test Error: too many errors\r\n")
                    await writer.drain()
                    return
                self._count(reply)
                pause = self.rcpt_delay(reply)
                if pause:
                    await asyncio.sleep(pause)
                if reply.startswith("2") and not accepted:
                    accepted = True
                    self.accepted_transactions += 1
                writer.write(reply.encode() + b"\r\n")
                if self.hostile == "drop-after-rcpt":
                    await writer.drain()
                    return
            elif verb == "DATA":
                self.data_commands += 1
                writer.write(self.data_reply.encode() + b"\r\n")
                if self.data_reply.startswith("354"):
                    await writer.drain()
                    for _ in range(100_000):  # bounded: the message ends with a line "."
                        body = await reader.readline()
                        if not body or body.rstrip(b"\r\n") == b".":
                            break
                    self.messages_received += 1
                    writer.write(self.eod_reply.encode() + b"\r\n")
            elif verb in ("RSET", "NOOP"):
                in_transaction = in_transaction and verb == "NOOP"
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                self._count("502")
                writer.write(b"502 5.5.2 Error: command not recognized\r\n")
            await writer.drain()

    def _count(self, reply: str) -> None:
        if reply[:1] in ("4", "5"):
            self.rejections_per_session[-1] += 1


@contextlib.asynccontextmanager
async def running(srv: Scripted, also: tuple[str, ...] = ()) -> AsyncIterator[Scripted]:
    """Serve on 127.0.0.1 (and on the same port of the ``also`` loopback addresses)."""
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0, limit=1 << 16)
    srv.port = server.sockets[0].getsockname()[1]
    servers = [server]
    for addr in also:
        servers.append(await asyncio.start_server(srv.handle, addr, srv.port, limit=1 << 16))
    try:
        yield srv
    finally:
        for server in servers:
            server.close()
        # Handlers still sleeping (tarpit) are cancelled rather than awaited.
        for task in srv.tasks:
            task.cancel()
        await asyncio.gather(*srv.tasks, return_exceptions=True)


class RcptHandler:
    """aiosmtpd handler: the RCPT answer comes from a function of (peer ip, sender, rcpt)."""

    def __init__(self, decide: Callable[[str, str, str], str]) -> None:
        self.decide = decide
        self.rcpts: list[tuple[str, str]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        reply = self.decide(peer, envelope.mail_from or "", address)
        self.rcpts.append((address, reply))
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply


@contextlib.asynccontextmanager
async def aiosmtpd_server(handler: Any, **smtp_kw: Any) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="aiosmtpd.fake.test", **smtp_kw), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def mx_for(domains: list[str], address: str = "127.0.0.1", host: str = "") -> list[DnsMx]:
    """DNS observations saying every domain has one MX (``host`` or mx.<domain>) at ``address``."""
    return [
        DnsMx(target=d, hosts=(MxHost(name=host or f"mx.{d}", preference=10, addresses=(address,)),))
        for d in domains
    ]


def fast_settings(port: int, **kw: Any) -> ProbeSettings:
    base: dict[str, Any] = {
        "port": port,
        "timeout": 1.5,
        "audit_timeout": 60.0,
        "session_delay": 0.0,
        "backoff_421": 0.1,
        "ehlo": "probe.test",
        "mail_from": "probe@audit.test",
        # The identity check asks DNS: unit tests give it a loopback nameserver or skip it.
        "check_identity": False,
    }
    base.update(kw)
    return ProbeSettings(**base)


def elapsed(t0: float) -> float:
    return time.monotonic() - t0
