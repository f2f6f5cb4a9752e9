"""All rules, one module per family; importing this package registers them.

Families are discovered (every module in this package but ``base``), so adding a family is adding
a file.
"""

from __future__ import annotations

import importlib
import pkgutil

from auditor.rules.base import REGISTRY, Observations, Rule, rule

_loaded = False


def load_all() -> dict[str, Rule]:
    """Import every rule module once and return the registry (id → Rule), sorted by id."""
    global _loaded
    if not _loaded:
        for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if mod.name != "base" and not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True
    return dict(sorted(REGISTRY.items()))


def get(rule_id: str) -> Rule | None:
    return load_all().get(rule_id.upper())


__all__ = ["REGISTRY", "Observations", "Rule", "get", "load_all", "rule"]
