"""`ndr FILE|DIR...`: analyse captured bounces / DSNs / auto-replies (files, mbox, Maildir)."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from tabulate import tabulate

from auditor.audit import run_audit
from auditor.cli.args import check_output
from auditor.cli.common import progress_for, write_output
from auditor.config import NdrSection, SiteConfig, check_site_config
from auditor.exitcodes import ExitCode
from auditor.judge import revise
from auditor.model import InputError, Severity
from auditor.render import formats, render
from auditor.stages import build_collectors

LIST_FORMATS = ("text", "json")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ndr",
        help="analyse bounces, DSNs and auto-replies (message files, mbox files, Maildirs, folders)",
    )
    p.add_argument("paths", metavar="FILE|DIR", nargs="+")
    p.add_argument(
        "--format",
        "-f",
        default="text",
        help="text (table) or json (array, one object per message); with --judge any report format",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    p.add_argument(
        "--judge",
        action="store_true",
        help="judge the messages with the NDR- rules and print a findings report instead of the list",
    )
    p.add_argument(
        "--fail-on",
        default="low",
        choices=[s.value for s in Severity],
        help="with --judge: lowest severity that makes the exit code non-zero (default: low)",
    )
    p.set_defaults(func=run_ndr)


def _table(records: list[dict[str, Any]]) -> str:
    rows = []
    for r in records:
        rcpts = "\n".join(f"{x['address']} {x['status']}".strip() for x in r["recipients"][:10])
        rows.append(
            [
                _short(r["path"]),
                r["kind"],
                r["family"],
                rcpts,
                r["returned"],
                textwrap.shorten(r["reporting_mta"], 30, placeholder="…"),
            ]
        )
    head = ["path", "kind", "format", "recipients", "returned", "reporting MTA"]
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no messages"
    return tabulate(rows, headers=head) + f"\n\n{len(records)} messages: {summary}\n"


def run_ndr(args: argparse.Namespace) -> int:
    from auditor.bounces import analyse_bytes, iter_messages

    check_output(args.output)
    if args.judge:
        if args.format not in formats():
            raise InputError(f"unknown format {args.format!r} (choose from {', '.join(formats())})")
        cfg = check_site_config(SiteConfig(ndr=NdrSection(paths=tuple(args.paths))))
        report = run_audit(
            cfg,
            build_collectors(cfg, ("ndr",)),
            command="ndr " + " ".join(args.paths),
            progress=progress_for(args, label=""),
            announce=False,
            inputs=args.paths,
        )
        report = revise(report, fail_on=Severity(args.fail_on))
        write_output(render(report, args.format), args.output)
        return report.assessment.exit_code
    if args.format not in LIST_FORMATS:
        raise InputError(f"format {args.format!r} needs --judge (the list is text or json)")
    # The plain list is the analysis itself, not a judged report: no collector run.
    records = [analyse_bytes(data, path).to_json() for path, data in iter_messages(args.paths)]
    if args.format == "json":
        write_output(json.dumps(records, indent=2, ensure_ascii=False) + "\n", args.output)
    else:
        write_output(_table(records), args.output)
    return ExitCode.OK


def _short(path: str, width: int = 50) -> str:
    """Keep the end of a long path (the file name is what tells messages apart)."""
    return path if len(path) <= width else "…" + path[-(width - 1) :]
