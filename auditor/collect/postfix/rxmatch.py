"""Match regexp/pcre table patterns against probe addresses within a time budget per pattern.

Python's ``re`` backtracks without bound (``/^(.|.)*Z$/`` on a 40-character address never ends)
and no static test tells every such pattern apart. So patterns are matched in a helper process
that reports each result as it goes; when one pattern takes longer than :data:`BUDGET` the helper
is killed, that pattern is "not evaluated", and a fresh helper goes on with the next one. The
helper is started once and reused; it runs with an address-space limit, and ends when this process
closes its input.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

BUDGET = 1.0  # seconds one pattern may take against one probe address
STARTUP = 20.0  # seconds a fresh helper may take to start (a loaded machine)
MAX_STALLS = 6  # searches over budget per call; after that the rest are not evaluated
MEMORY = 1 << 30  # address-space limit of the helper

_HELPER = r"""
import json, re, resource, sys
try:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
except (ValueError, OSError):
    pass
out = sys.stdout
for request in sys.stdin:
    start, first, path = request.rstrip("\n").split(" ", 2)
    with open(path, encoding="utf-8") as fh:
        job = json.load(fh)
    subjects = job["subjects"]
    patterns = job["patterns"]
    for k in range(int(start), len(patterns)):
        pattern, icase = patterns[k]
        try:
            rx = re.compile(pattern, re.IGNORECASE if icase else 0)
            for j in range(int(first) if k == int(start) else 0, len(subjects)):
                out.write(f"{k} @{j}\n")
                out.flush()
                if rx.search(subjects[j]):
                    out.write(f"{k} +{j}\n")
        except BaseException as exc:
            out.write(f"{k} !{type(exc).__name__}\n")
        else:
            out.write(f"{k} .\n")
        out.flush()
    out.write("end\n")
    out.flush()
""".replace("MEMORY", str(MEMORY))


@dataclass(frozen=True)
class Outcome:
    """One pattern: the subjects it matched, those whose match is unknown, and why ("" = none)."""

    matched: frozenset[int]
    unknown: frozenset[int] = frozenset()
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
atexit.register(_helper.stop)


def match_patterns(patterns: list[tuple[str, bool]], subjects: list[str]) -> list[Outcome]:
    """For each ``(pattern, ignore_case)``: which ``subjects`` it matches (``re.search``), each
    search bounded by :data:`BUDGET` seconds. Never raises for a bad or hostile pattern."""
    if not patterns:
        return []
    with _lock, tempfile.TemporaryDirectory(prefix="bsa-rx-") as tmp:
        job = os.path.join(tmp, "job.json")
        with open(job, "w", encoding="utf-8") as fh:
            json.dump({"subjects": subjects, "patterns": patterns}, fh)
        return _run(job, len(patterns), len(subjects))


def _run(job: str, n: int, m: int) -> list[Outcome]:
    matched: list[set[int]] = [set() for _ in range(n)]
    unknown: list[set[int]] = [set() for _ in range(n)]
    errors = [""] * n
    stalls = 0
    k, j = 0, 0  # the search in progress: pattern k, subject j

    def give_up(i: int, why: str, subjects: range) -> None:
        unknown[i].update(subjects)
        errors[i] = errors[i] or why

    while k < n:
        fresh = _helper.proc is None or _helper.proc.poll() is not None
        try:
            if fresh:
                _helper.stop()
                _helper.start()
            _helper.send(f"{k} {j} {job}")
        except OSError:
            _helper.stop()
            for i in range(k, n):
                give_up(i, "the pattern matcher could not be started", range(m))
            break
        wait = STARTUP if fresh else BUDGET + 1.0
        while True:  # until "end": the helper is then idle, with nothing left unread
            line = _helper.readline(wait)
            wait = BUDGET
            if line is None:  # stuck on search (k, j), or dead: give that one up, go on after it
                died = _helper.proc is not None and _helper.proc.poll() is not None
                _helper.stop()
                stalls += 1
                why = (
                    "the matcher failed on it (out of memory?)"
                    if died
                    else f"matching took more than {BUDGET:.0f} s (catastrophic backtracking?)"
                )
                give_up(k, why, range(j, j + 1))
                k, j = (k, j + 1) if j + 1 < m else (k + 1, 0)
                if stalls >= MAX_STALLS:
                    over = f"not evaluated: {MAX_STALLS} searches before it ran over the time budget"
                    if k < n:
                        give_up(k, over, range(j, m))
                    for i in range(k + 1, n):
                        give_up(i, over, range(m))
                    k = n
                break
            if line == "end":
                k = n
                break
            index, _, what = line.partition(" ")
            i = int(index)
            if what.startswith("@"):
                k, j = i, int(what[1:])
            elif what.startswith("+"):
                matched[i].add(int(what[1:]))
            elif what.startswith("!"):
                give_up(i, f"not supported by the evaluator ({what[1:]})", range(m))
                unknown[i] -= matched[i]
                k, j = i + 1, 0
            else:
                k, j = i + 1, 0
    return [Outcome(frozenset(a), frozenset(u), e) for a, u, e in zip(matched, unknown, errors, strict=True)]


__all__ = ["BUDGET", "Outcome", "match_patterns"]
