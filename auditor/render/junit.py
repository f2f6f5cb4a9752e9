"""JUnit XML for CI dashboards: one ``<testsuite>`` per rule family, one ``<testcase>`` per finding.

Status mapping (documented in the README's CI section):
- fail → ``<failure type="SEVERITY">`` (message + evidence text)
- inconclusive → ``<error type="inconclusive">``: the check itself could not run to a verdict,
  which is what JUnit's "error" (as opposed to "failure") means; CI shows it distinctly.
- not-applicable and suppressed → ``<skipped>`` (the reason / suppression note as message)
- pass → an empty testcase.
Counts (tests, failures, errors, skipped) are computed from what is written. Validated against the
Jenkins xUnit ``junit-10.xsd`` in tests.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from auditor.model import Finding, Report, Status
from auditor.render._common import RuleLookup, evidence_text, family_of, registry_lookup, title_of

FORMAT = "junit"

# Characters XML 1.0 cannot carry at all (ElementTree would write them and produce broken XML).
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _BAD_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _case(f: Finding, family: str, rules: RuleLookup) -> ET.Element:
    case = ET.Element(
        "testcase",
        name=_clean(f"{f.rule_id} {f.target}"),
        classname=_clean(f"backscatter.{family}.{f.rule_id}"),
    )
    body = "\n".join(
        part
        for part in (
            f"{f.rule_id}: {title_of(f, rules)}",
            f"target: {f.target}",
            f.message,
            evidence_text(f),
            f"How to fix:\n{f.remediation.as_text()}" if f.remediation else "",
            f"Note: {f.note}" if f.note else "",
        )
        if part
    )
    if f.status is Status.FAIL:
        el = ET.SubElement(case, "failure", type=f.severity.value, message=_clean(f.message))
        el.text = _clean(body)
    elif f.status is Status.INCONCLUSIVE:
        el = ET.SubElement(case, "error", type="inconclusive", message=_clean(f.message))
        el.text = _clean(body)
    elif f.status is Status.SUPPRESSED:
        ET.SubElement(case, "skipped", type="suppressed", message=_clean(f"suppressed: {f.note}"))
    elif f.status is Status.NOT_APPLICABLE:
        ET.SubElement(case, "skipped", type="not-applicable", message=_clean(f.message))
    return case


def to_xml(report: Report, rules: RuleLookup = registry_lookup) -> ET.Element:
    families: dict[str, list[Finding]] = {}
    for f in report.findings:
        families.setdefault(family_of(f.rule_id, rules), []).append(f)
    root = ET.Element("testsuites", name=_clean(f"backscatter-audit {report.run.command}"))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for family in sorted(families):
        members = families[family]
        counts = {
            "tests": len(members),
            "failures": sum(f.status is Status.FAIL for f in members),
            "errors": sum(f.status is Status.INCONCLUSIVE for f in members),
            "skipped": sum(f.status in (Status.SUPPRESSED, Status.NOT_APPLICABLE) for f in members),
        }
        attrs = {"name": family, **{k: str(v) for k, v in counts.items()}, "timestamp": report.run.started}
        suite = ET.SubElement(root, "testsuite", attrs)
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("command", report.run.command),
            ("tool_version", report.run.tool_version),
            ("scope", ", ".join(report.run.scope)),
            ("partial", "true" if report.run.partial else "false"),
        ):
            ET.SubElement(props, "property", name=name, value=_clean(value))
        for f in members:
            suite.append(_case(f, family, rules))
        for k in totals:
            totals[k] += counts[k]
    for k, v in totals.items():
        root.set(k, str(v))
    return root


def render_with(report: Report, rules: RuleLookup = registry_lookup) -> str:
    root = to_xml(report, rules)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render(report: Report) -> str:
    return render_with(report, registry_lookup)
