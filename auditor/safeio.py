"""Reading untrusted files safely: regular files only, a size cap, JSON that cannot crash later.

``json.loads`` accepts two things that blow up far from the parser: integers longer than Python's
``int_max_str_digits`` (ValueError, not JSONDecodeError) and ``"\\ud800"`` escapes, which decode to
a lone surrogate that no UTF-8 writer can encode when the report is written. Both become
:class:`~auditor.model.InputError` here, with the file and line.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from typing import Any

from auditor.model import InputError

MAX_JSON_BYTES = 256 * 1024 * 1024  # a saved report of a large site is a few MB


class _LongNumber(ValueError):
    pass


def _int(digits: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(digits.lstrip("-")) > limit:
        raise _LongNumber(digits[:20])
    return int(digits)


def _line(text: str, offset: int) -> int | None:
    return text.count("\n", 0, offset) + 1 if offset >= 0 else None


def check_text(doc: Any, text: str, path: str) -> None:
    """Refuse any string (key or value) holding half a UTF-16 surrogate pair; iterative, since the
    document may nest as deep as the parser allowed."""
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str) and not v.isascii():
            bad = next((c for c in v if 0xD800 <= ord(c) <= 0xDFFF), None)
            if bad is not None:
                escape = f"\\u{ord(bad):04x}"
                line = _line(text, text.lower().find(escape))
                raise InputError(
                    f"string with an unpaired UTF-16 surrogate ({escape}): not Unicode", path, line
                )


def loads(text: str, path: str) -> Any:
    """Parse JSON text; every way it can fail is an InputError naming ``path`` (and the line)."""
    try:
        doc = json.loads(text, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path, exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", path) from None
    except _LongNumber as exc:
        m = re.search(r"-?" + re.escape(str(exc).lstrip("-")) + r"\d*", text)
        line = _line(text, m.start()) if m else None
        raise InputError(f"number with more than {sys.get_int_max_str_digits()} digits", path, line) from None
    check_text(doc, text, path)
    return doc


def read_regular(path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (no FIFO, device or directory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError("not a regular file", path)
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", path) from None
    if len(data) > max_bytes:
        raise InputError(f"file too large (more than {max_bytes} bytes)", path)
    return data


def load_json(path: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file (UTF-8, with or without BOM) as Python values; any problem is an InputError."""
    data = read_regular(path, max_bytes)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8: byte {exc.start}", path, data.count(b"\n", 0, exc.start) + 1) from None
    return loads(text, path)
