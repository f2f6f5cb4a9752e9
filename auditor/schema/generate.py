"""Generate the JSON Schema of the report document from the model's dataclasses.

``python -m auditor.schema.generate > auditor/schema/report-2.schema.json`` rewrites the committed
file; a test checks that the committed file equals what this module generates, so the schema can
never drift from the code that writes the documents.

The mapping follows :func:`auditor.schema.codec.to_jsonable`: a dataclass is an object with one
property per field (required when the field has no default; no other properties), an enum is the
set of its values, a tuple is an array, a dict an object, ``X | None`` allows null. Observations
are checked by their ``kind``: a known kind must match its class; an unknown kind (a newer build's)
only needs ``kind`` and ``target``, as the reader skips it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import types
import typing
from enum import Enum
from typing import Any, Union, get_args, get_origin, get_type_hints

from auditor.model import (
    Assessment,
    ControlResult,
    Finding,
    Location,
    Observation,
    PlanItem,
    RuleInfo,
    RunInfo,
)
from auditor.observations import KINDS
from auditor.schema.codec import SCHEMA_ID

# Constraints a type cannot say (file lines and columns count from 1).
_EXTRA: dict[tuple[type, str], dict[str, Any]] = {
    (Location, "line"): {"minimum": 1},
    (Location, "column"): {"minimum": 1},
    (Location, "end_line"): {"minimum": 1},
}


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self.names: dict[type, str] = {}

    def name(self, cls: type) -> str:
        if cls not in self.names:
            name = cls.__name__
            if name in self.names.values():  # two classes of one name: qualify the later one
                name = f"{cls.__module__}.{cls.__qualname__}"
            self.names[cls] = name
        return self.names[cls]

    def ref(self, cls: type) -> dict[str, Any]:
        name = self.name(cls)
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: recursive types terminate
            self.defs[name] = self.dataclass(cls) if dataclasses.is_dataclass(cls) else self.enum(cls)
        return {"$ref": f"#/$defs/{name}"}

    def enum(self, cls: type) -> dict[str, Any]:
        assert issubclass(cls, Enum)
        return {"enum": [m.value for m in cls]}

    def dataclass(self, cls: type) -> dict[str, Any]:
        hints = get_type_hints(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        if issubclass(cls, Observation):
            props["kind"] = {"const": cls.kind}
            required.append("kind")
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            props[f.name] = {**self.type(hints[f.name]), **_EXTRA.get((cls, f.name), {})}
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        out: dict[str, Any] = {}
        doc = inspect.getdoc(cls)
        # Report classes are described by their docstrings; observation classes belong to their
        # collectors, whose wording would churn this file.
        if doc and cls.__doc__ and cls.__module__ == "auditor.model" and not issubclass(cls, Observation):
            out["description"] = doc.split("\n\n", 1)[0].replace("\n", " ")
        out |= {"type": "object", "required": required, "additionalProperties": False, "properties": props}
        return out

    def type(self, tp: Any) -> dict[str, Any]:
        if tp is Any:
            return {}
        if tp is type(None):
            return {"type": "null"}
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            return {"anyOf": [self.type(a) for a in get_args(tp)]}
        if origin is typing.Literal:
            return {"enum": list(get_args(tp))}
        if origin is tuple:
            args = get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.type(args[0])}
            n = len(args)
            return {
                "type": "array",
                "prefixItems": [self.type(a) for a in args],
                "minItems": n,
                "maxItems": n,
            }
        if origin in (list, set, frozenset):
            return {"type": "array", "items": self.type(get_args(tp)[0])}
        if origin is dict:
            kt, vt = get_args(tp)
            out: dict[str, Any] = {"type": "object", "additionalProperties": self.type(vt)}
            if isinstance(kt, type) and issubclass(kt, Enum):
                out["propertyNames"] = self.enum(kt)
            return out
        if isinstance(tp, type):
            if dataclasses.is_dataclass(tp) or issubclass(tp, Enum):
                return self.ref(tp)
            simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
            if tp in simple:
                return {"type": simple[tp]}
        raise TypeError(f"no JSON Schema for {tp!r}")


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``backscatter-audit/2`` report document."""
    b = _Builder()

    def array(cls: type) -> dict[str, Any]:
        return {"type": "array", "items": b.ref(cls)}

    props: dict[str, Any] = {
        "schema": {"const": SCHEMA_ID},
        "run": b.ref(RunInfo),
        "assessment": b.ref(Assessment),
        "plan": array(PlanItem),
        "compliance": array(ControlResult),
        "findings": array(Finding),
        "rules": array(RuleInfo),
        "observations": {"type": "array", "items": {"$ref": "#/$defs/observation"}},
    }
    known = [
        {"if": {"required": ["kind"], "properties": {"kind": {"const": k}}}, "then": b.ref(KINDS[k])}
        for k in sorted(KINDS)
    ]
    b.defs["observation"] = {
        "description": "One observation; its 'kind' names its type (auditor.observations.KINDS).",
        "type": "object",
        "required": ["kind", "target"],
        "properties": {"kind": {"type": "string", "minLength": 1}, "target": {"type": "string"}},
        "allOf": known,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:backscatter-audit:schema:report-2",
        "title": "Backscatter Auditor report, version 2",
        "description": "The JSON report written by backscatter-audit --format json. It is the whole "
        "truth (findings, observations, assessment, plan, compliance, rule entries); every other "
        "format is a view of it. Generated from the model by auditor/schema/generate.py.",
        "type": "object",
        "required": list(props),
        "additionalProperties": False,
        "properties": props,
        "$defs": dict(sorted(b.defs.items())),
    }


def schema_text() -> str:
    return json.dumps(report_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())
