"""Live SMTP probe rules (rules.md §1): what each MX address answered to the probe recipients.

All rules read :class:`ProbeResult` observations (one per domain and MX address). Unreachable,
blocklisted or otherwise unmeasured addresses are ``inconclusive``, never ``pass``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from auditor.model import Evidence, Finding, Severity
from auditor.observations.smtp import (
    R_BANNER_554,
    R_CONTROL,
    R_MAIL_REJECTED,
    ProbeResult,
    RcptOutcome,
    Verdict,
)
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.smtp_verdicts import (
    GREYLISTED,
    PERSISTENT_4XX,
    RETRY_FAILED,
    controls_accepted,
    final_reply,
)

_REFS_5321 = "RFC 5321 §6.1"


def _evidence(pr: ProbeResult, summary: str = "") -> list[Evidence]:
    data: dict[str, object] = {
        "domain": pr.domain,
        "mx_host": pr.mx_host,
        "address": pr.address,
        "preference": pr.preference,
        "verdict": pr.verdict.value,
        "reason": pr.reason,
        "source_address": pr.source_address,
        "tls": pr.tls.version if pr.tls.ok else ("failed" if pr.tls.error else "not offered/used"),
    }
    for o in pr.outcomes:
        data[f"rcpt.{o.role}.{o.address}"] = str(final_reply(o) or o.error or "not asked")
    return [
        Evidence(
            summary=summary or f"probe of {pr.target}: {pr.verdict.value}",
            transcript=pr.transcript,
            data=data,
        )
    ]


def _unmeasured(pr: ProbeResult, r: Rule) -> Finding | None:
    """The common not-probed / inconclusive outcome, or None when the probe measured something."""
    if pr.verdict is Verdict.NOT_PROBED:
        return r.not_applicable(pr.target, f"not probed ({pr.reason}): {pr.detail}", _evidence(pr))
    if pr.verdict is Verdict.INCONCLUSIVE:
        return r.inconclusive(pr.target, f"could not measure ({pr.reason}): {pr.detail}", _evidence(pr))
    return None


def _reply_text(o: RcptOutcome) -> str:
    first = o.reply
    final = final_reply(o)
    if first is not None and o.retry is not None:
        return f"{first}, on retry {o.retry}"
    return str(final) if final is not None else (o.error or "no answer")


@rule(
    "SMTP-RCPT-001",
    title="MX accepts a random local part at RCPT (accept-all)",
    family="smtp",
    cause="local-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(ProbeResult,),
    remediation="""
        Validate recipients at the SMTP edge: Postfix relay_recipient_maps / local_recipient_maps /
        virtual maps (PF-RCPT-001..004), Exchange Recipient Lookup (EX-RCPT-001), Exim verify = recipient.
    """,
    references=(_REFS_5321, "Postfix LOCAL_RECIPIENT_README", "Postfix BACKSCATTER_README"),
)
def accepts_unknown(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    An MX address that answers 2xx to ``RCPT TO:<random@domain>`` for a high-entropy local part
    that cannot exist (prefix ``bsaxq``), judged per domain and per A/AAAA of every MX.

    ## Why it causes backscatter
    What is accepted for a non-existent user must be bounced later (RFC 5321 §6.1), to the
    envelope sender, which for spam is a forged innocent third party.

    ## How to fix
    Reject unknown recipients with 5xx at RCPT time: list valid recipients on every MX.

    ## Example
    ``RCPT TO:<bsaxq7k2m9q4v1x8c3z0@example.com>`` → ``250 2.1.5 Ok`` is a failure; ``550 5.1.1 …
    User unknown`` passes. A 4xx is retried (``--retry-after``) before it is judged.
    """
    for pr in obs.of(ProbeResult):
        gap = _unmeasured(pr, r)
        if gap is not None:
            yield gap
            continue
        unknown = pr.outcome("unknown")
        text = _reply_text(unknown) if unknown else ""
        if pr.verdict is Verdict.ACCEPTS_UNKNOWN:
            extra = " (after greylisting)" if pr.reason == GREYLISTED else ""
            yield r.fail(pr.target, f"accepts a random recipient{extra}: {text}", _evidence(pr))
        elif pr.verdict is Verdict.REJECTS_UNKNOWN:
            yield r.passed(pr.target, f"rejects a random recipient: {text}", _evidence(pr))
        elif pr.reason == PERSISTENT_4XX:
            yield r.passed(
                pr.target,
                f"does not accept a random recipient (persistent 4xx, see SMTP-RCPT-003): {text}",
                _evidence(pr),
            )
        else:
            yield r.inconclusive(
                pr.target,
                f"4xx for the random recipient ({text}) and "
                + ("the retry failed" if pr.reason == RETRY_FAILED else "no retry (use --retry-after)")
                + ": greylisting not told apart from a persistent 4xx",
                _evidence(pr),
            )


