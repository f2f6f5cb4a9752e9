"""`demo`: lab up, audit of the lab site (probes, DATA probes, directory, lint), reports, lab down."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditor.cli.common import write_output
from auditor.exitcodes import ExitCode
from auditor.judge import revise
from auditor.model import Severity
from auditor.render import render


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="audit the built-in demo site: lab up, audit, write reports, lab down (needs root)",
    )
    p.add_argument("--output-dir", default="reports/demo", metavar="DIR", help="where the reports go")
    p.add_argument("--no-data-probes", action="store_true", help="RCPT-only probes (no DATA probes)")
    p.add_argument(
        "--fail-on",
        choices=[s.value for s in Severity],
        help="exit 1 when findings at or above this severity fail (default: exit 0 once the audit ran;"
        " the demo site is sloppy on purpose)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auditor.demo import run_demo
    from auditor.lab.procs import LabError

    try:
        report = run_demo(args.output_dir, data_probes=not args.no_data_probes)
    except LabError as exc:
        print(f"backscatter-audit: error: the demo lab could not run: {exc}", file=sys.stderr)
        return ExitCode.LAB_DOWN
    write_output(render(report, "text"), None)
    print(
        f"demo: reports written to {args.output_dir}/report.html, report.md, report.json",
        file=sys.stderr,
    )
    if not args.fail_on:
        return ExitCode.OK
    return revise(report, fail_on=Severity(args.fail_on)).assessment.exit_code
