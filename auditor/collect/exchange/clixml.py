"""``Export-Clixml`` input (PowerShell's typed XML serialisation), parsed with ElementTree.

Layout: ``<Objs>`` → one ``<Obj>`` per output object → ``<Props>``/``<MS>`` with typed children
(``<S N="Name">``, ``<B>``, ``<I32>``, ``<Nil>``, ``<TS>``, nested ``<Obj N=…>`` that carry a
``<ToString>`` and, for collections, an ``<LST>``), and ``<Ref RefId=…>`` pointing back at an object
already written. Enums are nested objects whose ``<ToString>`` is the name.

Safety: defusedxml is not a project dependency, so this module refuses any DOCTYPE (Export-Clixml
never writes one; entity-expansion bombs need one) and parses the already-decoded text with the
standard library's expat, which does not fetch external resources.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from xml.parsers import expat

from auditor.collect.exchange import cmdlets
from auditor.collect.exchange.parsed import ParsedFile
from auditor.model import InputError
from auditor.observations.exchange import FORM_CLIXML, ExchangeCmdletOutput, ExObject, ExValue
from auditor.observations.exchange_values import timespan_text

NS = "{http://schemas.microsoft.com/powershell/2004/04}"
_DOCTYPE = re.compile(r"<!DOCTYPE|<!ENTITY", re.I)
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_SCALAR_TAGS = {
    "S", "C", "G", "U", "Version", "URI", "XD", "SBK", "SS",
    "By", "SB", "I16", "U16", "I32", "U32", "I64", "U64", "Sg", "Db", "D", "DT",
}  # fmt: skip
_LIST_TAGS = ("LST", "IE", "STK", "QUE")


def parse_clixml(text: str, path: str) -> ParsedFile:
    # The text is already decoded: an encoding declaration (utf-16) would now be wrong for expat.
    text = _DECLARATION.sub("", text, count=1)
    if _DOCTYPE.search(text[: text.find("<Objs") if "<Objs" in text else len(text)]):
        raise InputError(
            "XML with a DOCTYPE/ENTITY declaration refused (Export-Clixml never writes one)", path
        )
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise InputError(f"malformed XML: {exc}".split(": line")[0], path, line) from None
    if root.tag != NS + "Objs":
        raise InputError("XML, but not an Export-Clixml file (no <Objs> root)", path)
    reader = _Reader()
    positions = _positions(text)
    by_cmdlet: dict[str, list[ExObject]] = {}
    order: list[str] = []
    index = 0
    for child in root:
        if child.tag != NS + "Obj":
            continue  # a bare string or number written to the pipeline: not a config object
        props = reader.props(child)
        obj_line, prop_lines = positions[index] if index < len(positions) else (None, {})
        index += 1
        props = {k: replace(v, line=prop_lines.get(k)) for k, v in props.items()}
        cmdlet = _type_cmdlet(child, reader) or cmdlets.infer_cmdlet(props) or ""
        if cmdlet not in by_cmdlet:
            by_cmdlet[cmdlet] = []
            order.append(cmdlet)
        by_cmdlet[cmdlet].append(ExObject(props=props, line=obj_line))
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


def _positions(text: str) -> list[tuple[int | None, dict[str, int]]]:
    """Line of each top-level ``<Obj>`` and of its properties (ElementTree keeps no line numbers,
    so a second, cheap pass with expat — the same parser underneath — records them)."""
    out: list[tuple[int | None, dict[str, int]]] = []
    depth = 0
    parser = expat.ParserCreate(namespace_separator=" ")

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        local = name.rsplit(" ", 1)[-1]
        if depth == 2 and local == "Obj":
            out.append((parser.CurrentLineNumber, {}))
        elif depth == 4 and out and "N" in attrs:
            out[-1][1].setdefault(attrs["N"], parser.CurrentLineNumber)

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(text, True)
    except expat.ExpatError:
        return []  # ElementTree accepted it; positions are only a convenience
    return out


def _unescape(text: str | None) -> str:
    # CLIXML escapes control characters and some others as _xHHHH_.
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text or "")


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
