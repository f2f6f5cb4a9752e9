"""`report SAVED.json --format F`: re-render a saved JSON report in another format."""

from __future__ import annotations

import argparse
from typing import Any

from auditor.cli.common import add_report_options, emit
from auditor.serialize import load_report


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="re-render a saved JSON report")
    p.add_argument("report", metavar="REPORT.json")
    add_report_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return emit(load_report(args.report), args)
