"""The demo audit of the lab, and the committed example report it must keep matching.

`reports/examples/` holds one generated demo report (HTML, Markdown, JSON). This test audits the
running lab the way `backscatter-audit demo` does and compares what matters — every (rule, target,
status) — with the committed JSON, so the example cannot silently drift from what the tool says.
Regenerate it with `sudo .venv/bin/python scripts/update_example_report.py`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from auditor.demo import audit_lab
from auditor.model import Report, Status
from auditor.serialize import load_report
from tests.integration.conftest import assert_lab_routed

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "reports" / "examples"
_LAB_DIR = re.compile(r"/run/bsa-lab[^/]*/")


def _keys(report: Report) -> set[tuple[str, str, str]]:
    return {(f.rule_id, _LAB_DIR.sub("<lab>/", f.target), f.status.value) for f in report.findings}


@pytest.fixture(scope="module")
def demo(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    assert_lab_routed(lab)
    out = tmp_path_factory.mktemp("demo")
    return audit_lab(lab, str(out)), out


def test_demo_finds_what_the_lab_is_built_to_show(demo: tuple[Report, Path]) -> None:
    report, out = demo
    assert not report.run.partial
    fails = {(f.rule_id, f.target) for f in report.findings if f.status is Status.FAIL}
    # The sloppy backup MX, seen on the wire, in its config, and in a real bounce.
    assert ("SMTP-RCPT-002", "example.test mx2.example.test[198.18.0.12]") in fails
    assert ("SMTP-NDR-001", "example.test@198.18.0.12") in fails
    assert any(r == "PF-RCPT-003" and "postfix-sloppy" in t for r, t in fails)
    assert not any(r == "PF-RCPT-003" and "postfix-strict" in t for r, t in fails)
    # The persistent 4xx scenarios, and greylisting told apart from them.
    assert {t for r, t in fails if r == "SMTP-RCPT-003"} >= {
        "softbounce.test mx.softbounce.test[198.18.0.13]",
        "tempfail.test mx.tempfail.test[198.18.0.14]",
    }
    assert not any("grey.test" in t for r, t in fails if r == "SMTP-RCPT-003")
    for name in ("report.html", "report.md", "report.json", "site.toml"):
        assert (out / name).stat().st_size > 0
    # Every finding of the JSON report is named in the HTML; the Markdown view, kept under GitHub's
    # 65,536 characters, names every failing and inconclusive one and counts the rest.
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert len(md) < 65536
    for f in report.findings:
        assert f.rule_id in html, f.rule_id
        if f.status in (Status.FAIL, Status.INCONCLUSIVE):
            assert f.rule_id in md, f.rule_id


def test_demo_outputs_hold_no_secret(lab: Any, demo: tuple[Report, Path]) -> None:
    secret = Path(lab.ldap.secret_file).read_text().strip()
    assert len(secret) >= 6
    for path in demo[1].iterdir():
        assert secret not in path.read_text(errors="replace"), path.name


def test_committed_example_matches_a_fresh_demo(demo: tuple[Report, Path]) -> None:
    example = EXAMPLES / "report.json"
    assert example.exists(), "reports/examples/report.json is missing: run scripts/update_example_report.py"
    committed = load_report(str(example))
    fresh = _keys(demo[0])
    old = _keys(committed)
    assert fresh == old, {
        "only in a fresh demo": sorted(fresh - old),
        "only in the committed example": sorted(old - fresh),
    }
    for name in ("report.html", "report.md"):
        assert (EXAMPLES / name).stat().st_size > 0
    doc = json.loads(example.read_text())
    assert doc["schema"] == "backscatter-audit/2" and doc["run"]["command"] == "demo"
