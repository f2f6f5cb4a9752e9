"""What the probe's replies mean (rules.md §11.3, §11.4): verdicts per recipient and per MX address.

The collector records replies; this module reads them. A refusal means "validates" only if a valid
address (postmaster@, ``--control``) was accepted in the same conditions: the same sender, on the
same attempt. A refusal aimed at the probe itself — its sender, its EHLO name, its address on a
blocklist, a rate limit, postscreen — says nothing about recipients: it is inconclusive, with the
setting to change. A 4xx is judged only after the retry: a greylister flips to 2xx/5xx, a
persistent 4xx stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from auditor.observations.smtp import (
    Expect,
    Outcome,
    ProbeResult,
    RcptOutcome,
    Reason,
    Reply,
    Role,
)


class Verdict(StrEnum):
    """How one MX address treats a probe recipient that should not exist."""

    REJECTS_UNKNOWN = "rejects-unknown"
    ACCEPTS_UNKNOWN = "accepts-unknown"
    DEFERS_UNKNOWN = "defers-unknown"
    INCONCLUSIVE = "inconclusive"
    NOT_PROBED = "not-probed"  # out of scope by policy (external MX without consent, no address)


class Why(StrEnum):
    """Why a verdict is what it is, beyond the verdict itself (stable strings for reports)."""

    NONE = ""
    GREYLISTED = "greylisted"
    PERSISTENT_4XX = "persistent-4xx"
    NOT_RETRIED = "not-retried"
    RETRY_FAILED = "retry-failed"
    CONTROL = "control-rejected"  # no valid address was accepted in the same conditions
    SENDER = "sender-refused"
    HELO = "helo-refused"
    DNSBL = "client-blocklisted"
    CLIENT = "client-refused"
    RATE = "rate-limited"
    POSTSCREEN = "postscreen-deferred"
    TARPIT = "tarpit"
    NOT_ASKED = "not-asked"
    PROTOCOL = "protocol-error"


# Session-level reasons, by what they mean for every rule of the address.
NOT_PROBED_REASONS = frozenset({Reason.EXTERNAL, Reason.NO_ADDRESS})
SETUP = frozenset({Why.SENDER, Why.HELO, Why.DNSBL, Why.CLIENT, Why.RATE, Why.POSTSCREEN, Why.TARPIT})

_ENH = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_RULES: tuple[tuple[Why, re.Pattern[str]], ...] = (
    (
        Why.DNSBL,
        re.compile(r"blocked using|listed (?:at|in|on|by)|black ?list|block ?list|dnsbl|\brbl\b|spamhaus"),
    ),
    (Why.POSTSCREEN, re.compile(r"service currently unavailable|come back later")),
    (
        Why.RATE,
        re.compile(
            r"too many (?:connections|recipients|messages|sessions)|too much mail|rate limit|"
            r"\brate\b|exceeded the .* limit|too fast"
        ),
    ),
    (Why.HELO, re.compile(r"\b[he]hlo\b|helo command rejected|hostname.*(?:invalid|not fully)")),
    (
        Why.SENDER,
        re.compile(
            r"sender address rejected|sender (?:domain|address) (?:not found|unknown|invalid)|"
            r"\bspf\b|sender verify|domain of sender|unverified sender|sender.*(?:refused|denied)"
        ),
    ),
    (
        Why.CLIENT,
        re.compile(r"client host rejected|cannot find your (?:host ?name|reverse)|reverse (?:dns|hostname)"),
    ),
)
# Enhanced status codes that name the cause by themselves (RFC 3463, RFC 7372).
_ENH_SETUP = {
    ("1", "7"): Why.SENDER,  # bad sender's mailbox address syntax
    ("1", "8"): Why.SENDER,  # bad sender's system address (domain does not resolve)
    ("7", "23"): Why.SENDER,  # SPF validation failed
    ("7", "25"): Why.CLIENT,  # reverse DNS validation failed
    ("7", "26"): Why.SENDER,  # multiple authentication checks failed
}


def setup_refusal(reply: Reply | None) -> Why | None:
    """The refusal is about the probe (sender, HELO, address, rate), not about the recipient."""
    if reply is None or reply.klass not in (4, 5):
        return None
    text = reply.text.lower()
    m = _ENH.search(text)
    if m is not None and (m.group(2), m.group(3)) in _ENH_SETUP:
        return _ENH_SETUP[(m.group(2), m.group(3))]
    if m is not None and m.group(2) == "1" and m.group(3) in ("1", "2", "3", "6", "10"):
        return None  # 5.1.1 & co: the recipient itself
    for why, pattern in _RULES:
        if pattern.search(text):
            return why
    return None


def fix_for(why: Why, pr: ProbeResult) -> str:
    """The exact thing to change so that the next run measures."""
    ident = pr.identity
    sender = ident.mail_from or "the probe sender"
    source = pr.source_address or "our address"
    return {
        Why.SENDER: f"the MX refuses our sender <{sender}>: set --mail-from (probe.mail_from) to an "
        "address in a domain you control that resolves (MX or A record) and whose SPF allows our address"
        + ("; its domain does not resolve now" if ident.sender_domain_resolves is False else ""),
        Why.HELO: f"the MX refuses our EHLO name {ident.ehlo or ''}: set --ehlo (probe.ehlo) to this "
        f"machine's FQDN, whose A/AAAA record is {source}"
        + ("; the current name does not resolve" if ident.ehlo_resolves is False else ""),
        Why.DNSBL: f"our address {source} is on a DNS blocklist the MX uses: probe from an address that is "
        "not listed, or have the site exempt it (e.g. Postfix check_client_access / postscreen_access_list)",
        Why.CLIENT: f"the MX refuses our client address {source}: probe from an address with "
        "forward-confirmed reverse DNS (PTR and A agree) and use that name as --ehlo",
        Why.RATE: "the MX rate-limits our address: raise --session-delay, probe fewer domains per run, "
        "or run again later",
        Why.POSTSCREEN: "postscreen deferred us after its after-220 tests, also on the reconnect: run "
        "again in a few minutes, or have the site allowlist our address (postscreen_access_list)",
        Why.TARPIT: "replies slowed down until the stage timeout: raise --timeout (probe.timeout) above "
        "the MX's tarpit delay",
    }.get(why, "")


@dataclass(frozen=True)
class Judged:
    """A verdict with its reason, what was seen, and (when inconclusive) what to change."""

    verdict: Verdict
    why: Why | Reason = Why.NONE
    detail: str = ""
    fix: str = ""

    @property
    def reason(self) -> str:
        return str(self.why)


def final_reply(o: RcptOutcome) -> Reply | None:
    """The last answer we have for a recipient: the retry when there was one."""
    return o.retry or o.reply


def is_control(o: RcptOutcome) -> bool:
    """A valid address asked with the normal probe sender (postmaster@, --control)."""
    if o.role is Role.NULL_POSTMASTER:
        return False
    return o.role in (Role.POSTMASTER, Role.CONTROL) or o.expect is Expect.ACCEPT


def control_accepted(pr: ProbeResult, retry: bool) -> bool:
    """A valid address got a 2xx with the probe sender on the same attempt (first pass or retry)."""
    for o in pr.outcomes:
        if is_control(o):
            r = o.retry if retry else o.reply
            if r is not None and r.klass == 2:
                return True
    return False


def session_gap(pr: ProbeResult) -> Judged | None:
    """The address was not probed, or no session got going: the same answer for every rule."""
    if pr.failure in NOT_PROBED_REASONS:
        return Judged(Verdict.NOT_PROBED, pr.failure, pr.detail)
    if not pr.address or pr.failure is Reason.TRUSTED:
        return Judged(Verdict.INCONCLUSIVE, pr.failure or Reason.PROTOCOL, pr.detail)
    if not any(o.reply is not None or o.outcome is Outcome.MAIL_REFUSED for o in pr.outcomes):
        return _stopped(pr, None)
    return None


def _stopped(pr: ProbeResult, o: RcptOutcome | None) -> Judged:
    """No answer for this recipient: the session failed (timeout, 421, EHLO refused, ...)."""
    reason = (o.error if o is not None and o.error else None) or pr.failure or Reason.PROTOCOL
    detail = pr.detail or "no answer"
    if reason is Reason.TIMEOUT and _slow(pr):
        return Judged(Verdict.INCONCLUSIVE, Why.TARPIT, detail, fix_for(Why.TARPIT, pr))
    if reason is Reason.EHLO_REFUSED and pr.ehlo is not None:
        why = setup_refusal(pr.ehlo) or Why.HELO
        return Judged(Verdict.INCONCLUSIVE, why, f"EHLO answered {pr.ehlo}", fix_for(why, pr))
    if reason is Reason.R421:
        limited = setup_refusal(_first_421(pr))
        if limited is not None:
            return Judged(Verdict.INCONCLUSIVE, limited, detail, fix_for(limited, pr))
    if reason is Reason.MAIL_REJECTED and o is not None and o.mail_reply is not None:
        why = setup_refusal(o.mail_reply) or Why.SENDER
        return Judged(Verdict.INCONCLUSIVE, why, f"MAIL FROM answered {o.mail_reply}", fix_for(why, pr))
    return Judged(Verdict.INCONCLUSIVE, reason, detail)


# Commands of a transaction. With PIPELINING a tarpit's timeout shows on the group's first command:
# Postfix smtpd holds the replies to pipelined commands until all are written, sleep included (seen
# in the lab: smtpd_error_sleep_time past the stage timeout timed out on "RSET", not on a RCPT).
_TRANSACTION = ("RCPT", "MAIL", "RSET")


def _slow(pr: ProbeResult) -> bool:
    """The server answered the session and then let a transaction command time out, or took seconds
    per reply: a tarpit (Exchange waits 5 s before each 550 5.1.1; Postfix smtpd_error_sleep_time),
    not a dead server."""
    return pr.detail.startswith(_TRANSACTION) or any(
        o.elapsed >= 2.0 for o in pr.outcomes if o.reply is not None
    )


def _first_421(pr: ProbeResult) -> Reply | None:
    for r in (pr.banner, pr.ehlo):
        if r is not None and r.code == 421:
            return r
    m = re.search(r"\b421\b.*", pr.detail)
    return Reply(421, (m.group(0)[4:],)) if m else None


def _no_control(pr: ProbeResult, o: RcptOutcome, reply: Reply, retry: bool) -> Judged:
    """A refusal without an accepted control in the same conditions: quote why, name the setting."""
    ctl = [c for c in pr.outcomes if is_control(c)]
    seen = [(c, c.retry if retry else c.reply) for c in ctl]
    quoted = "; ".join(f"{c.address}: {r if r is not None else c.error or 'no answer'}" for c, r in seen)
    why = next((w for w in (setup_refusal(r) for _c, r in seen) if w is not None), None)
    when = "on the retry" if retry else "in the same session"
    detail = f"{o.address} got {reply}, but no valid address was accepted {when}" + (
        f" ({quoted})" if quoted else " (no control address: give one with --control)"
    )
    if why is not None:
        return Judged(Verdict.INCONCLUSIVE, why, detail, fix_for(why, pr))
    return Judged(
        Verdict.INCONCLUSIVE,
        Why.CONTROL,
        detail,
        "the refusal may be aimed at our client, not the recipient: check --ehlo and --mail-from, "
        "and give a --control address that exists",
    )


def judge(pr: ProbeResult, o: RcptOutcome) -> Judged:
    """The verdict for one recipient a safe site refuses (unknown, subdomain, relay)."""
    gap = session_gap(pr)
    if gap is not None:
        return gap
    if o.outcome is Outcome.MAIL_REFUSED:
        return _stopped(pr, o)
    first = o.reply
    if first is None:
        return _stopped(pr, o)
    if first.code == 421:
        why = setup_refusal(first)
        return Judged(
            Verdict.INCONCLUSIVE,
            why or Reason.R421,
            f"RCPT answered {first}",
            fix_for(why, pr) if why else "",
        )
    if first.klass == 2:
        return Judged(Verdict.ACCEPTS_UNKNOWN, Why.NONE, f"RCPT {o.address}: {first}")
    why = setup_refusal(first)
    if why is not None and not (
        o.retry is not None and o.retry.klass in (2, 5) and setup_refusal(o.retry) is None
    ):
        return Judged(Verdict.INCONCLUSIVE, why, f"RCPT {o.address}: {first}", fix_for(why, pr))
    if first.klass == 5:
        if not control_accepted(pr, False):
            return _no_control(pr, o, first, False)
        return Judged(Verdict.REJECTS_UNKNOWN, Why.NONE, f"RCPT {o.address}: {first}")
    if first.klass != 4:
        return Judged(Verdict.INCONCLUSIVE, Why.PROTOCOL, f"RCPT {o.address}: {first} is no RCPT reply")
    # 4xx: only the retry tells greylisting from a persistent temporary failure.
    retry = o.retry
    if retry is None:
        why = Why.RETRY_FAILED if o.retried or o.retry_error else Why.NOT_RETRIED
        return Judged(Verdict.DEFERS_UNKNOWN, why, f"RCPT {o.address}: {first}")
    if retry.klass == 2:
        return Judged(Verdict.ACCEPTS_UNKNOWN, Why.GREYLISTED, f"{first}, then on retry {retry}")
    if retry.klass == 5:
        if not control_accepted(pr, True):
            return _no_control(pr, o, retry, True)
        return Judged(Verdict.REJECTS_UNKNOWN, Why.GREYLISTED, f"{first}, then on retry {retry}")
    if retry.klass == 4 and retry.code != 421:
        if not control_accepted(pr, True):
            return _no_control(pr, o, retry, True)
        return Judged(Verdict.DEFERS_UNKNOWN, Why.PERSISTENT_4XX, f"{first}, and again on retry: {retry}")
    return Judged(
        Verdict.INCONCLUSIVE, Reason.R421 if retry.code == 421 else Why.PROTOCOL, f"retry answered {retry}"
    )


def unknown_outcomes(pr: ProbeResult, rule_id: str = "SMTP-RCPT-001") -> list[RcptOutcome]:
    """The recipients that stand for "unknown": the random local part, and every other probe a safe
    site refuses that names ``rule_id`` in its ``feeds``."""
    return [
        o
        for o in pr.outcomes
        if o.role is Role.UNKNOWN or (rule_id in o.feeds and o.expect is Expect.REFUSE and not is_control(o))
    ]


_ORDER = {
    Verdict.ACCEPTS_UNKNOWN: 0,
    Verdict.INCONCLUSIVE: 1,
    Verdict.DEFERS_UNKNOWN: 2,
    Verdict.REJECTS_UNKNOWN: 3,
    Verdict.NOT_PROBED: 4,
}


def classify(pr: ProbeResult, rule_id: str = "SMTP-RCPT-001") -> Judged:
    """The address's verdict for unknown recipients: the weakest over every unknown-recipient probe."""
    gap = session_gap(pr)
    if gap is not None:
        return gap
    judged = [judge(pr, o) for o in unknown_outcomes(pr, rule_id)]
    if not judged:
        return Judged(
            Verdict.INCONCLUSIVE, pr.failure or Reason.PROTOCOL, pr.detail or "no unknown recipient asked"
        )
    return min(judged, key=lambda j: _ORDER[j.verdict])
