"""Golden files: the fixed Report rendered to every machine format equals tests/golden/.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 python3 -m pytest tests/unit/render`` and
review the diff. Renderers run with a rule lookup that knows no rule, so the files do not change when
rules are added to the registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.model import Report
from auditor.observations import KINDS
from auditor.render import csv as csv_render
from auditor.render import junit, markdown, sarif
from auditor.render._common import no_rules
from auditor.serialize import load_report, report_to_json
from tests.unit.render.fixtures import GoldenProbe, golden_report

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

RENDERERS: dict[str, Callable[[Report], str]] = {
    "report.json": report_to_json,
    "report.md": lambda r: markdown.render_with(r, no_rules),
    "report.csv": lambda r: csv_render.render_with(r, no_rules),
    "report.sarif": lambda r: sarif.render_with(r, no_rules, information_uri=None),
    "report.junit.xml": lambda r: junit.render_with(r, no_rules),
}


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_golden(name: str) -> None:
    got = RENDERERS[name](golden_report())
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(got.encode("utf-8"))
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    want = path.read_bytes().decode("utf-8")  # bytes: CSV's CRLF line ends are part of the format
    assert got == want, f"{name} differs from {path} (UPDATE_GOLDEN=1 regenerates; review the diff)"


def test_golden_json_loads_back_to_the_same_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, GoldenProbe.kind, GoldenProbe)  # a test-only observation kind
    assert load_report(str(GOLDEN / "report.json")) == golden_report()
