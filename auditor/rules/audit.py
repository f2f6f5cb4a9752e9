"""Rules about the audit itself: what could not be measured is said, never passed over."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.model import Evidence, Finding, Severity
from auditor.observations.audit import AuditGap
from auditor.rules.base import Observations, Rule, rule


@rule(
    "BSA-AUDIT-001",
    title="Part of the audit could not be measured",
    family="audit",
    severity=Severity.HIGH,
    needs=(AuditGap,),
    remediation="""
        Fix the cause named in the finding (an unreachable host, a time bound too short for the
        site, an interruption) and run the audit again; until then, treat the checks of that stage
        as unknown, not as passed.
        """,
    references=("DESIGN.md: bad input and faults",),
)
def audit_gap(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags

    A stage of the audit (DNS and live probes, the directory, Postfix or Exchange linting, NDR
    analysis) that failed, was interrupted, or ran past the audit's time bound.

    ## Why it matters

    A report that silently leaves out the backup MX it could not reach looks exactly like a clean
    report. The checks that stage feeds are unknown, so the finding is ``inconclusive`` and makes
    the exit code 3 ("could not measure") unless something failed outright.
    """
    for gap in obs.of(AuditGap):
        fams = ", ".join(gap.families) or "its"
        yield r.inconclusive(
            gap.stage,
            f"stage {gap.stage!r} was not measured: {gap.reason}; the {fams} checks are unknown",
            [Evidence(gap.reason, data={"stage": gap.stage, "families": list(gap.families)})],
        )
