"""JSON round trip of the model: the report file is the source of truth, so nothing may get lost.

Dataclasses are written field by field; observations carry their ``kind`` so that a saved report
(or a saved set of observations) can be loaded and judged again offline. Loading walks the type
hints, so a new observation class needs no serialization code of its own.

This module is plain data ↔ JSON and judges nothing, so renderers may use it; reading a file of
an older schema (which needs the judge) is :func:`auditor.serialize.load_report`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from auditor.model import (
    Assessment,
    ControlResult,
    Finding,
    InputError,
    Observation,
    PlanItem,
    Report,
    RuleInfo,
    RunInfo,
)
from auditor.observations import KINDS
from auditor.safeio import load_json

SCHEMA_ID = "backscatter-audit/2"
SCHEMA_V1 = "backscatter-audit/1"

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for a model value (dataclasses, enums, tuples, dicts)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Observation):
        out: dict[str, Any] = {"kind": type(value).kind}
        for f in dataclasses.fields(value):
            out[f.name] = to_jsonable(getattr(value, f.name))
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_jsonable(v) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=json.dumps)
        return items
    if isinstance(value, dict):
        return {(k.value if isinstance(k, Enum) else str(k)): to_jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def from_jsonable(tp: Any, data: Any) -> Any:
    """Build a value of type ``tp`` from JSON data written by :func:`to_jsonable`."""
    if tp is Any:
        return data
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if data is None:
            return None
        for arg in (a for a in get_args(tp) if a is not type(None)):
            try:
                return from_jsonable(arg, data)
            except (TypeError, ValueError, KeyError):
                continue
        raise ValueError(f"no variant of {tp} fits {data!r}")
    if origin is typing.Literal:
        if data not in get_args(tp):
            raise ValueError(f"{data!r} not in {get_args(tp)}")
        return data
    if origin is tuple:
        targs = get_args(tp)
        if len(targs) == 2 and targs[1] is Ellipsis:
            return tuple(from_jsonable(targs[0], v) for v in _as_list(data))
        return tuple(from_jsonable(a, v) for a, v in zip(targs, _as_list(data), strict=True))
    if origin in (list, set, frozenset):
        assert origin is not None
        (arg,) = get_args(tp)
        return origin(from_jsonable(arg, v) for v in _as_list(data))
    if origin is dict:
        kt, vt = get_args(tp)
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {data!r}")
        return {from_jsonable(kt, k): from_jsonable(vt, v) for k, v in data.items()}
    if isinstance(tp, type):
        if issubclass(tp, Observation) and isinstance(data, dict) and "kind" in data:
            cls = KINDS.get(data["kind"])
            if cls is None:
                raise ValueError(f"unknown observation kind {data['kind']!r}")
            tp = cls
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if not isinstance(data, dict):
                raise TypeError(f"expected an object for {tp.__name__}, got {type(data).__name__}")
            hints = _hints(tp)
            kwargs = {}
            for f in dataclasses.fields(tp):
                if not f.init:
                    continue
                if f.name in data:
                    kwargs[f.name] = from_jsonable(hints[f.name], data[f.name])
            return tp(**kwargs)
        if issubclass(tp, Enum):
            return tp(data)
        if tp is float and isinstance(data, int):
            return float(data)
        if tp in (str, int, float, bool):
            if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
                raise TypeError(f"expected {tp.__name__}, got {data!r}")
            return data
    return data


def _as_list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TypeError(f"expected a list, got {type(data).__name__}")
    return data


def report_to_dict(report: Report) -> dict[str, Any]:
    """The versioned JSON document (``"schema": "backscatter-audit/2"``)."""
    return {
        "schema": SCHEMA_ID,
        "run": to_jsonable(report.run),
        "assessment": to_jsonable(report.assessment),
        "plan": [to_jsonable(p) for p in report.plan],
        "compliance": [to_jsonable(c) for c in report.compliance],
        "findings": [to_jsonable(f) for f in report.findings],
        "rules": [to_jsonable(r) for r in report.rules],
        "observations": [to_jsonable(o) for o in report.observations],
    }


def report_to_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"


def _finding_v1(f: Any) -> Any:
    """Reports written before fixes became data carry ``remediation`` as one string."""
    if isinstance(f, dict) and isinstance(f.get("remediation"), str):
        return {**f, "remediation": {"text": f["remediation"], "commands": []}}
    return f


def decode_parts(
    doc: dict[str, Any], path: str
) -> tuple[RunInfo, tuple[Finding, ...], tuple[Observation, ...]]:
    """Run, findings and observations of a report document of either schema version."""
    try:
        run = from_jsonable(RunInfo, doc["run"])
        findings = tuple(from_jsonable(Finding, _finding_v1(f)) for f in _as_list(doc.get("findings", [])))
        observations = []
        for o in _as_list(doc.get("observations", [])):
            if isinstance(o, dict) and o.get("kind") not in KINDS:
                continue  # an observation kind this build does not know: keep the findings usable
            observations.append(from_jsonable(Observation, o))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed report: {exc}", path) from None
    except RecursionError:
        raise InputError("malformed report: nested too deeply", path) from None
    return run, findings, tuple(observations)


def report_from_dict(doc: Any, path: str = "<report>") -> Report:
    """A ``backscatter-audit/2`` document as it was saved: nothing is judged again."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_ID:
        raise InputError(f"not a {SCHEMA_ID} report (missing or different 'schema')", path)
    run, findings, observations = decode_parts(doc, path)
    try:
        return Report(
            run=run,
            findings=findings,
            observations=observations,
            assessment=from_jsonable(Assessment, doc["assessment"]),
            plan=tuple(from_jsonable(PlanItem, p) for p in _as_list(doc["plan"])),
            compliance=tuple(from_jsonable(ControlResult, c) for c in _as_list(doc["compliance"])),
            rules=tuple(from_jsonable(RuleInfo, r) for r in _as_list(doc.get("rules", []))),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed report: {exc}", path) from None
    except RecursionError:
        raise InputError("malformed report: nested too deeply", path) from None


def read_json(path: str) -> Any:
    """The JSON document in ``path``; any problem is an :class:`InputError` naming the file.

    Regular files only, size-capped, integers past Python's digit limit and unpaired surrogates
    refused with file and line (:mod:`auditor.safeio`): a saved report is untrusted input too.
    """
    try:
        return load_json(path)
    except RecursionError:
        raise InputError("not a report: nested too deeply", path) from None


__all__ = [
    "SCHEMA_ID",
    "SCHEMA_V1",
    "decode_parts",
    "from_jsonable",
    "read_json",
    "report_from_dict",
    "report_to_dict",
    "report_to_json",
    "to_jsonable",
]
