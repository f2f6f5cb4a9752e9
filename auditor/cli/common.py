"""Options every reporting command shares: --format, --output, --fail-on; and writing the report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Sequence

from auditor.judge import revise
from auditor.model import InputError, Report, Severity
from auditor.render import formats, render
from auditor.suppress import Suppression, add_suppression_options, load_suppressions, write_baseline


def add_report_options(
    parser: argparse.ArgumentParser,
    fail_on_default: str | None = "low",
    fail_on_help: str = "lowest severity that makes the exit code non-zero (default: low)",
) -> None:
    parser.add_argument("--format", "-f", default="text", choices=formats(), help="output format")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    parser.add_argument(
        "--fail-on", default=fail_on_default, choices=[s.value for s in Severity], help=fail_on_help
    )
    add_suppression_options(parser)


def apply_report_options(
    report: Report,
    args: argparse.Namespace,
    *,
    fail_on: Severity | None = None,
    suppressions: Sequence[Suppression] = (),
    today: dt.date | None = None,
) -> Report:
    """Judge ``report`` again with the command line's --fail-on and --suppressions (plus any
    ``suppressions`` and ``fail_on`` the caller adds) and honour --write-baseline.

    The baseline is written from the findings before any suppression, so that the baseline file
    alone reproduces today's accepted state.
    """
    day = today or dt.datetime.now(dt.UTC).date()
    baseline = getattr(args, "write_baseline", None)
    if baseline:
        write_baseline(report.findings, baseline, day)
    path = getattr(args, "suppressions", None)
    sups = [*suppressions, *(load_suppressions(path) if path else ())]
    threshold = fail_on or (Severity(args.fail_on) if getattr(args, "fail_on", None) else None)
    return revise(report, fail_on=threshold, suppressions=sups, today=day)


def write_output(text: str, output: str | None) -> None:
    """Write to stdout, or atomically to a file (a half-written report is worse than none)."""
    if not output or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):  # a typo in the path must not grow a directory tree
        raise InputError(f"no such directory {directory!r} to write the report into", output)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".bsa-", dir=directory)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, output)
    except OSError as exc:
        raise InputError(f"cannot write report: {exc.strerror or exc}", output) from None


def emit(report: Report, args: argparse.Namespace) -> int:
    """Apply the command line's options, render the report, write it, return the assessment's exit code."""
    report = apply_report_options(report, args)
    write_output(render(report, args.format), args.output)
    return report.assessment.exit_code
