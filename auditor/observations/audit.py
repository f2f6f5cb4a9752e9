"""The audit's own observation: a stage that could not be measured."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Observation


@dataclass(frozen=True)
class AuditGap(Observation):
    """A part of the audit that could not be measured, and why."""

    kind = "audit.gap"

    stage: str = ""
    reason: str = ""
    families: tuple[str, ...] = ()
