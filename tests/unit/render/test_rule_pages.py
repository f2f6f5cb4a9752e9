"""The committed rule pages (docs/rules/ID.md, linked from SARIF helpUri) match the catalog, and
the link base is the project URL pyproject.toml declares."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

from auditor.render._common import PROJECT_URL
from auditor.rules import load_all

ROOT = Path(__file__).resolve().parents[3]


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "build_rule_pages", ROOT / "scripts" / "build_rule_pages.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_rule_pages_are_current() -> None:
    write, extra = _script().stale(ROOT)
    assert not write and not extra, (
        f"out of date: {write}, no such rule: {extra} — run scripts/build_rule_pages.py"
    )


def test_every_rule_has_a_page_with_its_title() -> None:
    pages = ROOT / "docs" / "rules"
    for r in load_all().values():
        text = (pages / f"{r.id}.md").read_text(encoding="utf-8")
        assert text.splitlines()[2] == f"# {r.id}: {r.title}"


def test_project_url_is_pyprojects() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["urls"]["Source"] == PROJECT_URL
