"""The compliance table: standards and operator practice, each evidenced by the rules that name it.

A rule evidences a control through its catalog entry (``Rule.controls``) only; the controls
themselves (source, requirement) are defined here, once. A control's status is the worst status
among its rules' findings (fail > inconclusive > accepted risk > pass); a control none of whose
rules produced a finding is "not assessed", never "pass". Suppressed findings count as accepted
risk; not-applicable findings do not assess a control.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from auditor.model import ControlResult, ControlStatus, Finding, RuleInfo, Status


@dataclass(frozen=True)
class Control:
    id: str
    source: str  # the standard and section
    requirement: str  # what it asks, in our words


CONTROLS: tuple[Control, ...] = (
    Control(
        "RFC5321-6.1",
        "RFC 5321 §6.1",
        "Decide during the SMTP session: do not accept mail that will then be bounced (accept-then-bounce).",
    ),
    Control(
        "RFC5321-4.2.5-5xx",
        "RFC 5321 §4.2.5 / §6.1",
        "Refuse unknown recipients with a permanent 5xx reply, not a persistent 4xx.",
    ),
    Control(
        "RFC1123-5.2.9",
        "RFC 1123 §5.2.9",
        "Accept the null reverse-path MAIL FROM:<> (DSNs and verification probes use it).",
    ),
    Control("RFC5321-4.5.1", "RFC 5321 §4.5.1", "Accept mail for postmaster in every domain served."),
    Control(
        "RFC3464",
        "RFC 3464 §2 / RFC 6522",
        "NDRs are multipart/report DSNs sent with MAIL FROM:<> to the envelope sender, "
        "returning headers rather than the full message.",
    ),
    Control(
        "RFC3834",
        "RFC 3834 §2–§5",
        "Auto-replies go to the envelope sender only, never to <> or automated mail, at most once "
        "per sender per several days, marked Auto-Submitted.",
    ),
    Control("RFC5321-3.6.2", "RFC 5321 §3.6.2", "Do not relay for unauthorised clients (reject with 550)."),
    Control("RFC7505", "RFC 7505 §3", "Domains that receive no mail publish a null MX."),
    Control(
        "OPERATOR-NO-BACKSCATTER",
        "Operator practice (M3AAWG anti-abuse practice; backscatterer.org listing criteria)",
        "The site sends no misdirected bounces, notices or sender callouts to forged senders, "
        "and is not listed for doing so.",
    ),
)

CONTROL_BY_ID: dict[str, Control] = {c.id: c for c in CONTROLS}

# Worst first: the first status present among a control's findings decides.
_ORDER = (
    (Status.FAIL, ControlStatus.FAIL),
    (Status.INCONCLUSIVE, ControlStatus.INCONCLUSIVE),
    (Status.SUPPRESSED, ControlStatus.ACCEPTED_RISK),
    (Status.PASS, ControlStatus.PASS),
)


def build_compliance(
    findings: Iterable[Finding], catalog: Mapping[str, RuleInfo]
) -> tuple[ControlResult, ...]:
    """One row per control, in the order of :data:`CONTROLS`."""
    members: dict[str, list[Finding]] = {c.id: [] for c in CONTROLS}
    for f in findings:
        info = catalog.get(f.rule_id)
        if f.status is Status.NOT_APPLICABLE or info is None:
            continue
        for control in info.controls:
            if control in members:  # a control this build does not define is not in its table
                members[control].append(f)
    rows = []
    for c in CONTROLS:
        present = {f.status for f in members[c.id]}
        status = next((cs for st, cs in _ORDER if st in present), ControlStatus.NOT_ASSESSED)
        rule_ids = tuple(sorted({f.rule_id for f in members[c.id]}))
        rows.append(ControlResult(c.id, c.source, c.requirement, status, rule_ids))
    return tuple(rows)


__all__ = ["CONTROLS", "CONTROL_BY_ID", "Control", "build_compliance"]
