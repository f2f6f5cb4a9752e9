"""`lint postfix DIR`, `lint exchange FILE...`, `lint amavis PATH...`: judge config, touch no server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditor.audit import run_audit
from auditor.cli.args import check_output
from auditor.cli.common import add_report_options, emit, progress_for
from auditor.config import (
    AmavisSection,
    ExchangeSection,
    EximSection,
    PostfixSection,
    SiteConfig,
    check_site_config,
)
from auditor.stages import build_collectors


def register(sub: Any) -> None:
    lint = sub.add_parser("lint", help="lint mail server configuration (postfix, exchange, amavis, exim)")
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


def _run(
    args: argparse.Namespace, cfg: SiteConfig, keys: str | list[str], command: str, inputs: list[str]
) -> int:
    check_output(args.output)
    cfg = check_site_config(cfg)
    report = run_audit(
        cfg,
        build_collectors(cfg, [keys] if isinstance(keys, str) else keys),
        command=command,
        progress=progress_for(args, label=""),
        announce=False,
        inputs=inputs,
    )
    return emit(report, args)


def run_postfix(args: argparse.Namespace) -> int:
    cfg = SiteConfig(postfix=PostfixSection(config_dirs=(args.directory,), postconf=not args.no_postconf))
    return _run(args, cfg, "postfix", f"lint postfix {args.directory}", [args.directory])


def run_amavis(args: argparse.Namespace) -> int:
    command = "lint amavis " + " ".join(args.paths)
    inputs, keys = list(args.paths), ["amavis"]
    postfix = PostfixSection()
    if args.postfix_dir:  # where amavis sits (before or after the queue) is in Postfix's files
        postfix = PostfixSection(config_dirs=(args.postfix_dir,))
        inputs.append(args.postfix_dir)
        keys.insert(0, "postfix")
        command += f" --postfix-dir {args.postfix_dir}"
    cfg = SiteConfig(amavis=AmavisSection(paths=tuple(args.paths)), postfix=postfix)
    return _run(args, cfg, keys, command, inputs)


def run_exchange(args: argparse.Namespace) -> int:
    from auditor.collect import exchange

    if args.collector:
        print(exchange.collector_script_path())
        return 0
    if not args.files:
        print("backscatter-audit: error: lint exchange needs at least one FILE", file=sys.stderr)
        return 2
    cfg = SiteConfig(exchange=ExchangeSection(exports=tuple(args.files)))
    return _run(args, cfg, "exchange", "lint exchange " + " ".join(args.files), list(args.files))


def run_exim(args: argparse.Namespace) -> int:
    cfg = SiteConfig(exim=EximSection(paths=(args.path,), use_exim=not args.no_exim))
    return _run(args, cfg, "exim", f"lint exim {args.path}", [args.path])
