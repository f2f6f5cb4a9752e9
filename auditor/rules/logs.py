"""Rules on log and queue evidence: what the site did (PF-LOG-001)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator

from auditor.model import Evidence, Finding, Location, Remediation, Severity
from auditor.observations.logs import PostfixLogEvidence, PostfixQueueSnapshot
from auditor.rules.base import Observations, Rule, rule

# Each cause the log collector tells apart, and the configuration rules whose fix removes it.
CAUSE_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "unknown-recipient": (
        "this host accepted mail for a recipient it then could not find (local/virtual/error)",
        ("PF-RCPT-001", "PF-RCPT-002", "PF-RCPT-005", "PF-RCPT-008", "PF-RCPT-011", "SMTP-RCPT-001"),
    ),
    "inside-server-reject": (
        "the inside server refused a recipient this host had already accepted (no recipient list)",
        ("PF-RCPT-003", "PF-VERIFY-002", "PF-RCPT-009", "SMTP-RCPT-002", "LDAP-SYNC-001"),
    ),
    "relay-access": (
        "the next hop refused to relay for a domain this host accepted",
        ("PF-RCPT-003", "PF-RCPT-009", "PF-RELAY-001"),
    ),
    "content-filter": (
        "a content filter or milter rejected the message after the queue",
        ("PF-FILTER-001", "CF-AMAVIS-001", "CF-MILTER-001", "CF-LDA-001"),
    ),
    "header-body-checks": (
        "header/body checks rejected mail that was already queued",
        ("PF-FILTER-004",),
    ),
    "quota": ("over-quota was decided after the queue", ("PF-QUOTA-001",)),
    "pipe-command": ("a pipe(8) delivery command failed hard", ("PF-PIPE-001",)),
    "next-hop-unavailable": (
        "the next hop was unreachable or answered 4xx until a delay notice or expiry",
        ("PF-RCPT-006", "PF-RCPT-007", "PF-DSN-002", "PF-DSN-003", "SMTP-RCPT-003"),
    ),
    "expiry": (
        "the message expired in the queue (a 4xx or an unreachable next hop for days)",
        ("PF-RCPT-006", "PF-RCPT-007", "PF-DSN-003", "SMTP-RCPT-003"),
    ),
    "success-requested": (
        "a success notice the (possibly forged) sender requested with DSN",
        ("PF-DSN-005",),
    ),
    "other": ("a failure the log reader could not place: read the example lines", ()),
    "unknown": ("no failed delivery of the original is in these logs", ()),
}

QUEUE_MIN_DOMAINS = 3  # null-sender mail deferred to this many distinct domains: backscatter in flight


def _cause_text(counts: dict[str, int]) -> str:
    lines = []
    for cause, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        what, rules = CAUSE_RULES.get(cause, ("", ()))
        fixed_by = f" → fix: {', '.join(rules)}" if rules else ""
        lines.append(f"- {cause} ({n}): {what}{fixed_by}")
    return "\n".join(lines)


def _top(counts: dict[str, int], n: int = 5) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{k} {v}" for k, v in items)


def _log_evidence(o: PostfixLogEvidence) -> list[Evidence]:
    ev = [
        Evidence(
            "counts from the logs",
            data={
                "inputs": list(o.inputs),
                "lines_read": o.lines_read,
                "postfix_lines": o.postfix_lines,
                "skipped_lines": o.skipped_lines,
                "first_time": o.first_time,
                "last_time": o.last_time,
                "notifications": o.notifications,
                "by_kind": o.by_kind,
                "by_zone": o.by_zone,
                "backscatter_notifications": o.backscatter_notifications,
                "backscatter_by_kind": o.backscatter_by_kind,
                "backscatter_by_day": o.backscatter_by_day,
                "backscatter_by_cause": o.backscatter_by_cause,
                "backscatter_by_domain": o.backscatter_by_domain,
                "backscatter_by_entry": o.backscatter_by_entry,
                "unattributed_notifications": o.unattributed_notifications,
                "double_bounces": o.double_bounces,
                "backscatter_double_bounces": o.backscatter_double_bounces,
                "cause_rules": {
                    c: list(CAUSE_RULES.get(c, ("", ()))[1])
                    for c in {**o.backscatter_by_cause, **o.unattributed_by_cause}
                },
                "trusted_networks": list(o.trusted_networks),
                "trusted_source": o.trusted_source,
            },
        )
    ]
    for ex in o.examples:
        if ex.zone == "inside":
            continue
        summary = (
            f"{ex.kind} notification {ex.notification_id} for {ex.queue_id} ({ex.cause}; entered via "
            f"{ex.entry} {ex.client or ''} {ex.zone}".rstrip()
            + f"; notified {ex.notified or '?'}"
            + ("; the notification itself bounced (double bounce)" if ex.double_bounce else "")
            + ")"
        )
        first = ex.lines[0] if ex.lines else None
        ev.append(
            Evidence(
                summary,
                Location(first.file, first.line) if first else None,
                transcript=tuple(f"{ln.file}:{ln.line}: {ln.text}" for ln in ex.lines),
                data={"cause": ex.cause, "via": list(ex.via), "detail": ex.detail},
            )
        )
    for s in o.skipped_examples[:10]:
        ev.append(Evidence(f"skipped line: {s.text}", Location(s.file, s.line)))
    return ev


@rule(
    "PF-LOG-001",
    title="Log evidence of backscatter (notifications for mail from outside)",
    family="logs",  # judged from logs, not from a PostfixConfig (the postfix family's input)
    cause="confirmed-backscatter",
    controls=("OPERATOR-NO-BACKSCATTER",),
    severity=Severity.HIGH,
    needs=(PostfixLogEvidence, PostfixQueueSnapshot),
    remediation="""
        Trace each notification to its cause (the status=bounced line: which transport said what)
        and apply the rules whose fix removes it: unknown recipient after acceptance → PF-RCPT-001/
        002/005; the inside server refused → PF-RCPT-003/PF-VERIFY-002; content filter →
        PF-FILTER-001/CF-AMAVIS-001; quota → PF-QUOTA-001; expiry → PF-RCPT-006. Decide in the SMTP
        session, never afterwards; then read the logs again after a day.
        """,
    references=(
        "Postfix BACKSCATTER_README",
        "bounce(8)",
        "postqueue(1) -j",
        "RFC 5321 §6.2 (prefer rejection during the SMTP transaction)",
    ),
)
def log_backscatter(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags

    Notifications Postfix itself generated — ``postfix/bounce[…]: QID: sender non-delivery
    notification: QID2``, and the delay and success notices — for messages that entered from a
    client outside the site's trusted networks (``--trusted-networks`` or ``mynetworks``; loopback,
    local submission via pickup and SASL-authenticated clients count as inside). Each notice is traced
    through the queue (content-filter re-injection, local forwarding) to how the original came in
    and to the delivery attempt that failed. Null-sender mail waiting in the deferred queue for many
    distinct domains (``postqueue -j``) is the same thing in flight.

    ## Why it causes backscatter

    The senders of mail from outside are unauthenticated; for spam they are forged. Each such notice
    went to an innocent third party; notices that bounce themselves (double bounces) are a strong
    sign the sender was forged. This is backscatter observed, not predicted.

    ## Outcomes

    Fails with any backscatter notice. Passes only when every log was read to its end and every
    notice could be traced to an inside origin (or there were none). Inconclusive when a log could
    not be read completely, or notices could not be traced (the log starts while their original was
    already queued): their number is given.

    ## Example

    A backup MX relays ``nx-4711@example.com`` to the primary, which answers ``550 5.1.1``; the
    backup logs ``status=bounced (host mx1[…] said: 550 5.1.1 …)`` and ``sender non-delivery
    notification`` — cause ``inside-server-reject``, fixed by ``relay_recipient_maps`` (PF-RCPT-003).
    """
    for o in obs.of(PostfixLogEvidence):
        yield from _judge_log(o, r)
    for q in obs.of(PostfixQueueSnapshot):
        yield from _judge_queue(q, r)


