"""``Export-Clixml`` input (PowerShell's typed XML serialisation), parsed with ElementTree.

Layout: ``<Objs>`` → one ``<Obj>`` per output object → ``<Props>``/``<MS>`` with typed children
(``<S N="Name">``, ``<B>``, ``<I32>``, ``<Nil>``, ``<TS>``, nested ``<Obj N=…>`` that carry a
``<ToString>`` and, for collections, an ``<LST>``), and ``<Ref RefId=…>`` pointing back at an object
already written. Enums are nested objects whose ``<ToString>`` is the name.

Safety: defusedxml's parser refuses any DOCTYPE, entity declaration or external reference wherever
it appears (Export-Clixml never writes one; entity-expansion bombs need one). The document is read
as a stream: one top-level ``<Obj>`` is built as a tree at a time and dropped once converted, so
memory follows the objects kept, not the XML's size; nesting is bounded (no recursion limit hit).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import defusedxml
from defusedxml.ElementTree import DefusedXMLParser

from auditor.collect.exchange import cmdlets
from auditor.collect.exchange.parsed import ParsedFile
from auditor.model import InputError
from auditor.observations.exchange import FORM_CLIXML, ExchangeCmdletOutput, ExObject, ExValue
from auditor.observations.exchange_values import timespan_text

NS = "{http://schemas.microsoft.com/powershell/2004/04}"
MAX_DEPTH = 64  # element nesting; Export-Clixml's -Depth defaults to 2, the deepest real export ~12
_FEED = 1 << 20  # characters handed to the parser at a time
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_SCALAR_TAGS = {
    "S", "C", "G", "U", "Version", "URI", "XD", "SBK", "SS",
    "By", "SB", "I16", "U16", "I32", "U32", "I64", "U64", "Sg", "Db", "D", "DT",
}  # fmt: skip
_LIST_TAGS = ("LST", "IE", "STK", "QUE")


class _LoneSurrogate(ValueError):
    """An ``_xD800_``-style escape that is half of a UTF-16 pair: no Unicode text, no report."""


def parse_clixml(text: str, path: str) -> ParsedFile:
    # The text is already decoded: an encoding declaration (utf-16) would now be wrong for expat.
    text = _DECLARATION.sub("", text, count=1)
    reader = _Reader()
    by_cmdlet: dict[str, list[ExObject]] = {}
    order: list[str] = []

    def add(child: ET.Element, obj_line: int, prop_lines: dict[str, int]) -> None:
        if child.tag != NS + "Obj":
            return  # a bare string or number written to the pipeline: not a config object
        try:
            props = reader.props(child)
        except _LoneSurrogate as exc:
            raise InputError(
                f"text with an unpaired UTF-16 surrogate ({exc}): not Unicode", path, obj_line
            ) from None
        props = {k: replace(v, line=prop_lines.get(k)) for k, v in props.items()}
        cmdlet = _type_cmdlet(child, reader) or cmdlets.infer_cmdlet(props) or ""
        if cmdlet not in by_cmdlet:
            by_cmdlet[cmdlet] = []
            order.append(cmdlet)
        by_cmdlet[cmdlet].append(ExObject(props=props, line=obj_line))

    _stream(text, path, add)
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    if not order:
        # An empty export is legitimate (Get-EdgeSubscription with no Edge), but only the file
        # name can say which cmdlet it came from.
        hinted = cmdlets.cmdlet_in(name) or cmdlets.cmdlet_for_noun(name)
        if hinted is None:
            raise InputError(
                "Export-Clixml file with no objects; name the file after the cmdlet "
                "(e.g. Get-EdgeSubscription.xml) so the empty result can be attributed",
                path,
            )
        order.append(hinted)
        by_cmdlet[hinted] = []
    if "" in by_cmdlet:
        hinted = cmdlets.cmdlet_in(name) or cmdlets.cmdlet_for_noun(name)
        if hinted is None:
            raise InputError("cannot tell which Exchange cmdlet produced these objects", path)
        by_cmdlet.setdefault(hinted, []).extend(by_cmdlet.pop(""))
        order = [c for c in order if c != ""] + ([hinted] if hinted not in order else [])
    outputs = [
        ExchangeCmdletOutput(target=path, cmdlet=c, path=path, form=FORM_CLIXML, objects=tuple(by_cmdlet[c]))
        for c in order
    ]
    return ParsedFile(path=path, form=FORM_CLIXML, outputs=outputs)


class _Objects:
    """ElementTree parser target: below ``<Objs>``, builds one top-level element at a time and hands
    it, with the lines of the element and of its properties, to ``emit`` when it ends."""

    def __init__(
        self, path: str, line: Callable[[], int], emit: Callable[[ET.Element, int, dict[str, int]], None]
    ) -> None:
        self.path, self.line, self.emit = path, line, emit
        self.depth = 0
        self.builder: ET.TreeBuilder | None = None
        self.obj_line = 0
        self.prop_lines: dict[str, int] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InputError(f"XML nested deeper than {MAX_DEPTH} elements", self.path, self.line())
        if self.depth == 1:
            if tag != NS + "Objs":
                raise InputError("XML, but not an Export-Clixml file (no <Objs> root)", self.path)
            return
        if self.depth == 2:
            self.builder = ET.TreeBuilder()
            self.obj_line, self.prop_lines = self.line(), {}
        elif self.depth == 4 and "N" in attrs:  # Objs > Obj > Props|MS > property
            self.prop_lines.setdefault(attrs["N"], self.line())
        assert self.builder is not None
        self.builder.start(tag, attrs)

    def end(self, tag: str) -> None:
        if self.builder is not None:
            self.builder.end(tag)
            if self.depth == 2:
                self.emit(self.builder.close(), self.obj_line, self.prop_lines)
                self.builder = None
        self.depth -= 1

    def data(self, text: str) -> None:
        if self.builder is not None:
            self.builder.data(text)

    def close(self) -> None:
        return None


def _stream(text: str, path: str, emit: Callable[[ET.Element, int, dict[str, int]], None]) -> None:
    parser: Any = None
    target = _Objects(path, lambda: int(parser.parser.CurrentLineNumber), emit)
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        for i in range(0, len(text), _FEED):
            parser.feed(text[i : i + _FEED])
        parser.close()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise InputError(f"malformed XML: {exc}".split(": line")[0], path, line) from None
    except defusedxml.DefusedXmlException:
        raise InputError(
            "XML with a DOCTYPE/ENTITY declaration refused (Export-Clixml never writes one)",
            path,
            int(parser.parser.CurrentLineNumber),
        ) from None


def _unescape(text: str | None) -> str:
    # CLIXML escapes control characters and some others as _xHHHH_; a character beyond the BMP as
    # its two UTF-16 halves, each escaped: pair them, and refuse a half on its own.
    if not text or "_x" not in text:
        return text or ""
    out = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    try:
        return out.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        bad = next(c for c in out if 0xD800 <= ord(c) <= 0xDFFF)
        raise _LoneSurrogate(f"_x{ord(bad):04X}_") from None


class _Reader:
    """Converts elements to values, remembering RefIds so ``<Ref>`` / ``<TNRef>`` resolve."""

    def __init__(self) -> None:
        self.refs: dict[str, ExValue] = {}
        self.type_names: dict[str, list[str]] = {}

    def types(self, obj: ET.Element) -> list[str]:
        tn = obj.find(NS + "TN")
        if tn is not None:
            names = [t.text or "" for t in tn.findall(NS + "T")]
            if tn.get("RefId") is not None:
                self.type_names[tn.get("RefId", "")] = names
            return names
        ref = obj.find(NS + "TNRef")
        if ref is not None:
            return self.type_names.get(ref.get("RefId", ""), [])
        return []

    def props(self, obj: ET.Element) -> dict[str, ExValue]:
        self.types(obj)
        out: dict[str, ExValue] = {}
        for section in (NS + "MS", NS + "Props"):
            holder = obj.find(section)
            if holder is None:
                continue
            for el in holder:
                name = el.get("N")
                if name is None or el.tag == NS + "BA":
                    continue
                out[name] = self.value(el)
        return out

    def value(self, el: ET.Element) -> ExValue:
        tag = el.tag.removeprefix(NS)
        if tag == "Nil":
            return ExValue(None)
        if tag == "B":
            return ExValue("True" if (el.text or "").strip().lower() == "true" else "False")
        if tag == "TS":
            return ExValue(timespan_text(el.text or ""))
        if tag in _SCALAR_TAGS:
            text = _unescape(el.text)
            return ExValue(text, truncated=cmdlets.is_truncation_marker(text))
        if tag == "Ref":
            return self.refs.get(el.get("RefId", ""), ExValue(None, truncated=True))
        if tag == "Obj":
            val = self._obj(el)
            if el.get("RefId") is not None:
                self.refs[el.get("RefId", "")] = val
            return val
        return ExValue(_unescape(el.text), truncated=True)

    def _obj(self, el: ET.Element) -> ExValue:
        self.types(el)
        for list_tag in _LIST_TAGS:
            lst = el.find(NS + list_tag)
            if lst is not None:
                items: list[str] = []
                cut = False
                for item in lst:
                    v = self.value(item)
                    cut = cut or v.truncated
                    if v.multi:
                        items.extend(v.items)
                    elif v.value is not None:
                        items.append(v.value)
                return ExValue(None, items=tuple(items), multi=True, truncated=cut)
        if el.find(NS + "DCT") is not None:
            return ExValue(None, truncated=True)  # a hashtable: no rule reads one; keep it opaque
        ts = el.find(NS + "ToString")
        if ts is not None:
            text = _unescape(ts.text)
            return ExValue(text, truncated=cmdlets.is_truncation_marker(text))
        for tag in _SCALAR_TAGS | {"B"}:
            inner = el.find(NS + tag)
            if inner is not None and inner.get("N") is None:
                return self.value(inner)
        return ExValue(None, truncated=True)


def _type_cmdlet(obj: ET.Element, reader: _Reader) -> str | None:
    for name in reader.types(obj):
        short = name.removeprefix("Deserialized.").rsplit(".", 1)[-1]
        if short in cmdlets.TYPE_NAMES:
            return cmdlets.TYPE_NAMES[short]
    return None
