"""The compliance table: standards and operator practice, each mapped to the rules that test it.

A control's status is the worst status among its findings (fail > inconclusive > pass); a control
none of whose rules produced a finding is "not assessed" — never "pass". Suppressed findings count
as accepted risk, not as a pass; not-applicable findings do not assess a control.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from auditor.model import Finding, Status


class ControlStatus(str, Enum):
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ACCEPTED_RISK = "accepted-risk"
    PASS = "pass"
    NOT_ASSESSED = "not assessed"


# Worst first: the first status present among a control's findings decides.
_ORDER = (
    (Status.FAIL, ControlStatus.FAIL),
    (Status.INCONCLUSIVE, ControlStatus.INCONCLUSIVE),
    (Status.SUPPRESSED, ControlStatus.ACCEPTED_RISK),
    (Status.PASS, ControlStatus.PASS),
)


@dataclass(frozen=True)
class Control:
    id: str
    source: str  # the standard and section
    requirement: str  # what it asks, in our words
    rule_ids: tuple[str, ...]


CONTROLS: tuple[Control, ...] = (
    Control(
        "RFC5321-6.1",
        "RFC 5321 §6.1",
        "Decide during the SMTP session: do not accept mail that will then be bounced (accept-then-bounce).",
        (
            "SMTP-RCPT-001",
            "SMTP-RCPT-002",
            "SMTP-RCPT-004",
            "SMTP-RCPT-005",
            "SMTP-RCPT-006",
            "SMTP-NDR-001",
            "PF-RCPT-001",
            "PF-RCPT-002",
            "PF-RCPT-003",
            "PF-RCPT-004",
            "PF-RCPT-005",
            "PF-RCPT-008",
            "PF-VERIFY-001",
            "PF-VERIFY-002",
            "PF-FILTER-001",
            "EX-RCPT-001",
            "EX-RCPT-002",
            "EX-RCPT-003",
            "EX-DOM-001",
            "EX-DOM-002",
            "LDAP-SYNC-001",
            "LDAP-ADDR-002",
            "CF-AMAVIS-001",
            "EXIM-RCPT-001",
            "QMAIL-RCPT-001",
            "SENDMAIL-RCPT-001",
        ),
    ),
    Control(
        "RFC5321-4.2.5-5xx",
        "RFC 5321 §4.2.5 / §6.1",
        "Refuse unknown recipients with a permanent 5xx reply, not a persistent 4xx.",
        ("SMTP-RCPT-003", "PF-RCPT-006", "PF-RCPT-007", "PF-GREY-001"),
    ),
    Control(
        "RFC1123-5.2.9",
        "RFC 1123 §5.2.9",
        "Accept the null reverse-path MAIL FROM:<> (DSNs and verification probes use it).",
        ("SMTP-NULL-001", "EX-NULL-001"),
    ),
    Control(
        "RFC5321-4.5.1",
        "RFC 5321 §4.5.1",
        "Accept mail for postmaster in every domain served.",
        ("SMTP-PM-001",),
    ),
    Control(
        "RFC3464",
        "RFC 3464 §2 / RFC 6522",
        "NDRs are multipart/report DSNs sent with MAIL FROM:<> to the envelope sender, "
        "returning headers rather than the full message.",
        (
            "NDR-ENV-001",
            "NDR-ENV-002",
            "NDR-FMT-001",
            "NDR-FMT-002",
            "NDR-FMT-003",
            "NDR-FMT-004",
            "PF-DSN-001",
            "EX-DSN-001",
        ),
    ),
    Control(
        "RFC3834",
        "RFC 3834 §2–§5",
        "Auto-replies go to the envelope sender only, never to <> or automated mail, at most once "
        "per sender per several days, marked Auto-Submitted.",
        (
            "AR-CFG-001",
            "AR-CFG-002",
            "AR-CFG-003",
            "AR-CFG-004",
            "AR-CFG-005",
            "AR-CFG-006",
            "AR-CFG-007",
            "EX-AR-001",
            "SMTP-NDR-002",
        ),
    ),
    Control(
        "RFC5321-3.6.2",
        "RFC 5321 §3.6.2",
        "Do not relay for unauthorised clients (reject with 550).",
        ("SMTP-RELAY-001", "PF-RELAY-001", "PF-RCPT-009", "PF-COMPAT-001", "QMAIL-RELAY-001"),
    ),
    Control(
        "RFC7505",
        "RFC 7505 §3",
        "Domains that receive no mail publish a null MX.",
        ("DNS-NULLMX-001", "DNS-NULLMX-002"),
    ),
    Control(
        "OPERATOR-NO-BACKSCATTER",
        "Operator practice (M3AAWG anti-abuse practice; backscatterer.org listing criteria)",
        "The site sends no misdirected bounces, notices or sender callouts to forged senders, "
        "and is not listed for doing so.",
        (
            "DNS-BL-001",
            "PF-LOG-001",
            "PF-VERIFY-003",
            "EXIM-CALLOUT-001",
            "CF-QUAR-001",
            "EX-CF-002",
            "EX-CF-003",
            "FWD-SRS-001",
        ),
    ),
)


@dataclass(frozen=True)
class ControlResult:
    control: Control
    status: ControlStatus
    findings: tuple[Finding, ...]


def assess(findings: Iterable[Finding]) -> list[ControlResult]:
    """One row per control, in the order of :data:`CONTROLS`."""
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        if f.status is not Status.NOT_APPLICABLE:
            by_rule.setdefault(f.rule_id.upper(), []).append(f)
    out = []
    for c in CONTROLS:
        mine = tuple(f for rid in c.rule_ids for f in by_rule.get(rid, ()))
        status = ControlStatus.NOT_ASSESSED
        present = {f.status for f in mine}
        for st, cs in _ORDER:
            if st in present:
                status = cs
                break
        out.append(ControlResult(c, status, mine))
    return out


__all__ = ["CONTROLS", "Control", "ControlResult", "ControlStatus", "assess"]
