"""A tiny greylisting policy service for the lab's grey.test MX (Postfix policy delegation protocol).

``python -m auditor.lab.greylist --socket PATH --delay SECONDS``. The first attempt of a
(client address, sender, recipient) triple gets ``450 4.2.0 Greylisted``; the same triple is let
through (``DUNNO``: Postfix goes on with its other checks) once ``delay`` seconds have passed.
Hand-written rather than postgrey: 60 lines, no Perl daemon and no database to set up per lab run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

MAX_TRIPLES = 10000  # memory bound: the oldest triples are forgotten first
MAX_REQUEST = 64 * 1024


class Greylist:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.first_seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def decide(self, attrs: dict[str, str], now: float) -> str:
        if attrs.get("request") != "smtpd_access_policy" or attrs.get("protocol_state", "RCPT") != "RCPT":
            return "DUNNO"
        triple = (
            attrs.get("client_address", ""),
            attrs.get("sender", "").lower(),
            attrs.get("recipient", "").lower(),
        )
        first = self.first_seen.setdefault(triple, now)
        if len(self.first_seen) > MAX_TRIPLES:
            self.first_seen.popitem(last=False)
        if now - first >= self.delay:
            return "DUNNO"
        wait = max(1, int(first + self.delay - now + 0.999))
        return f"450 4.2.0 Greylisted, try again in {wait} seconds"


async def _client(gl: Greylist, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        attrs: dict[str, str] = {}
        size = 0
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout=100)
            if not line:
                break
            size += len(line)
            if size > MAX_REQUEST:
                break
            text = line.decode(errors="replace").rstrip("\r\n")
            if text:
                name, _, value = text.partition("=")
                attrs[name] = value
                continue
            writer.write(f"action={gl.decide(attrs, time.monotonic())}\n\n".encode())
            await writer.drain()
            attrs, size = {}, 0
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(socket_path: Path, delay: float) -> None:
    gl = Greylist(delay)
    socket_path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(lambda r, w: _client(gl, r, w), path=str(socket_path))
    os.chmod(socket_path, 0o666)  # Postfix's smtpd runs as the postfix user
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("greylist ready", flush=True)
    await stop.wait()
    server.close()
    socket_path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="greylist")
    p.add_argument("--socket", required=True, type=Path)
    p.add_argument("--delay", type=float, default=3.0)
    args = p.parse_args(argv)
    asyncio.run(serve(args.socket, args.delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
