"""The HTML report in a real browser (headless Chromium): it loads without console errors, the DOM
holds every finding's rule id and every section heading, and it renders to a screenshot.

Chromium is kept off the network: the page has no external resources, background networking is
disabled and every host name resolves to nothing.
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from auditor.model import Report
from auditor.render import html
from auditor.render.html import SECTION_HEADINGS
from auditor.serialize import load_report
from tests.conftest import need_tool
from tests.unit.render.fixtures import golden_report

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "examples" / "report.json"
TIMEOUT = 90  # seconds per browser run


def _chromium(exe: str, page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def console_problems(stderr: str) -> list[str]:
    """Console output of the page. Chromium logs every console message as INFO:CONSOLE whatever
    its level, and the report has no scripts, so any console line at all is a problem."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def _reports() -> list[tuple[str, Report]]:
    out = [("golden", golden_report()), ("golden-partial", golden_report(partial=True))]
    out += [(p.stem, load_report(str(p))) for p in sorted(GOLDEN.glob("demo*.json"))]
    if EXAMPLE.exists():  # the committed demo audit of the lab
        out.append(("demo-example", load_report(str(EXAMPLE))))
    return out


def test_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    """Control: the console check sees errors when there are some."""
    exe = need_tool("chromium")
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><p>x</p><script>console.error('boom'); nope();</script>", encoding="utf-8"
    )
    proc = _chromium(exe, page, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    problems = console_problems(proc.stderr)
    assert any("boom" in p for p in problems) and any("Uncaught" in p for p in problems)


@pytest.mark.parametrize(("name", "report"), _reports(), ids=[n for n, _ in _reports()])
def test_html_report_in_chromium(name: str, report: Report, tmp_path: Path) -> None:
    exe = need_tool("chromium")
    page = tmp_path / f"{name}.html"
    page.write_text(html.render(report), encoding="utf-8")

    proc = _chromium(exe, page, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_problems(proc.stderr) == []
    dom = proc.stdout
    text = re.sub(r"<[^>]+>", " ", dom)
    for f in report.findings:
        assert f.rule_id in text, f"{f.rule_id} missing from the rendered page"
    headings = re.findall(r"<h2>(.*?)</h2>", dom)
    assert headings == list(SECTION_HEADINGS)
    assert ("PARTIAL REPORT" in text) is report.run.partial

    shot = tmp_path / f"{name}.png"
    proc = _chromium(
        exe,
        page,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1100,3000",
        "--hide-scrollbars",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_problems(proc.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1100, 3000)
    assert len(data) > 50_000  # a blank page compresses to a few kB; the report does not
