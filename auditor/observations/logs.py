"""What the mail-log and mail-queue collectors saw: notifications Postfix sent, and why.

``PostfixLogEvidence`` is one reading of a set of Postfix logs: every notification Postfix
generated (non-delivery, delay, success), traced back to how the original message entered the
site and to the delivery attempt that caused it. ``PostfixQueueSnapshot`` is one reading of the
queue (``postqueue -j``): null-sender mail still waiting is backscatter in flight. Facts and counts
only; PF-LOG-001 (``auditor/rules/logs.py``) judges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from auditor.model import Observation

# Notification kinds, as bounce(8) names them in its log line "<sender|postmaster> <kind> notification".
NOTIFICATION_KINDS: tuple[str, ...] = ("non-delivery", "delay", "delivery-status")

# How the original message entered: inside the trusted networks, outside them, or not known (the
# log does not show its entry, e.g. it starts while the message was already queued).
ZONES: tuple[str, ...] = ("inside", "outside", "unknown")

# What caused a notification: the collector's reading of the failed (or delayed) delivery attempt.
CAUSES: tuple[str, ...] = (
    "unknown-recipient",  # this host's own delivery agent (local, virtual, error) had no such user
    "inside-server-reject",  # the next hop (the inside server) refused the recipient after we accepted
    "relay-access",  # the next hop said "Relay access denied"
    "content-filter",  # a content filter or milter refused the message after the queue
    "header-body-checks",  # cleanup's header/body checks rejected queued (e.g. picked-up) mail
    "quota",  # mailbox full / over quota
    "pipe-command",  # a pipe(8) command failed hard
    "next-hop-unavailable",  # connection refused / timed out / 4xx until expiry or delay warning
    "expiry",  # the message expired in the queue (status=expired, returned to sender)
    "success-requested",  # a success notice the sender asked for (DSN NOTIFY=SUCCESS, sendmail -v)
    "other",  # a failure the collector read but could not place
    "unknown",  # no failed delivery attempt of the original is in the log
)


@dataclass(frozen=True)
class LogLine:
    """One log line as evidence: file, line number (1-based) and its text (shortened)."""

    file: str
    line: int
    text: str = ""


@dataclass(frozen=True)
class NotificationExample:
    """One notification, traced: the lines of its original's entry, failure and the notice itself."""

    kind: str  # one of NOTIFICATION_KINDS
    cause: str  # one of CAUSES
    zone: str  # one of ZONES
    entry: str  # smtpd | qmqpd | pickup | sendmail | ... | unknown
    client: str  # name[address] of the SMTP/QMQP client, "" for local submission
    host: str  # the logging host
    queue_id: str  # the original's queue id
    notification_id: str  # the notification's queue id
    notified: str  # the address the notice was sent to (the original's envelope sender)
    original_recipient: str  # the recipient whose delivery failed (or was delayed)
    detail: str  # the failed delivery's reply text
    double_bounce: bool = False  # the notification itself could not be delivered
    via: tuple[str, ...] = ()  # chain of re-injections (content filter, forwarding) back to the entry
    lines: tuple[LogLine, ...] = ()


@dataclass(frozen=True)
class PostfixLogEvidence(Observation):
    """Notifications found in a set of Postfix logs, with counts and traced examples.

    ``backscatter_notifications`` counts the sender notifications (non-delivery, delay and
    success notices) for originals that entered from outside the trusted networks. The ``by_*``
    counters are bounded: past their size, new keys add to the ``"other"`` key, so totals stay exact.
    """

    kind: ClassVar[str] = "log.postfix"

    inputs: tuple[str, ...] = ()
    complete: bool = False  # every input was read to its end without an I/O or decompression error
    read_errors: tuple[str, ...] = ()
    lines_read: int = 0
    postfix_lines: int = 0
    other_program_lines: int = 0  # well-formed syslog lines of programs that are not Postfix
    skipped_lines: int = 0  # lines that are no syslog/maillog line at all (malformed, binary, too long)
    skipped_examples: tuple[LogLine, ...] = ()  # the first few, with their reason as text
    first_time: str = ""
    last_time: str = ""
    hosts: tuple[str, ...] = ()
    restarts: int = 0  # "daemon started" lines
    messages_seen: int = 0  # distinct (host, queue id, lifetime) records opened
    reused_queue_ids: int = 0  # a queue id that started a new message while its old record was open
    evicted_records: int = 0  # records dropped by the bounded table (oldest first) or idle expiry
    open_at_end: int = 0
    linked_reinjections: int = 0  # content-filter re-injections and forwards traced to their parent
    notifications: int = 0  # sender notifications of every kind
    postmaster_notifications: int = 0  # copies to postmaster (notify_classes), not sent to senders
    by_kind: dict[str, int] = field(default_factory=dict)
    by_zone: dict[str, int] = field(default_factory=dict)
    backscatter_notifications: int = 0
    backscatter_by_kind: dict[str, int] = field(default_factory=dict)
    backscatter_by_day: dict[str, int] = field(default_factory=dict)
    backscatter_by_cause: dict[str, int] = field(default_factory=dict)
    backscatter_by_domain: dict[str, int] = field(default_factory=dict)  # domain of the notified sender
    backscatter_by_entry: dict[str, int] = field(default_factory=dict)  # service the original came in by
    backscatter_by_client: dict[str, int] = field(default_factory=dict)
    unattributed_notifications: int = 0  # entry of the original not in the log (zone "unknown")
    unattributed_by_cause: dict[str, int] = field(default_factory=dict)
    double_bounces: int = 0  # notifications that themselves bounced or expired
    backscatter_double_bounces: int = 0
    examples: tuple[NotificationExample, ...] = ()
    trusted_networks: tuple[str, ...] = ()
    trusted_source: str = ""  # where the trusted networks came from (option, main.cf, default)
    notes: tuple[str, ...] = ()  # how years were inferred, what could not be read, ...


@dataclass(frozen=True)
class QueuedNotification:
    """One null-sender message in the queue (a notification waiting to be delivered)."""

    queue_id: str
    queue_name: str
    arrival_time: int
    recipients: tuple[str, ...] = ()
    reason: str = ""  # the first recipient's delay_reason


@dataclass(frozen=True)
class PostfixQueueSnapshot(Observation):
    """A ``postqueue -j`` reading: null-sender mail waiting, and for how many distinct domains."""

    kind: ClassVar[str] = "queue.postfix"

    source: str = ""  # the file read, or "postqueue -c DIR -j"
    complete: bool = False
    error: str = ""
    messages: int = 0
    null_sender_messages: int = 0
    null_sender_deferred: int = 0
    null_sender_domains: int = 0  # distinct recipient domains of the null-sender deferred mail
    by_domain: dict[str, int] = field(default_factory=dict)  # bounded, "other" bucket
    oldest_arrival: int = 0  # epoch seconds of the oldest null-sender deferred message (0: none)
    taken_at: int = 0  # epoch seconds the snapshot was read
    skipped_lines: int = 0
    skipped_examples: tuple[LogLine, ...] = ()
    examples: tuple[QueuedNotification, ...] = ()
