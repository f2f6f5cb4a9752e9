"""`report SAVED.json --format F` re-renders a saved JSON report; `report diff OLD NEW` compares two.

A saved report is rendered as saved: its assessment, plan and compliance table are not computed
again, and the exit code is its assessment's. ``--fail-on`` judges the headline (verdict, exit code)
again at that threshold and nothing else (the plan and the table do not depend on it);
``--suppressions`` changes findings, so the whole report is judged again.

Both forms share one sub-parser: argparse cannot tell a sub-command ``diff`` from a file name in the
same position, so the positionals are read as a list: ``diff A B`` is a comparison, one name is a
re-render (a file that is really called ``diff`` can be given as ``./diff``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from auditor.cli.common import add_report_options, emit, render_options, write_output
from auditor.exitcodes import ExitCode
from auditor.judge import revise
from auditor.model import InputError, Severity
from auditor.render.diff import diff_exit_code, diff_reports, render_diff_json, render_diff_text
from auditor.serialize import load_report
from auditor.suppress import known_rule_ids, load_suppressions

_USAGE = "backscatter-audit report REPORT.json [options] | backscatter-audit report diff OLD.json NEW.json"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="re-render a saved JSON report, or `report diff OLD NEW` to compare two",
        usage=_USAGE,
        description="Re-render a saved JSON report in another format, or compare two saved reports "
        "(`report diff OLD.json NEW.json`: new, fixed and unchanged failures; text or json; exit 1 "
        "when a new failure is at or above --fail-on). A saved report is rendered as saved and "
        "exits with its assessment's code.",
    )
    p.add_argument("paths", nargs="+", metavar="REPORT.json | diff OLD.json NEW.json")
    add_report_options(
        p,
        fail_on_default=None,
        fail_on_help="judge the verdict and exit code again at this severity (default: as saved; "
        "report diff: low)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths: list[str] = args.paths
    if paths[0] == "diff" and len(paths) != 1:
        if len(paths) != 3:
            print(
                f"backscatter-audit: error: report diff needs OLD.json and NEW.json\nusage: {_USAGE}",
                file=sys.stderr,
            )
            return ExitCode.INPUT
        return run_diff(args, paths[1], paths[2])
    if len(paths) != 1:
        print(f"backscatter-audit: error: report takes one REPORT.json\nusage: {_USAGE}", file=sys.stderr)
        return ExitCode.INPUT
    return emit(load_report(paths[0]), args)


def run_diff(args: argparse.Namespace, old_path: str, new_path: str) -> int:
    if args.format not in ("text", "json"):
        raise InputError(f"report diff writes text or json, not {args.format!r}")
    if getattr(args, "write_baseline", None):
        raise InputError("--write-baseline is for a single report, not for report diff")
    old, new = load_report(old_path), load_report(new_path)
    if args.suppressions:  # the same accepted risks on both sides, so they are neither new nor fixed
        sups = load_suppressions(args.suppressions, known_rule_ids((*old.findings, *new.findings)))
        today = dt.datetime.now(dt.UTC).date()
        old, new = revise(old, suppressions=sups, today=today), revise(new, suppressions=sups, today=today)
    d = diff_reports(old, new)
    write_output(
        render_diff_json(d) if args.format == "json" else render_diff_text(d, render_options(args)),
        args.output,
    )
    return diff_exit_code(d, Severity(args.fail_on or "low"))
