"""CSV, Markdown and HTML: structure, escaping, every rule id named literally, self-contained HTML."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

from auditor.model import Finding, Remediation, Report, Severity, Status
from auditor.render import csv as csv_render
from auditor.render import html, markdown
from auditor.render.html import SECTION_HEADINGS, duration, human_time
from tests.unit.render.fixtures import golden_report, judged


def test_csv_columns_rows_and_formula_guard() -> None:
    evil = Finding("SMTP-RCPT-001", Status.FAIL, Severity.CRITICAL, "=cmd|' /C calc'!A0", "@SUM(1)")
    report = judged((*golden_report().findings, evil))
    rows = list(csv.reader(io.StringIO(csv_render.render(report), newline="")))
    assert rows[0] == list(csv_render.COLUMNS)
    assert len(rows) == 1 + len(report.findings) + 1  # header, findings, the assessment
    by_rule = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    last = by_rule[csv_render.ASSESSMENT]
    assert (last["status"], last["severity"], last["title"]) == ("fail", "low", "exit code 1")
    assert by_rule["PF-RCPT-003"]["file"] == "etc/postfix-backup/main.cf"
    assert by_rule["PF-RCPT-003"]["line"] == "12"
    assert by_rule["SMTP-RCPT-002"]["line"] == ""
    assert by_rule["DNS-NULLMX-001"]["remediation"].count("\n") == 1  # multi-line cell survives
    assert by_rule["SMTP-RCPT-001"]["target"].startswith("'=")
    assert by_rule["SMTP-RCPT-001"]["message"] == "'@SUM(1)"


def test_markdown_names_every_rule_and_escapes_cells() -> None:
    text = markdown.render(golden_report())
    for f in golden_report().findings:
        assert f.rule_id in text
    assert "**Verdict: FAIL**" in text
    assert '\\<web & "mail"\\> \\| forged' in text  # no raw HTML, no broken table cell
    # each compliance row keeps exactly 4 cells
    rows = [line for line in text.splitlines() if line.startswith("| RFC") or line.startswith("| Operator")]
    assert rows and all(line.replace("\\|", "").count("|") == 5 for line in rows)
    assert "relay_recipient_maps" in text  # intraword underscores stay readable
    assert "PARTIAL REPORT" not in text
    assert "PARTIAL REPORT" in markdown.render(golden_report(partial=True))


def test_markdown_code_blocks_outlast_backticks_in_evidence() -> None:
    f = Finding(
        "PF-RCPT-001", Status.FAIL, Severity.HIGH, "t", "m", remediation=Remediation("```\nrm -rf /\n```")
    )
    text = markdown.render(judged((f,)))
    assert "````\n```\nrm -rf /\n```\n````" in text


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.h2: list[str] = []
        self.urls: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_h2 = tag == "h2"
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "data", "action")]

    def handle_endtag(self, tag: str) -> None:
        self._in_h2 = False if tag == "h2" else self._in_h2

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h2:
            self.h2.append(data.strip())


def _page(report: Report) -> tuple[str, _Page]:
    out = html.render(report)
    p = _Page()
    p.feed(out)
    p.close()
    return out, p


def test_html_sections_rule_ids_and_self_contained() -> None:
    out, page = _page(golden_report())
    assert page.h2 == list(SECTION_HEADINGS)
    text = " ".join(page.text)
    for f in golden_report().findings:
        assert f.rule_id in text
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    # no external resources at all: the only links are the table of contents' in-page anchors
    assert page.urls and all(u.startswith("#") for u in page.urls)
    assert all(f'id="{u[1:]}"' in out for u in page.urls)
    assert "http://" not in out.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in out
    assert "svg" in page.tags and "@media print" in out
    assert 'class="verdict verdict-fail"' in out
    assert "PARTIAL REPORT" not in out


def test_html_escapes_report_strings() -> None:
    f = Finding("SMTP-RCPT-001", Status.FAIL, Severity.CRITICAL, "<script>alert(1)</script>", "a & b")
    out, page = _page(judged((f,)))
    assert "script" not in page.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<script>alert(1)</script>" in " ".join(page.text)


def test_html_partial_banner_and_verdicts() -> None:
    out, _ = _page(golden_report(partial=True))
    assert "PARTIAL REPORT" in out
    only_pass = judged((Finding("SMTP-PM-001", Status.PASS, Severity.MEDIUM, "example.com", "ok"),))
    assert 'verdict-pass"' in html.render(only_pass)
    only_inc = judged((Finding("SMTP-PM-001", Status.INCONCLUSIVE, Severity.MEDIUM, "x", "421"),))
    assert 'verdict-inconclusive"' in html.render(only_inc)
    empty = html.render(judged(()))
    assert "NOT ASSESSED" in empty and "No findings." in empty


def test_html_headline_honours_fail_on() -> None:
    """Only low and info findings fail: at --fail-on high the headline is no FAIL, as the exit code."""
    low = [f for f in golden_report().findings if f.severity in (Severity.LOW, Severity.INFO)]
    low.append(Finding("SMTP-PM-001", Status.PASS, Severity.MEDIUM, "example.com", "ok"))
    report = judged(low, fail_on=Severity.HIGH)
    assert report.assessment.exit_code == 0
    out = html.render(report)
    assert 'verdict-pass"' in out and 'verdict-fail"' not in out
    assert "exit code 0" in out and "--fail-on high" in out
    assert "2 findings below high failed." in out
    assert 'verdict-fail"' in html.render(judged(low, fail_on=Severity.LOW))


def test_time_helpers() -> None:
    assert human_time("2026-11-26T09:00:00+00:00") == "26 Nov 2026, 09:00 UTC"
    assert human_time("yesterday") == "yesterday"
    assert duration("2026-11-26T09:00:00+00:00", "2026-11-26T09:02:05+00:00") == "2 min 5 s"
    assert duration("2026-11-26T09:00:00+00:00", "garbage") == ""


def test_control_sequences_from_a_hostile_server_are_visible_escapes_in_every_format() -> None:
    """An SMTP reply carrying ESC sequences (clear screen, retitle the terminal, CSI as one C1
    byte, a right-to-left override) reaches no human-readable format raw."""
    from auditor.render import json as json_render
    from auditor.render import junit, sarif, text

    hostile = "550 \x1b[2J\x1b]0;owned\x07 user \x9b31m unknown \u202egnp.exe"
    f = Finding(
        "SMTP-RCPT-001",
        Status.FAIL,
        Severity.HIGH,
        "mx[192.0.2.1]\x1b[0m",
        hostile,
        remediation=Remediation(hostile),
    )
    report = judged((f,))
    outputs = {
        "text": text.render(report),
        "markdown": markdown.render(report),
        "csv": csv_render.render(report),
        "html": html.render(report),
        "junit": junit.render(report),
        "sarif": sarif.render_with(report),
    }
    for fmt, out in outputs.items():
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in out, (fmt, raw)
        assert "\\x1b[2J" in out.replace("\\\\", "\\"), fmt  # SARIF is JSON: its backslash is doubled
        assert "\\u202e" in out.replace("\\\\", "\\"), fmt
    # the JSON report stays lossless: escaped by JSON, decoded back to the very same string
    saved = json_render.render(report)
    assert "\x1b" not in saved and "\u202e" not in saved and "\x9b" not in saved
    assert json.loads(saved)["findings"][0]["message"] == hostile
