"""The lab's minimal mail sink: aiosmtpd listeners that store each message in a Maildir.

``python -m auditor.lab.sink_process --dir DIR NAME=HOST:PORT[:MODE] ...`` where MODE is
``bounces`` (the product's bounce sink, :mod:`auditor.collect.sink`: accepts only recipients that
carry a live probe token — one file per token in ``DIR/tokens`` — and rejects every other one at
RCPT) or ``inbox`` (accepts every recipient: mail the lab's MXs accept and deliver). Messages land
in ``DIR/NAME`` (Maildir: written to tmp/, then renamed into new/, so a reader never sees half a
message). SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from auditor.collect.sink import Maildir, SinkHandler, TokenStore, make_smtp
from auditor.lab import topology as topo

MAX_MESSAGE = 10 * 1024 * 1024


class MaildirHandler:
    """aiosmtpd handler: RCPT policy per mode, DATA stored with envelope headers prepended."""

    def __init__(self, directory: Path, mode: str) -> None:
        self.mode = mode
        self.box = mailbox.Maildir(directory, create=True)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        local, _, domain = address.rpartition("@")
        if self.mode == "bounces" and (
            domain.lower() != topo.SINK_DOMAIN or not local.lower().startswith(topo.PROBE_LOCAL_PREFIX)
        ):
            return "550 5.1.1 not a probe address of this sink"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        sender = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
        # Return-Path and Delivered-To as a delivery agent writes them: readers of the Maildir (the
        # DATA probes' mailbox reader) take the envelope from there, as from any real mailbox.
        head = (
            f"Return-Path: <{sender}>\r\n"
            f"Delivered-To: {envelope.rcpt_tos[0] if envelope.rcpt_tos else ''}\r\n"
            f"X-Sink-Peer: {session.peer[0] if session.peer else ''}\r\n"
            f"X-Sink-Mail-From: <{sender}>\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        await asyncio.get_running_loop().run_in_executor(None, self.box.add, head + content)
        return "250 2.0.0 stored"


def parse_listener(spec: str) -> tuple[str, str, int, str]:
    name, sep, rest = spec.partition("=")
    parts = rest.split(":")
    if not sep or len(parts) not in (2, 3) or not parts[1].isdigit():
        raise SystemExit(f"sink: bad listener {spec!r}: want NAME=HOST:PORT[:bounces|inbox]")
    mode = parts[2] if len(parts) == 3 else "inbox"
    if mode not in ("bounces", "inbox"):
        raise SystemExit(f"sink: bad mode {mode!r} in {spec!r}")
    return name, parts[0], int(parts[1]), mode


async def serve(directory: Path, listeners: Sequence[tuple[str, str, int, str]]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers: list[Any] = []
    for name, host, port, mode in listeners:
        handler: Any
        if mode == "bounces":
            # The product's own bounce sink: live probe tokens only (files in DIR/tokens), with its
            # limits and its Maildir writer, so real Postfix bounces exercise it end to end.
            handler = SinkHandler(
                topo.SINK_DOMAIN, TokenStore(str(directory / "tokens")), Maildir(str(directory / name))
            )
        else:
            handler = MaildirHandler(directory / name, mode)

        def factory(h: Any = handler, n: str = name) -> SMTP:
            if isinstance(h, SinkHandler):  # the product sink, with all of its limits
                return make_smtp(h, f"{n}.{topo.SINK_DOMAIN}")
            return SMTP(h, hostname=f"{n}.{topo.SINK_DOMAIN}", data_size_limit=MAX_MESSAGE, timeout=60)

        servers.append(await loop.create_server(factory, host=host, port=port))
    print("sink ready", flush=True)
    await stop.wait()
    for s in servers:
        s.close()
        await s.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sink_process")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("listeners", nargs="+")
    args = p.parse_args(argv)
    asyncio.run(serve(args.dir, [parse_listener(s) for s in args.listeners]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
