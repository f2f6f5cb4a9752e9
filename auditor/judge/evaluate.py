"""Run the rules over the observations of a run: observations → findings.

A rule that raises becomes an ``inconclusive`` finding, never a crash that loses the rest.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterable, Sequence

from auditor.model import Finding, Observation, Status
from auditor.rules import Observations, Rule, load_all

_STATUS_ORDER = {
    Status.FAIL: 0,
    Status.INCONCLUSIVE: 1,
    Status.SUPPRESSED: 2,
    Status.PASS: 3,
    Status.NOT_APPLICABLE: 4,
}


def evaluate(observations: Iterable[Observation], rules: Sequence[Rule] | None = None) -> list[Finding]:
    """Run every applicable rule; the findings come back in report order (:func:`sort_findings`)."""
    obs = Observations(observations)
    findings: list[Finding] = []
    for r in rules if rules is not None else load_all().values():
        if not r.applies(obs):
            continue
        try:
            findings.extend(r.check(obs, r))
        except Exception as exc:  # a rule bug must not lose the rest of the audit
            traceback.print_exc(file=sys.stderr)
            findings.append(
                r.inconclusive("(rule error)", f"rule {r.id} failed: {type(exc).__name__}: {exc}")
            )
    return sort_findings(findings)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Report order: what needs action first (fail, inconclusive, …), worst severity first."""
    return sorted(findings, key=lambda f: (_STATUS_ORDER[f.status], -f.severity.rank, f.rule_id, f.target))


__all__ = ["evaluate", "sort_findings"]
