"""Options every reporting command shares: --format, --output, --fail-on; and writing the report."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from auditor.engine import exit_code
from auditor.model import InputError, Report, Severity
from auditor.render import formats, render
from auditor.suppress import add_suppression_options, apply_cli_suppressions


def add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", default="text", choices=formats(), help="output format")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    parser.add_argument(
        "--fail-on",
        default="low",
        choices=[s.value for s in Severity],
        help="lowest severity that makes the exit code non-zero (default: low)",
    )
    add_suppression_options(parser)


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
    """Apply suppressions, render the report in the chosen format, write it, return the exit code."""
    report = apply_cli_suppressions(report, args)
    write_output(render(report, args.format), args.output)
    return exit_code(report.findings, Severity(args.fail_on))
