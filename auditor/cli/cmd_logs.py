"""`logs postfix FILE...`: what the site did — notifications Postfix sent, traced to their cause."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditor.audit import run_audit
from auditor.cli.args import check_output
from auditor.cli.common import add_report_options, emit, progress_for
from auditor.config import LogsSection, SiteConfig, SiteSection, check_site_config
from auditor.model import InputError
from auditor.stages import build_collectors


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
    if not args.files and not args.queue and not args.queue_live:
        raise InputError("logs postfix needs a FILE, --queue FILE or --queue-live DIR")
    if args.files.count("-") + (args.queue == "-") > 1:
        raise InputError("stdin (-) can be read only once")
    check_output(args.output)
    site = SiteSection()
    if args.trusted_networks:
        site = SiteSection(trusted_networks=tuple(args.trusted_networks.replace(",", " ").split()))
    logs = LogsSection(
        postfix=tuple(args.files),
        queue=(args.queue,) if args.queue else (),
        queue_live=(args.queue_live,) if args.queue_live else (),
        mynetworks_from=(args.postfix_dir,) if args.postfix_dir and not args.trusted_networks else (),
        year=args.year or 0,
    )
    cfg = check_site_config(SiteConfig(site=site, logs=logs))
    inputs = [
        *args.files,
        *([args.queue] if args.queue else []),
        *([args.queue_live] if args.queue_live else []),
    ]
    report = run_audit(
        cfg,
        build_collectors(cfg, ("logs",)),
        command="logs postfix " + " ".join(inputs),
        progress=progress_for(args, label=""),
        announce=False,
        inputs=inputs,
    )
    return emit(report, args)
