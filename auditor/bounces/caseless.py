"""Case-insensitive regular expressions searched faster on ASCII text, with the same results.

Why: under ``re.IGNORECASE`` the ``re`` engine folds the case of every character it compares and
cannot use its literal-prefix scan; the detectors' phrase lists (``could not be delivered|…``)
were the largest cost after MIME parsing. For ASCII text the same search is a case-sensitive one
of the lowercased pattern over the lowercased text (lowercasing ASCII keeps every position), so
:meth:`Caseless.search` finds the position that way and then runs the original pattern there: the
``Match`` it returns is the one ``pattern.search(text)`` returns. Non-ASCII text, and any pattern
the lowering cannot keep exact (code point escapes, mixed-case ranges, characters that fold to
ASCII such as the Kelvin sign), use the original pattern only.
"""

from __future__ import annotations

import re


def _folds_to_ascii(char: str) -> bool:
    return any(re.fullmatch(re.escape(char), chr(a), re.I) for a in range(128))


def lowered(pattern: str) -> str | None:
    """The pattern with its ASCII letters lowercased (escapes kept), or None when that is not exact."""
    out: list[str] = []
    i, n = 0, len(pattern)
    class_start = -1  # index in ``pattern`` where the current [...] started, -1 outside
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt in ("", "x", "u", "U", "N", "0"):  # a code point written as an escape
                return None
            out.append(c + nxt)
            i += 2
            continue
        if not c.isascii():
            if _folds_to_ascii(c) or class_start >= 0:
                return None
        elif class_start >= 0:
            first = i == class_start + 1 or (i == class_start + 2 and pattern[class_start + 1] == "^")
            if c == "]" and not first:
                class_start = -1
            elif c == "-" and not first and pattern[i + 1 : i + 2] not in ("]", ""):
                ends = (pattern[i - 1], pattern[i + 1])
                if any(e.isupper() for e in ends) and not all(e.isascii() and e.isupper() for e in ends):
                    return None
        elif c == "[":
            class_start = i
        out.append(c.lower())
        i += 1
    return "".join(out)


# The last text lowercased, and its lowercase: the detectors search one text with many patterns.
# A tuple, replaced whole, so that threads never see a text paired with another text's lowercase.
_last: tuple[str, str] = ("", "")


def _top_level_bar(pattern: str) -> bool:
    """Whether the pattern has a "|" outside any group (then a leading "^" binds to one branch only)."""
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]" or pattern[i + 1 : i + 3] == "^]":
                i += 2 if pattern[i + 1] == "]" else 3  # a "]" first in a class is a literal
                continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        i += 1
    return False


class Caseless:
    """A case-insensitive pattern: ``search`` returns exactly what ``re.search(pattern, …, re.I)`` does.

    A multiline pattern that starts with "^" is searched as "\\n…" in "\\n" + text: a literal first
    character lets ``re`` jump from line to line instead of trying every position.
    """

    __slots__ = ("_fast", "_lines", "_lines_any", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern: re.Pattern[str] = re.compile(pattern, flags | re.I)
        low = lowered(pattern)
        fast: re.Pattern[str] | None = None
        self._lines = bool(
            flags & re.M
            and pattern.startswith("^")
            and "(?<" not in pattern  # a lookbehind would see the added "\\n" at the start
            and "\\A" not in pattern
            and not _top_level_bar(pattern[1:])
        )
        # "\n" has no case: even under IGNORECASE it is a literal prefix the engine jumps to.
        self._lines_any = re.compile("\n" + pattern[1:], flags | re.I) if self._lines else None
        self._lines = self._lines and low is not None
        if low is not None:
            try:
                fast = re.compile("\n" + low[1:] if self._lines else low, flags & ~re.I)
            except re.error:  # e.g. lowered group names that now clash
                fast = None
        self._fast = fast

    def search(self, text: str) -> re.Match[str] | None:
        global _last
        if self._fast is None or not text.isascii():
            if self._lines_any is not None:
                found = self._lines_any.search("\n" + text)
                return (
                    None
                    if found is None
                    else self.pattern.match(text, found.start()) or self.pattern.search(text)
                )
            return self.pattern.search(text)
        last = _last
        if last[0] is text:
            low = last[1]
        else:
            low = text.lower()
            _last = (text, low)
        found = self._fast.search("\n" + low if self._lines else low)
        if found is None:
            return None
        # The original pattern matches at the same first position: return its Match (original case).
        return self.pattern.match(text, found.start()) or self.pattern.search(text)


Searcher = re.Pattern[str] | Caseless
_FAST: dict[re.Pattern[str], Searcher] = {}


def fast(pattern: re.Pattern[str]) -> Searcher:
    """The faster equivalent of a compiled pattern (itself when it is not case-insensitive)."""
    found = _FAST.get(pattern)
    if found is None:
        found = Caseless(pattern.pattern, pattern.flags) if pattern.flags & re.I else pattern
        _FAST[pattern] = found
    return found
