"""`lint postfix DIR`, `lint exchange FILE...`, `lint amavis PATH...`: judge config, touch no server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditor.cli.common import add_report_options, emit
from auditor.engine import build_report, now_iso


def register(sub: Any) -> None:
    lint = sub.add_parser("lint", help="lint mail server configuration (postfix, exchange, amavis)")
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

    am = kinds.add_parser(
        "amavis",
        help="lint amavisd-new configuration (amavisd.conf, or a conf.d folder), optionally with Postfix",
    )
    am.add_argument(
        "paths", metavar="PATH", nargs="+", help="files or conf.d folders, in the order amavis reads them"
    )
    am.add_argument(
        "--postfix-dir",
        metavar="DIR",
        help="the Postfix config directory, to tell where amavis sits (after/before the queue)",
    )
    add_report_options(am)
    am.set_defaults(func=run_amavis)
    lint.set_defaults(func=lambda _a: (lint.print_help(sys.stderr), 2)[1])


def run_postfix(args: argparse.Namespace) -> int:
    from auditor.collect.postfix import collect

    started = now_iso()
    cfg = collect(args.directory, use_postconf=False if args.no_postconf else None)
    report = build_report(
        [cfg], command=f"lint postfix {args.directory}", started=started, inputs=[args.directory]
    )
    return emit(report, args)


def run_amavis(args: argparse.Namespace) -> int:
    from auditor.collect.amavis import collect as collect_amavis

    started = now_iso()
    observations: list[Any] = [collect_amavis(args.paths)]
    inputs = list(args.paths)
    command = "lint amavis " + " ".join(args.paths)
    if args.postfix_dir:
        from auditor.collect.postfix import collect as collect_postfix

        observations.append(collect_postfix(args.postfix_dir))
        inputs.append(args.postfix_dir)
        command += f" --postfix-dir {args.postfix_dir}"
    report = build_report(observations, command=command, started=started, inputs=inputs)
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
