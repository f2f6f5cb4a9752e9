"""main.cf: ``name = value`` logical lines, last assignment wins (Postfix's own rule)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.postfix.redact import quote_safely
from auditor.collect.postfix.templates import rendered_words
from auditor.collect.postfix.textfile import ParsedText, iter_logical_lines
from auditor.model import InputError


@dataclass(frozen=True, slots=True)  # one per main.cf line: a 64 MB main.cf has a million
class Assignment:
    name: str
    raw: str
    line: int
    tokens: tuple[tuple[str, int], ...] = ()  # template tokens in this logical line (token, line)
    length: int = 0  # the value's full length when ``raw`` is clipped (a line past MAX_LOGICAL_CHARS)


@dataclass(frozen=True)
class SkippedLine:
    """A logical line dropped because it is template syntax: its tokens and the Postfix words in it."""

    tokens: tuple[tuple[str, int], ...]
    line: int
    parameter: str | None  # the assignment it follows: rendered, it continues that value
    text: str


@dataclass
class MainCf:
    path: str
    params: dict[str, Assignment] = field(default_factory=dict)
    skipped_templates: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # template-only lines (``{% if x %}``) inside a parameter's continuation: line -> parameter
    template_params: dict[int, str] = field(default_factory=dict)
    skipped_lines: list[SkippedLine] = field(default_factory=list)


def parse_main_cf(path: Path) -> MainCf:
    """Parse main.cf; InputError (file, line) for a line without ``=`` as Postfix does (fatal)."""
    parsed = ParsedText(str(path))
    result = MainCf(str(path), skipped_templates=parsed.skipped_templates, notes=parsed.warnings)
    names: list[str | None] = []  # the parameter each logical line belongs to
    last: str | None = None
    for ll in iter_logical_lines(path, parsed):
        name, sep, value = ll.text.partition("=")
        name = name.strip()
        if not sep or not name:
            if ll.tokens:  # a template construct, not Postfix syntax: note it, do not judge it
                result.notes.append(f"{path}:{ll.line}: template line skipped: {ll.text.strip()[:80]}")
                # ``[%- IF x %] word[% END %]`` after a value renders as that value's continuation
                words = rendered_words(ll.text)
                result.skipped_lines.append(SkippedLine(tuple(ll.tokens), ll.line, last, words))
                names.append(last)
                continue
            what = "missing '=' after attribute name" if not sep else "missing attribute name"
            raise InputError(f'{what}: "{quote_safely(ll.text)}"', str(path), ll.line)
        length = ll.clipped - len(ll.text) + len(value) if ll.clipped else 0
        result.params[name] = Assignment(name, value.strip(), ll.line, tuple(ll.tokens), length)
        names.append(name)
        last = name
    for lineno, index in parsed.template_owner.items():
        owner = names[index] if index < len(names) else None
        if owner is not None:
            result.template_params[lineno] = owner
    return result
