"""A small, defensive SMTP client on asyncio streams, made for probing servers we do not trust.

Why not aiosmtplib (5.1.3 installed)? It does read whole multi-line replies, takes per-call
timeouts, skips certificate checks (validate_certs=False) and caps a reply at fixed module
constants (8 KiB a line, 32 KiB a reply). What it lacks for probing: no raw transcript of what was
said (our evidence), and no PIPELINING at all (strictly lock-step), so "pipeline only when
advertised" can neither be done nor tested; its limits are not settings. The few lines below
give all of that on plain asyncio streams.

Every read is bounded in time (``timeout`` per reply), in line length (the stream ``limit``) and in
line count; any violation raises :class:`ProbeError` with a stable reason string.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Sequence

from auditor.observations.smtp import (
    R_CLOSED,
    R_CONNECT,
    R_GARBAGE,
    R_REFUSED,
    R_TIMEOUT,
    R_TLS,
    R_TOO_LONG,
    R_TOO_MANY,
    Reply,
    TlsInfo,
)

_REPLY_LINE = re.compile(r"([2-5][0-9][0-9])(?:([ -])(.*))?")
# Transcript lines are evidence, not a dump: a hostile server must not bloat the report.
_TRANSCRIPT_LINE_MAX = 512


class ProbeError(Exception):
    """The conversation cannot go on: ``reason`` is one of the R_* strings of the model."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        # For a pipelined group: the replies read before the failure (e.g. a 421, then EOF).
        self.partial: list[Reply] = []


