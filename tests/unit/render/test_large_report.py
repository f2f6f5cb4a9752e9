"""A hosting provider's report (2,000 domains): Markdown fits a GitHub comment and says it is a
summary, HTML has the per-domain table, a table of contents and collapsed evidence."""

from __future__ import annotations

import re

import pytest

from auditor.model import Report
from auditor.render import html, markdown
from auditor.render._options import RenderOptions
from auditor.render._view import SITE_WIDE, domain_of, domain_rows
from tests.unit.render.fixtures import golden_report, hosting_report


@pytest.fixture(scope="module")
def hosting() -> Report:
    return hosting_report(2000)


def test_markdown_of_2000_domains_fits_a_github_comment(hosting: Report) -> None:
    out = markdown.render(hosting, RenderOptions(full_report="reports/report.html"))
    assert len(out) < markdown.GITHUB_COMMENT_MAX
    assert len(out.encode("utf-16-le")) // 2 < markdown.GITHUB_COMMENT_MAX  # as GitHub counts
    assert "Summary view, truncated" in out and "`reports/report.html`" in out
    assert "## Domains" in out and "| customer0000.example | ❌ fail |" in out
    assert "**Not shown here:**" in out  # it says what it left out


def test_markdown_of_a_small_report_is_complete() -> None:
    out = markdown.render(golden_report())
    assert "truncated" not in out
    assert "Contents: [Domains](#domains)" in out
    assert "<details>\n<summary>Evidence (2): RCPT of a random local part answered 250</summary>" in out
    rows = [line for line in out.splitlines() if line.startswith("| example.")]
    assert rows == ["| example.com | ❌ fail | 1 | 1 | critical |", "| example.net | ❌ fail | 1 | 0 | low |"]


def test_html_of_2000_domains(hosting: Report) -> None:
    out = html.render(hosting)
    assert out.count('<td class="wrap" data-label="Domain">') == 2000
    assert out.count('<details class="evidence">') == sum(
        1 for f in hosting.findings if f.evidence and f.status.value == "fail"
    )
    assert '<nav class="toc"' in out and 'href="#domains"' in out
    assert (
        "<title>Backscatter audit — customer0000.example, customer0001.example, "
        "customer0002.example and 1997 more domains</title>" in out
    )
    assert re.search(r"@media \(max-width: 600px\)[^@]*table\.stack td::before", out)


def test_domains_are_found_in_targets() -> None:
    lookup = ["example.com", "sub.example.com", "example.net"]
    assert domain_of("mx2.example.com[192.0.2.25]", lookup) == "example.com"
    assert domain_of("mx.sub.example.com[192.0.2.1]", lookup) == "sub.example.com"
    assert domain_of("example.test mx2.example.net[198.18.0.12]", lookup) == "example.net"
    assert domain_of("uid=x,ou=people,dc=example,dc=com", lookup) == ""
    assert domain_of("notexample.com", lookup) == ""
    rows = domain_rows(golden_report())
    assert [r.domain for r in rows] == ["example.com", "example.net", SITE_WIDE]
    assert (rows[0].fails, rows[0].inconclusive, rows[0].worst_severity.value) == (1, 1, "critical")  # type: ignore[union-attr]


def test_markdown_leaves_out_the_bulk_before_any_finding() -> None:
    from pathlib import Path

    from auditor.serialize import load_report

    example = load_report(str(Path(__file__).resolve().parents[3] / "reports" / "examples" / "report.json"))
    out = markdown.render(example)
    assert len(out) < markdown.GITHUB_COMMENT_MAX
    assert "Summary view, truncated" in out and "counted, not listed" in out
    for f in example.findings:  # every failure and unmeasured finding is still there in full
        if f.status.value in ("fail", "inconclusive"):
            assert f"#### {f.rule_id} — " in out
