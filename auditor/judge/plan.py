"""The remediation plan: failing findings grouped by root cause, worst first, quickest first.

One change often answers several findings at once: giving a backup MX the real recipient list
answers SMTP-RCPT-002 seen on the wire, PF-RCPT-003 seen in its main.cf and LDAP-SYNC-001 seen
against the directory. A rule belongs to a cause through its catalog entry (``Rule.cause``) only;
the causes themselves (title, effort, how to verify) are defined here, once. A failing rule without
a cause becomes a group of its own, so nothing is lost.

Each cause's steps are its findings' fixes: findings with the same fix share one step; a command
repeated by several steps of a cause (``postfix reload``) is kept in the last of them only, so it
runs once, after every change it has to pick up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from auditor.model import (
    Effort,
    Finding,
    FindingRef,
    FixCommand,
    PlanItem,
    PlanStep,
    Remediation,
    RuleInfo,
    Status,
)


@dataclass(frozen=True)
class RootCause:
    """One root cause: the fix that answers every rule whose catalog entry names it."""

    id: str
    title: str
    effort: Effort
    verify: str = ""  # a command that shows the change took effect


CAUSES: tuple[RootCause, ...] = (
    RootCause(
        "relay-recipients",
        "Give every relay / backup MX the real recipient list",
        Effort.HOURS,
        'postmap -q "bsa-nobody-$RANDOM@example.com" lmdb:/etc/postfix/relay_recipients'
        "  # must print nothing",
    ),
    RootCause(
        "local-recipients",
        "Validate local recipients at RCPT time",
        Effort.MINUTES,
        "postconf local_recipient_maps smtpd_reject_unlisted_recipient luser_relay",
    ),
    RootCause(
        "catch-all",
        "Remove catch-all entries from recipient tables and the directory",
        Effort.HOURS,
        'postmap -q "bsa-nobody-$RANDOM@example.com" <each recipient table>  # must print nothing',
    ),
    RootCause(
        "exchange-recipient-filter",
        "Turn on Exchange recipient validation at the perimeter",
        Effort.HOURS,
        "Get-RecipientFilterConfig | Format-List Enabled,ExternalMailEnabled,RecipientValidationEnabled",
    ),
    RootCause(
        "permanent-reject",
        "Reject unknown recipients with 5xx, not 4xx",
        Effort.MINUTES,
        "postconf soft_bounce unknown_local_recipient_reject_code unverified_recipient_defer_code",
    ),
    RootCause(
        "relay-control",
        "Close the open relay",
        Effort.MINUTES,
        "postconf smtpd_relay_restrictions mynetworks",
    ),
    RootCause(
        "in-session-filtering",
        "Decide spam and policy in the SMTP session; discard or quarantine after it",
        Effort.DAYS,
        "postconf content_filter smtpd_milters; postconf -P | grep content_filter",
    ),
    RootCause(
        "null-sender-postmaster",
        "Accept the null sender and postmaster",
        Effort.MINUTES,
        "swaks --server <mx> --from '<>' --to postmaster@example.com --quit-after RCPT",
    ),
    RootCause(
        "auto-replies",
        "Make auto-responders follow RFC 3834",
        Effort.HOURS,
        "Get-Mailbox -ResultSize Unlimited | Get-MailboxAutoReplyConfiguration | "
        "Where-Object ExternalAudience -eq All",
    ),
    RootCause(
        "ndr-payload",
        "Return headers only in NDRs",
        Effort.MINUTES,
        "postconf bounce_size_limit delay_warning_time bounce_queue_lifetime",
    ),
    RootCause(
        "sender-callouts",
        "Stop sender callouts to forged domains",
        Effort.MINUTES,
        "postconf smtpd_sender_restrictions smtpd_recipient_restrictions address_verify_sender_ttl",
    ),
    RootCause(
        "forwarding",
        "Filter before forwarding off-site and rewrite the envelope (SRS)",
        Effort.HOURS,
        "postconf sender_canonical_maps sender_canonical_classes",
    ),
    RootCause(
        "dns-hygiene",
        "Publish null MX and SPF for names that send no mail",
        Effort.MINUTES,
        "dig +short MX example.org  # must print: 0 .",
    ),
    RootCause(
        "confirmed-backscatter",
        "Trace the backscatter that was observed to its cause",
        Effort.HOURS,
        "grep 'sender non-delivery notification' /var/log/mail.log | tail",
    ),
)

CAUSE_BY_ID: dict[str, RootCause] = {c.id: c for c in CAUSES}


def cause_of(rule_id: str, catalog: Mapping[str, RuleInfo]) -> RootCause | None:
    """The root cause the catalog entry of ``rule_id`` names (None: none, or one this build lacks)."""
    info = catalog.get(rule_id)
    return CAUSE_BY_ID.get(info.cause) if info is not None else None


def _own_cause(f: Finding, catalog: Mapping[str, RuleInfo]) -> RootCause:
    info = catalog.get(f.rule_id)
    return RootCause(f.rule_id, (info.title if info else "") or f.title or f.rule_id, Effort.HOURS)


def _ref(f: Finding) -> FindingRef:
    return FindingRef(f.rule_id, f.target, f.severity, f.location)


def _fix(f: Finding, catalog: Mapping[str, RuleInfo]) -> Remediation:
    if f.remediation:
        return f.remediation
    info = catalog.get(f.rule_id)
    text = (info.remediation if info else "") or f"See `backscatter-audit explain {f.rule_id}`."
    return Remediation(text=text)


def _order(f: Finding) -> tuple[int, str, str]:
    return (-f.severity.rank, f.rule_id, f.target)


def _steps(members: list[Finding], catalog: Mapping[str, RuleInfo]) -> tuple[PlanStep, ...]:
    """Findings with the same fix share a step; steps in the order of their worst finding."""
    groups: dict[Remediation, list[Finding]] = {}
    for f in sorted(members, key=_order):
        groups.setdefault(_fix(f, catalog), []).append(f)
    fixes = list(groups.items())
    # A command line repeated by several steps stays only in the last one (see the module doc).
    last: dict[FixCommand, int] = {}
    for i, (fix, _) in enumerate(fixes):
        for c in fix.commands:
            last[c] = i
    steps = []
    for i, (fix, found) in enumerate(fixes):
        commands = tuple(dict.fromkeys(c for c in fix.commands if last[c] == i))
        steps.append(PlanStep(fix.text, commands, tuple(_ref(f) for f in found)))
    return tuple(steps)


def build_plan(
    findings: Iterable[Finding], catalog: Mapping[str, RuleInfo], command: str = ""
) -> tuple[PlanItem, ...]:
    """Group the FAIL findings by root cause, ordered by severity (worst first), then effort."""
    groups: dict[str, tuple[RootCause, list[Finding]]] = {}
    for f in findings:
        if f.status is not Status.FAIL:
            continue
        cause = cause_of(f.rule_id, catalog) or _own_cause(f, catalog)
        groups.setdefault(cause.id, (cause, []))[1].append(f)
    rerun = f"backscatter-audit {command}" if command else ""
    items = []
    for cause, members in groups.values():
        worst = max((f.severity for f in members), key=lambda s: s.rank)
        verify = tuple(v for v in (cause.verify, rerun) if v)
        items.append(PlanItem(cause.id, cause.title, cause.effort, worst, _steps(members, catalog), verify))
    items.sort(key=lambda i: (-i.severity.rank, i.effort.rank, i.title))
    return tuple(items)


__all__ = ["CAUSES", "CAUSE_BY_ID", "RootCause", "build_plan", "cause_of"]
