"""Shared helpers for the Exchange tests: run the collector + rules on files, summarise findings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from auditor.collect import exchange
from auditor.judge import evaluate
from auditor.model import Finding
from auditor.rules import load_all

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCENARIOS = ("onprem-bad", "onprem-good", "edge-bad", "exo-bad", "exo-good")
FORMS = ("collector", "clixml", "format-list")


def files(scenario: str, form: str) -> list[str]:
    base = FIXTURES / scenario
    if form == "collector":
        return [str(base / "collector.json")]
    if form == "clixml":
        return sorted(str(p) for p in (base / "clixml").glob("*.xml"))
    return [str(base / "format-list.txt")]


def ex_findings(paths: Sequence[str]) -> list[Finding]:
    """Findings of the EX-* rules only (other families may be registered in the same process)."""
    rules = [r for r in load_all().values() if r.family == "exchange"]
    return evaluate(exchange.collect(paths), rules)


def summary(findings: Sequence[Finding]) -> set[tuple[str, str, str]]:
    return {(f.rule_id, f.status.value, f.target) for f in findings}
