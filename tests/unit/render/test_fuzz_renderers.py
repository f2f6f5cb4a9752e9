"""Hostile strings (control characters, markup, quotes, huge lines) in any field: every renderer
still produces a valid document in its format."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import jsonschema
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.model import Evidence, Finding, Location, Remediation, Report, Severity, Status
from auditor.render import csv as csv_render
from auditor.render import html, junit, markdown, sarif
from auditor.render._common import no_rules
from auditor.schema import load_report_schema
from auditor.serialize import report_to_dict
from tests.conftest import SCHEMAS
from tests.unit.render.fixtures import RUN

_NASTY = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",))
    | st.sampled_from(["<", "&", '"', "|", "`", "\x00", "\x1b"]),
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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(findings=st.lists(_FINDING, max_size=5))
def test_renderers_survive_hostile_strings(findings: list[Finding]) -> None:
    report = Report(RUN, tuple(findings))
    jsonschema.Draft202012Validator(load_report_schema()).validate(report_to_dict(report))

    log = sarif.to_sarif(report, no_rules)
    json.loads(json.dumps(log))
    if _SARIF is not None:
        jsonschema.Draft4Validator(_SARIF).validate(log)

    xml_text = junit.render_with(report, no_rules)
    ET.fromstring(xml_text)
    if _JUNIT is not None:
        _JUNIT.validate(xml_text)

    rows = list(csv.reader(io.StringIO(csv_render.render_with(report, no_rules), newline="")))
    assert len(rows) == 1 + len(findings)

    md = markdown.render_with(report, no_rules)
    for f in findings:
        assert f.rule_id in md

    page = html.render_with(report, no_rules)
    tags: list[str] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append(tag)

    P().feed(page)
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
