"""`lint postfix DIR` and `lint exchange FILE...`: judge configuration without touching any server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditor.cli.common import add_report_options, emit
from auditor.engine import build_report, now_iso


def register(sub: Any) -> None:
    lint = sub.add_parser("lint", help="lint mail server configuration (postfix, exchange, exim)")
    kinds = lint.add_subparsers(dest="lint_kind", metavar="KIND")

    pf = kinds.add_parser("postfix", help="lint a Postfix config directory (main.cf, master.cf, tables)")
    pf.add_argument("directory", metavar="DIR")
    pf.add_argument(
        "--no-postconf",
        action="store_true",
        help="parse the files even where the postconf command is installed",
    )
    add_report_options(pf)
    pf.set_defaults(func=run_postfix)

    ex = kinds.add_parser(
        "exchange", help="lint Exchange cmdlet exports (collector JSON, CLIXML, Format-List)"
    )
    ex.add_argument("files", metavar="FILE", nargs="*")
    ex.add_argument(
        "--collector", action="store_true", help="print the path of the PowerShell collector script and exit"
    )
    add_report_options(ex)
    ex.set_defaults(func=run_exchange)

    xm = kinds.add_parser(
        "exim", help="lint an Exim configuration (exim4.conf / exim.conf, or Debian's /etc/exim4 directory)"
    )
    xm.add_argument("path", metavar="PATH")
    xm.add_argument(
        "--no-exim",
        action="store_true",
        help="do not ask an installed exim binary for its built-in macros (_HAVE_*, _OPT_*)",
    )
    add_report_options(xm)
    xm.set_defaults(func=run_exim)
    lint.set_defaults(func=lambda _a: (lint.print_help(sys.stderr), 2)[1])


def run_postfix(args: argparse.Namespace) -> int:
    from auditor.collect.postfix import collect

    started = now_iso()
    cfg = collect(args.directory, use_postconf=False if args.no_postconf else None)
    report = build_report(
        [cfg], command=f"lint postfix {args.directory}", started=started, inputs=[args.directory]
    )
    return emit(report, args)


def run_exchange(args: argparse.Namespace) -> int:
    from auditor.collect import exchange

    if args.collector:
        print(exchange.collector_script_path())
        return 0
    if not args.files:
        print("backscatter-audit: error: lint exchange needs at least one FILE", file=sys.stderr)
        return 2
    started = now_iso()
    observations = exchange.collect(args.files)
    report = build_report(
        observations, command="lint exchange " + " ".join(args.files), started=started, inputs=args.files
    )
    return emit(report, args)


def run_exim(args: argparse.Namespace) -> int:
    from auditor.collect.exim import collect

    started = now_iso()
    cfg = collect(args.path, use_exim=False if args.no_exim else None)
    report = build_report([cfg], command=f"lint exim {args.path}", started=started, inputs=[args.path])
    return emit(report, args)
