"""Golden files: the fixed Report rendered to every format equals tests/golden/.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 python3 -m pytest tests/unit/render`` and
review the diff. The golden report is judged with a fixed catalog, so the files do not change when
rules are added to the registry; renderers read nothing but the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.model import Report
from auditor.observations import KINDS
from auditor.render import csv as csv_render
from auditor.render import html, junit, markdown, sarif, text
from auditor.render import json as json_render
from auditor.serialize import load_report
from tests.unit.render.fixtures import GoldenProbe, golden_report

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

RENDERERS: dict[str, Callable[[Report], str]] = {
    "report.json": json_render.render,
    "report.md": markdown.render,
    "report.csv": csv_render.render,
    "report.sarif": lambda r: sarif.render_with(r, information_uri=None),
    "report.junit.xml": junit.render,
    "report.txt": text.render,  # stdout is not a tty under pytest: no colour
    "report.html": html.render,
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


@pytest.mark.parametrize("name", sorted(set(RENDERERS) - {"report.json"}))
def test_a_saved_report_renders_the_same_without_the_registry(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`report FILE` renders from the file alone: with the registry unusable, the output is unchanged."""
    import auditor.judge.catalog
    import auditor.rules

    def no_registry(*_a: object) -> None:
        raise AssertionError("a renderer consulted the rule registry")

    monkeypatch.setitem(KINDS, GoldenProbe.kind, GoldenProbe)
    saved = load_report(str(GOLDEN / "report.json"))
    monkeypatch.setattr(auditor.rules, "get", no_registry)
    monkeypatch.setattr(auditor.rules, "load_all", no_registry)
    monkeypatch.setattr(auditor.judge.catalog, "get", no_registry)
    assert RENDERERS[name](saved) == RENDERERS[name](golden_report())
