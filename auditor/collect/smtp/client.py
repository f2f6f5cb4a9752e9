"""A small, defensive SMTP client on asyncio streams, made for probing servers we do not trust.

Why not aiosmtplib (5.1.3 installed)? It does read whole multi-line replies, takes per-call
timeouts, skips certificate checks (validate_certs=False) and caps a reply at fixed module
constants (8 KiB a line, 32 KiB a reply). What it lacks for probing: no raw transcript of what was
said (our evidence), and no PIPELINING at all (strictly lock-step), so "pipeline only when
advertised" can neither be done nor tested; its limits are not settings. The few lines below
give all of that on plain asyncio streams.

Every read is bounded in time (``timeout`` per reply), in line length (the stream ``limit``) and in
line count; any violation raises :class:`ProbeError` with a stable reason. Before each command the
client checks that the server has not spoken out of turn (a second greeting line, a reply to a
command not sent yet): every later reply would be taken for the answer to the wrong command.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable, Sequence

from auditor.observations.smtp import Reason, Reply, TlsInfo

_REPLY_LINE = re.compile(r"([2-5][0-9][0-9])(?:([ -])(.*))?")
# Transcript lines are evidence, not a dump: a hostile server must not bloat the report.
_TRANSCRIPT_LINE_MAX = 512


class ProbeError(Exception):
    """The conversation cannot go on: ``reason`` says why."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
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
        # Seconds each reply of the last exchange() took to arrive (a tarpit's fingerprint).
        self.latencies: list[float] = []
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
            raise ProbeError(Reason.TIMEOUT, f"connect to [{host}]:{port}") from None
        except ConnectionRefusedError:
            raise ProbeError(Reason.REFUSED, f"[{host}]:{port}") from None
        except OSError as exc:
            raise ProbeError(Reason.CONNECT, f"[{host}]:{port}: {exc.strerror or exc}") from None
        sock = self._writer.get_extra_info("sockname")
        self.local_address = str(sock[0]) if sock else ""
        return await self.read_reply("greeting")

    async def read_reply(self, stage: str) -> Reply:
        """Read one complete (possibly multi-line) reply within the stage timeout."""
        if self._reader is None:
            raise ProbeError(Reason.CLOSED, "not connected")
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
                        raise ProbeError(Reason.GARBAGE, f"{stage}: {line[:80]!r}")
                    code = int(m.group(1))
                    texts.append(m.group(3) or "")
                    if len(texts) > self.max_lines:
                        raise ProbeError(Reason.TOO_MANY, f"{stage}: more than {self.max_lines} lines")
                    if m.group(2) != "-":
                        return Reply(code, tuple(texts))
        except TimeoutError:
            raise ProbeError(
                Reason.TIMEOUT, f"{stage}: no complete reply within {self.timeout:g} s"
            ) from None
        except (asyncio.LimitOverrunError, ValueError):
            # readuntil raises LimitOverrunError (ValueError once the buffer is consumed).
            self.note(f"reply line longer than {self.max_line_length} bytes")
            raise ProbeError(Reason.TOO_LONG, f"{stage}: line over {self.max_line_length} bytes") from None
        except asyncio.IncompleteReadError:
            self.note("connection closed by server")
            raise ProbeError(Reason.CLOSED, f"{stage}: server closed the connection") from None
        except (ConnectionError, OSError) as exc:
            raise ProbeError(Reason.CLOSED, f"{stage}: {exc}") from None

    async def _write(self, data: str) -> None:
        if self._writer is None:
            raise ProbeError(Reason.CLOSED, "not connected")
        try:
            async with asyncio.timeout(self.timeout):
                self._writer.write(data.encode("utf-8"))
                await self._writer.drain()
        except TimeoutError:
            raise ProbeError(Reason.TIMEOUT, "write") from None
        except (ConnectionError, OSError) as exc:
            raise ProbeError(Reason.CLOSED, f"write: {exc}") from None

    async def _quiet(self, before: str) -> None:
        """Raise when input is waiting before we speak: the server talked out of turn."""
        await asyncio.sleep(0)  # let bytes already on the socket reach the reader's buffer
        waiting = bytes(getattr(self._reader, "_buffer", b""))
        if waiting:
            text = waiting[:80].decode("utf-8", "replace")
            self.note(f"server sent {len(waiting)} byte(s) before our {before}: {text!r}")
            raise ProbeError(Reason.EARLY_TALK, f"input waiting before {before}: {text!r}")

    async def command(self, line: str) -> Reply:
        """Lock-step: send one command, wait for its reply."""
        verb = _verb(line)
        await self._quiet(verb)
        self._log("C", line)
        await self._write(line + "\r\n")
        return await self.read_reply(verb)

    async def exchange(
        self,
        commands: Sequence[tuple[str | None, str]],
        *,
        pipelining: bool,
        stop: Callable[[str, Reply], bool] = lambda _line, _reply: False,
    ) -> list[Reply]:
        """Send (tag, command) pairs and read one reply for each, in order.

        Pipelining (RFC 2920; the caller checks it was advertised): the whole group goes out at
        once, then the replies are read. Lock-step: one command at a time, and the exchange ends
        early after a reply for which ``stop(command, reply)`` is true (the rest is not sent).
        A failure raises :class:`ProbeError` with the replies read so far in ``partial``: what the
        server did answer still counts, the unanswered commands count as not asked.
        """
        replies: list[Reply] = []
        self.latencies = []
        loop = asyncio.get_running_loop()
        try:
            if pipelining:
                await self._quiet(_verb(commands[0][1]) if commands else "group")
                for tag, line in commands:
                    self.tag = tag
                    self._log("C", line)
                await self._write("".join(f"{line}\r\n" for _, line in commands))
                t = loop.time()
                for tag, line in commands:
                    self.tag = tag
                    replies.append(await self.read_reply(_verb(line)))
                    now = loop.time()
                    self.latencies.append(now - t)
                    t = now
            else:
                for tag, line in commands:
                    self.tag = tag
                    t = loop.time()
                    reply = await self.command(line)
                    self.latencies.append(loop.time() - t)
                    replies.append(reply)
                    if stop(line, reply):
                        break
        except ProbeError as exc:
            exc.partial = replies
            raise
        return replies

    async def send_message(self, text: str) -> Reply:
        """After a 354: send the message (dot-stuffed, CRLF) and the final dot, read the reply."""
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        body = "".join(("." + ln if ln.startswith(".") else ln) + "\r\n" for ln in lines)
        await self._quiet("the message")
        self.note(f"message: {len(body)} bytes")
        await self._write(body + ".\r\n")
        return await self.read_reply("end of DATA")

    async def ehlo(self, name: str) -> Reply:
        """EHLO, HELO on a 5xx; fills :attr:`extensions` (upper-case keyword → parameters).

        Only a 250 is a greeting answer (RFC 5321 §4.3.2); anything else is returned for the caller
        to judge — a 220 here is a second banner line that came late, not an EHLO reply.
        """
        reply = await self.command(f"EHLO {name}")
        self.extensions = {}
        if reply.klass == 5:
            return await self.command(f"HELO {name}")
        if reply.code == 250:
            for text in reply.lines[1:]:
                kw, _, params = text.strip().partition(" ")
                if kw:
                    self.extensions[kw.upper()] = params
        return reply

    async def starttls(self) -> tuple[Reply, TlsInfo]:
        """STARTTLS without certificate verification: the probe records TLS, it never fails on it."""
        reply = await self.command("STARTTLS")
        await self._quiet("the TLS handshake")  # plaintext queued behind the 220 would be injected
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
            raise ProbeError(Reason.TLS, f"handshake: no answer within {self.timeout:g} s") from None
        except (ssl.SSLError, ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            self.note(f"TLS handshake failed: {type(exc).__name__}")
            raise ProbeError(Reason.TLS, f"handshake: {type(exc).__name__}: {exc}") from None
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


def _verb(line: str) -> str:
    """The command word of a command line, for error messages ("RCPT", "MAIL", "EHLO")."""
    return line.split(":", 1)[0].split(" ", 1)[0]
