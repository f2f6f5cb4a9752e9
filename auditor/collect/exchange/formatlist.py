"""Console text pasted by an admin: ``Format-List`` (``Name : Value``) and default table views.

What console output does to data, and how this module copes:
- wrapped long values continue on lines indented to the value column → joined back;
- collections print as ``{a, b}`` and are cut after ``$FormatEnumerationLimit`` items with ``...``,
  long values are cut with ``...`` → such values are marked truncated;
- several objects are separated by blank lines; several commands by their prompt lines
  (``PS C:\\> Get-AcceptedDomain``, ``[PS] C:\\>Get-RemoteDomain | fl``) → the cmdlet of each block
  comes from the prompt line, else from its property names;
- a table (header, ``----`` line, rows) is read by the dash columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.collect.exchange import cmdlets
from auditor.collect.exchange.parsed import ParsedFile
from auditor.model import InputError
from auditor.observations.exchange import (
    FORM_FORMAT_LIST,
    FORM_TABLE,
    ExchangeCmdletOutput,
    ExObject,
    ExValue,
)

_KEY_VALUE = re.compile(r"^([A-Za-z_][\w.\-]*)\s*:(?:\s(.*))?$")
_COMMAND = re.compile(r"^\s*(?:\[PS\]\s*)?(?:PS\b[^>]*>\s*|[A-Za-z]:\\[^>]*>\s*)?((?:Get|Test)-[A-Za-z]+)\b")
_DASHES = re.compile(r"^\s*-+(?:\s+-+)*\s*$")
_NOT_PROPERTIES = {"warning", "verbose", "debug", "error"}
_ELLIPSES = ("...", "\u2026")


@dataclass
class _Obj:
    raw: dict[str, list[str]] = field(default_factory=dict)  # pieces, joined once at the end
    lines: dict[str, int] = field(default_factory=dict)
    first_line: int | None = None
    form: str = FORM_FORMAT_LIST


@dataclass
class _Section:
    cmdlet: str | None
    line: int | None
    objects: list[_Obj] = field(default_factory=list)


def parse_format_list(text: str, path: str) -> ParsedFile:
    lines = text.splitlines()
    width = max((len(x.rstrip()) for x in lines), default=0)
    sections: list[_Section] = [_Section(None, None)]
    obj: _Obj | None = None
    last_key: str | None = None
    last_raw_len = 0
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        lineno = i + 1
        if i + 1 < len(lines) and line.strip() and _DASHES.match(lines[i + 1]) and not _KEY_VALUE.match(line):
            _flush(sections, obj)
            obj = None
            i = _table(lines, i, sections[-1])
            last_key = None
            continue
        i += 1
        if not line.strip():
            _flush(sections, obj)
            obj = None
            last_key = None
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment in a hand-annotated paste
        if line[0].isspace() and obj is not None and last_key is not None:
            piece = line.strip()
            # A line cut at the console width breaks mid-word; a word wrap drops the space.
            joiner = "" if last_raw_len >= width else " "
            obj.raw[last_key].append(joiner + piece)
            last_raw_len = len(line)
            continue
        m = _KEY_VALUE.match(line)
        if m and m.group(1).lower() not in _NOT_PROPERTIES:
            if obj is None:
                obj = _Obj(first_line=lineno)
            key = m.group(1)
            if key in obj.raw:  # the same property twice: a new object without a blank line
                _flush(sections, obj)
                obj = _Obj(first_line=lineno)
            obj.raw[key] = [(m.group(2) or "").strip()]
            obj.lines[key] = lineno
            last_key = key
            last_raw_len = len(line)
            continue
        c = _COMMAND.match(line)
        if c:
            _flush(sections, obj)
            obj = None
            sections.append(_Section(cmdlets.cmdlet_in(line), lineno))
            last_key = None
            continue
        last_key = None  # unrecognised text (a banner, a prompt without command): not data
    _flush(sections, obj)
    return _build(sections, path)


def _flush(sections: list[_Section], obj: _Obj | None) -> None:
    if obj is not None and obj.raw:
        sections[-1].objects.append(obj)


def _table(lines: list[str], i: int, section: _Section) -> int:
    """Read a default table view starting at header line i; return the index after it."""
    header = lines[i].rstrip()
    dashes = lines[i + 1].rstrip()
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]
    starts = [s for s, _ in spans]
    names = [_cut(header, starts, k) for k in range(len(starts))]
    j = i + 2
    while j < len(lines) and lines[j].strip():
        row = lines[j].rstrip()
        obj = _Obj(first_line=j + 1, form=FORM_TABLE)
        for k, name in enumerate(names):
            if name:
                obj.raw[name] = [_cut(row, starts, k)]
                obj.lines[name] = j + 1
        section.objects.append(obj)
        j += 1
    return j


def _cut(line: str, starts: list[int], k: int) -> str:
    end = starts[k + 1] if k + 1 < len(starts) else len(line)
    return line[starts[k] : end].strip()


def _value(raw: str, line: int | None) -> ExValue:
    text = raw.strip()
    if not text:
        return ExValue(None, line=line)
    if text.startswith("{"):
        if not text.endswith("}"):
            return ExValue(text, truncated=True, line=line)
        inner = text[1:-1].strip()
        cut = inner.endswith(_ELLIPSES)
        if cut:
            inner = inner.rstrip(".\u2026").rstrip()
        items = tuple(p.strip() for p in inner.split(",") if p.strip())
        return ExValue(None, items=items, multi=True, truncated=cut, line=line)
    if text.endswith(_ELLIPSES):
        return ExValue(text, truncated=True, line=line)
    return ExValue(text, truncated=cmdlets.is_truncation_marker(text), line=line)


def _build(sections: list[_Section], path: str) -> ParsedFile:
    parsed = ParsedFile(path=path, form=FORM_FORMAT_LIST)
    known = 0
    for sec in sections:
        groups: dict[str, list[ExObject]] = {}
        forms: dict[str, str] = {}
        first_line: dict[str, int | None] = {}
        for o in sec.objects:
            cmdlet = sec.cmdlet or cmdlets.infer_cmdlet(o.raw) or "(unknown)"
            groups.setdefault(cmdlet, []).append(
                ExObject(
                    props={k: _value("".join(v), o.lines.get(k)) for k, v in o.raw.items()}, line=o.first_line
                )
            )
            forms.setdefault(cmdlet, o.form)
            first_line.setdefault(cmdlet, sec.line or o.first_line)
        if not sec.objects and sec.cmdlet:
            groups[sec.cmdlet] = []  # a command that printed nothing: an empty result
            forms[sec.cmdlet] = FORM_FORMAT_LIST
            first_line[sec.cmdlet] = sec.line
        for cmdlet, objs in groups.items():
            known += cmdlet in cmdlets.KNOWN_CMDLETS
            parsed.outputs.append(
                ExchangeCmdletOutput(
                    target=path,
                    cmdlet=cmdlet,
                    path=path,
                    form=forms[cmdlet],
                    objects=tuple(objs),
                    line=first_line[cmdlet],
                )
            )
    if not parsed.outputs:
        raise InputError("no 'Name : Value' lines, table or cmdlet output found", path)
    if not known:
        raise InputError(
            "no output of a known Exchange cmdlet found (e.g. Get-AcceptedDomain | Format-List)", path
        )
    return parsed
