"""JUnit XML for CI dashboards: one ``<testsuite>`` per rule family, one ``<testcase>`` per finding.

Status mapping (documented in the README's CI section):
- fail → ``<failure type="SEVERITY">`` (message + evidence text)
- inconclusive → ``<error type="inconclusive">``: the check itself could not run to a verdict,
  which is what JUnit's "error" (as opposed to "failure") means; CI shows it distinctly.
- not-applicable and suppressed → ``<skipped>`` (the reason / suppression note as message)
- pass → an empty testcase.
Locations: the schema CI validates against (Jenkins xUnit ``junit-10.xsd``) allows neither ``file`` nor
``line`` on a testcase, nor properties inside one (pytest's default xunit2 family leaves them out
for the same reason), so a testcase's file and line are a property of its suite —
``<property name="location:CASE NAME" value="path:line"/>`` — and the first line of its body.
Counts (tests, failures, errors, skipped) are computed from what is written. Each suite's properties
carry the report's assessment (verdict, fail_on, exit_code), so CI shows the same headline as the
exit code. Validated against the Jenkins xUnit ``junit-10.xsd`` in tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from auditor.model import Finding, Report, Status
from auditor.render._common import evidence_text, family_of, title_of, visible
from auditor.render._options import RenderOptions

FORMAT = "junit"


def _clean(text: str) -> str:
    # Visible escapes also cover what XML 1.0 cannot carry at all (ElementTree would write it raw).
    return visible(text)


def _case(report: Report, f: Finding, family: str) -> ET.Element:
    case = ET.Element(
        "testcase",
        name=_clean(f"{f.rule_id} {f.target}"),
        classname=_clean(f"backscatter.{family}.{f.rule_id}"),
    )
    body = "\n".join(
        part
        for part in (
            f"{f.rule_id}: {title_of(report, f)}",
            f"where: {f.location}" if f.location else "",
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


def to_xml(report: Report) -> ET.Element:
    a = report.assessment
    families: dict[str, list[Finding]] = {}
    for f in report.findings:
        families.setdefault(family_of(report, f.rule_id), []).append(f)
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
        attrs = {
            "name": _clean(family),
            **{k: str(v) for k, v in counts.items()},
            "timestamp": _clean(report.run.started),
        }
        suite = ET.SubElement(root, "testsuite", attrs)
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("command", report.run.command),
            ("tool_version", report.run.tool_version),
            ("scope", ", ".join(report.run.scope)),
            ("partial", "true" if report.run.partial else "false"),
            ("verdict", a.verdict.value),
            ("fail_on", a.fail_on.value),
            ("exit_code", str(a.exit_code)),
        ):
            ET.SubElement(props, "property", name=name, value=_clean(value))
        for f in members:
            if f.location is not None:
                ET.SubElement(
                    props,
                    "property",
                    name=_clean(f"location:{f.rule_id} {f.target}"),
                    value=_clean(str(f.location)),
                )
        for f in members:
            suite.append(_case(report, f, family))
        for k in totals:
            totals[k] += counts[k]
    for k, v in totals.items():
        root.set(k, str(v))
    return root


def render(report: Report, options: RenderOptions | None = None) -> str:
    root = to_xml(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