def _judge_log(o: PostfixLogEvidence, r: Rule) -> Iterator[Finding]:
    ev = _log_evidence(o)
    skipped = f"; {o.skipped_lines} line(s) skipped" if o.skipped_lines else ""
    period = f" ({o.first_time} … {o.last_time})" if o.first_time else ""
    if o.backscatter_notifications:
        dbl = (
            f", {o.backscatter_double_bounces} of them bounced themselves (forged senders)"
            if o.backscatter_double_bounces
            else ""
        )
        yield r.fail(
            o.target,
            f"{o.backscatter_notifications} notification(s) sent for mail from outside the trusted "
            f"networks{period}{dbl}; causes: {_top(o.backscatter_by_cause)}; "
            f"notified domains: {_top(o.backscatter_by_domain)}{skipped}",
            ev,
            remediation=Remediation(
                text="Backscatter by cause, and the rules whose fix removes each:\n"
                + _cause_text(o.backscatter_by_cause)
                + "\nFix those, then read the logs again: the count must fall to zero."
            ),
        )
        return
    if not o.complete:
        yield r.inconclusive(
            o.target,
            "no backscatter in what was read, but the logs could not be read completely: "
            + "; ".join(o.read_errors[:3]),
            ev,
        )
        return
    if o.unattributed_notifications:
        yield r.inconclusive(
            o.target,
            f"{o.unattributed_notifications} of {o.notifications} notification(s) could not be traced to "
            "how their original entered (it entered before the logs start, or a line is missing): "
            f"read older logs too{skipped}",
            ev,
            remediation=Remediation(text=_cause_text(o.unattributed_by_cause)),
        )
        return
    if o.postfix_lines == 0:
        yield r.inconclusive(o.target, f"no Postfix log line in {o.lines_read} line(s) read{skipped}", ev)
        return
    yield r.passed(
        o.target,
        f"no backscatter: {o.notifications} notification(s), all for mail from inside, in "
        f"{o.postfix_lines} Postfix line(s){period}{skipped}",
        ev,
    )


