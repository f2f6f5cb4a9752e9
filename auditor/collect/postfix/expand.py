"""Postfix ``$name`` expansion, written from the semantics of mac_parse(3) and mac_expand(3).

Supported, as in Postfix 3.x: ``$name``, ``${name}``, ``$(name)``, ``$$``, ``${name?text}``,
``${name:text}``, ``${name?{text}}``, ``${name?{t}:{f}}``, and relational expressions
``${{a} == {b} ? {t} : {f}}`` with ``== != < <= > >=`` and the ``<level``-style operators on
compatibility levels that Postfix's own defaults use. The conditional forms test the *raw*
value of a parameter (a value ``$undefined`` is non-empty), like Postfix does.

There is no library for this: it is Postfix's private macro language, hence a hand-written parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

WHITESPACE = " \t\r\n\v\f"
_NAME_CHARS = re.compile(r"[A-Za-z0-9_]*")
_OP_CHARS = re.compile(r"[<>!=?+\-*/~&|%]*")
_ALNUM = re.compile(r"[A-Za-z0-9]*")
_LEVEL = re.compile(r"(\d+)(?:\.(\d+)(?:\.(\d+))?)?")
_BRACKETS = {"{": ("{", "}"), "(": ("(", ")")}
_TRUE = "true"
MAX_DEPTH = 100  # mac_expand's "unreasonable macro call nesting" bound

Lookup = Callable[[str], "str | None"]


class ExpansionError(ValueError):
    """A syntax error or a reference loop: Postfix itself stops with "macro processing error"."""


def compat_level(text: str) -> tuple[int, int, int]:
    """Parse a compatibility level ("0", "2", "3.6", "3.6.1"); ValueError when malformed."""
    m = _LEVEL.fullmatch(text.strip(WHITESPACE))
    if not m:
        raise ExpansionError(f'malformed compatibility level syntax: "{text}"')
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


def _compare(left: str, op: str, right: str, suffix: str) -> bool:
    delta: int
    if suffix == "level":
        a, b = compat_level(left), compat_level(right)
        delta = (a > b) - (a < b)
    elif suffix:
        raise ExpansionError(f'bad operator suffix at: "{op}>>>{suffix}"')
    elif left.isdigit() and right.isdigit() and left.isascii() and right.isascii():
        delta = int(left) - int(right)
    else:
        lb, rb = left.encode(), right.encode()
        delta = (lb > rb) - (lb < rb)
    ops = {
        "==": delta == 0,
        "!=": delta != 0,
        "<": delta < 0,
        "<=": delta <= 0,
        ">=": delta >= 0,
        ">": delta > 0,
    }
    return ops[op]


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in WHITESPACE:
        i += 1
    return i


def _curly_payload(s: str, i: int) -> tuple[str, int]:
    """``s[i] == '{'``: return the balanced payload and the index after it (and after whitespace)."""
    level = 0
    for m in re.compile(r"[{}]").finditer(s, i):
        level += 1 if m.group() == "{" else -1
        if level == 0:
            return s[i + 1 : m.start()], _skip_ws(s, m.end())
    raise ExpansionError(f'unbalanced {{}} in attribute expression: "{s[i:][:60]}"')


def split_macros(text: str) -> list[tuple[bool, str]]:
    """mac_parse: split into (is_macro, text) pieces; ``$$`` becomes a literal ``$``."""
    out: list[tuple[bool, str]] = []
    lit: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            lit.append(text[i:])
            break
        lit.append(text[i:j])
        if j + 1 < n and text[j + 1] == "$":
            lit.append("$")
            i = j + 2
            continue
        pending = "".join(lit)
        if pending:
            out.append((False, pending))
        lit = []
        k = j + 1
        if k < n and text[k] in _BRACKETS:
            opener, closer = _BRACKETS[text[k]]
            level = 1
            pat = re.compile(re.escape(opener) + "|" + re.escape(closer))
            end = -1
            for m in pat.finditer(text, k + 1):
                level += 1 if m.group() == opener else -1
                if level == 0:
                    end = m.start()
                    break
            if end < 0:
                raise ExpansionError(f'truncated macro reference: "{text[j:][:60]}"')
            body, i = text[k + 1 : end], end + 1
        else:
            m2 = _NAME_CHARS.match(text, k)
            assert m2 is not None
            body, i = m2.group(), m2.end()
        if not body:
            raise ExpansionError(f'empty macro name: "{text[j:][:60]}"')
        out.append((True, body))
    tail = "".join(lit)
    if tail:
        out.append((False, tail))
    return out


class Expander:
    """Expands values against a lookup of *raw* parameter values (None = undefined).

    ``used`` collects every parameter name a top-level :meth:`expand` call consulted, so callers
    can tell which values depend on a templated or host-computed one; ``undefined`` collects
    names that were referenced but not defined (Postfix warns and expands them to nothing).
    """

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._stack: list[str] = []
        self.used: set[str] = set()
        self.undefined: set[str] = set()

    def expand(self, text: str) -> str:
        out: list[str] = []
        self._expand_into(text, out, 0)
        return "".join(out)

    def expand_name(self, name: str) -> str:
        """The expanded value of parameter ``name`` (like ``postconf -x -h name``)."""
        raw = self._lookup(name)
        self.used.add(name)
        if raw is None:
            return ""
        out: list[str] = []
        self._stack.append(name)
        try:
            self._expand_into(raw, out, 1)
        finally:
            self._stack.pop()
        return "".join(out)

    def _get(self, name: str) -> str | None:
        self.used.add(name)
        value = self._lookup(name)
        if value is None:
            self.undefined.add(name)
        return value

    def _expand_into(self, text: str, out: list[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ExpansionError(f'unreasonable macro call nesting: "{text[:60]}"')
        for is_macro, piece in split_macros(text):
            if is_macro:
                self._macro(piece, out, depth + 1)
            else:
                out.append(piece)

    def _macro(self, s: str, out: list[str], depth: int) -> None:
        i = _skip_ws(s, 0)
        name: str | None = None
        lookup: str | None
        if i < len(s) and s[i] == "{":
            lookup, i = self._relational(s, i, depth)
            ch = s[i] if i < len(s) else ""
            if ch:
                if ch not in "?:":
                    raise ExpansionError(f'"?" or ":" expected at: "...}}>>>{s[i:][:20]}"')
                i += 1
        else:
            start = cp = i
            while True:
                j = _skip_ws(s, cp)
                if j >= len(s):
                    ch, name = "", s[start:cp]
                    break
                if s[j] in "?:":
                    ch, name, i = s[j], s[start:cp], j + 1
                    break
                if not (s[cp].isascii() and (s[cp].isalnum() or s[cp] == "_")):
                    raise ExpansionError(f'attribute name syntax error at: "{s[:cp]}>>>{s[cp:][:20]}"')
                cp += 1
            lookup = self._get(name)
        if ch == "?" or ch == ":":
            if ch == "?":
                branch, i = self._operand(s, i)
                if lookup:
                    self._expand_into(branch, out, depth)
                if i >= len(s):
                    return
                if s[i] != ":":
                    raise ExpansionError(f'":" expected at: "...{branch}}}>>>{s[i:][:20]}"')
                i += 1
            branch, i = self._operand(s, i)
            if not lookup:
                self._expand_into(branch, out, depth)
            if i < len(s):
                raise ExpansionError(f'unexpected input at: "...{branch}}}>>>{s[i:][:20]}"')
            return
        if not lookup:
            return
        if name is None:  # a bare relational expression: its truth value
            self._expand_into(lookup, out, depth)
            return
        if name in self._stack:
            chain = " -> ".join([*self._stack[self._stack.index(name) :], name])
            raise ExpansionError(f"recursive parameter reference: {chain}")
        self._stack.append(name)
        try:
            self._expand_into(lookup, out, depth)
        finally:
            self._stack.pop()

    @staticmethod
    def _operand(s: str, i: int) -> tuple[str, int]:
        j = _skip_ws(s, i)
        if j < len(s) and s[j] == "{":
            return _curly_payload(s, j)
        return s[i:], len(s)

    def _relational(self, s: str, i: int, depth: int) -> tuple[str, int]:
        left, i = _curly_payload(s, i)
        m = _OP_CHARS.match(s, i)
        assert m is not None
        op = m.group()
        if op not in ("==", "!=", "<", "<=", ">=", ">"):
            raise ExpansionError(f'relational operator expected at: "...{left}}}>>>{s[i:][:20]}"')
        i = m.end()
        m2 = _ALNUM.match(s, i)
        assert m2 is not None
        suffix, i = m2.group(), m2.end()
        i = _skip_ws(s, i)
        if i >= len(s) or s[i] != "{":
            raise ExpansionError(f'"{{expression}}" expected at: "...{{{left}}} {op}>>>{s[i:][:20]}"')
        right, i = _curly_payload(s, i)
        lval: list[str] = []
        rval: list[str] = []
        self._expand_into(left, lval, depth)
        self._expand_into(right, rval, depth)
        return (_TRUE if _compare("".join(lval), op, "".join(rval), suffix) else ""), i
