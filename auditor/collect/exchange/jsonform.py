"""JSON input: the collector script's file, or plain ``ConvertTo-Json`` output of one cmdlet.

Plain ConvertTo-Json has quirks this module absorbs: enums written as numbers (mapped to names
where the mapping is verified, see ``cmdlets.ENUM_NUMBERS``), ``/Date(ms)/`` dates, one object
instead of an array, ``{"value": [...], "Count": n}`` wrappers, and objects deeper than ``-Depth``
flattened to their type name (marked truncated).
"""

from __future__ import annotations

from typing import Any

from auditor.collect.exchange import cmdlets
from auditor.collect.exchange.parsed import ParsedFile
from auditor.collect.exchange.positions import (
    LineIndex,
    array_after_key,
    element_spans,
    object_lines,
    top_level_array,
    top_level_object,
)
from auditor.model import InputError
from auditor.observations.exchange import (
    ENV_ONLINE,
    ENV_ONPREM,
    FORM_COLLECTOR,
    FORM_JSON,
    ExchangeCmdletOutput,
    ExObject,
    ExValue,
)
from auditor.observations.exchange_values import bool_text, ms_json_date
from auditor.safeio import loads

SCHEMA = "backscatter-audit-exchange/1"

# Keys that carry the useful scalar of a nested object PowerShell serialised field by field.
_SCALAR_KEYS = ("IPAddressToString", "Address", "Domain", "SmtpAddress", "DistinguishedName", "Name", "Value")


def parse_json(text: str, path: str) -> ParsedFile:
    doc = loads(text, path)
    if isinstance(doc, dict) and "schema" in doc:
        if doc["schema"] != SCHEMA:
            raise InputError(f"unknown schema {str(doc['schema'])[:60]!r} (expected {SCHEMA!r})", path)
        return _collector(doc, path, text)
    return _plain(doc, path, text)


def _collector(doc: dict[str, Any], path: str, text: str) -> ParsedFile:
    manifest = doc.get("manifest")
    data = doc.get("data")
    if not isinstance(manifest, dict) or not isinstance(data, dict):
        raise InputError("collector file lacks its 'manifest' or 'data' object", path)
    env = str(manifest.get("environment") or "")
    if env and env not in (ENV_ONPREM, ENV_ONLINE):
        raise InputError(f"manifest environment {env[:40]!r} is neither {ENV_ONPREM} nor {ENV_ONLINE}", path)
    parsed = ParsedFile(
        path=path,
        form=FORM_COLLECTOR,
        environment=env,
        server=str(manifest.get("server") or ""),
        exchange_version=str(manifest.get("exchange_version") or ""),
        collected=str(manifest.get("collected") or ""),
    )
    errors: dict[str, str] = {}
    entries = manifest.get("cmdlets") or []
    if not isinstance(entries, list):
        raise InputError("manifest 'cmdlets' is not a list", path)
    for entry in entries:
        if isinstance(entry, dict) and entry.get("error") and entry.get("name"):
            errors[str(entry["name"])] = str(entry["error"])
    lines_of = LineIndex(text)
    data_key = array_after_key(text, "data") or 0  # only a lower bound for the searches below
    for name, rows in data.items():
        if name in errors:
            continue
        found = _rows(rows, path, name)
        start = array_after_key(text, name, data_key) if isinstance(rows, list) else None
        spans = element_spans(text, start) if start is not None else []
        objects = tuple(_object(row, text, lines_of, spans, i) for i, row in enumerate(found))
        line = objects[0].line if objects else None
        parsed.outputs.append(
            ExchangeCmdletOutput(
                target=path, cmdlet=name, path=path, form=FORM_COLLECTOR, objects=objects, line=line
            )
        )
    for name, err in errors.items():
        parsed.outputs.append(
            ExchangeCmdletOutput(target=path, cmdlet=name, path=path, form=FORM_COLLECTOR, error=err)
        )
    return parsed