def _judge_queue(q: PostfixQueueSnapshot, r: Rule) -> Iterator[Finding]:
    target = f"queue {q.source}"
    oldest = (
        _dt.datetime.fromtimestamp(q.oldest_arrival, _dt.UTC).replace(microsecond=0).isoformat()
        if q.oldest_arrival
        else ""
    )
    ev = [
        Evidence(
            "queue snapshot (postqueue -j)",
            data={
                "messages": q.messages,
                "null_sender_messages": q.null_sender_messages,
                "null_sender_deferred": q.null_sender_deferred,
                "null_sender_domains": q.null_sender_domains,
                "by_domain": q.by_domain,
                "oldest": oldest,
                "skipped_lines": q.skipped_lines,
            },
        ),
        *(
            Evidence(
                f"{e.queue_id} (deferred, from=<>) to {', '.join(e.recipients)}: {e.reason}",
                transcript=(e.reason,) if e.reason else (),
            )
            for e in q.examples
        ),
    ]
    if q.null_sender_domains >= QUEUE_MIN_DOMAINS:
        yield r.fail(
            target,
            f"{q.null_sender_deferred} null-sender message(s) deferred for {q.null_sender_domains} distinct "
            f"domains (oldest {oldest}): notifications in flight; top: {_top(q.by_domain)}",
            ev,
            remediation=Remediation(
                text="Read the log for these queue ids (PF-LOG-001 on the mail log gives the cause). "
                "Once the cause is fixed, delete the stuck notices: "
                'mailq | tail -n +2 | grep -v \'^ *(\' | awk \'BEGIN { RS = "" } $7 == "MAILER-DAEMON" '
                "{ print $1 }' | tr -d '*!' | postsuper -d -"
            ),
        )
    elif not q.complete:
        yield r.inconclusive(target, f"the queue snapshot is incomplete: {q.error}", ev)
    elif q.null_sender_deferred:
        yield r.inconclusive(
            target,
            f"{q.null_sender_deferred} null-sender message(s) deferred for {q.null_sender_domains} "
            f"domain(s): too few to call backscatter; read their delay reasons",
            ev,
        )
    else:
        yield r.passed(target, f"no null-sender mail deferred among {q.messages} queued message(s)", ev)
