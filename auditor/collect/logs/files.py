"""Reading log files: plain, gzip, xz or stdin, in time order, line by line in constant memory.

Lines come as bytes (no decoding on the hot path); a line longer than :data:`MAX_LINE` is cut off
and reported, never held whole. Read errors (a truncated .gz, a missing file) end that input and
are reported; they never stop the others.
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from auditor.model import InputError

MAX_LINE = 64 * 1024  # longer than any Postfix line (line_length_limit, header folding)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Input:
    """One input as given: a path or "-" (stdin)."""

    name: str
    mtime: float | None  # for RFC 3164 year inference (None: stdin, use "now")


_ROTATED = re.compile(r"^(?P<base>.*?)(?:[.-](?P<n>\d+))?(?P<ext>\.gz|\.xz)?$")


def _rotation_key(path: str) -> tuple[str, int]:
    """(base name, rotation number): mail.log.2.gz → ("mail.log", 2); mail.log → ("mail.log", 0)."""
    m = _ROTATED.match(os.path.basename(path))
    if not m:
        return (path, 0)
    n = m.group("n")
    # A date suffix (mail.log-20261201, logrotate's dateext) sorts by itself: older dates first.
    if n and len(n) >= 8:
        return (os.path.join(os.path.dirname(path), m.group("base")), -int(n))
    return (os.path.join(os.path.dirname(path), m.group("base")), int(n) if n else 0)


def order_inputs(paths: Sequence[str]) -> list[Input]:
    """Put the inputs in time order.

    Files of one rotated set (``mail.log.2.gz mail.log.1 mail.log``, or logrotate's date suffixes)
    go oldest first; separate sets are ordered by their oldest file's modification time; stdin
    (``-``) comes last. A file that does not exist is an input error (exit 2).
    """
    files: list[tuple[str, float]] = []
    stdin = False
    for p in paths:
        if p == "-":
            stdin = True
            continue
        try:
            st = os.stat(p)
        except OSError as exc:
            raise InputError(f"cannot read log: {exc.strerror or exc}", p) from None
        if not os.path.isfile(p):
            raise InputError("not a regular file", p)
        files.append((p, st.st_mtime))
    groups: dict[str, list[tuple[int, str, float]]] = {}
    for p, mtime in files:
        base, n = _rotation_key(p)
        groups.setdefault(base, []).append((n, p, mtime))
    ordered: list[tuple[float, list[tuple[int, str, float]]]] = []
    for members in groups.values():
        members.sort(key=lambda t: -t[0])  # highest rotation number = oldest
        ordered.append((min(m for _, _, m in members), members))
    ordered.sort(key=lambda t: t[0])
    out = [Input(p, mtime) for _, members in ordered for _, p, mtime in members]
    if stdin:
        out.append(Input("-", None))
    return out


def _open(inp: Input) -> BinaryIO:
    if inp.name == "-":
        return sys.stdin.buffer
    fh: BinaryIO = open(inp.name, "rb")  # noqa: SIM115 - closed by the caller
    magic = fh.read(6)
    fh.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(fh, mode="rb")  # type: ignore[return-value]
    return fh


class LineReader:
    """Lines of one input, numbered from 1; errors end the input and are kept in ``error``.

    A line longer than ``max_line`` is given cut to exactly ``max_line`` bytes (the caller reports
    it as skipped); the rest of it is read and dropped, so memory stays bounded.
    """

    def __init__(self, inp: Input, max_line: int = MAX_LINE) -> None:
        self.input = inp
        self.max_line = max_line
        self.error = ""
        self.lines = 0
        self.cut = False  # the last batch given holds a line cut at max_line

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for start, lines in self.batches():
            yield from enumerate(lines, start + 1)

    def batches(self) -> Iterator[tuple[int, list[bytes]]]:
        """(number of lines before the batch, the batch's lines): one read's worth at a time."""
        try:
            fh = _open(self.input)
        except OSError as exc:
            self.error = f"{self.input.name}: cannot read: {exc.strerror or exc}"
            return
        lineno = 0
        partial = b""
        dropping = False  # inside an overlong line: discard until its newline
        limit = self.max_line
        try:
            while True:
                try:
                    chunk = fh.read(CHUNK)
                except (OSError, EOFError, lzma.LZMAError) as exc:
                    self.error = f"{self.input.name}: read error after line {lineno}: {exc}"
                    break
                if not chunk:
                    break
                parts = chunk.split(b"\n")
                last = parts.pop()
                if not parts:  # no newline in this chunk
                    if not dropping:
                        partial += last
                        if len(partial) > limit:
                            self.cut = True
                            yield lineno, [partial[:limit]]
                            lineno += 1
                            partial, dropping = b"", True
                    continue
                if dropping:
                    del parts[0]  # the overlong line ends here; it was already given
                    dropping = False
                elif partial:
                    parts[0] = partial + parts[0]
                self.cut = bool(parts) and max(map(len, parts)) > limit
                if self.cut:
                    parts = [p[:limit] if len(p) > limit else p for p in parts]
                if parts:
                    yield lineno, parts
                    lineno += len(parts)
                partial = last
                if len(partial) > limit:
                    self.cut = True
                    yield lineno, [partial[:limit]]
                    lineno += 1
                    partial, dropping = b"", True
            if partial and not dropping:
                self.cut = False
                yield lineno, [partial]
                lineno += 1
        finally:
            self.lines = lineno
            if fh is not sys.stdin.buffer:
                fh.close()
