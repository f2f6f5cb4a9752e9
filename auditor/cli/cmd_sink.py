"""`sink`: run the bounce sink (the SMTP server DATA probes' bounces come back to) until stopped."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from auditor.cli.args import bounded_float, bounded_int
from auditor.collect.sink import BounceSink, SinkLimits, TokenStore
from auditor.config import check_listen
from auditor.model import InputError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sink",
        help="run the bounce sink: accepts mail only for live probe tokens, writes it to a Maildir",
    )
    p.add_argument("--domain", required=True, help="the sink domain (its MX must point at this host)")
    p.add_argument("--maildir", required=True, help="where accepted bounces are written")
    p.add_argument("--listen", default="127.0.0.1:2525", metavar="ADDR:PORT")
    p.add_argument(
        "--token-dir",
        required=True,
        help="directory of live probe tokens (one file per token), shared with the prober",
    )
    p.add_argument(
        "--token-ttl",
        type=bounded_float(0, 366 * 86400),
        default=7 * 86400,
        help="seconds a token stays live",
    )
    p.add_argument("--max-message-bytes", type=bounded_int(1, 1 << 30), default=SinkLimits.max_message_bytes)
    p.add_argument("--max-line-bytes", type=bounded_int(1, 1 << 20), default=SinkLimits.max_line_bytes)
    p.add_argument("--max-recipients", type=bounded_int(1, 10000), default=SinkLimits.max_recipients)
    p.add_argument("--max-mime-parts", type=bounded_int(1, 100000), default=SinkLimits.max_mime_parts)
    p.add_argument("--session-timeout", type=bounded_float(0, 3600), default=SinkLimits.session_timeout)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    host, port = check_listen(args.listen, "--listen")
    for what, path in (("--maildir", args.maildir), ("--token-dir", args.token_dir)):
        if os.path.exists(path) and not os.path.isdir(path):
            raise InputError(f"{what}: exists and is not a directory", path)
    limits = SinkLimits(
        max_message_bytes=args.max_message_bytes,
        max_line_bytes=args.max_line_bytes,
        max_recipients=args.max_recipients,
        max_mime_parts=args.max_mime_parts,
        session_timeout=args.session_timeout,
    )
    try:
        sink = BounceSink(
            args.domain,
            args.maildir,
            host=host,
            port=port,
            tokens=TokenStore(args.token_dir, args.token_ttl),
            limits=limits,
        )
    except OSError as exc:
        raise InputError(
            f"--maildir: cannot create the Maildir: {exc.strerror or exc}", args.maildir
        ) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        sink.start()
    except OSError as exc:
        raise InputError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    print(f"sink: listening on {args.listen} for {args.domain}, Maildir {args.maildir}", file=sys.stderr)
    stop.wait()
    sink.stop()
    s = sink.stats
    print(f"sink: stopped; accepted {s.accepted}, rejected {s.rejected_rcpt} recipients", file=sys.stderr)
    return 0
