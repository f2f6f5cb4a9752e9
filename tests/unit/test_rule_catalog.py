"""One catalog entry per rule: the fix is written once (the decorator), explain prints it once."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import auditor.rules as rules_pkg
from auditor.cli.cmd_rules import explain_text
from auditor.rules import HELPER_MODULES, RULE_MODULES, load_all
from auditor.rules.base import REGISTRY

# Modules another engineer owns, whose docstrings still carry a "How to fix" section; strict: the
# test fails (XPASS) once they are converted, so this list cannot go stale.


def _params() -> list[object]:
    return [pytest.param(rid, id=rid) for rid in load_all()]


@pytest.mark.parametrize("rule_id", _params())
def test_the_docstring_does_not_repeat_the_fix(rule_id: str) -> None:
    r = load_all()[rule_id]
    assert r.remediation, "every rule has a generic fix"
    assert "## How to fix" not in r.doc and "## Remediation" not in r.doc
    # no sentence of the fix is written again in the page
    for sentence in re.split(r"(?<=[.;:])\s+", r.remediation):
        if len(sentence) > 40:
            assert sentence not in " ".join(r.doc.split()), sentence


@pytest.mark.parametrize("rule_id", _params())
def test_explain_prints_each_command_once(rule_id: str) -> None:
    text = explain_text(load_all()[rule_id])
    assert text.count("## How to fix") == 1
    commands = [
        ln.strip()
        for ln in text.splitlines()
        if re.match(r"\s*(postconf|postmap|Set-|New-|Enable-|Remove-|Start-|ldapmodify)\b", ln)
    ]
    assert len(commands) == len(set(commands)), commands


def test_one_explicit_list_of_rule_modules() -> None:
    present = {m.name for m in pkgutil.iter_modules(rules_pkg.__path__)}
    assert present == set(RULE_MODULES) | set(HELPER_MODULES), present ^ (
        set(RULE_MODULES) | set(HELPER_MODULES)
    )
    load_all()
    by_module = {r.check.__module__.rsplit(".", 1)[-1] for r in REGISTRY.values()}
    assert by_module == set(RULE_MODULES)  # every rule module registers rules, no helper does
    for name in HELPER_MODULES:
        importlib.import_module(f"auditor.rules.{name}")
    assert {r.check.__module__.rsplit(".", 1)[-1] for r in REGISTRY.values()} == set(RULE_MODULES)
