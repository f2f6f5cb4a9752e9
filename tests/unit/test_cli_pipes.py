"""A closed stdout ends the command quietly; SIGPIPE never gets its default (fatal) action."""

from __future__ import annotations

import signal
import subprocess
import sys

from auditor.cli import main


def test_main_leaves_sigpipe_ignored(capsys: object) -> None:
    before = signal.getsignal(signal.SIGPIPE)
    assert main(["rules"]) == 0
    # With SIG_DFL a probe whose server resets the connection would kill the whole audit.
    assert signal.getsignal(signal.SIGPIPE) is before is signal.SIG_IGN


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", "rules"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes: its write meets EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
