"""`logs postfix FILE...`: what the site did — notifications Postfix sent, traced to their cause."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditor.cli.common import add_report_options, emit
from auditor.engine import build_report, now_iso
from auditor.model import InputError, Observation


def register(sub: Any) -> None:
    logs = sub.add_parser("logs", help="read mail logs and queues for evidence of backscatter (postfix)")
    kinds = logs.add_subparsers(dest="logs_kind", metavar="KIND")
    pf = kinds.add_parser(
        "postfix",
        help="trace every notification in Postfix logs (plain, .gz, .xz, - for stdin) to its cause",
        description="Trace every notification Postfix logged to how its original entered and why it "
        "failed; count the ones for mail from outside the trusted networks (backscatter). Files are read "
        "in time order (rotated sets oldest first). Judged by PF-LOG-001.",
    )
    pf.add_argument("files", metavar="FILE", nargs="*", help="mail log files; - reads stdin")
    pf.add_argument(
        "--trusted-networks",
        metavar="CIDR,...",
        help="networks whose clients are inside (default: --postfix-dir's mynetworks, else loopback only)",
    )
    pf.add_argument("--postfix-dir", metavar="DIR", help="read mynetworks from this Postfix config directory")
    pf.add_argument(
        "--year",
        type=int,
        help="year of the first RFC 3164 (year-less) timestamp; default: inferred from each file's "
        "modification time",
    )
    pf.add_argument("--queue", metavar="FILE", help="also judge a `postqueue -j` snapshot (- for stdin)")
    pf.add_argument(
        "--queue-live",
        metavar="DIR",
        help="also run `postqueue -c DIR -j` (with a timeout) and judge the queue",
    )
    add_report_options(pf)
    pf.set_defaults(func=run_postfix)
    logs.set_defaults(func=lambda _a: (logs.print_help(sys.stderr), 2)[1])


def run_postfix(args: argparse.Namespace) -> int:
    from auditor.collect.logs import (
        collect_postfix_logs,
        collect_postfix_queue,
        networks_from_postfix,
        parse_networks,
    )

    if not args.files and not args.queue and not args.queue_live:
        raise InputError("logs postfix needs a FILE, --queue FILE or --queue-live DIR")
    if args.files.count("-") + (args.queue == "-") > 1:
        raise InputError("stdin (-) can be read only once")
    if args.year is not None and not 1970 <= args.year <= 9999:
        raise InputError(f"--year {args.year} is out of range")
    started = now_iso()
    notes: list[str] = []
    nets = []
    source = ""
    if args.trusted_networks:
        nets = parse_networks(args.trusted_networks)
        source = "--trusted-networks"
    elif args.postfix_dir:
        nets, notes = networks_from_postfix(args.postfix_dir)
        source = f"mynetworks of {args.postfix_dir}"
    observations: list[Observation] = []
    if args.files:
        observations.append(
            collect_postfix_logs(
                args.files, trusted_networks=nets, trusted_source=source, year=args.year, notes=notes
            )
        )
    if args.queue:
        observations.append(collect_postfix_queue(args.queue))
    if args.queue_live:
        observations.append(collect_postfix_queue(live_dir=args.queue_live))
    inputs = [
        *args.files,
        *([args.queue] if args.queue else []),
        *([args.queue_live] if args.queue_live else []),
    ]
    report = build_report(
        observations,
        command="logs postfix " + " ".join(inputs),
        started=started,
        inputs=inputs,
        notes=[n for o in observations for n in getattr(o, "notes", ())],
    )
    return emit(report, args)
