"""All rules: one explicit list of rule modules; importing them registers their rules.

Adding a family is adding a module here. The other modules of this package are helpers that hold
no rule (``base``: the registry; ``postfix_common``, ``exchange_view``, ``smtp_verdicts``: shared
readings of one family's observations).
"""

from __future__ import annotations

import importlib

from auditor.rules.base import REGISTRY, Observations, Rule, rule

RULE_MODULES: tuple[str, ...] = (
    "amavis",
    "audit",
    "content_probe",
    "directory",
    "dns",
    "exchange",
    "exim",
    "logs",
    "ndr",
    "postfix",
    "postfix_content",
    "postfix_delivery",
    "postfix_relay",
    "postfix_tables",
    "smtp",
    "smtp_data",
)
HELPER_MODULES: tuple[str, ...] = ("base", "exchange_view", "postfix_common", "smtp_verdicts")

_loaded = False


def load_all() -> dict[str, Rule]:
    """Import every rule module once and return the registry (id → Rule), sorted by id."""
    global _loaded
    if not _loaded:
        for name in RULE_MODULES:
            importlib.import_module(f"{__name__}.{name}")
        _loaded = True
    return dict(sorted(REGISTRY.items()))


def get(rule_id: str) -> Rule | None:
    return load_all().get(rule_id.upper())


__all__ = ["HELPER_MODULES", "REGISTRY", "RULE_MODULES", "Observations", "Rule", "get", "load_all", "rule"]
