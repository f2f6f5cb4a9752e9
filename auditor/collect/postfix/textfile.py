"""Reading Postfix-style text files: main.cf, master.cf and table sources share one line syntax.

Postfix's readlline(3) rules: a line whose first non-blank character is ``#`` is a comment (``#``
later in a line is data), blank lines are skipped and do not end a logical line, and a line that
starts with whitespace continues the previous logical line. A file that starts with an indented
line gets a warning and that line is dropped. Template placeholders are recognised on the way.
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.postfix.expand import VALUE_CHARS
from auditor.collect.postfix.templates import find_tokens, is_template_only_line, strip_leading_token
from auditor.model import InputError

MAX_FILE_BYTES = 64 * 1024 * 1024  # a config file bigger than this is not a config file
# A logical line keeps at most this much text (its full length is still counted): no value longer
# than VALUE_CHARS is judged, and 3 million continuation pieces would cost 200 MB to join.
MAX_LOGICAL_CHARS = VALUE_CHARS + 4096


@dataclass
class LogicalLine:
    """One logical line: its text, first physical line, and where each physical piece starts."""

    text: str
    line: int
    starts: list[int] = field(default_factory=list)  # offset in ``text`` of each physical line
    lines: list[int] = field(default_factory=list)  # the physical line number of each piece
    tokens: list[tuple[str, int]] = field(default_factory=list)  # template tokens (token, line)
    clipped: int = 0  # the full length when ``text`` holds only the first MAX_LOGICAL_CHARS

    def line_at(self, offset: int) -> int:
        """The physical line that holds ``text[offset]``."""
        k = bisect.bisect_right(self.starts, offset) - 1
        return self.lines[max(k, 0)]


@dataclass
class ParsedText:
    """What reading a file found besides its logical lines (filled as they are read)."""

    path: str
    skipped_templates: list[tuple[str, int]] = field(default_factory=list)  # ``{% if %}`` lines, dropped
    warnings: list[str] = field(default_factory=list)
    # line number of a skipped template-only line -> index (in reading order) of the logical line
    # whose continuation it sits in (indented, or followed by a continuation line of that line)
    template_owner: dict[int, int] = field(default_factory=dict)


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_bounded(path: Path, cap: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a *regular* file of at most ``cap`` bytes; InputError naming the file otherwise.

    The file is checked with stat, then opened without blocking on a FIFO and checked again with
    fstat (a symlink swapped in between), and never more than ``cap + 1`` bytes are read: a symlink
    to /dev/zero or a FIFO is refused, not read for ever.
    """
    check_regular(path)  # a device is never even opened (opening some has side effects)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError("no such file", str(path)) from None
    except PermissionError:
        raise InputError("permission denied", str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", str(path)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError("is a directory, not a file", str(path))
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a file")
            raise InputError(f"not a regular file ({kind}): refused", str(path))
        if st.st_size > cap:
            raise InputError(f"file too large ({st.st_size} bytes, the limit is {cap})", str(path))
        chunks: list[bytes] = []
        total = 0
        want = st.st_size + 1  # one read for the whole file, one more to see the end
        while total <= cap:
            chunk = os.read(fd, min(max(want, 1 << 16), cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            want = 1 << 20
        if total > cap:  # it grew while we read it
            raise InputError(f"file too large (more than {cap} bytes)", str(path))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", str(path)) from None
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_regular(path: Path) -> None:
    """Refuse anything but a regular file of at most MAX_FILE_BYTES (before it is opened, or handed
    to postconf or postmap); an absent file passes (the caller decides)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return  # absent: the caller decides (a missing master.cf is allowed)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", str(path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a directory, not a file", str(path))
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a file")
        raise InputError(f"not a regular file ({kind}): refused", str(path))
    if st.st_size > MAX_FILE_BYTES:
        raise InputError(f"file too large ({st.st_size} bytes, the limit is {MAX_FILE_BYTES})", str(path))


def read_text(path: Path) -> str:
    """Read a config file as text; InputError naming file and line for binary or undecodable data."""
    data = read_bounded(path)
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError(
            "binary data (NUL byte): not a Postfix text file", str(path), data.count(b"\n", 0, nul) + 1
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError("undecodable bytes (not UTF-8 text)", str(path), line) from None


def _physical_lines(text: str) -> Iterator[str]:
    """``text.split("\\n")`` without building the list (a 64 MB file has millions of lines)."""
    pos = 0
    while True:
        j = text.find("\n", pos)
        if j < 0:
            yield text[pos:]
            return
        yield text[pos:j]
        pos = j + 1


def iter_logical_lines(
    path: Path, meta: ParsedText, *, strip_line_prefix_tokens: bool = False, text: str | None = None
) -> Iterator[LogicalLine]:
    """The logical lines of ``path`` (or of its ``text``, already read) one at a time: a table of
    millions of lines is never held whole. Template-only lines, warnings and template owners go
    into ``meta`` on the way."""
    if text is None:
        text = read_text(path)
    skipped, warnings, owner = meta.skipped_templates, meta.warnings, meta.template_owner
    count = 0  # logical lines yielded so far
    cur: LogicalLine | None = None
    parts: list[str] = []
    length = 0
    pending: list[tuple[int, bool]] = []  # template-only lines seen since the last content line

    def settle(continues: bool) -> None:
        """Attribute the pending template-only lines once the next content line is known."""
        if cur is not None:
            for lineno, indented in pending:
                if continues or indented:
                    owner[lineno] = count  # ``cur`` will be yielded as this index
        pending.clear()

    for lineno, raw in enumerate(_physical_lines(text), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if is_template_only_line(stripped):
            skipped.append((stripped, lineno))
            pending.append((lineno, raw[0] in " \t"))
            continue
        tokens: list[tuple[str, int]] = []
        if strip_line_prefix_tokens:
            raw, prefix = strip_leading_token(raw)
            if prefix:
                tokens.append((prefix, lineno))
                if not raw.strip():
                    continue
        tokens.extend((t, lineno) for t in find_tokens(raw))
        settle(raw[0] in " \t\r\v\f")
        if raw[0] in " \t\r\v\f":
            if cur is None:
                warnings.append(f"{path}:{lineno}: logical line must not start with whitespace (ignored)")
                continue
            if length < MAX_LOGICAL_CHARS:
                cur.starts.append(length)
                cur.lines.append(lineno)
                cur.tokens.extend(tokens)
                parts.append(raw)
            length += len(raw)
            continue
        if cur is not None:
            _finish(cur, parts, length)
            count += 1
            yield cur
        cur = LogicalLine(text="", line=lineno, starts=[0], lines=[lineno], tokens=tokens)
        parts, length = [raw], len(raw)
    settle(False)
    if cur is not None:
        _finish(cur, parts, length)
        yield cur


def _finish(cur: LogicalLine, parts: list[str], length: int) -> None:
    cur.text = "".join(parts)
    if length > MAX_LOGICAL_CHARS:
        cur.text = cur.text[:MAX_LOGICAL_CHARS]
        cur.clipped = length
