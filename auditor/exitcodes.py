"""The one table of exit codes (README "Exit codes"); every command returns one of these.

``IntEnum`` so that a command may return a member where an ``int`` is expected (``sys.exit``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing failed at or above --fail-on
    FINDINGS = 1  # at least one finding failed at or above --fail-on (report diff: a new one)
    INPUT = 2  # usage or input error: one line on stderr naming the file and line
    INCONCLUSIVE = 3  # could not measure: inconclusive at or above --fail-on, and nothing failed
    LAB_DOWN = 4  # the lab is not (fully) running, or could not be brought up for the demo
    INTERRUPTED = 130  # Ctrl-C before a report could be written (128 + SIGINT, the shell's convention)
    BROKEN_PIPE = 141  # stdout was closed by the reader (`... | head`): 128 + SIGPIPE, as a shell says


__all__ = ["ExitCode"]
