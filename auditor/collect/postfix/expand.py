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
# Bounds of our own (Postfix has none: ``lolN = $lol(N-1) $lol(N-1)`` makes postconf run for ever).
VALUE_CHARS = 4 << 20  # one value, as written or expanded: longer ones are not judged
TOTAL_CHARS = 16 * VALUE_CHARS  # expanded text over a whole config, on top of twice its size
STEPS = 200_000  # macro evaluations over a whole config, on top of four per "$" in it

Lookup = Callable[[str], "str | None"]


class ExpansionError(ValueError):
    """A syntax error or a reference loop: Postfix itself stops with "macro processing error"."""


class ExpansionLimit(ExpansionError):
    """The expansion went past our bounds on size or work (an expansion bomb): value unknown."""


class Budget:
    """Work left for every expansion of one config: output characters and macro evaluations,
    with a cap on the size of any one value. Shared by all the Expanders of a config; the
    defaults (one value of 64 MiB, 256 MiB in all, 10 M evaluations) suit a lone Expander; a
    config's are :meth:`for_config`."""

    def __init__(
        self, value_chars: int = 16 * VALUE_CHARS, chars: int = 4 * TOTAL_CHARS, steps: int = 50 * STEPS
    ) -> None:
        self.value_chars = value_chars
        self.chars = chars
        self.steps = steps

    @classmethod
    def for_config(cls, raws: list[str]) -> Budget:
        """Bounds for one config: VALUE_CHARS per value, and in all in proportion to its size and
        its ``$`` count."""
        total = sum(len(r) for r in raws)
        dollars = sum(r.count("$") for r in raws)
        return cls(value_chars=VALUE_CHARS, chars=2 * total + TOTAL_CHARS, steps=STEPS + 4 * dollars)


# name -> (expanded value or the error it raised, every name it consulted)
Memo = dict[str, tuple["str | ExpansionError", frozenset[str]]]


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

    The value of each referenced name is computed once (``memo``, shareable between Expanders of
    one lookup), and all work is charged to ``budget``: past it, :class:`ExpansionLimit`.
    ``shared`` is the memo of a base lookup that this one overlays with the names in ``shadow``
    (a master.cf service's ``-o`` overrides): its entries are reused when they consulted none of
    those names.
    """

    def __init__(
        self,
        lookup: Lookup,
        budget: Budget | None = None,
        memo: Memo | None = None,
        shared: Memo | None = None,
        shadow: frozenset[str] = frozenset(),
    ) -> None:
        self._lookup = lookup
        self._stack: list[str] = []
        self.used: set[str] = set()
        self.undefined: set[str] = set()
        self.budget = budget if budget is not None else Budget()
        self.memo: Memo = memo if memo is not None else {}
        self._shared = shared
        self._shadow = shadow
        self._size = 0  # characters of the current top-level value so far

    def expand(self, text: str) -> str:
        out: list[str] = []
        self._size = 0
        self._expand_into(text, out, 0)
        return "".join(out)

    def expand_name(self, name: str) -> str:
        """The expanded value of parameter ``name`` (like ``postconf -x -h name``)."""
        raw = self._lookup(name)
        self.used.add(name)
        if raw is None:
            return ""
        if "$" not in raw:
            return raw  # nothing to expand: no copy, nothing charged
        hit = self._recall(name)
        if hit is not None:
            return hit
        out: list[str] = []
        self._size = 0
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

    def _emit(self, out: list[str], piece: str) -> None:
        n = len(piece)
        self._size += n
        self.budget.chars -= n
        if self._size > self.budget.value_chars:
            raise ExpansionLimit(f"expands to more than {self.budget.value_chars} characters")
        if self.budget.chars < 0:
            raise ExpansionLimit("the expansion limit of this configuration is used up")
        out.append(piece)

    def _step(self) -> None:
        self.budget.steps -= 1
        if self.budget.steps < 0:
            raise ExpansionLimit("too many macro evaluations in this configuration")

    def _expand_into(self, text: str, out: list[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ExpansionError(f'unreasonable macro call nesting: "{text[:60]}"')
        if "$" not in text:
            self._emit(out, text)
            return
        for is_macro, piece in split_macros(text):
            if is_macro:
                self._step()
                self._macro(piece, out, depth + 1)
            else:
                self._emit(out, piece)

    def _recall(self, name: str) -> str | None:
        """A value computed before (in this memo, or in the shared one when not shadowed)."""
        hit = self.memo.get(name)
        if hit is None and self._shared is not None and name not in self._shadow:
            hit = self._shared.get(name)
            if hit is not None and hit[1] & self._shadow:
                hit = None
        if hit is None:
            return None
        value, used = hit
        self.used |= used
        if isinstance(value, ExpansionError):
            raise value
        return value

    def _value_of(self, name: str, raw: str, depth: int) -> str:
        """The expansion of a referenced parameter, computed once and remembered."""
        hit = self._recall(name)
        if hit is not None:
            return hit
        outer_used, outer_size = self.used, self._size
        self.used = {name}
        self._stack.append(name)
        sub: list[str] = []
        try:
            self._expand_into(raw, sub, depth)
            value: str | ExpansionError = "".join(sub)
        except ExpansionLimit as exc:
            value = exc
        finally:
            self._stack.pop()
            used = frozenset(self.used)
            self.used = outer_used | used
            self._size = outer_size
        self.memo[name] = (value, used)
        if isinstance(value, ExpansionError):
            raise value
        return value

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
        self._emit(out, self._value_of(name, lookup, depth))

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
