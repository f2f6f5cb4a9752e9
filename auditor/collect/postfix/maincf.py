"""main.cf: ``name = value`` logical lines, last assignment wins (Postfix's own rule)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.postfix.textfile import logical_lines
from auditor.model import InputError


@dataclass(frozen=True)
class Assignment:
    name: str
    raw: str
    line: int
    tokens: tuple[tuple[str, int], ...] = ()  # template tokens in this logical line (token, line)


@dataclass
class MainCf:
    path: str
    params: dict[str, Assignment] = field(default_factory=dict)
    skipped_templates: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_main_cf(path: Path) -> MainCf:
    """Parse main.cf; InputError (file, line) for a line without ``=`` as Postfix does (fatal)."""
    parsed = logical_lines(path)
    result = MainCf(str(path), skipped_templates=parsed.skipped_templates, notes=list(parsed.warnings))
    for ll in parsed.logical:
        name, sep, value = ll.text.partition("=")
        name = name.strip()
        if not sep or not name:
            if ll.tokens:  # a template construct, not Postfix syntax: note it, do not judge it
                result.notes.append(f"{path}:{ll.line}: template line skipped: {ll.text.strip()[:80]}")
                result.skipped_templates.extend(ll.tokens)
                continue
            what = "missing '=' after attribute name" if not sep else "missing attribute name"
            raise InputError(f'{what}: "{_short(ll.text)}"', str(path), ll.line)
        result.params[name] = Assignment(name, value.strip(), ll.line, tuple(ll.tokens))
    return result


def _short(text: str) -> str:
    text = " ".join(text.split()[:12])
    return text if len(text) <= 80 else text[:77] + "..."
