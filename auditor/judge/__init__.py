"""The judge: observations → findings (the rules) → everything a report says, decided once.

``build_report`` runs the rules and judges; ``judge`` judges given findings; ``revise`` applies
other options (threshold, suppressions) to a judged report. Renderers never import this package:
what they draw is data in :class:`auditor.model.Report`.
"""

from __future__ import annotations

from auditor.judge.assessment import assess, exit_code
from auditor.judge.build import build_report, judge, now_iso, revise
from auditor.judge.evaluate import evaluate, sort_findings

__all__ = ["assess", "build_report", "evaluate", "exit_code", "judge", "now_iso", "revise", "sort_findings"]