_STRENGTH = {Verdict.REJECTS_UNKNOWN: 3, Verdict.DEFERS_UNKNOWN: 2, Verdict.ACCEPTS_UNKNOWN: 1}


def _strength(pr: ProbeResult) -> int | None:
    if pr.verdict is Verdict.DEFERS_UNKNOWN and pr.reason != PERSISTENT_4XX:
        return None  # not retried: greylisting may hide either answer
    return _STRENGTH.get(pr.verdict)


@rule(
    "SMTP-RCPT-002",
    title="Backup/secondary MX weaker than primary",
    family="smtp",
    cause="relay-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(ProbeResult,),
    remediation="""
        Give every backup MX the same recipient list as the primary (Postfix relay_recipient_maps,
        Exim callout to the primary, Exchange Edge recipient lookup), or remove the backup MX record.
    """,
    references=("Postfix STANDARD_CONFIGURATION_README (primary or backup MX)", "RFC 5321 §3.6.2"),
)
def weaker_backup(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    For each domain, every MX address whose verdict for the random recipient is weaker than the
    best-preference host's (reject 5xx > persistent 4xx > accept 2xx): typically a backup MX that
    accepts what the primary rejects, or one address of a load-balanced pool that does not validate.

    ## Why it causes backscatter
    Spammers target backup MXes on purpose. The backup queues the message; when the primary later
    refuses the unknown user, the backup bounces to the forged sender.

    ## How to fix
    Same recipient validation on every MX, or no backup MX at all (senders queue for days anyway).
    """
    by_domain: dict[str, list[ProbeResult]] = defaultdict(list)
    for pr in obs.of(ProbeResult):
        by_domain[pr.domain].append(pr)
    for results in by_domain.values():
        if len(results) < 2:
            for pr in results:
                yield r.not_applicable(pr.target, "the domain has a single MX address", _evidence(pr))
            continue
        primary = [s for s in (_strength(p) for p in results if p.primary) if s is not None]
        best = max(primary) if primary else None
        for pr in results:
            gap = _unmeasured(pr, r)
            if gap is not None:
                yield gap
                continue
            mine = _strength(pr)
            if mine is None:
                yield r.inconclusive(pr.target, "4xx for the random recipient, not retried", _evidence(pr))
            elif best is None:
                yield r.inconclusive(
                    pr.target, "no primary MX address could be measured to compare with", _evidence(pr)
                )
            elif mine < best:
                yield r.fail(
                    pr.target,
                    f"{pr.verdict.value} while the primary MX rejects more strictly "
                    f"({'5xx' if best == 3 else 'persistent 4xx'})",
                    _evidence(pr),
                )
            else:
                yield r.passed(pr.target, f"{pr.verdict.value}, as strict as the primary MX", _evidence(pr))


@rule(
    "SMTP-RCPT-003",
    title="Unknown recipients get a persistent 4xx instead of 5xx",
    family="smtp",
    cause="permanent-reject",
    controls=("RFC5321-4.2.5-5xx",),
    severity=Severity.MEDIUM,
    needs=(ProbeResult,),
    remediation="""
        Answer unknown recipients with 5xx: Postfix unknown_local_recipient_reject_code = 550
        (PF-RCPT-006), soft_bounce = no (PF-RCPT-007), no 4xx for unverified recipients
        (PF-VERIFY-001); fix failing directory lookups (451 4.3.0).
    """,
    references=("postconf(5) unknown_local_recipient_reject_code", "postconf(5) soft_bounce", "RFC 6647"),
)
def persistent_4xx(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    The random recipient gets a 4xx, and again a 4xx when asked again after ``--retry-after``
    from the same client with the same sender, while a control address gets 2xx. A 4xx that flips
    to 5xx or 2xx on the retry is greylisting, not this problem.

    ## Why it causes backscatter
    The sending MTA keeps the message queued for days and then its own MTA bounces it to the
    (forged) sender; backup MXes queue it too.

    ## How to fix
    Make "user unknown" a 5xx (see the remediation); keep greylisting after recipient validation.
    Severity rises to high when a backup MX of the domain defers too (it queues the mail as well).
    """
    results = obs.of(ProbeResult)
    for pr in results:
        gap = _unmeasured(pr, r)
        if gap is not None:
            yield gap
            continue
        unknown = pr.outcome("unknown")
        text = _reply_text(unknown) if unknown else ""
        if pr.reason == PERSISTENT_4XX:
            if controls_accepted(pr):
                backup = [
                    o.target
                    for o in results
                    if o.domain == pr.domain and not o.primary and o.reason == PERSISTENT_4XX and o is not pr
                ]
                severity = Severity.HIGH if backup else None
                extra = f"; a backup MX defers too ({', '.join(backup)})" if backup else ""
                yield r.fail(
                    pr.target,
                    f"persistent 4xx for a random recipient: {text}{extra}",
                    _evidence(pr),
                    severity=severity,
                )
            else:
                yield r.inconclusive(
                    pr.target, f"persistent 4xx, but no control address got 2xx: {text}", _evidence(pr)
                )
        elif pr.verdict is Verdict.DEFERS_UNKNOWN:
            yield r.inconclusive(pr.target, f"4xx not retried ({text}); use --retry-after", _evidence(pr))
        elif pr.verdict is Verdict.ACCEPTS_UNKNOWN:
            yield r.not_applicable(pr.target, "accepts the random recipient (SMTP-RCPT-001)", _evidence(pr))
        elif pr.reason == GREYLISTED:
            yield r.passed(pr.target, f"greylisting, then a final answer: {text}", _evidence(pr))
        else:
            yield r.passed(pr.target, f"5xx for the random recipient: {text}", _evidence(pr))


def _single(
    r: Rule, pr: ProbeResult, role: str, absent: str, bad_class: int, bad_msg: str, good_msg: str
) -> Finding:
    """Judge one recipient whose 2xx (bad_class 2) or 5xx (bad_class 5) is the failure."""
    o = pr.outcome(role)
    if o is None:
        return r.not_applicable(pr.target, absent, _evidence(pr))
    final = final_reply(o)
    if final is None:
        return r.inconclusive(pr.target, f"no answer to {o.address}: {o.error or pr.reason}", _evidence(pr))
    if pr.reason == R_CONTROL and final.klass == 5:
        return r.inconclusive(
            pr.target, f"{o.address}: {final}, but every control was refused too", _evidence(pr)
        )
    if final.klass == bad_class:
        return r.fail(pr.target, f"{bad_msg}: RCPT {o.address} → {_reply_text(o)}", _evidence(pr))
    if final.klass in (2, 5):
        return r.passed(pr.target, f"{good_msg}: RCPT {o.address} → {_reply_text(o)}", _evidence(pr))
    return r.inconclusive(pr.target, f"temporary answer for {o.address}: {_reply_text(o)}", _evidence(pr))


@rule(
    "SMTP-RCPT-006",
    title="Subdomains of a hosted domain accepted",
    family="smtp",
    cause="relay-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=(ProbeResult,),
    remediation="""
        Give relay domains a recipient list (PF-RCPT-003) and remove relay_domains from
        parent_domain_matches_subdomains where subdomains are not meant to be relayed (list
        .domain entries explicitly where they are).
    """,
    references=("postconf(5) parent_domain_matches_subdomains", "Postfix COMPATIBILITY_README"),
)
def subdomain_accepted(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    ``RCPT TO:<random@random-label.domain>`` answered 2xx.

    ## Why it causes backscatter
    Postfix matches subdomains of relay domains by default (parent_domain_matches_subdomains),
    so a relay domain without a recipient list relays random subdomains too; the next hop
    rejects them and Postfix bounces to the forged sender.

    ## How to fix
    See the remediation: recipient lists for relay domains and no implicit subdomain matching.
    """
    for pr in obs.of(ProbeResult):
        gap = _unmeasured(pr, r)
        yield gap or _single(
            r,
            pr,
            "subdomain",
            "subdomain probe not run (--no-subdomain-probe)",
            2,
            "accepts a random subdomain",
            "rejects a random subdomain",
        )


@rule(
    "SMTP-NULL-001",
    title="Null reverse-path refused",
    family="smtp",
    cause="null-sender-postmaster",
    controls=("RFC1123-5.2.9",),
    severity=Severity.HIGH,
    needs=(ProbeResult,),
    remediation="""
        Postfix: remove <>/empty-sender REJECT entries from smtpd_sender_restrictions and
        check_sender_access tables. Exchange: Set-SenderFilterConfig -BlankSenderBlockingEnabled $false.
    """,
    references=("RFC 1123 §5.2.9", "RFC 5321 §4.5.5", "RFC 3464 §2", "postconf(5) address_verify_sender"),
)
def null_sender_refused(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    ``MAIL FROM:<>`` refused with 5xx, or accepted but its single ``RCPT TO:<postmaster@domain>``
    refused while the same recipient is accepted for the normal probe sender. (The null-sender
    transaction always carries exactly one RCPT: Postfix reject_multi_recipient_bounce rightly
    refuses <> with several.)

    ## Why it matters
    Delivery status notifications, MDNs and other sites' address verification all use the null
    reverse path. A site that refuses it cannot receive bounces for its own mail and breaks the
    verification that others use to avoid backscatter.

    ## How to fix
    Accept ``<>`` like any other sender (see the remediation).
    """
    for pr in obs.of(ProbeResult):
        gap = _unmeasured(pr, r)
        if gap is not None:
            yield gap
            continue
        null = pr.outcome("null-postmaster")
        normal = pr.outcome("postmaster")
        normal_final = final_reply(normal) if normal else None
        if null is None:
            yield r.not_applicable(
                pr.target, "null sender not tested on this address (per-address sample)", _evidence(pr)
            )
            continue
        if null.error == R_MAIL_REJECTED and null.mail_reply is not None:
            if normal is not None and normal.mail_reply is not None and normal.mail_reply.klass == 2:
                yield r.fail(pr.target, f"MAIL FROM:<> refused: {null.mail_reply}", _evidence(pr))
            else:
                yield r.inconclusive(
                    pr.target,
                    f"MAIL FROM:<> refused ({null.mail_reply}), but so was the normal sender",
                    _evidence(pr),
                )
            continue
        final = final_reply(null)
        if final is None:
            yield r.inconclusive(pr.target, f"no answer to the null-sender RCPT: {null.error}", _evidence(pr))
        elif final.klass == 2:
            yield r.passed(
                pr.target, f"MAIL FROM:<> and RCPT {null.address} accepted: {final}", _evidence(pr)
            )
        elif final.klass == 5 and normal_final is not None and normal_final.klass == 2:
            yield r.fail(
                pr.target,
                f"RCPT {null.address} refused after MAIL FROM:<> ({final}) but accepted for the normal "
                f"sender ({normal_final})",
                _evidence(pr),
            )
        else:
            yield r.inconclusive(
                pr.target,
                f"null-sender RCPT answered {_reply_text(null)}; the normal sender "
                f"got {normal_final or 'no answer'}",
                _evidence(pr),
            )


@rule(
    "SMTP-PM-001",
    title="Postmaster not accepted",
    family="smtp",
    cause="null-sender-postmaster",
    controls=("RFC5321-4.5.1",),
    severity=Severity.MEDIUM,
    needs=(ProbeResult,),
    remediation="""
        Alias postmaster in every hosted domain (Postfix virtual_alias_maps
        "postmaster@example.com postmaster") and exempt it from content and rate policies.
    """,
    references=("RFC 5321 §4.5.1", "Postfix VIRTUAL_README"),
)
def postmaster_refused(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    ``RCPT TO:<postmaster@domain>`` refused with 5xx for the normal probe sender, on any MX address.
    Not applicable when the server answers 554 at connection time (RFC 5321 §4.5.1 exempts it).

    ## Why it matters
    Postmaster is the one address other operators can use to report backscatter and abuse.

    ## How to fix
    Alias postmaster@ in every domain you serve.
    """
    for pr in obs.of(ProbeResult):
        if pr.reason == R_BANNER_554:
            yield r.not_applicable(pr.target, "the server answers 554 at connection time", _evidence(pr))
            continue
        gap = _unmeasured(pr, r)
        yield gap or _single(
            r, pr, "postmaster", "postmaster scenario not run", 5, "postmaster refused", "postmaster accepted"
        )


@rule(
    "SMTP-RELAY-001",
    title="Open relay",
    family="smtp",
    cause="relay-control",
    controls=("RFC5321-3.6.2",),
    severity=Severity.CRITICAL,
    needs=(ProbeResult,),
    remediation="""
        Postfix: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
        reject_unauth_destination (PF-RELAY-001). Exchange: no anonymous relay permission on
        Internet receive connectors.
    """,
    references=("postconf(5) smtpd_relay_restrictions", "RFC 5321 §3.6.2"),
)
def open_relay(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    An unauthenticated ``RCPT TO:<random@relay-test-domain>`` answered 2xx, where the relay test
    domain is one the user named as theirs (``--relay-test-domain``) and the site does not serve.
    Never run against third-party domains, and never followed by DATA.

    ## Why it causes backscatter
    A relay forwards spam whose rejections it then bounces: relaying and backscatter come together.

    ## How to fix
    Relay only for your own networks and authenticated clients (see the remediation).
    """
    for pr in obs.of(ProbeResult):
        gap = _unmeasured(pr, r)
        yield gap or _single(
            r,
            pr,
            "relay",
            "no --relay-test-domain given",
            2,
            "relays to a foreign domain",
            "refuses to relay",
        )
