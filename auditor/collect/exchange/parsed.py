"""The result of parsing one input file, whatever its form."""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.observations.exchange import ExchangeCmdletOutput


@dataclass
class ParsedFile:
    path: str
    form: str
    outputs: list[ExchangeCmdletOutput] = field(default_factory=list)
    # From a collector manifest only; empty when the file does not say.
    environment: str = ""
    server: str = ""
    exchange_version: str = ""
    collected: str = ""
