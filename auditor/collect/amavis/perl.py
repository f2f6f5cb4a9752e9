"""A tokenizer and statement splitter for the Perl that amavis configuration files are written in.

Not a Perl interpreter: it knows Perl's lexical rules well enough to find every statement and
its tokens (strings and quote-like operators with any delimiters, here-documents, POD, comments,
regex versus division), so that an assignment inside a string or a commented-out line is never
mistaken for a setting. Statements are grouped by block with the reason a block may not run
(``if``, a loop, a named ``sub``). Hand-written because no Python library tokenizes Perl.
Malformed input (an unterminated string, unbalanced brackets) raises :class:`PerlSyntaxError`
with the line; every loop advances, so hostile input cannot hang the reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class PerlSyntaxError(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Token:
    type: str  # var, num, str, qw, regex, ident, op, cmd
    value: str
    line: int
    interpolate: bool = False  # a "..." / qq / heredoc string whose $vars Perl would expand
    raw: str = ""


_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_QUOTE_OPS = frozenset({"q", "qq", "qw", "qr", "m", "s", "tr", "y"})
_OPERATORS: tuple[str, ...] = tuple(
    sorted(
        (
            "<=>",
            "**=",
            "||=",
            "//=",
            "&&=",
            "...",
            "<<=",
            ">>=",
            "->",
            "=>",
            "==",
            "!=",
            "<=",
            ">=",
            "=~",
            "!~",
            "&&",
            "||",
            "//",
            "..",
            "::",
            "**",
            "++",
            "--",
            "+=",
            "-=",
            "*=",
            "/=",
            ".=",
            "%=",
            "x=",
            "|=",
            "&=",
            "^=",
            "<<",
            ">>",
            "=",
            "+",
            "-",
            "*",
            "/",
            ".",
            "%",
            "<",
            ">",
            "!",
            "?",
            ":",
            ",",
            ";",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "\\",
            "&",
            "|",
            "^",
            "~",
        ),
        key=len,
        reverse=True,
    )
)
_OP_RE = re.compile("|".join(re.escape(o) for o in _OPERATORS))
_IDENT_RE = re.compile(r"[A-Za-z_]\w*(?:(?:::|')[A-Za-z_]\w*)*(?:::)?")
_NUM_RE = re.compile(
    r"0[xX][0-9a-fA-F_]+|0[bB][01_]+|(?:\d[\d_]*(?:\.(?!\.)[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?"
)
_VAR_RE = re.compile(
    r"(?:\$#|[$@%&])(?:\{\s*\^?\w+\s*\}|(?:::)?[A-Za-z_]\w*(?:::\w+)*(?:::)?|\^\w|\d+|[^\sA-Za-z0-9{])"
)
_SPACE_RE = re.compile(r"[ \t\r\f\v]+")
_HEREDOC_RE = re.compile(r"<<(~?)(?:\"([^\"\n]*)\"|'([^'\n]*)'|([A-Za-z_]\w*))")
_OPERAND_OPS = frozenset({")", "]", "}"})


def _line_at(text: str, pos: int, base_line: int, base_pos: int) -> int:
    return base_line + text.count("\n", base_pos, pos)


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.tokens: list[Token] = []
        self.heredocs: list[tuple[str, bool, bool, int]] = []  # terminator, indented, interpolate, index
        self.stopped = False

    # --- helpers -----------------------------------------------------------------------------
    def _advance_to(self, pos: int) -> None:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos

    def _term_expected(self) -> bool:
        if not self.tokens:
            return True
        t = self.tokens[-1]
        if t.type in ("var", "num", "str", "qw", "regex", "cmd"):
            return False
        if t.type == "op":
            return t.value not in _OPERAND_OPS
        return True  # after a bareword (a function name) Perl expects a term

    def _delimited(self, start: int, what: str) -> tuple[str, int]:
        """Read a delimited body starting at the opening delimiter; return (body, end position)."""
        text = self.text
        if start >= len(text):
            raise PerlSyntaxError(f"{what} without a delimiter", self.line)
        open_ch = text[start]
        close_ch = _PAIRS.get(open_ch, open_ch)
        depth = 1
        i = start + 1
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == "\\":
                i += 2
                continue
            if ch == close_ch and open_ch != close_ch:
                depth -= 1
                if depth == 0:
                    return text[start + 1 : i], i + 1
            elif ch == open_ch and open_ch != close_ch:
                depth += 1
            elif ch == close_ch:
                return text[start + 1 : i], i + 1
            i += 1
        raise PerlSyntaxError(f"unterminated {what}", self.line)

    def _skip_space_before_delim(self, i: int) -> int:
        n = len(self.text)
        while i < n and self.text[i] in " \t\r\n":
            i += 1
        return i

    def _consume_heredocs(self) -> None:
        """At the start of a line: read every pending here-document body."""
        text = self.text
        for term, indented, interp, index in self.heredocs:
            body: list[str] = []
            while True:
                if self.pos >= len(text):
                    raise PerlSyntaxError(
                        f"here-document {term!r} is never terminated", self.tokens[index].line
                    )
                end = text.find("\n", self.pos)
                end = len(text) if end < 0 else end
                line = text[self.pos : end]
                self._advance_to(min(end + 1, len(text)))
                if (line.strip() if indented else line.rstrip("\r")) == term:
                    break
                body.append(line)
            old = self.tokens[index]
            self.tokens[index] = Token("str", "\n".join(body) + "\n", old.line, interp, old.raw)
        self.heredocs = []

    # --- main loop -----------------------------------------------------------------------------
    def run(self) -> list[Token]:
        text = self.text
        n = len(text)
        at_line_start = True
        while self.pos < n and not self.stopped:
            ch = text[self.pos]
            if ch == "\n":
                self._advance_to(self.pos + 1)
                at_line_start = True
                if self.heredocs:
                    self._consume_heredocs()
                continue
            if at_line_start and ch == "=" and self.pos + 1 < n and text[self.pos + 1].isalpha():
                self._skip_pod()
                continue
            at_line_start = False
            m = _SPACE_RE.match(text, self.pos)
            if m:
                self._advance_to(m.end())
                continue
            if ch == "#":
                end = text.find("\n", self.pos)
                self._advance_to(n if end < 0 else end)
                continue
            self._token()
        if self.heredocs:
            term, _indented, _interp, index = self.heredocs[0]
            raise PerlSyntaxError(f"here-document {term!r} is never terminated", self.tokens[index].line)
        return self.tokens

    def _skip_pod(self) -> None:
        m = re.compile(r"^=cut\b.*$", re.M).search(self.text, self.pos)
        end = len(self.text) if m is None else m.end()
        self._advance_to(end)

    def _add(
        self, type_: str, value: str, end: int, *, interpolate: bool = False, line: int | None = None
    ) -> None:
        start_line = self.line if line is None else line
        raw = self.text[self.pos : end]
        self.tokens.append(Token(type_, value, start_line, interpolate, raw[:200]))
        self._advance_to(end)

    def _token(self) -> None:
        text = self.text
        pos = self.pos
        ch = text[pos]
        term = self._term_expected()
        if ch == "'":
            body, end = self._delimited(pos, "string")
            self._add("str", _unescape_single(body), end)
            return
        if ch == '"':
            body, end = self._delimited(pos, "string")
            self._add("str", body, end, interpolate=True)
            return
        if ch == "`":
            body, end = self._delimited(pos, "command")
            self._add("cmd", body, end)
            return
        if term and ch == "/":
            body, end = self._delimited(pos, "regular expression")
            end = _flags_end(text, end)
            self._add("regex", body, end)
            return
        if term and ch == "<":
            m = _HEREDOC_RE.match(text, pos)
            if m:
                term_name = (
                    m.group(2)
                    if m.group(2) is not None
                    else (m.group(3) if m.group(3) is not None else m.group(4))
                )
                interp = m.group(3) is None
                self.heredocs.append((term_name, bool(m.group(1)), interp, len(self.tokens)))
                self._add("str", "", m.end(), interpolate=interp)
                return
        if ch in "$@%&" and (term or ch in "$@"):
            m = _VAR_RE.match(text, pos)
            if (
                m
                and not (ch == "&" and m.group(0) in ("&&", "&="))
                and not (ch == "%" and m.group(0) == "%=")
            ):
                name = m.group(0)
                if name[1:2] == "{":
                    name = name[0] + name[1:].strip("{} ")
                self._add("var", name, m.end())
                return
        if ch.isdigit() or (ch == "." and pos + 1 < len(text) and text[pos + 1].isdigit()):
            m = _NUM_RE.match(text, pos)
            if m:
                self._add("num", m.group(0), m.end())
                return
        if ch.isalpha() or ch == "_":
            m = _IDENT_RE.match(text, pos)
            assert m is not None
            word = m.group(0)
            if word in ("__END__", "__DATA__"):
                self.stopped = True
                return
            if word in _QUOTE_OPS and self._quote_like(word, m.end()):
                return
            self._add("ident", word, m.end())
            return
        m = _OP_RE.match(text, pos)
        op = m.group(0) if m else ch
        self._add("op", op, pos + len(op))  # any other character: keep going

    def _quote_like(self, word: str, after: int) -> bool:
        text = self.text
        i = self._skip_space_before_delim(after)
        if i >= len(text):
            return False
        d = text[i]
        if d == "=" and text.startswith("=>", i):
            return False  # a hash key: q => 1
        if d in ",;)" or d.isalnum() or d == "_" or (d == "#" and i != after):
            return False
        if d == "=" and word not in ("s", "tr", "y", "m", "q", "qq", "qw", "qr"):
            return False
        if d == "=" and i != after:
            return False  # "y = 3": an assignment to a bareword, not y===
        start_line = self.line
        body, end = self._delimited(i, f"{word} quote")
        if word in ("s", "tr", "y"):
            if d in _PAIRS:
                j = self._skip_space_before_delim(end)
                _second, end = self._delimited(j, f"{word} replacement")
            else:
                _second, end = self._delimited(end - 1, f"{word} replacement")
        end = _flags_end(text, end)
        if word == "q":
            self._add("str", _unescape_single(body, d), end, line=start_line)
        elif word == "qq":
            self._add("str", body, end, interpolate=True, line=start_line)
        elif word == "qw":
            self._add("qw", body, end, line=start_line)
        else:
            self._add("regex", body, end, line=start_line)
        return True


def _flags_end(text: str, end: int) -> int:
    while end < len(text) and text[end].isalpha():
        end += 1
    return end


def _unescape_single(body: str, delim: str = "'") -> str:
    close = _PAIRS.get(delim, delim)
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in ("\\", delim, close):
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    return _Lexer(text).run()


# --- statements ------------------------------------------------------------------------------------


@dataclass
class Statement:
    """A simple statement (its tokens, no trailing ``;``) or a block of statements.

    ``condition`` is why the statement may not run ("" = it runs when the file is read):
    ``if (...)``, a loop, a statement modifier. ``skipped`` marks code that does not run at all
    while the file is read (a named ``sub``, ``END``).
    """

    tokens: list[Token]
    line: int
    block: list[Statement] = field(default_factory=list)
    is_block: bool = False
    condition: str = ""
    skipped: str = ""

    def text(self, limit: int = 160) -> str:
        out = " ".join(t.raw or t.value for t in self.tokens)
        return out if len(out) <= limit else out[: limit - 1] + "…"


_COMPOUND = frozenset({"if", "unless", "while", "until", "for", "foreach"})
_PHASE_RUN = frozenset({"BEGIN", "INIT", "CHECK", "UNITCHECK"})
MAX_DEPTH = 200


class _Splitter:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0

    def _is(self, k: int, value: str, type_: str = "op") -> bool:
        return k < len(self.toks) and self.toks[k].type == type_ and self.toks[k].value == value

    def _balanced_end(self, k: int) -> int:
        """Index just past the bracket group opening at ``k``."""
        open_t = self.toks[k]
        stack = [_PAIRS[open_t.value]]
        k += 1
        while k < len(self.toks):
            t = self.toks[k]
            if t.type == "op" and t.value in ("(", "[", "{"):
                stack.append(_PAIRS[t.value])
                if len(stack) > MAX_DEPTH:
                    raise PerlSyntaxError("brackets nested too deeply", t.line)
            elif t.type == "op" and t.value in (")", "]", "}"):
                if t.value != stack[-1]:
                    raise PerlSyntaxError(f"unbalanced {t.value!r}", t.line)
                stack.pop()
                if not stack:
                    return k + 1
            k += 1
        raise PerlSyntaxError(f"unclosed {open_t.value!r}", open_t.line)

    def block(self, depth: int = 0) -> list[Statement]:
        """Statements until the matching ``}`` (consumed) or the end of the tokens."""
        if depth > MAX_DEPTH:
            raise PerlSyntaxError("blocks nested too deeply", self.toks[self.i].line if self.toks else 1)
        out: list[Statement] = []
        while self.i < len(self.toks):
            t = self.toks[self.i]
            if t.type == "op" and t.value == ";":
                self.i += 1
                continue
            if t.type == "op" and t.value == "}":
                if depth == 0:
                    raise PerlSyntaxError("unbalanced '}'", t.line)
                self.i += 1
                return out
            out.append(self.statement(depth))
        if depth:
            raise PerlSyntaxError("unclosed '{'", self.toks[-1].line if self.toks else 1)
        return out

    def _sub_block(self, start: int, depth: int, *, condition: str = "", skipped: str = "") -> Statement:
        header = self.toks[start : self.i]
        line = self.toks[start].line
        self.i += 1  # the "{"
        body = self.block(depth + 1)
        return Statement(header, line, body, True, condition, skipped)

    def statement(self, depth: int) -> Statement:
        start = self.i
        t = self.toks[start]
        if t.type == "op" and t.value == "{":
            return self._sub_block(start, depth)
        if t.type == "ident":
            w = t.value
            nxt = start + 1
            if (w in _COMPOUND and self._is(nxt, "(")) or (w in ("for", "foreach") and nxt < len(self.toks)):
                return self._compound(start, depth)
            if w == "sub" and nxt < len(self.toks) and self.toks[nxt].type == "ident":
                k = nxt + 1
                while k < len(self.toks) and not self._is(k, "{") and not self._is(k, ";"):
                    k += 1
                self.i = k
                if self._is(k, "{"):
                    return self._sub_block(
                        start, depth, skipped=f"sub {self.toks[nxt].value} (only runs when called)"
                    )
                self.i = k + 1
                return Statement(self.toks[start:k], t.line)
            if w in _PHASE_RUN and self._is(nxt, "{"):
                self.i = nxt
                return self._sub_block(start, depth)
            if w == "END" and self._is(nxt, "{"):
                self.i = nxt
                return self._sub_block(start, depth, skipped="END block (runs at exit)")
            if w in ("do", "eval") and self._is(nxt, "{"):
                end = self._balanced_end(nxt)
                k = end
                while k < len(self.toks) and not self._is(k, ";") and not self._is(k, "}"):
                    k += 1
                tail = self.toks[end:k]
                cond = ""
                if tail and tail[0].type == "ident" and tail[0].value in ("if", "unless", "while", "until"):
                    cond = " ".join(x.value for x in tail)[:120]
                self.i = nxt
                st = self._sub_block(start, depth, condition=cond)
                self.i = k + (1 if self._is(k, ";") else 0)
                st.tokens = self.toks[start : nxt + 1]
                return st
        # a simple statement: up to ";" or the "}" closing the enclosing block
        k = start
        while k < len(self.toks):
            tk = self.toks[k]
            if tk.type == "op" and tk.value in ("(", "[", "{"):
                k = self._balanced_end(k)
                continue
            if tk.type == "op" and tk.value in (")", "]"):
                raise PerlSyntaxError(f"unbalanced {tk.value!r}", tk.line)
            if tk.type == "op" and tk.value in (";", "}"):
                break
            k += 1
        self.i = k + (1 if self._is(k, ";") else 0)
        return Statement(self.toks[start:k], t.line)

    def _compound(self, start: int, depth: int) -> Statement:
        w = self.toks[start].value
        k = start + 1
        while k < len(self.toks) and not self._is(k, "{"):
            if self._is(k, "("):
                k = self._balanced_end(k)
                continue
            if self._is(k, ";"):
                raise PerlSyntaxError(f"{w} without a block", self.toks[k].line)
            k += 1
        if k >= len(self.toks):
            raise PerlSyntaxError(f"{w} without a block", self.toks[start].line)
        cond_text = " ".join(x.raw or x.value for x in self.toks[start:k])[:120]
        self.i = k
        st = self._sub_block(start, depth, condition=cond_text)
        while (
            self.i < len(self.toks)
            and self.toks[self.i].type == "ident"
            and self.toks[self.i].value
            in (
                "elsif",
                "else",
            )
        ):
            s2 = self.i
            k = s2 + 1
            while k < len(self.toks) and not self._is(k, "{"):
                if self._is(k, "("):
                    k = self._balanced_end(k)
                    continue
                k += 1
            if k >= len(self.toks):
                raise PerlSyntaxError("else without a block", self.toks[s2].line)
            self.i = k
            more = self._sub_block(s2, depth, condition=cond_text + " (else branch)")
            st.block.append(more)
        return st


def split_statements(tokens: list[Token]) -> list[Statement]:
    return _Splitter(tokens).block()