def _plain(doc: Any, path: str, text: str) -> ParsedFile:
    rows = _rows(doc, path, "")
    if not rows:
        raise InputError("JSON holds no objects (an empty cmdlet output cannot be attributed)", path)
    spans: list[tuple[int, int]] = []
    if isinstance(doc, list):
        start = top_level_array(text)
        spans = element_spans(text, start) if start is not None else []
    elif isinstance(doc, dict) and doc is not rows[0]:  # the {"value": [...], "Count": n} wrapper
        start = array_after_key(text, "value")
        spans = element_spans(text, start) if start is not None else []
    else:
        single = top_level_object(text)
        spans = [single] if single else []
    lines_of = LineIndex(text)
    objects = tuple(_object(row, text, lines_of, spans, i) for i, row in enumerate(rows))
    names = [k for o in objects for k in o.props]
    cmdlet = cmdlets.infer_cmdlet(names) or cmdlets.cmdlet_for_noun(path.rsplit("/", 1)[-1])
    if cmdlet is None:
        raise InputError(
            "cannot tell which Exchange cmdlet produced this JSON (no known property names); "
            "use the collector script (lint exchange --collector)",
            path,
        )
    out = ExchangeCmdletOutput(target=path, cmdlet=cmdlet, path=path, form=FORM_JSON, objects=objects)
    return ParsedFile(path=path, form=FORM_JSON, outputs=[out])


def _rows(doc: Any, path: str, cmdlet: str) -> list[dict[str, Any]]:
    # PowerShell writes one object bare, several as an array; Invoke-RestMethod-style and some
    # remoting paths wrap them as {"value": [...], "Count": n}.
    if isinstance(doc, dict) and isinstance(doc.get("value"), list) and set(doc) <= {"value", "Count"}:
        doc = doc["value"]
    if doc is None:
        return []
    if isinstance(doc, dict):
        doc = [doc]
    where = f" for {cmdlet}" if cmdlet else ""
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise InputError(f"expected an object or a list of objects{where}", path)
    return doc


def _object(
    row: dict[str, Any], text: str, lines_of: LineIndex, spans: list[tuple[int, int]], index: int
) -> ExObject:
    line: int | None = None
    lines: dict[str, int] = {}
    if index < len(spans):
        line, lines = object_lines(text, lines_of, spans[index], [str(k) for k in row])
    return ExObject(props={str(k): _value(str(k), v, lines.get(str(k))) for k, v in row.items()}, line=line)


def _value(name: str, v: Any, line: int | None = None) -> ExValue:
    if v is None:
        return ExValue(None, line=line)
    if isinstance(v, list):
        items: list[str] = []
        truncated = False
        for item in v:
            text, cut = _scalar(name, item)
            truncated = truncated or cut
            if text is not None:
                items.append(text)
        return ExValue(None, items=tuple(items), multi=True, truncated=truncated, line=line)
    if isinstance(v, dict) and isinstance(v.get("value"), list) and set(v) <= {"value", "Count"}:
        return _value(name, v["value"], line)
    text, cut = _scalar(name, v)
    return ExValue(text, truncated=cut, line=line)


def _scalar(name: str, v: Any) -> tuple[str | None, bool]:
    """(display text, truncated?) for one JSON value."""
    if v is None:
        return None, False
    if isinstance(v, bool):
        return bool_text(v), False
    if isinstance(v, int):
        mapped = cmdlets.ENUM_NUMBERS.get(name, {}).get(v)
        return (mapped or str(v)), False
    if isinstance(v, float):
        return repr(v), False
    if isinstance(v, str):
        date = ms_json_date(v)
        if date:
            return date, False
        return v, cmdlets.is_truncation_marker(v)
    if isinstance(v, dict):
        # A nested object written field by field: IPBinding, IPRange, SmtpDomain, ADObjectId…
        if "LowerBound" in v and "UpperBound" in v:
            lo, cut1 = _scalar("", v["LowerBound"])
            hi, cut2 = _scalar("", v["UpperBound"])
            return f"{lo}-{hi}", cut1 or cut2
        if "Port" in v and "Address" in v:
            addr, cut = _scalar("", v["Address"])
            return f"{addr}:{v['Port']}", cut
        for key in _SCALAR_KEYS:
            if key in v and not isinstance(v[key], (dict, list)):
                return _scalar(name, v[key])
        return None, True
    return str(v), True
