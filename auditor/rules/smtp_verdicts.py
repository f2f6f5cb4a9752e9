"""Verdicts: how one MX address treats a random unknown recipient of one domain (rules.md §11.3).

The control addresses (postmaster@ and --control) tell "rejects unknown" from "rejects everything"
(our client blocklisted, domain not served). A 4xx is only judged after the retry: a greylister
flips to 2xx/5xx, a persistent 4xx stays.
"""

from __future__ import annotations

from auditor.observations.smtp import (
    R_421,
    R_CONTROL,
    R_PROTOCOL,
    ProbeResult,
    RcptOutcome,
    Reply,
    Verdict,
)

CONTROL_ROLES = ("postmaster", "control")
# Reasons attached to defers-unknown / greylisted verdicts (not failures of measurement).
GREYLISTED = "greylisted"
PERSISTENT_4XX = "persistent-4xx"
NOT_RETRIED = "not-retried"
RETRY_FAILED = "retry-failed"


def final_reply(o: RcptOutcome) -> Reply | None:
    """The last answer we have for a recipient: the retry when there was one."""
    return o.retry or o.reply


def controls_accepted(pr: ProbeResult) -> bool:
    """At least one control address got a 2xx (on the first try or the retry)."""
    for o in pr.outcomes:
        if o.role in CONTROL_ROLES:
            for r in (o.reply, o.retry):
                if r is not None and r.klass == 2:
                    return True
    return False


def controls_all_refused(pr: ProbeResult) -> bool:
    """Every control was answered, and every final answer was a 5xx (or there is no control)."""
    finals = [final_reply(o) for o in pr.outcomes if o.role in CONTROL_ROLES]
    if not finals:
        return True
    return all(r is not None and r.klass == 5 for r in finals)


def classify(pr: ProbeResult, failure: str = "", failure_detail: str = "") -> tuple[Verdict, str, str]:
    """(verdict, reason, detail) for a probe result whose outcomes are filled in."""
    unknown = pr.outcome("unknown")
    if unknown is None or unknown.reply is None:
        reason = (unknown.error if unknown is not None and unknown.error else failure) or R_PROTOCOL
        return Verdict.INCONCLUSIVE, reason, failure_detail or "no answer to the unknown recipient"
    first = unknown.reply
    if first.code == 421:
        return Verdict.INCONCLUSIVE, R_421, f"RCPT answered {first}"
    if first.klass == 2:
        return Verdict.ACCEPTS_UNKNOWN, "", f"RCPT {unknown.address}: {first}"
    if first.klass == 5:
        return _rejected(pr, unknown, first, "")
    if first.klass != 4:
        return Verdict.INCONCLUSIVE, R_PROTOCOL, f"unexpected RCPT reply {first}"
    # 4xx: only the retry tells greylisting from a persistent temporary failure.
    retry = unknown.retry
    if retry is None:
        reason = RETRY_FAILED if unknown.retry_error else NOT_RETRIED
        return Verdict.DEFERS_UNKNOWN, reason, f"RCPT {unknown.address}: {first}"
    if retry.klass == 2:
        return Verdict.ACCEPTS_UNKNOWN, GREYLISTED, f"{first}, then on retry {retry}"
    if retry.klass == 5:
        return _rejected(pr, unknown, retry, GREYLISTED)
    return Verdict.DEFERS_UNKNOWN, PERSISTENT_4XX, f"{first}, and again on retry: {retry}"


def _rejected(pr: ProbeResult, unknown: RcptOutcome, reply: Reply, reason: str) -> tuple[Verdict, str, str]:
    if controls_all_refused(pr):
        return (
            Verdict.INCONCLUSIVE,
            R_CONTROL,
            f"the unknown recipient got {reply}, but so did every control address: the host may "
            "refuse our client (blocklist) or not serve this domain",
        )
    if not controls_accepted(pr):
        # A 5xx for the unknown address means "validates" only if a valid address got through.
        return (
            Verdict.INCONCLUSIVE,
            R_CONTROL,
            f"the unknown recipient got {reply}, but no control address was accepted (no answer or 4xx)",
        )
    return Verdict.REJECTS_UNKNOWN, reason, f"RCPT {unknown.address}: {reply}"
