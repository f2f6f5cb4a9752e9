"""master.cf: service lines with 8 fields plus command arguments, ``-o name=value`` overrides.

Arguments may be grouped with braces (Postfix 3.0+): ``-o { name = value with spaces }``. The
glued form ``-o{name=value}`` is read as a group too (postconf 3.7 misreads it; master(8) would
see a separate ``-o`` argument), and a note says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.postfix.redact import quote_safely
from auditor.collect.postfix.textfile import LogicalLine, ParsedText, iter_logical_lines
from auditor.model import InputError

_TEMPLATE_PAIRS = {"{{": "}}", "{%": "%}", "[%": "%]", "{#": "#}"}
FIELDS = ("name", "type", "private", "unpriv", "chroot", "wakeup", "maxproc", "command")
# A real master.cf has tens of services; past this, the report alone would not fit in memory.
MAX_SERVICES = 10_000


@dataclass(frozen=True)
class Override:
    name: str
    raw: str
    line: int


@dataclass(frozen=True)
class ServiceLine:
    fields: tuple[str, ...]  # the 8 fields
    args: tuple[str, ...]
    overrides: tuple[Override, ...]
    line: int | None
    tokens: tuple[tuple[str, int], ...] = ()


@dataclass
class MasterCf:
    path: str | None
    services: list[ServiceLine] = field(default_factory=list)
    skipped_templates: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def split_args(text: str, path: str, line: int) -> list[tuple[str, int]]:
    """Whitespace-separated tokens with ``{ … }`` groups kept whole: (token, offset)."""
    out: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        if text[i] == "{" and text[i : i + 2] not in _TEMPLATE_PAIRS:
            group_at = i
        else:
            group_at = i + 2 if text.startswith("-o{", i) else -1
        if group_at >= 0:
            depth = 0
            j = group_at
            while j < n:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if depth:
                raise InputError(f"missing '}}' in \"{quote_safely(text[start:], 60)}\"", path, line)
            i = j + 1
        else:
            while i < n and not text[i].isspace():
                close = _TEMPLATE_PAIRS.get(text[i : i + 2])
                end = text.find(close, i + 2) if close else -1
                # an unrendered ``{{ x }}`` / ``[% x %]`` stays one token, spaces and all
                i = end + 2 if end >= 0 else i + 1
        out.append((text[start:i], start))
    return out


_FIELD_RULES = {
    "type": re.compile(r"inet|unix|unix-dgram|fifo|pass"),
    "private": re.compile(r"[yn-]"),
    "unpriv": re.compile(r"[yn-]"),
    "chroot": re.compile(r"[yn-]"),
    "wakeup": re.compile(r"-|\d+\??"),
    "maxproc": re.compile(r"-|\d+"),
}
_POSTCONF_NAMES = {"unpriv": "unprivileged", "maxproc": "process_limit"}


def _validate(fields: tuple[str, ...], ll: LogicalLine, path: str) -> None:
    """master(8) refuses a bad field; so do we (an unrendered template token is left alone)."""
    for name, value in zip(FIELDS, fields, strict=False):
        rule = _FIELD_RULES.get(name)
        if rule is None or rule.fullmatch(value) or any(value in tok for tok, _ in ll.tokens):
            continue
        label = _POSTCONF_NAMES.get(name, name)
        raise InputError(f'invalid {label} field "{value}" in "{" ".join(fields)}"', path, ll.line)


def _parse_service(ll: LogicalLine, path: str, notes: list[str]) -> ServiceLine:
    toks = split_args(ll.text, path, ll.line)
    if len(toks) < len(FIELDS):
        raise InputError(
            f"bad master.cf entry: {len(toks)} fields, need at least {len(FIELDS)}: "
            f'"{" ".join(t for t, _ in toks)[:80]}"',
            path,
            ll.line,
        )
    fields = tuple(t for t, _ in toks[: len(FIELDS)])
    _validate(fields, ll, path)
    args = toks[len(FIELDS) :]
    overrides: list[Override] = []
    k = 0
    while k < len(args):
        tok, off = args[k]
        spec: str | None = None
        if tok == "-o":
            if k + 1 >= len(args):
                notes.append(f"{path}:{ll.line_at(off)}: '-o' without a value")
                break
            k += 1
            spec, off = args[k]
        elif tok.startswith("-o{"):
            notes.append(f"{path}:{ll.line_at(off)}: '-o{{' without a space: read as '-o {{...}}'")
            spec = tok[2:]
        elif tok.startswith("-o") and len(tok) > 2:
            spec = tok[2:]
        k += 1
        if spec is None:
            continue
        if spec.startswith("{") and spec.endswith("}"):
            spec = spec[1:-1]
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            notes.append(
                f"{path}:{ll.line_at(off)}: missing '=' after attribute name: \"{quote_safely(spec, 60)}\""
            )
            continue
        overrides.append(Override(name.strip(), value.strip(), ll.line_at(off)))
    return ServiceLine(fields, tuple(t for t, _ in args), tuple(overrides), ll.line, tuple(ll.tokens))


def parse_master_cf(path: Path) -> MasterCf:
    parsed = ParsedText(str(path))
    result = MasterCf(str(path), skipped_templates=parsed.skipped_templates, notes=parsed.warnings)
    for ll in iter_logical_lines(path, parsed, strip_line_prefix_tokens=True):
        if len(result.services) >= MAX_SERVICES:
            raise InputError(
                f"more than {MAX_SERVICES} services: not a master.cf this tool reads (see README, Postfix)",
                str(path),
                ll.line,
            )
        if ll.clipped:
            raise InputError(f"a service entry of {ll.clipped} characters: too long", str(path), ll.line)
        try:
            result.services.append(_parse_service(ll, str(path), result.notes))
        except InputError:
            if not ll.tokens:
                raise
            result.notes.append(f"{path}:{ll.line}: template line skipped: {ll.text.strip()[:80]}")
            result.skipped_templates.extend(ll.tokens)
    return result


def stock_master_cf(lines: tuple[str, ...]) -> MasterCf:
    """The distribution's stock services, used when a directory has no master.cf."""
    result = MasterCf(None)
    for text in lines:
        ll = LogicalLine(text=text, line=0, starts=[0], lines=[0])
        svc = _parse_service(ll, "(stock master.cf)", result.notes)
        result.services.append(
            ServiceLine(svc.fields, svc.args, tuple(Override(o.name, o.raw, 0) for o in svc.overrides), None)
        )
    return result
