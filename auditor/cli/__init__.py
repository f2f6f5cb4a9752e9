"""Command line: ``backscatter-audit <command> [options]``.

Each command is a module ``auditor/cli/cmd_<name>.py`` with ``register(subparsers)``; the parser
it adds sets ``func(args) -> int`` (the exit code). Commands only parse arguments and call into the
package: no logic lives here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from auditor import __version__
from auditor.audit import Interrupted, interrupts
from auditor.exitcodes import ExitCode
from auditor.model import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backscatter-audit",
        description="Find and fix every way a mail site generates backscatter.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors are exit code 2 already
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return ExitCode.INPUT
    try:
        with interrupts():  # SIGTERM (timeout, CI, systemd) is handled like Ctrl-C
            return int(args.func(args))
    except InputError as exc:
        print(f"backscatter-audit: error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    except KeyboardInterrupt as exc:
        how = f" {exc.how}" if isinstance(exc, Interrupted) else ""
        print(f"backscatter-audit: interrupted{how}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `... | head` closed stdout: end quietly. SIGPIPE itself stays ignored (Python's default):
        # with its default action a server resetting a probe connection would kill the whole audit.
        _stdout_to_devnull()
        return ExitCode.BROKEN_PIPE


def _stdout_to_devnull() -> None:
    """Python flushes stdout at exit; with the reader gone that flush would raise again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass
