"""Options every reporting command shares — --format, --output, --fail-on, suppressions, and how the
report is shown (--quiet, --verbose, --color, --min-severity, --exit-zero, --progress) — and
writing the report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence

from auditor.exitcodes import ExitCode
from auditor.judge import revise
from auditor.model import InputError, Report, Severity
from auditor.progress import Progress, wanted
from auditor.render import MACHINE_FORMATS, RenderOptions, formats, render
from auditor.suppress import (
    Suppression,
    add_suppression_options,
    known_rule_ids,
    load_suppressions,
    write_baseline,
)


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
    add_view_options(parser)


def add_view_options(parser: argparse.ArgumentParser) -> None:
    """How the report is shown; none of these changes what the report (the JSON) says."""
    detail = parser.add_mutually_exclusive_group()
    detail.add_argument(
        "--quiet", "-q", action="store_true", help="text: only the verdict line and the failures"
    )
    detail.add_argument(
        "--verbose", "-v", action="store_true", help="text: every finding with its evidence and transcripts"
    )
    parser.add_argument(
        "--color",
        "--colour",
        dest="color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour in the text view (auto: on a terminal, unless NO_COLOR is set); never in files",
    )
    parser.add_argument(
        "--min-severity",
        metavar="LEVEL",
        choices=[s.value for s in Severity],
        help="text: hide findings below LEVEL (the other formats keep every finding)",
    )
    parser.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when findings fail or could not be measured (input errors still exit 2)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress with counts and ETA on stderr (default: on a terminal, never for machine formats)",
    )


def terminal_width(output: str | None = None) -> int:
    """The width the text view fits: $COLUMNS, else the terminal's, else 80 (and 80 for a file)."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if output and output != "-":
        return 80
    return shutil.get_terminal_size((80, 24)).columns or 80


def use_color(choice: str, fmt: str, output: str | None) -> bool:
    """Colour only in the text view, only on stdout; ``auto``: stdout a terminal and NO_COLOR unset."""
    if fmt != "text" or (output and output != "-") or choice == "never":
        return False
    if choice == "always":
        return True
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def render_options(
    args: argparse.Namespace, fmt: str | None = None, output: str | None = None
) -> RenderOptions:
    """The view options the command line asks for, for ``fmt`` written to ``output`` (default:
    --format and --output)."""
    fmt = fmt or getattr(args, "format", None) or "text"
    output = output if output is not None else getattr(args, "output", None)
    level = getattr(args, "min_severity", None)
    return RenderOptions(
        width=terminal_width(output),
        color=use_color(getattr(args, "color", "auto") or "auto", fmt, output),
        quiet=bool(getattr(args, "quiet", False)),
        verbose=bool(getattr(args, "verbose", False)),
        min_severity=Severity(level) if level else Severity.INFO,
    )


def progress_for(args: argparse.Namespace, label: str = "audit") -> Progress:
    """Progress on stderr as the command line asks (see :func:`auditor.progress.wanted`)."""
    fmt = getattr(args, "format", "text")
    on = wanted(
        requested=getattr(args, "progress", None),
        machine=fmt in MACHINE_FORMATS,
        quiet=bool(getattr(args, "quiet", False)),
    )
    return Progress(enabled=on, label=label)


def exit_code(report: Report, args: argparse.Namespace) -> int:
    """The assessment's exit code, or 0 with --exit-zero (which never hides an input error: those
    raise before a report exists)."""
    code = report.assessment.exit_code
    if getattr(args, "exit_zero", False) and code in (ExitCode.FINDINGS, ExitCode.INCONCLUSIVE):
        return ExitCode.OK
    return code


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
    sups = [*suppressions, *(load_suppressions(path, known_rule_ids(report.findings)) if path else ())]
    threshold = fail_on or (Severity(args.fail_on) if getattr(args, "fail_on", None) else None)
    return revise(report, fail_on=threshold, suppressions=sups, today=day)


def write_output(text: str, output: str | None) -> None:
    """Write to stdout, or atomically to a file (a half-written report is worse than none)."""
    if not output or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if os.path.exists(output) and not os.path.isfile(output):
        # /dev/null, /dev/stdout, a FIFO: write into it. Replacing it (below) would put a regular
        # file in its place, which as root destroys the device for every other program.
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise InputError(f"cannot write report: {exc.strerror or exc}", output) from None
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


def write_report(report: Report, args: argparse.Namespace) -> int:
    """Render an already judged report in --format with the view options, write it to --output,
    return the exit code (see :func:`exit_code`)."""
    write_output(render(report, args.format, render_options(args)), args.output)
    return exit_code(report, args)


def emit(report: Report, args: argparse.Namespace) -> int:
    """Apply the command line's options, render the report, write it, return the exit code."""
    return write_report(apply_report_options(report, args), args)
