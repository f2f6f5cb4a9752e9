"""Fitting text into a fixed number of columns: wrapping, cutting in the middle, folding shell lines.

Widths are counted in code points: every string here has passed :func:`~auditor.render._common.visible`,
so it holds no control characters, and the rare wide (CJK) character is accepted as an overrun.
"""

from __future__ import annotations

import textwrap

ELLIPSIS = "…"
MIN_WIDTH = 20  # below this nothing is readable anyway; lines are still cut to it


def cut_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, cut in the middle: the start and the end tell
    MX hosts, DNs and paths apart (``mx1.exam…ple.com[192.0.2.1]``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    keep = width - 1
    head = keep // 2
    tail = keep - head
    return text[:head] + ELLIPSIS + text[len(text) - tail :]


def wrap(text: str, width: int, indent: str = "", hanging: str | None = None) -> list[str]:
    """Lines of ``text`` in ``width`` columns; the first starts with ``indent``, the others with
    ``hanging`` (default: ``indent``). Existing line breaks stay; over-long words are broken."""
    hanging = indent if hanging is None else hanging
    out: list[str] = []
    for n, para in enumerate(text.splitlines() or [""]):
        first = indent if n == 0 else hanging
        room = max(1, width - max(len(first), len(hanging)))
        if not para.strip():
            out.append(first.rstrip())
            continue
        # Leading spaces of a paragraph are kept (indented evidence), then wrapped within the room.
        lead = para[: len(para) - len(para.lstrip(" "))]
        lines = textwrap.wrap(
            para.strip(),
            width=max(1, room - len(lead)),
            break_long_words=True,
            break_on_hyphens=False,
            drop_whitespace=True,
        )
        out.extend((first if i == 0 else hanging) + lead + line for i, line in enumerate(lines))
    return out


def fit(line: str, width: int) -> str:
    """One line in ``width`` columns, cut at the end (for lines that must stay one line)."""
    return line if len(line) <= width else line[: max(0, width - 1)] + ELLIPSIS


# --- shell lines ---------------------------------------------------------------------------------


def _segments(command: str) -> list[tuple[str, str, list[tuple[int, str]]]]:
    """Split a shell line into (kind, text, breaks): kind "word", "space" or "comment"; breaks are
    the positions inside a word where a line may be continued, each with the quote in force there
    ("" none, "'" single, '"' double, "$'" ANSI-C)."""
    segs: list[tuple[str, str, list[tuple[int, str]]]] = []
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if c in " \t":
            j = i
            while j < n and command[j] in " \t":
                j += 1
            segs.append(("space", command[i:j], []))
            i = j
            continue
        if c == "#":
            segs.append(("comment", command[i:], []))
            break
        start, quote, breaks = i, "", []
        while i < n:
            c = command[i]
            if not quote and c in " \t":
                break
            if i > start:  # (an escaped character is skipped below, so no break falls after its backslash)
                breaks.append((i - start, quote))
            if quote == "'":
                if c == "'":
                    quote = ""
            elif quote == "$'":
                if c == "\\":
                    i += 1
                elif c == "'":
                    quote = ""
            elif quote == '"':
                if c == "\\":
                    i += 1
                elif c == '"':
                    quote = ""
            elif c == "\\":
                i += 1
            elif c == "'":
                quote = "$'" if i > start and command[i - 1] == "$" else "'"
            elif c == '"':
                quote = '"'
            i += 1
        # A break may not fall between "$" and the quote it opens, nor right after an opening quote.
        word = command[start:i]
        safe = [(p, q) for p, q in breaks if not (word[p - 1] == "$" and word[p : p + 1] == "'")]
        segs.append(("word", word, safe))
    return segs


def _split_word(word: str, breaks: list[tuple[int, str]], room: int, width: int) -> list[str]:
    """Cut a word longer than ``room`` into pieces joined by continuation lines that the shell
    reads back as the same word (the pieces after the first start in column 0, with ``width``
    columns: indenting them would split the word)."""
    pieces: list[str] = []
    begin, reopen = 0, ""
    quotes = dict(breaks)
    while len(reopen) + len(word) - begin > room:
        limit = begin + room - len(reopen) - 2  # room for a closing quote and the backslash
        cut = max((p for p in quotes if begin < p <= limit), default=None)
        if cut is None:  # no break fits: take the first one (the line overruns, the command stays right)
            cut = min((p for p in quotes if p > begin), default=None)
            if cut is None:
                break
        quote = quotes[cut]
        single = quote in ("'", "$'")
        pieces.append(reopen + word[begin:cut] + ("'" if single else "") + "\\")
        reopen = quote if single else ""
        begin, room = cut, width
    pieces.append(reopen + word[begin:])
    return pieces


def fold_shell(command: str, width: int, indent: str = "", prefix: str = "$ ") -> list[str]:
    """A shell line folded into ``width`` columns with backslash-newline continuations, so that
    pasting the folded lines runs exactly the original command. Breaks fall between words where
    possible (continued lines are indented); a word too long for a line is continued in column 0,
    closing and reopening single quotes around the break; a comment too long is carried on as
    further comment lines."""
    first = indent + prefix
    cont = " " * len(first) + "  "
    if len(first) + len(command) <= width:
        return [first + command]
    lines: list[str] = []
    cur = first
    fresh = True  # nothing but the prefix on the current line
    for kind, text, breaks in _segments(command):
        if kind == "space":
            continue
        if kind == "comment":
            if len(cur) + 1 + len(text) <= width:
                lines.append(cur + ("" if fresh else " ") + text)
            else:
                if not fresh:
                    lines.append(cur + " \\")
                body = text.lstrip("#").strip()
                lines.extend(wrap(body, width, cont + "# "))
            return lines
        sep = "" if fresh else " "
        if len(cur) + len(sep) + len(text) + 2 <= width:
            cur += sep + text
            fresh = False
            continue
        if not fresh:
            lines.append(cur + " \\")
            cur, fresh = cont, True
        room = width - len(cur)
        if len(text) + 2 <= room:
            cur += text
            fresh = False
            continue
        pieces = _split_word(text, breaks, room, width)
        lines.append(cur + pieces[0])
        for piece in pieces[1:-1]:
            lines.append(piece)
        if len(pieces) > 1:
            cur = pieces[-1]
        fresh = False
    lines.append(cur)
    return lines