class SmtpClient:
    """One SMTP session. ``lines`` is the transcript as (tag, "C: …"/"S: …"/"*: …") pairs."""

    def __init__(self, *, timeout: float, max_lines: int = 100, max_line_length: int = 4096) -> None:
        self.timeout = timeout
        self.max_lines = max_lines
        self.max_line_length = max_line_length
        self.lines: list[tuple[str | None, str]] = []
        self.tag: str | None = None  # which domain the next commands belong to (None: shared)
        self.extensions: dict[str, str] = {}
        self.local_address = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    # -- transcript -------------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.lines.append((self.tag, f"*: {text}"))

    def _log(self, who: str, text: str) -> None:
        if len(text) > _TRANSCRIPT_LINE_MAX:
            text = text[:_TRANSCRIPT_LINE_MAX] + f"… ({len(text)} chars)"
        self.lines.append((self.tag, f"{who}: {text}"))

    # -- connection -------------------------------------------------------------------------
    async def connect(self, host: str, port: int, source_address: str = "") -> Reply:
        """Open the connection and read the whole greeting (never speak before its last line)."""
        local = (source_address, 0) if source_address else None
        self.note(f"connect [{host}]:{port}" + (f" from {source_address}" if source_address else ""))
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    host, port, local_addr=local, limit=self.max_line_length
                )
        except TimeoutError:
            raise ProbeError(R_TIMEOUT, f"connect to [{host}]:{port}") from None
        except ConnectionRefusedError:
            raise ProbeError(R_REFUSED, f"[{host}]:{port}") from None
        except OSError as exc:
            raise ProbeError(R_CONNECT, f"[{host}]:{port}: {exc.strerror or exc}") from None
        sock = self._writer.get_extra_info("sockname")
        self.local_address = str(sock[0]) if sock else ""
        return await self.read_reply("greeting")

    async def read_reply(self, stage: str) -> Reply:
        """Read one complete (possibly multi-line) reply within the stage timeout."""
        if self._reader is None:
            raise ProbeError(R_CLOSED, "not connected")
        code: int | None = None
        texts: list[str] = []
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    raw = await self._reader.readuntil(b"\n")
                    line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                    self._log("S", line)
                    m = _REPLY_LINE.fullmatch(line)
                    if not m or (code is not None and int(m.group(1)) != code):
                        raise ProbeError(R_GARBAGE, f"{stage}: {line[:80]!r}")
                    code = int(m.group(1))
                    texts.append(m.group(3) or "")
                    if len(texts) > self.max_lines:
                        raise ProbeError(R_TOO_MANY, f"{stage}: more than {self.max_lines} lines")
                    if m.group(2) != "-":
                        return Reply(code, tuple(texts))
        except TimeoutError:
            raise ProbeError(R_TIMEOUT, f"{stage}: no complete reply within {self.timeout:g} s") from None
        except (asyncio.LimitOverrunError, ValueError):
            # readuntil raises LimitOverrunError (ValueError once the buffer is consumed).
            self.note(f"reply line longer than {self.max_line_length} bytes")
            raise ProbeError(R_TOO_LONG, f"{stage}: line over {self.max_line_length} bytes") from None
        except asyncio.IncompleteReadError:
            self.note("connection closed by server")
            raise ProbeError(R_CLOSED, f"{stage}: server closed the connection") from None
        except (ConnectionError, OSError) as exc:
            raise ProbeError(R_CLOSED, f"{stage}: {exc}") from None

    async def _write(self, data: str) -> None:
        if self._writer is None:
            raise ProbeError(R_CLOSED, "not connected")
        try:
            async with asyncio.timeout(self.timeout):
                self._writer.write(data.encode("utf-8"))
                await self._writer.drain()
        except TimeoutError:
            raise ProbeError(R_TIMEOUT, "write") from None
        except (ConnectionError, OSError) as exc:
            raise ProbeError(R_CLOSED, f"write: {exc}") from None

    async def command(self, line: str) -> Reply:
        """Lock-step: send one command, wait for its reply."""
        self._log("C", line)
        await self._write(line + "\r\n")
        return await self.read_reply(line.split(":", 1)[0].split(" ", 1)[0])

    async def pipeline(self, commands: Sequence[tuple[str | None, str]]) -> list[Reply]:
        """RFC 2920: send a group of (tag, command) at once, then read one reply per command.

        The caller checks that PIPELINING was advertised. Replies are returned as they come; a
        failure mid-group raises with the replies read so far in ``ProbeError.partial``, and the
        caller treats the unanswered commands as not asked.
        """
        for tag, line in commands:
            self.tag = tag
            self._log("C", line)
        await self._write("".join(f"{line}\r\n" for _, line in commands))
        replies: list[Reply] = []
        try:
            for tag, line in commands:
                self.tag = tag
                replies.append(await self.read_reply(line.split(":", 1)[0]))
        except ProbeError as exc:
            exc.partial = replies  # what the server did answer still counts
            raise
        return replies

    async def send_message(self, text: str) -> Reply:
        """After a 354: send the message (dot-stuffed, CRLF) and the final dot, read the reply."""
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        body = "".join(("." + ln if ln.startswith(".") else ln) + "\r\n" for ln in lines)
        self.note(f"message: {len(body)} bytes")
        await self._write(body + ".\r\n")
        return await self.read_reply("end of DATA")

    async def ehlo(self, name: str) -> Reply:
        """EHLO, HELO on a 5xx; fills :attr:`extensions` (upper-case keyword → parameters)."""
        reply = await self.command(f"EHLO {name}")
        self.extensions = {}
        if reply.klass == 5:
            return await self.command(f"HELO {name}")
        if reply.klass == 2:
            for text in reply.lines[1:]:
                kw, _, params = text.strip().partition(" ")
                if kw:
                    self.extensions[kw.upper()] = params
        return reply

    async def starttls(self) -> tuple[Reply, TlsInfo]:
        """STARTTLS without certificate verification: the probe records TLS, it never fails on it."""
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            return reply, TlsInfo(offered=True, attempted=True, error=f"STARTTLS refused: {reply}")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        assert self._writer is not None
        try:
            async with asyncio.timeout(self.timeout):
                await self._writer.start_tls(ctx)
        except TimeoutError:
            self.note("TLS handshake timed out")
            raise ProbeError(R_TLS, f"handshake: no answer within {self.timeout:g} s") from None
        except (ssl.SSLError, ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            self.note(f"TLS handshake failed: {type(exc).__name__}")
            raise ProbeError(R_TLS, f"handshake: {type(exc).__name__}: {exc}") from None
        obj = self._writer.get_extra_info("ssl_object")
        version = obj.version() if obj is not None else ""
        cipher = obj.cipher()[0] if obj is not None and obj.cipher() else ""
        self.note(f"TLS established: {version} {cipher} (certificate not verified)")
        return reply, TlsInfo(offered=True, attempted=True, ok=True, version=version or "", cipher=cipher)

    async def quit(self) -> None:
        """QUIT politely (errors ignored: the session is over anyway), then close."""
        try:
            if self._writer is not None and not self._writer.is_closing():
                await self.command("QUIT")
        except ProbeError:
            pass
        finally:
            await self.close()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            # A TLS peer that never answers the close_notify must not hang us.
            async with asyncio.timeout(min(self.timeout, 2.0)):
                await writer.wait_closed()
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
            pass

    def abort(self) -> None:
        """Drop the connection at once (cancellation path: no awaiting)."""
        if self._writer is not None:
            transport = self._writer.transport
            transport.abort()
        self._writer = self._reader = None
