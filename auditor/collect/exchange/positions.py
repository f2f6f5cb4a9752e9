"""Line numbers for JSON objects, so evidence from a JSON export can point at ``file:line``.

The json module returns values without positions; this walks the already-validated text with
``JSONDecoder.raw_decode`` (which reports where each element ends) to find where each array
element starts and where its properties are.
"""

from __future__ import annotations

import bisect
import json
import re

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\r\n]*")


def _skip(text: str, idx: int) -> int:
    """Offset of the first non-whitespace character at or after ``idx``."""
    m = _WS.match(text, idx)
    return m.end() if m else idx


class LineIndex:
    """Offset → line number in O(log n) (counting newlines per lookup would be quadratic)."""

    def __init__(self, text: str) -> None:
        self.starts = [m.end() for m in re.finditer("\n", text)]

    def line(self, idx: int) -> int:
        return bisect.bisect_right(self.starts, idx) + 1


def element_spans(text: str, array_start: int) -> list[tuple[int, int]]:
    """(start, end) offsets of the elements of the JSON array whose ``[`` is at ``array_start``."""
    spans: list[tuple[int, int]] = []
    idx = _skip(text, array_start + 1)
    if text.startswith("]", idx):
        return spans
    while idx < len(text):
        try:
            _, end = _DECODER.raw_decode(text, idx)
        except json.JSONDecodeError:
            return spans
        spans.append((idx, end))
        idx = _skip(text, end)
        if not text.startswith(",", idx):
            break
        idx = _skip(text, idx + 1)
    return spans


# Every JSON string token; the text is valid JSON, so scanning token by token from an object's
# start never lands inside a string. Those followed by ":" are keys.
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?')


def object_lines(
    text: str, index: LineIndex, span: tuple[int, int], names: list[str]
) -> tuple[int, dict[str, int]]:
    """Line of an object and of each of its (top-level) property keys found in its span.

    One pass over the span (a search per key would be quadratic in a 50,000-key object); a key
    name also used by a nested object is found at its first occurrence."""
    start, end = span
    wanted = set(names)
    lines: dict[str, int] = {}
    for m in _STRING.finditer(text, start, end):
        key = m.group(1)
        if m.group(2) and key in wanted and key not in lines:
            lines[key] = index.line(m.start())
            if len(lines) == len(wanted):
                break
    return index.line(start), lines


def array_after_key(text: str, key: str, start: int = 0) -> int | None:
    """Offset of the ``[`` that is the value of ``"key":`` (first occurrence after ``start``)."""
    m = re.compile(r'"' + re.escape(key) + r'"\s*:\s*\[').search(text, start)
    return m.end() - 1 if m else None


def top_level_array(text: str) -> int | None:
    idx = _skip(text, 0)
    return idx if text.startswith("[", idx) else None


def top_level_object(text: str) -> tuple[int, int] | None:
    idx = _skip(text, 0)
    if not text.startswith("{", idx):
        return None
    try:
        _, end = _DECODER.raw_decode(text, idx)
    except json.JSONDecodeError:
        return None
    return idx, end
