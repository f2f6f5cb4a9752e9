"""Exim's configuration preprocessor: physical lines → logical lines, as ``readconf.c`` does it.

Exim reads its configuration in one pass: each physical line is macro-expanded first, then
checked for a comment (``#`` after leading blanks), a conditional (``.ifdef`` … ``.endif``) or an
``.include``; what is left joins the current logical line (a trailing backslash continues it).
Macro definitions (``NAME = value``, ``NAME == value`` to redefine) take effect from the next
line on, so the reader has to know where a logical line defines one. This module mirrors those
rules, including their corners: macros are replaced as substrings (not words) in definition
order, ``.ifdef ANYTEXT`` is true when any macro was replaced on that line, built-in ``_NAME``
macros are only looked for where the text starts with ``_``, and a name may not contain an
earlier macro's name. ``exim -C FILE -bP config`` prints the same logical lines (the
differential test compares them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from auditor.model import InputError, Location

MAX_FILE_BYTES = 64 * 1024 * 1024  # one configuration file; a real exim.conf is a few hundred KB
MAX_TOTAL_BYTES = 256 * 1024 * 1024  # everything read through .include
MAX_INCLUDE_DEPTH = 40
CSTATE_STACK_SIZE = 10  # readconf.c: deeper .ifdef nesting is an error
MACRO_NAME_MAX = 63  # EXIM_DRIVERNAME_MAX - 1

SECTIONS = ("acls", "authenticators", "local_scans", "retrys", "rewrites", "routers", "transports")

# readconf.c cond_list: name, action when a macro was found / not found, push (1) / pop (-1)
_CONDS = (
    ("ifdef", 0, 1, 1),
    ("ifndef", 1, 0, 1),
    ("elifdef", 2, 3, 0),
    ("elifndef", 3, 2, 0),
    ("else", 2, 2, 0),
    ("endif", 0, 0, -1),
)
# state 0: reading; 1: condition failed, skipping to .else/.elif; 2: skipping to .endif
_NEXT = ((0, 1, 2, 2), (2, 2, 0, 1), (2, 2, 2, 2))
_MACRO_DEF = re.compile(r"[A-Za-z0-9_]*[ \t]*(?==)")
_NAME_START = re.compile(r"[A-Z]|_[A-Z]")


@dataclass
class Macro:
    name: str
    value: str
    location: Location | None  # None: built in (from the Exim binary) or given by the caller
    builtin: bool = False


@dataclass(frozen=True)
class Physical:
    """One physical input line and where it came from."""

    text: str
    path: str
    line: int


@dataclass(frozen=True)
class LogicalLine:
    """One logical line (continuations joined, macros expanded) and the physical lines it spans."""

    text: str
    location: Location
    section: str  # "main" or a section name as in SECTIONS ("acls", "routers", …)


@dataclass(frozen=True)
class Branch:
    """One conditional directive and what it decided."""

    directive: str  # ifdef | ifndef | elifdef | elifndef | else | endif
    argument: str  # the text after the directive, as written (before expansion)
    macro_found: bool
    location: Location
    builtins: tuple[str, ...] = ()  # built-in macro names the decision depended on


@dataclass
class ReadResult:
    lines: list[LogicalLine] = field(default_factory=list)
    macros: dict[str, Macro] = field(default_factory=dict)
    branches: list[Branch] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every file read, in order
    includes_skipped: list[tuple[str, Location]] = field(default_factory=list)  # .include_if_exists misses
    notes: list[str] = field(default_factory=list)


def read_text(path: Path, used_at: Location | None = None) -> list[str]:
    """A configuration file's physical lines; a binary or oversized file is an InputError."""
    where = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"file too large ({size} bytes, limit {MAX_FILE_BYTES})", where)
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, not an Exim configuration file", where) from None
    except FileNotFoundError:
        if used_at is not None:
            raise InputError(f"included file {where} does not exist", used_at.path, used_at.line) from None
        raise InputError("no such file", where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where) from None
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise InputError("binary data (NUL byte): not an Exim configuration file", where, line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # Exim reads bytes; keep every byte as one character
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


class _Source:
    """A stack of open inputs: the main file (or Debian's generated stream) plus .include files."""

    def __init__(self, top: list[Physical], top_name: str, top_dir: str) -> None:
        self.stack: list[tuple[Iterator[Physical], str, str]] = [(iter(top), top_name, top_dir)]

    @property
    def directory(self) -> str:
        return self.stack[-1][2]

    def names(self) -> list[str]:
        return [name for _it, name, _d in self.stack]

    def next(self) -> Physical | None:
        while self.stack:
            it = self.stack[-1][0]
            phys = next(it, None)
            if phys is not None:
                return phys
            if len(self.stack) == 1:
                return None
            self.stack.pop()
        return None


class Reader:
    """Read one configuration into logical lines, applying macros, conditionals and includes.

    ``builtins``: Exim's built-in ``_HAVE_*``/``_OPT_*``/… macros (from ``exim -bP macros``), or
    None when no Exim binary was consulted: a conditional on an unknown ``_NAME`` then takes the
    "not defined" branch and is recorded so that the rules can say what they assumed.
    ``defines``: macros given on the command line (``exim -DNAME=value``); they win over the file.
    """

    def __init__(
        self,
        builtins: dict[str, str] | None = None,
        defines: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> None:
        self.builtins_known = builtins is not None
        self.macros: list[Macro] = [Macro(n, v, None, True) for n, v in (builtins or {}).items()]
        self.n_builtin = len(self.macros)
        self.cmdline = set(defines or {})
        for n, v in (defines or {}).items():
            self.macros.append(Macro(n, v, None))
        self.result = ReadResult()
        self.total = 0
        self.root = root

    # --- macros -------------------------------------------------------------------------------

    def _expand(self, text: str, logical_start: bool) -> tuple[str, bool, list[str]]:
        """Exim's macros_expand on one physical line: (line from its first non-blank, found, builtins)."""
        s = text.lstrip(" \t\n\r\f\v")
        start = 0
        if logical_start and s[:1].isupper():
            m = _MACRO_DEF.match(s)
            if m:
                start = m.end()  # a definition: the name itself is never replaced
        first = _NAME_START.search(s, start)
        if first is None:
            return s, False, []
        pos = first.start()
        found = False
        used_builtins: list[str] = []
        macros = self.macros if s[pos] == "_" else self.macros[self.n_builtin :]
        head, rest = s[:pos], s[pos:]  # head: blanks, or a definition's own name (never replaced)
        for mac in macros:
            # readconf.c scans from the first possible name start, replacing left to right without
            # rescanning a replacement for the same macro: exactly str.replace (and linear).
            if mac.name in rest:
                rest = rest.replace(mac.name, mac.value)
                found = True
                if mac.builtin:
                    used_builtins.append(mac.name)
        return (head + rest).lstrip(" \t\n\r\f\v"), found, used_builtins

    def _define(self, text: str, loc: Location) -> None:
        """A logical line ``NAME = value`` / ``NAME == value`` (macro_read_assignment)."""
        m = re.match(r"[A-Za-z0-9_]*", text)
        name = m.group() if m else ""
        if len(name) > MACRO_NAME_MAX:
            raise InputError(
                f"macro name too long (maximum is {MACRO_NAME_MAX} characters)", loc.path, loc.line
            )
        rest = text[len(name) :].lstrip()
        if not rest.startswith("="):
            raise InputError(f'malformed macro definition "{_short(text)}"', loc.path, loc.line)
        rest = rest[1:]
        redef = rest.startswith("=")
        if redef:
            rest = rest[1:]
        value = rest.lstrip()
        existing: Macro | None = None
        for mac in self.macros:
            if mac.name == name:
                if name not in self.cmdline and not redef:
                    raise InputError(
                        f'macro "{name}" is already defined (use "==" if you want to redefine it)',
                        loc.path,
                        loc.line,
                    )
                existing = mac
                break
            if len(mac.name) < len(name) and mac.name in name:
                raise InputError(
                    f'"{name}" cannot be defined as a macro because previously defined macro '
                    f'"{mac.name}" is a substring',
                    loc.path,
                    loc.line,
                )
        if existing is not None and name in self.cmdline:
            return
        if redef:
            if existing is None:
                raise InputError(f'can\'t redefine an undefined macro "{name}"', loc.path, loc.line)
            existing.value = value
            existing.location = loc
        else:
            self.macros.append(Macro(name, value, loc))
        self.result.macros[name] = Macro(name, value, loc)

    # --- files --------------------------------------------------------------------------------

    def _physical(self, path: Path, used_at: Location | None) -> list[Physical]:
        lines = read_text(path, used_at)
        self.total += sum(len(x) + 1 for x in lines)
        if self.total > MAX_TOTAL_BYTES:
            where = used_at or Location(str(path))
            raise InputError(
                f"configuration too large through .include (limit {MAX_TOTAL_BYTES} bytes)",
                where.path,
                where.line,
            )
        name = str(path)
        self.result.files.append(name)
        return [Physical(t, name, i) for i, t in enumerate(lines, 1)]

    def resolve(self, path: str) -> Path:
        """Where to read a path the configuration names (an absolute path of the linted server)."""
        return Path(path)

    # --- the main loop ------------------------------------------------------------------------

    def read(self, top: list[Physical], top_name: str, top_dir: str) -> ReadResult:
        src = _Source(top, top_name, top_dir)
        cstate = 0
        cstack: list[int] = []
        section = "main"
        seen_sections: set[str] = set()
        parts: list[str] = []  # the logical line so far, one piece per physical line (no quadratic +=)
        first: Physical | None = None
        last: Physical | None = None
        seen: Physical | None = None  # the last physical line read, for "missing .endif"
        while True:
            phys = src.next()
            if phys is None:
                if cstack:
                    where = seen or Physical("", top_name, 0)
                    raise InputError(
                        "unexpected end of configuration file: .endif missing", where.path, where.line or None
                    )
                if parts:
                    section = self._emit("".join(parts), first, last, section, seen_sections)
                break
            seen = phys
            if phys.line == 1 and phys.text.startswith("\ufeff"):
                raise InputError("found unexpected BOM (Byte Order Mark)", phys.path, 1)
            ss, found, builtins = self._expand(phys.text, logical_start=not parts)
            if ss.startswith("#"):
                continue
            if ss.startswith("."):
                handled = False
                for name, act_found, act_missing, pushpop in _CONDS:
                    if not ss[1:].startswith(name):
                        continue
                    after = ss[1 + len(name) : 2 + len(name)]
                    handled = True
                    if after not in ("", " ", "t", "\n"):
                        break  # readconf.c drops such a line without a word
                    loc = Location(phys.path, phys.line)
                    if pushpop > 0:
                        if len(cstack) >= CSTATE_STACK_SIZE - 1:
                            raise InputError(f".{name} nested too deeply", phys.path, phys.line)
                        cstack.append(cstate)
                        cstate = _NEXT[cstate][act_found if found else act_missing]
                    else:
                        if not cstack:
                            raise InputError(f".{name} without matching .ifdef", phys.path, phys.line)
                        cstate = (
                            cstack.pop()
                            if pushpop < 0
                            else _NEXT[cstate][act_found if found else act_missing]
                        )
                    if name != "endif":
                        arg = phys.text.strip()[1 + len(name) :].strip()
                        unknown = (
                            []
                            if self.builtins_known or found
                            else [w for w in re.findall(r"\b_[A-Z][A-Z0-9_]*", arg) if w not in self._names()]
                        )
                        self.result.branches.append(Branch(name, arg, found, loc, tuple(builtins or unknown)))
                    break
                if handled:
                    continue
            if cstate != 0:
                continue
            inc = re.match(r"\.include(_if_exists)?[ \t\n\r\f\v]", ss)
            if inc:
                self._include(src, ss[inc.end() :], bool(inc.group(1)), phys)
                continue
            if not parts:
                first = phys
            parts.append(ss)  # a continuation's leading blanks are already gone
            last = phys
            # trailing blanks of the whole line so far go (a blank-only piece reaches back)
            while parts:
                parts[-1] = parts[-1].rstrip(" \t\n\r\f\v")
                if parts[-1]:
                    break
                parts.pop()
            if parts:
                if not parts[-1].endswith("\\"):
                    section = self._emit("".join(parts), first, last, section, seen_sections)
                    parts = []
                    continue
                parts[-1] = parts[-1][:-1]
        self.result.notes.extend(
            f"{b.location}: .{b.directive} {b.argument}: Exim built-in macro {', '.join(b.builtins)} "
            "assumed undefined (it depends on how Exim was built; no exim binary was consulted)"
            for b in self.result.branches
            if b.builtins and not self.builtins_known
        )
        return self.result

    def _names(self) -> set[str]:
        return {m.name for m in self.macros}

    def _include(self, src: _Source, rest: str, if_exists: bool, phys: Physical) -> None:
        loc = Location(phys.path, phys.line)
        name = rest.strip()
        if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
            name = name[1:-1]
        if not name.startswith("/"):
            if if_exists:
                raise InputError(f'.include specifies a non-absolute path "{name}"', loc.path, loc.line)
            name = os.path.join(src.directory, name)
        target = self.resolve(name) if name.startswith("/") else Path(name)
        if if_exists and not target.exists():
            self.result.includes_skipped.append((name, loc))
            return
        if str(target) in src.names() or name in src.names():
            raise InputError(f".include loop: {name} is already being read", loc.path, loc.line)
        if len(src.stack) >= MAX_INCLUDE_DEPTH:
            raise InputError(f".include nested deeper than {MAX_INCLUDE_DEPTH} files", loc.path, loc.line)
        lines = self._physical(target, loc)
        src.stack.append((iter(lines), str(target), os.path.dirname(name)))

    def _emit(
        self, text: str, first: Physical | None, last: Physical | None, section: str, seen: set[str]
    ) -> str:
        assert first is not None and last is not None
        loc = Location(first.path, first.line, end_line=last.line if last.line != first.line else None)
        if text[:6].lower() == "begin ":
            name = text[6:].lstrip().lower()
            if not name.endswith("s"):
                name += "s"
            if name not in SECTIONS:
                raise InputError(
                    f'"{_short(text[6:].strip())}" is not a known configuration section name',
                    loc.path,
                    loc.line,
                )
            if name in seen:
                raise InputError(
                    f'"{name}" section is repeated in the configuration file', loc.path, loc.line
                )
            seen.add(name)
            self.result.lines.append(LogicalLine(text, loc, name))
            return name
        self.result.lines.append(LogicalLine(text, loc, section))
        if section in ("main", "acls", "routers", "transports", "authenticators") and text[:1].isupper():
            m = re.match(r"[A-Za-z0-9_]+[ \t]*=", text)
            if section == "main" or m:
                self._define(text, loc)
        return section


def _short(text: str, limit: int = 80) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
