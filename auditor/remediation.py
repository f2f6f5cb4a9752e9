"""The remediation plan: failing findings grouped by root cause, worst first, cheapest first.

One configuration change often answers several findings at once: giving a backup MX the real
recipient list (``relay_recipient_maps``) fixes SMTP-RCPT-002 seen on the wire, PF-RCPT-003 seen in
its main.cf and LDAP-SYNC-001 seen against the directory. The root causes are data (:data:`CAUSES`)
keyed by rule ids; a failing rule that no cause lists becomes a group of its own, so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from auditor.model import Finding, Severity, Status

EFFORT_LABELS = {1: "minutes", 2: "hours", 3: "days"}


@dataclass(frozen=True)
class RootCause:
    """One fix that answers every rule listed in ``rule_ids``."""

    id: str
    title: str
    rule_ids: tuple[str, ...]
    effort: int  # 1 = one setting (minutes), 2 = a table or a process (hours), 3 = architecture (days)
    change: str  # the exact change
    verify: str  # a command that shows the change took effect

    @property
    def effort_label(self) -> str:
        return EFFORT_LABELS.get(self.effort, "unknown")


CAUSES: tuple[RootCause, ...] = (
    RootCause(
        "relay-recipients",
        "Give every relay / backup MX the real recipient list",
        (
            "SMTP-RCPT-002",
            "SMTP-RCPT-006",
            "PF-RCPT-003",
            "PF-VERIFY-002",
            "PF-RCPT-009",
            "PF-COMPAT-001",
            "PF-RCPT-010",
            "PF-RCPT-011",
            "LDAP-SYNC-001",
            "EXIM-RCPT-001",
        ),
        2,
        "Export the valid addresses from the directory into a table and point the relay class at it:\n"
        "  postconf -e 'relay_recipient_maps = lmdb:/etc/postfix/relay_recipients'\n"
        "  postmap lmdb:/etc/postfix/relay_recipients && postfix reload\n"
        "Regenerate the table from LDAP on a schedule (or use an ldap: map directly). Where no list "
        "can exist, add reject_unverified_recipient to smtpd_recipient_restrictions instead; "
        "or remove the backup MX record.",
        'postmap -q "bsa-nobody-$RANDOM@example.com" lmdb:/etc/postfix/relay_recipients'
        "  # must print nothing",
    ),
    RootCause(
        "local-recipients",
        "Validate local recipients at RCPT time",
        (
            "SMTP-RCPT-001",
            "SMTP-RCPT-004",
            "SMTP-RCPT-005",
            "PF-RCPT-001",
            "PF-RCPT-002",
            "PF-RCPT-005",
            "PF-RCPT-008",
            "EXIM-RCPT-002",
            "QMAIL-RCPT-001",
            "QMAIL-RCPT-002",
            "SENDMAIL-RCPT-001",
        ),
        1,
        "Restore Postfix's recipient checks on the Internet-facing listener:\n"
        "  postconf -X local_recipient_maps luser_relay\n"
        "  postconf -e 'smtpd_reject_unlisted_recipient = yes'\n"
        "  postconf -PX 'smtp/inet/receive_override_options'\n"
        "  postfix reload\n"
        "(other MTAs: enable RCPT-time validation — Exim verify = recipient, a qmail RCPT validator).",
        "postconf local_recipient_maps smtpd_reject_unlisted_recipient luser_relay",
    ),
    RootCause(
        "catch-all",
        "Remove catch-all entries from recipient tables and the directory",
        ("PF-RCPT-004", "LDAP-ADDR-002", "LDAP-QUERY-001"),
        2,
        "Delete '@domain' keys and match-all regular expressions (/./, /@example\\.com$/) from "
        "relay_recipient_maps, virtual_mailbox_maps and virtual_alias_maps, remove '@domain' values "
        "from directory address attributes, and drop static:/pcre fallbacks after LDAP/SQL maps; "
        "then postmap the tables and postfix reload.",
        'postmap -q "bsa-nobody-$RANDOM@example.com" <each recipient table>  # must print nothing',
    ),
    RootCause(
        "exchange-recipient-filter",
        "Turn on Exchange recipient validation at the perimeter",
        ("EX-RCPT-001", "EX-RCPT-002", "EX-RCPT-003", "EX-EDGE-001", "EX-DOM-001", "EX-DOM-002"),
        2,
        "Set-RecipientFilterConfig -Enabled $true -ExternalMailEnabled $true "
        "-RecipientValidationEnabled $true\n"
        "Set-AcceptedDomain -Identity <domain> -DomainType Authoritative\n"
        "Start-EdgeSynchronization (re-subscribe with New-EdgeSubscription if missing)",
        "Get-RecipientFilterConfig | Format-List Enabled,ExternalMailEnabled,RecipientValidationEnabled",
    ),
    RootCause(
        "permanent-reject",
        "Reject unknown recipients with 5xx, not 4xx",
        ("SMTP-RCPT-003", "PF-RCPT-006", "PF-RCPT-007", "PF-VERIFY-001", "PF-GREY-001"),
        1,
        "postconf -X unknown_local_recipient_reject_code unknown_relay_recipient_reject_code "
        "unknown_virtual_alias_reject_code unknown_virtual_mailbox_reject_code\n"
        "postconf -e 'soft_bounce = no' 'unverified_recipient_defer_code = 450'\n"
        "Put reject_unlisted_recipient before any check_policy_service (greylisting); postfix reload.",
        "postconf soft_bounce unknown_local_recipient_reject_code unverified_recipient_defer_code",
    ),
    RootCause(
        "relay-control",
        "Close the open relay",
        ("SMTP-RELAY-001", "PF-RELAY-001", "QMAIL-RELAY-001", "EX-RELAY-001"),
        1,
        "postconf -e 'smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
        "reject_unauth_destination'\n"
        "Shrink mynetworks to the hosts that really submit mail; postfix reload.",
        "postconf smtpd_relay_restrictions mynetworks",
    ),
    RootCause(
        "in-session-filtering",
        "Decide spam and policy in the SMTP session; discard or quarantine after it",
        (
            "PF-FILTER-001",
            "PF-FILTER-004",
            "CF-AMAVIS-001",
            "CF-AMAVIS-002",
            "CF-IMAGE-001",
            "CF-MILTER-001",
            "CF-LDA-001",
            "CF-QUAR-001",
            "CF-PROBE-001",
            "CF-PROBE-002",
            "EX-CF-001",
            "EX-CF-002",
            "EX-CF-003",
            "EXIM-CF-001",
        ),
        3,
        "Move rejecting filters before the queue (smtpd_milters or smtpd_proxy_filter) so a reject "
        "is an in-session 5xx; after the queue, discard or quarantine and never notify the sender "
        "(amavis: $final_*_destiny = D_DISCARD; Exchange: -DeleteMessage instead of "
        "-RejectMessageReasonText, -EnableExternalSenderNotifications $false).",
        "postconf content_filter smtpd_milters; postconf -P | grep content_filter",
    ),
    RootCause(
        "null-sender-postmaster",
        "Accept the null sender and postmaster",
        ("SMTP-NULL-001", "EX-NULL-001", "SMTP-PM-001", "SMTP-PM-002"),
        1,
        "Remove '<>' / empty-sender REJECT entries from smtpd_sender_restrictions and "
        "check_sender_access tables (Exchange: Set-SenderFilterConfig -BlankSenderBlockingEnabled "
        "$false); alias postmaster@ (and abuse@) in every hosted domain and exempt it from policies.",
        "swaks --server <mx> --from '<>' --to postmaster@example.com --quit-after RCPT",
    ),
    RootCause(
        "auto-replies",
        "Make auto-responders follow RFC 3834",
        (
            "AR-CFG-001",
            "AR-CFG-002",
            "AR-CFG-003",
            "AR-CFG-004",
            "AR-CFG-005",
            "AR-CFG-006",
            "AR-CFG-007",
            "AR-CFG-008",
            "EX-AR-001",
            "SMTP-NDR-002",
            "NDR-ENV-002",
        ),
        2,
        "Never answer <> or Auto-Submitted mail, answer the envelope sender (Return-Path) only, once "
        "per sender per several days, with Auto-Submitted: auto-replied and MAIL FROM:<>; Exchange: "
        "Set-MailboxAutoReplyConfiguration -ExternalAudience Known; remove challenge-response systems.",
        "Get-Mailbox -ResultSize Unlimited | Get-MailboxAutoReplyConfiguration | "
        "Where-Object ExternalAudience -eq All",
    ),
    RootCause(
        "ndr-payload",
        "Return headers only in NDRs",
        (
            "PF-DSN-001",
            "PF-DSN-002",
            "PF-DSN-003",
            "EX-DSN-001",
            "EX-DSN-002",
            "EXIM-DSN-001",
            "SENDMAIL-DSN-001",
            "NDR-FMT-002",
            "NDR-ENV-001",
        ),
        1,
        "postconf -e 'bounce_size_limit = 8192' 'delay_warning_time = 0h' 'bounce_queue_lifetime = 1d'\n"
        "Exchange: Set-TransportConfig -ExternalDsnMaxMessageAttachSize 0",
        "postconf bounce_size_limit delay_warning_time bounce_queue_lifetime",
    ),
    RootCause(
        "sender-callouts",
        "Stop sender callouts to forged domains",
        ("PF-VERIFY-003", "EXIM-CALLOUT-001"),
        1,
        "Remove reject_unverified_sender from global restrictions (keep it, if at all, behind "
        "check_sender_access for a few frequently forged domains); "
        "postconf -e 'address_verify_sender_ttl = 5h17m'.",
        "postconf smtpd_sender_restrictions smtpd_recipient_restrictions address_verify_sender_ttl",
    ),
    RootCause(
        "forwarding",
        "Filter before forwarding off-site and rewrite the envelope (SRS)",
        ("FWD-SRS-001", "FWD-SRS-002", "EX-AR-002"),
        2,
        "Discard spam before it is forwarded; deploy SRS (postsrsd: sender_canonical_maps = "
        "tcp:127.0.0.1:10001, sender_canonical_classes = envelope_sender) and reject invalid SRS "
        "addresses at RCPT.",
        "postconf sender_canonical_maps sender_canonical_classes",
    ),
    RootCause(
        "dns-hygiene",
        "Publish null MX and SPF for names that send no mail",
        ("DNS-NULLMX-001", "DNS-NULLMX-002", "DNS-SPF-001"),
        1,
        'Publish "example.org. IN MX 0 ." (and nothing else as MX) plus "v=spf1 -all" for every '
        'domain that receives no mail; "v=spf1 a -all" for the HELO names of hosts that send NDRs.',
        "dig +short MX example.org  # must print: 0 .",
    ),
    RootCause(
        "confirmed-backscatter",
        "Trace the backscatter that was observed to its cause",
        ("SMTP-NDR-001", "DNS-BL-001", "PF-LOG-001"),
        2,
        "Follow each 'sender non-delivery notification' in the mail log to its status=bounced line, "
        "fix the configuration rule that explains it (the other items of this plan), and wait for "
        "the listing to expire; never pay for delisting.",
        "grep 'sender non-delivery notification' /var/log/mail.log | tail",
    ),
)

# Rules whose fix is specific to them (pipe exit codes, quota policy service, directory account
# state, group restrictions) are deliberately in no cause: their own remediation text is the change.
_BY_RULE: dict[str, RootCause] = {rid: c for c in CAUSES for rid in c.rule_ids}


def cause_of(rule_id: str) -> RootCause | None:
    return _BY_RULE.get(rule_id.upper())


@dataclass(frozen=True)
class PlanItem:
    """One step of the plan: a root cause, the failing findings it answers, and how to check."""

    cause: RootCause
    severity: Severity
    findings: tuple[Finding, ...]
    verify: tuple[str, ...]

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.rule_id for f in self.findings))


def _own_cause(f: Finding) -> RootCause:
    change = f.remediation.as_text() or f"See `backscatter-audit explain {f.rule_id}`."
    return RootCause(f.rule_id, f.title or f.rule_id, (f.rule_id,), 2, change, "")


def plan(findings: Iterable[Finding], command: str = "") -> list[PlanItem]:
    """Group the FAIL findings by root cause, ordered by severity (worst first), then effort."""
    groups: dict[str, tuple[RootCause, list[Finding]]] = {}
    for f in findings:
        if f.status is not Status.FAIL:
            continue
        cause = cause_of(f.rule_id) or _own_cause(f)
        groups.setdefault(cause.id, (cause, []))[1].append(f)
    items = []
    rerun = f"backscatter-audit {command}" if command else ""
    for cause, members in groups.values():
        worst = max(members, key=lambda f: f.severity.rank).severity
        verify = tuple(v for v in (cause.verify, rerun) if v)
        members.sort(key=lambda f: (-f.severity.rank, f.rule_id, f.target))
        items.append(PlanItem(cause, worst, tuple(members), verify))
    items.sort(key=lambda i: (-i.severity.rank, i.cause.effort, i.cause.title))
    return items


__all__ = ["CAUSES", "EFFORT_LABELS", "PlanItem", "RootCause", "cause_of", "plan"]
