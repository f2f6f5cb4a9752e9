"""The Postfix collector: ``collect(DIR)`` reads a config directory into a PostfixConfig."""

from __future__ import annotations

from auditor.collect.postfix.collector import collect
from auditor.observations.postfix import (
    RULE_PARAMETERS,
    LookupTable,
    MasterService,
    ParamValue,
    PostfixConfig,
    TableEntry,
    TemplateToken,
)

__all__ = [
    "RULE_PARAMETERS",
    "LookupTable",
    "MasterService",
    "ParamValue",
    "PostfixConfig",
    "TableEntry",
    "TemplateToken",
    "collect",
]
