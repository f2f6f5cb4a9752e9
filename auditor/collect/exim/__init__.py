"""The Exim collector: ``collect(PATH)`` reads an Exim configuration into an EximConfig."""

from __future__ import annotations

from auditor.collect.exim.collector import collect, read_logical
from auditor.observations.exim import EximConfig

__all__ = ["EximConfig", "collect", "read_logical"]
