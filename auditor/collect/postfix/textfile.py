"""Reading Postfix-style text files: main.cf, master.cf and table sources share one line syntax.

Postfix's readlline(3) rules: a line whose first non-blank character is ``#`` is a comment (``#``
later in a line is data), blank lines are skipped and do not end a logical line, and a line that
starts with whitespace continues the previous logical line. A file that starts with an indented
line gets a warning and that line is dropped. Template placeholders are recognised on the way.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.postfix.templates import find_tokens, is_template_only_line, strip_leading_token
from auditor.model import InputError

MAX_FILE_BYTES = 64 * 1024 * 1024  # a config file bigger than this is not a config file


@dataclass
class LogicalLine:
    """One logical line: its text, first physical line, and where each physical piece starts."""

    text: str
    line: int
    starts: list[int] = field(default_factory=list)  # offset in ``text`` of each physical line
    lines: list[int] = field(default_factory=list)  # the physical line number of each piece
    tokens: list[tuple[str, int]] = field(default_factory=list)  # template tokens (token, line)

    def line_at(self, offset: int) -> int:
        """The physical line that holds ``text[offset]``."""
        k = bisect.bisect_right(self.starts, offset) - 1
        return self.lines[max(k, 0)]


@dataclass
class ParsedText:
    path: str
    logical: list[LogicalLine]
    skipped_templates: list[tuple[str, int]]  # template-only lines (``{% if %}``), dropped
    warnings: list[str]
    # line number of a skipped template-only line -> index in ``logical`` of the logical line whose
    # continuation it sits in (indented, or followed by a continuation line of that logical line)
    template_owner: dict[int, int] = field(default_factory=dict)


def read_text(path: Path) -> str:
    """Read a config file as text; InputError naming file and line for binary or undecodable data."""
    try:
        if path.is_dir():
            raise InputError("is a directory, not a file", str(path))
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"file too large ({size} bytes)", str(path))
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", str(path)) from None
    except PermissionError:
        raise InputError("permission denied", str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", str(path)) from None
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


def logical_lines(path: Path, *, strip_line_prefix_tokens: bool = False) -> ParsedText:
    """Split a file into logical lines with Postfix's rules, noting template tokens."""
    text = read_text(path)
    out: list[LogicalLine] = []
    skipped: list[tuple[str, int]] = []
    warnings: list[str] = []
    cur: LogicalLine | None = None
    parts: list[str] = []
    length = 0
    owner: dict[int, int] = {}
    pending: list[tuple[int, bool]] = []  # template-only lines seen since the last content line

    def settle(continues: bool) -> None:
        """Attribute the pending template-only lines once the next content line is known."""
        if cur is not None:
            for lineno, indented in pending:
                if continues or indented:
                    owner[lineno] = len(out)  # ``cur`` will be appended at this index
        pending.clear()

    def flush() -> None:
        nonlocal cur, parts, length
        if cur is not None:
            cur.text = "".join(parts)
            out.append(cur)
        cur, parts, length = None, [], 0

    for lineno, raw in enumerate(text.split("\n"), start=1):
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
            cur.starts.append(length)
            cur.lines.append(lineno)
            cur.tokens.extend(tokens)
            parts.append(raw)
            length += len(raw)
            continue
        flush()
        cur = LogicalLine(text="", line=lineno, starts=[0], lines=[lineno], tokens=tokens)
        parts, length = [raw], len(raw)
    settle(False)
    flush()
    return ParsedText(str(path), out, skipped, warnings, owner)
