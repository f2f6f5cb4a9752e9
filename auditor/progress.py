"""Progress of long work on stderr: counts, a percentage and an estimated time left.

On a terminal it is one live line, rewritten in place and cut to the terminal's width; on anything
else (a CI log, a file) plain lines, at most one per tenth of the work or per ``interval`` seconds,
so a log is not flooded. Whether it shows at all is the command line's decision (:func:`wanted`):
never in machine formats or when stderr is not a terminal, unless asked with ``--progress``.

A hand-written line rather than rich, tqdm or enlighten: a counter with an ETA is a few dozen lines,
the tool already prints plain messages to stderr from other threads (the SMTP engine), which a
library's own live display would tear or need to own, and it would be a runtime dependency for
one line of output.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

Clock = Callable[[], float]


def wanted(
    *, requested: bool | None, machine: bool, quiet: bool = False, stream: TextIO | None = None
) -> bool:
    """Whether to show progress: ``--progress``/``--no-progress`` decide when given; otherwise only
    on a terminal, and not for machine formats or ``--quiet``."""
    if requested is not None:
        return requested
    out = stream or sys.stderr
    return not machine and not quiet and _isatty(out)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def eta_text(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Task:
    """One counted piece of work (``probe``: 40 MX addresses). Create it with :meth:`Progress.task`."""

    def __init__(self, progress: Progress, name: str, total: int | None) -> None:
        self._p = progress
        self.name = name
        self.total = total if total and total > 0 else None
        self.done = 0
        self.started = progress.clock()
        self._shown_tenth = -1
        self._shown_at = -1e18

    def eta(self) -> float | None:
        """Seconds left at the rate so far; None before the first unit or without a total."""
        if self.total is None or self.done <= 0:
            return None
        elapsed = self._p.clock() - self.started
        return elapsed / self.done * max(0, self.total - self.done)

    def line(self, detail: str = "") -> str:
        parts = [self.name]
        if self.total is not None:
            pct = 100 * min(self.done, self.total) // self.total
            parts.append(f"{self.done}/{self.total} ({pct}%)")
            eta = self.eta()
            if eta is not None and self.done < self.total:
                parts.append(f"ETA {eta_text(eta)}")
        else:
            parts.append(str(self.done))
        if detail:
            parts.append(f"· {detail}")
        return " ".join(parts)

    def advance(self, n: int = 1, detail: str = "") -> None:
        self.done += n
        self._p._update(self, detail)

    def close(self, detail: str = "") -> None:
        """The task is over: a final line (also in plain mode) and the live line released."""
        self._p._update(self, detail, final=True)


class Progress:
    """Progress on ``stream`` (stderr). Callable with a message, like the ``progress`` callbacks the
    collectors take; :meth:`task` adds a counted task with an ETA. ``enabled=False`` shows nothing."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        label: str = "audit",
        clock: Clock = time.monotonic,
        interval: float = 10.0,
        width: int | None = None,
    ) -> None:
        self.stream: TextIO = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and _isatty(self.stream)
        self.label = label
        self.clock = clock
        self.interval = interval
        self._width = width
        self._shown = 0  # length of the live line now on screen
        self._lock = threading.Lock()  # collectors report from worker threads

    def columns(self) -> int:
        if self._width:
            return self._width
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (AttributeError, ValueError, OSError):
            return 80

    def __call__(self, message: str) -> None:
        if self.enabled:
            self._write(message)

    def task(self, name: str, total: int | None = None) -> Task:
        return Task(self, name, total)

    def _update(self, task: Task, detail: str, final: bool = False) -> None:
        if not self.enabled:
            return
        if self.live:
            self._write(task.line(detail))
            return
        # Plain lines: the first, one per tenth of the work, one per interval, the last.
        now = self.clock()
        tenth = 10 * task.done // task.total if task.total else -1
        if (
            final
            or task._shown_tenth < 0
            or tenth > task._shown_tenth
            or now - task._shown_at >= self.interval
        ):
            task._shown_tenth = max(tenth, 0)
            task._shown_at = now
            self._write(task.line(detail))

    def _write(self, message: str) -> None:
        text = " ".join(message.split())
        if self.label:
            text = f"[{self.label}] {text}"
        with self._lock:
            out = self.stream
            if self.live:
                cols = max(10, self.columns() - 1)  # the last column would wrap on some terminals
                if len(text) > cols:
                    text = text[: cols - 1] + "…"
                out.write("\r" + text + " " * max(0, self._shown - len(text)))
                self._shown = len(text)
            else:
                out.write(text + "\n")
            out.flush()

    def done(self) -> None:
        """Release the live line (the next output starts on a fresh line)."""
        with self._lock:
            if self.live and self._shown:
                self.stream.write("\n")
                self.stream.flush()
                self._shown = 0


__all__ = ["Progress", "Task", "eta_text", "wanted"]
