"""Hostile strings (control characters, markup, quotes, huge lines) in any field: every renderer
still produces a valid document in its format, and no control character reaches a human format raw."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import jsonschema
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.model import Evidence, Finding, Location, Remediation, Severity, Status
from auditor.render import csv as csv_render
from auditor.render import html, junit, markdown, sarif, text
from auditor.render import json as json_render
from auditor.schema import load_report_schema
from auditor.serialize import report_from_dict, report_to_dict
from tests.conftest import SCHEMAS
from tests.unit.render.fixtures import judged

# What must never reach a terminal or a page raw (tab, newline and CR-LF line ends excepted).
_RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

_NASTY = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",))
    | st.sampled_from(["<", "&", '"', "|", "`", "\x00", "\x1b", "\x9b", "\r", "\u202e", "["]),
    max_size=40,
)
_FINDING = st.builds(
    Finding,
    rule_id=st.sampled_from(["PF-RCPT-003", "SMTP-RCPT-002", "LDAP-SYNC-001", "ZZ-NEW-001"]),
    status=st.sampled_from(list(Status)),
    severity=st.sampled_from(list(Severity)),
    target=_NASTY,
    message=_NASTY,
    title=_NASTY,
    evidence=st.lists(
        st.builds(
            Evidence,
            summary=_NASTY,
            location=st.none()
            | st.builds(Location, path=_NASTY.filter(bool), line=st.none() | st.integers(1, 10**6)),
            transcript=st.lists(_NASTY, max_size=3).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
    remediation=st.builds(Remediation, _NASTY),
    note=_NASTY,
)

_SARIF = json.loads((SCHEMAS / "sarif-2.1.0.json").read_text(encoding="utf-8")) if SCHEMAS.exists() else None
_JUNIT = xmlschema.XMLSchema(str(SCHEMAS / "junit.xsd")) if SCHEMAS.exists() else None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _strings(v)]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(findings=st.lists(_FINDING, max_size=5))
def test_renderers_survive_hostile_strings(findings: list[Finding]) -> None:
    report = judged(findings)
    jsonschema.Draft202012Validator(load_report_schema()).validate(report_to_dict(report))
    saved = json_render.render(report)
    assert report_from_dict(json.loads(saved)) == report  # the JSON stays lossless
    assert not _RAW.search(saved)

    log = sarif.to_sarif(report)
    json.loads(json.dumps(log))
    if _SARIF is not None:
        jsonschema.Draft4Validator(_SARIF).validate(log)
    assert not any(_RAW.search(t) for t in _strings(log))  # what a SARIF viewer shows

    xml_text = junit.render(report)
    ET.fromstring(xml_text)
    if _JUNIT is not None:
        _JUNIT.validate(xml_text)

    csv_text = csv_render.render(report)
    rows = list(csv.reader(io.StringIO(csv_text, newline="")))
    assert len(rows) == 1 + len(findings) + 1
    assert not _RAW.search(csv_text.replace("\r\n", "\n"))

    md = markdown.render(report)
    for f in findings:
        assert f.rule_id in md
    assert not _RAW.search(md)
    assert not _RAW.search(text.render(report))

    page = html.render(report)
    assert not _RAW.search(page)
    tags: list[str] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append(tag)

    P().feed(page)
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
