"""Helpers every renderer shares: rule metadata from the report, locations, visible control characters.

Renderers work on a report alone: ``report`` re-renders a saved JSON file, possibly written by a
build whose rule registry differs, so rule metadata comes from the report's own ``rules`` entries
(the judge writes one for every rule it names) and never from the registry.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import quote

from auditor.model import Finding, Report, ReportVerdict

# CSS class of each verdict (HTML) — presentation only; the verdict itself is the assessment's.
VERDICT_CSS = {
    ReportVerdict.FAIL: "fail",
    ReportVerdict.INCONCLUSIVE: "inconclusive",
    ReportVerdict.PASS: "pass",
    ReportVerdict.NOT_ASSESSED: "none",
}

# What a hostile server can put in a reply to drive a terminal or disguise text: C0 controls but
# tab and newline, DEL, C1 controls (0x9b is a one-byte CSI), bidirectional overrides and isolates,
# zero-width space, line/paragraph separators, BOM. XML 1.0 forbids U+FFFE/U+FFFF as well.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]"
)


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(text: str) -> str:
    """``text`` with every control character written as a visible escape (ESC → ``\\x1b``);
    newlines and tabs stay."""
    if text.isascii() and text.isprintable():  # the common case, checked in C
        return text
    return _INVISIBLE.sub(_escape, text)


def json_safe(text: str) -> str:
    """JSON text with the characters of :func:`visible` that JSON leaves raw written as ``\\u``
    escapes: the document decodes to the same strings (they only occur inside strings)."""
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def title_of(report: Report, finding: Finding) -> str:
    info = report.rule(finding.rule_id)
    return (info.title if info else "") or finding.title or finding.rule_id


def family_of(report: Report, rule_id: str) -> str:
    info = report.rule(rule_id)
    return (info.family if info else "") or "other"


def site_of(report: Report) -> str:
    """What was audited, in words: the scope, else the inputs, else the command."""
    if report.run.scope:
        return ", ".join(report.run.scope)
    if report.run.inputs:
        return ", ".join(report.run.inputs)
    return report.run.command


def artifact_uri(path: str) -> str:
    """A URI for a file path: relative paths stay relative (SARIF viewers resolve them against the
    checkout), absolute ones become ``file://`` URIs."""
    norm = posixpath.normpath(path.replace("\\", "/"))
    if norm.startswith("/"):
        return "file://" + quote(norm)
    return quote(norm)


def evidence_text(finding: Finding) -> str:
    """All evidence of a finding as plain text (JUnit bodies, CSV-free views)."""
    out: list[str] = []
    for ev in finding.evidence:
        head = ev.summary
        if ev.location is not None:
            head = f"{ev.location}: {head}" if head else str(ev.location)
        out.append(head)
        out.extend("  " + line for line in ev.transcript)
    return "\n".join(out)
