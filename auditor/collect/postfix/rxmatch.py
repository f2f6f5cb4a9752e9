"""Match regexp/pcre table patterns against probe addresses within a time budget per pattern.

Python's ``re`` backtracks without bound (``/^(.|.)*Z$/`` on a 40-character address never ends)
and no static test tells every such pattern apart. So patterns are matched in a helper process
that reports each result as it goes; when one pattern takes longer than :data:`BUDGET` the helper
is killed, that pattern is "not evaluated", and a fresh helper goes on with the next one. The
helper is started once and reused; it runs with an address-space limit, and ends when this process
closes its input.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

BUDGET = 2.0  # seconds one pattern may take against every probe address
STARTUP = 20.0  # seconds a fresh helper may take to start (a loaded machine)
MAX_STALLS = 3  # patterns over budget per call; after that the rest are not evaluated
MEMORY = 1 << 30  # address-space limit of the helper

_HELPER = r"""
import json, re, resource, sys
try:
    resource.setrlimit(resource.RLIMIT_AS, (%d, %d))
except (ValueError, OSError):
    pass
out = sys.stdout
for request in sys.stdin:
    start, path = request.rstrip("\n").split(" ", 1)
    with open(path, encoding="utf-8") as fh:
        job = json.load(fh)
    subjects = job["subjects"]
    patterns = job["patterns"]
    for k in range(int(start), len(patterns)):
        pattern, icase = patterns[k]
        try:
            rx = re.compile(pattern, re.IGNORECASE if icase else 0)
            for j, s in enumerate(subjects):
                if rx.search(s):
                    out.write("%%d +%%d\n" %% (k, j))
                    out.flush()
        except BaseException as exc:
            out.write("%%d !%%s\n" %% (k, type(exc).__name__))
        else:
            out.write("%%d .\n" %% k)
        out.flush()
    out.write("end\n")
    out.flush()
""" % (MEMORY, MEMORY)


@dataclass(frozen=True)
class Outcome:
    """One pattern: the subjects it matched; ``error`` says why the result is incomplete ("" = complete)."""

    matched: frozenset[int]
    error: str = ""


class _Helper:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.buf = b""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-W", "ignore", "-c", _HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self.buf = b""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout):
            if f is not None:
                f.close()

    def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def readline(self, timeout: float) -> str | None:
        """One line of output, or None when none came within ``timeout`` (or the helper died)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()


_helper = _Helper()
_lock = threading.Lock()


def match_patterns(patterns: list[tuple[str, bool]], subjects: list[str]) -> list[Outcome]:
    """For each ``(pattern, ignore_case)``: which ``subjects`` it matches (``re.search``), each
    pattern bounded by :data:`BUDGET` seconds. Never raises for a bad or hostile pattern."""
    if not patterns:
        return []
    with _lock, tempfile.TemporaryDirectory(prefix="bsa-rx-") as tmp:
        job = os.path.join(tmp, "job.json")
        with open(job, "w", encoding="utf-8") as fh:
            json.dump({"subjects": subjects, "patterns": patterns}, fh)
        return _run(job, len(patterns))


def _run(job: str, n: int) -> list[Outcome]:
    matched: list[set[int]] = [set() for _ in range(n)]
    errors = [""] * n
    stalls = 0
    k = 0  # the first pattern without a result
    while k < n:
        fresh = _helper.proc is None or _helper.proc.poll() is not None
        try:
            if fresh:
                _helper.stop()
                _helper.start()
            _helper.send(f"{k} {job}")
        except OSError:
            _helper.stop()
            for i in range(k, n):
                errors[i] = "the pattern matcher could not be started"
            break
        wait = STARTUP if fresh else BUDGET + 1.0
        while True:  # until "end": the helper is then idle, with nothing left unread
            line = _helper.readline(wait)
            wait = BUDGET
            if line is None:  # stuck on pattern k (or dead): give it up, go on after it
                died = _helper.proc is not None and _helper.proc.poll() is not None
                _helper.stop()
                stalls += 1
                errors[k] = (
                    "the matcher failed on it (out of memory?)"
                    if died
                    else f"matching took more than {BUDGET:.0f} s (catastrophic backtracking?)"
                )
                k += 1
                if stalls >= MAX_STALLS:
                    for i in range(k, n):
                        errors[i] = f"not evaluated: {MAX_STALLS} patterns before it ran over the time budget"
                    k = n
                break
            if line == "end":
                k = n
                break
            index, _, what = line.partition(" ")
            i = int(index)
            if what.startswith("+"):
                matched[i].add(int(what[1:]))
                continue
            if what.startswith("!"):
                errors[i] = f"not supported by the evaluator ({what[1:]})"
            k = i + 1
    return [Outcome(frozenset(m), e) for m, e in zip(matched, errors, strict=True)]


__all__ = ["BUDGET", "Outcome", "match_patterns"]
