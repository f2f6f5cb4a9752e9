"""Live SMTP probe rules (rules.md §1): what each MX address answered to the probe recipients.

All rules read :class:`ProbeResult` observations (one per domain and MX address). Unreachable,
blocklisted or otherwise unmeasured addresses are ``inconclusive``, never ``pass``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from auditor.model import Evidence, Finding, Severity, Status
from auditor.observations.smtp import Expect, Outcome, ProbeResult, RcptOutcome, Reason, Role
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.smtp_verdicts import (
    Judged,
    Verdict,
    Why,
    classify,
    final_reply,
    fix_for,
    is_control,
    judge,
    session_gap,
    setup_refusal,
    unknown_outcomes,
)

_REFS_5321 = "RFC 5321 §6.1"


def _evidence(pr: ProbeResult, summary: str = "", j: Judged | None = None) -> list[Evidence]:
    j = j or classify(pr)
    data: dict[str, object] = {
        "domain": pr.domain,
        "mx_host": pr.mx_host,
        "address": pr.address,
        "preference": pr.preference,
        "verdict": j.verdict.value,
        "reason": j.reason,
        "source_address": pr.source_address,
        "tls": pr.tls.version if pr.tls.ok else ("failed" if pr.tls.error else "not offered/used"),
    }
    for o in pr.outcomes:
        data[f"rcpt.{o.role}.{o.address}"] = _reply_text(o)
    for w in pr.identity.warnings:
        data.setdefault("identity", [])
        data["identity"].append(w)  # type: ignore[attr-defined]
    return [
        Evidence(
            summary=summary or f"probe of {pr.target}: {j.verdict.value}",
            transcript=pr.transcript,
            data=data,
        )
    ]


def _reply_text(o: RcptOutcome) -> str:
    if o.outcome is Outcome.MAIL_REFUSED:
        return f"not asked: MAIL FROM answered {o.mail_reply}"
    first = o.reply
    if first is not None and o.retry is not None:
        return f"{first}, on retry {o.retry}"
    if first is not None:
        return str(first)
    return f"no answer ({o.error})" if o.error else "not asked"


def _gap(pr: ProbeResult, r: Rule) -> Finding | None:
    """The common not-probed / nothing-measured outcome, or None when the session got answers."""
    j = session_gap(pr)
    if j is None:
        return None
    return _unmeasured(pr, r, j)


def _unmeasured(pr: ProbeResult, r: Rule, j: Judged, what: str = "") -> Finding:
    if j.verdict is Verdict.NOT_PROBED:
        return r.not_applicable(pr.target, f"not probed ({j.reason}): {j.detail}", _evidence(pr, j=j))
    text = f"could not measure{' ' + what if what else ''} ({j.reason}): {j.detail}"
    if j.fix:
        return r.inconclusive(pr.target, f"{text} — {j.fix}", _evidence(pr, j=j), remediation=j.fix)
    return r.inconclusive(pr.target, text, _evidence(pr, j=j))


_RANK = {Status.FAIL: 0, Status.INCONCLUSIVE: 1, Status.PASS: 2, Status.NOT_APPLICABLE: 3}


def _combine(r: Rule, pr: ProbeResult, parts: list[Finding]) -> Finding:
    """One finding per rule and address over every recipient the rule judged there: the worst wins."""
    if len(parts) == 1:
        return parts[0]
    worst = min(parts, key=lambda f: _RANK.get(f.status, 9))
    others = [f.message for f in parts if f is not worst]
    return r.finding(
        worst.status,
        pr.target,
        worst.message + "".join(f"; also: {m}" for m in others),
        worst.evidence,
        severity=worst.severity,
        remediation=worst.remediation,
    )


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

    ## Example
    ``RCPT TO:<bsaxq7k2m9q4v1x8c3z0@example.com>`` → ``250 2.1.5 Ok`` is a failure; ``550 5.1.1 …
    User unknown`` passes. A 4xx is retried (``--retry-after``) before it is judged.
    """
    for pr in obs.of(ProbeResult):
        gap = _gap(pr, r)
        if gap is not None:
            yield gap
            continue
        parts = [_rcpt_001(r, pr, o) for o in unknown_outcomes(pr, r.id)]
        yield _combine(r, pr, parts) if parts else r.not_applicable(pr.target, "no unknown recipient probed")


def _rcpt_001(r: Rule, pr: ProbeResult, o: RcptOutcome) -> Finding:
    j = judge(pr, o)
    text = f"{o.address}: {_reply_text(o)}"
    ev = _evidence(pr, j=j)
    if j.verdict is Verdict.ACCEPTS_UNKNOWN:
        extra = " (after greylisting)" if j.why is Why.GREYLISTED else ""
        return r.fail(pr.target, f"accepts a random recipient{extra}: {text}", ev)
    if j.verdict is Verdict.REJECTS_UNKNOWN:
        return r.passed(pr.target, f"rejects a random recipient: {text}", ev)
    if j.verdict is Verdict.DEFERS_UNKNOWN and j.why is Why.PERSISTENT_4XX:
        return r.passed(
            pr.target, f"does not accept a random recipient (persistent 4xx, see SMTP-RCPT-003): {text}", ev
        )
    if j.verdict is Verdict.DEFERS_UNKNOWN:
        return r.inconclusive(
            pr.target,
            f"4xx for the random recipient ({text}) and "
            + ("the retry failed" if j.why is Why.RETRY_FAILED else "no retry (use --retry-after)")
            + ": greylisting not told apart from a persistent 4xx",
            ev,
        )
    return _unmeasured(pr, r, j, f"{o.address}")


_STRENGTH = {Verdict.REJECTS_UNKNOWN: 3, Verdict.DEFERS_UNKNOWN: 2, Verdict.ACCEPTS_UNKNOWN: 1}


def _strength(j: Judged) -> int | None:
    if j.verdict is Verdict.DEFERS_UNKNOWN and j.why is not Why.PERSISTENT_4XX:
        return None  # not retried: greylisting may hide either answer
    return _STRENGTH.get(j.verdict)


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
    """
    by_domain: dict[str, list[ProbeResult]] = defaultdict(list)
    for pr in obs.of(ProbeResult):
        by_domain[pr.domain].append(pr)
    for results in by_domain.values():
        if len(results) < 2:
            for pr in results:
                yield r.not_applicable(pr.target, "the domain has a single MX address", _evidence(pr))
            continue
        judged = {id(p): classify(p, r.id) for p in results}
        primary = [s for s in (_strength(judged[id(p)]) for p in results if p.primary) if s is not None]
        best = max(primary) if primary else None
        for pr in results:
            j = judged[id(pr)]
            if j.verdict in (Verdict.NOT_PROBED, Verdict.INCONCLUSIVE):
                yield _unmeasured(pr, r, j)
                continue
            mine = _strength(j)
            if mine is None:
                yield r.inconclusive(
                    pr.target, "4xx for the random recipient, not retried", _evidence(pr, j=j)
                )
            elif best is None:
                yield r.inconclusive(
                    pr.target, "no primary MX address could be measured to compare with", _evidence(pr, j=j)
                )
            elif mine < best:
                yield r.fail(
                    pr.target,
                    f"{j.verdict.value} while the primary MX rejects more strictly "
                    f"({'5xx' if best == 3 else 'persistent 4xx'})",
                    _evidence(pr, j=j),
                )
            else:
                yield r.passed(
                    pr.target, f"{j.verdict.value}, as strict as the primary MX", _evidence(pr, j=j)
                )


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

    ## Severity
    Severity rises to high when a backup MX of the domain defers too (it queues the mail as well).
    """
    results = obs.of(ProbeResult)
    persistent = {
        id(p) for p in results for o in unknown_outcomes(p, r.id) if judge(p, o).why is Why.PERSISTENT_4XX
    }
    for pr in results:
        gap = _gap(pr, r)
        if gap is not None:
            yield gap
            continue
        backup = [
            o.target
            for o in results
            if o.domain == pr.domain and not o.primary and id(o) in persistent and o is not pr
        ]
        parts = [_rcpt_003(r, pr, o, backup) for o in unknown_outcomes(pr, r.id)]
        yield _combine(r, pr, parts) if parts else r.not_applicable(pr.target, "no unknown recipient probed")


def _rcpt_003(r: Rule, pr: ProbeResult, o: RcptOutcome, backup: list[str]) -> Finding:
    j = judge(pr, o)
    text = f"{o.address}: {_reply_text(o)}"
    ev = _evidence(pr, j=j)
    if j.why is Why.PERSISTENT_4XX:
        severity = Severity.HIGH if backup else None
        extra = f"; a backup MX defers too ({', '.join(backup)})" if backup else ""
        return r.fail(
            pr.target, f"persistent 4xx for a random recipient: {text}{extra}", ev, severity=severity
        )
    if j.verdict is Verdict.DEFERS_UNKNOWN:
        return r.inconclusive(pr.target, f"4xx not retried ({text}); use --retry-after", ev)
    if j.verdict is Verdict.ACCEPTS_UNKNOWN:
        return r.not_applicable(pr.target, "accepts the random recipient (SMTP-RCPT-001)", ev)
    if j.verdict is Verdict.REJECTS_UNKNOWN and j.why is Why.GREYLISTED:
        return r.passed(pr.target, f"greylisting, then a final answer: {text}", ev)
    if j.verdict is Verdict.REJECTS_UNKNOWN:
        return r.passed(pr.target, f"5xx for the random recipient: {text}", ev)
    return _unmeasured(pr, r, j, o.address)


def _expected(r: Rule, pr: ProbeResult, o: RcptOutcome, bad: str, good: str) -> Finding:
    """Judge one recipient against its scenario's ``expect``: the opposite answer is the failure.

    A refusal of a recipient a safe site refuses proves something only next to an accepted control
    in the same conditions; a refusal aimed at the probe itself (sender, HELO, blocklist) is no
    answer about the recipient at all.
    """
    ev = _evidence(pr)
    if o.outcome is Outcome.MAIL_REFUSED and o.role is Role.NULL_POSTMASTER:
        return r.not_applicable(pr.target, f"MAIL FROM:<> refused ({o.mail_reply}): see SMTP-NULL-001", ev)
    if o.outcome is Outcome.MAIL_REFUSED or o.reply is None:
        j = judge(pr, o)
        return _unmeasured(pr, r, j, o.address)
    final = final_reply(o)
    assert final is not None
    text = f"RCPT {o.address} → {_reply_text(o)}"
    why = setup_refusal(final)
    if final.klass == 4 or (final.klass == 5 and why is not None):
        if why is not None:
            return r.inconclusive(pr.target, f"{text}: {fix_for(why, pr)}", ev, remediation=fix_for(why, pr))
        return r.inconclusive(pr.target, f"temporary answer: {text}", ev)
    if final.klass not in (2, 5):
        return r.inconclusive(pr.target, f"{text} is no RCPT reply (protocol error)", ev)
    accepted = final.klass == 2
    if o.expect is Expect.REFUSE:
        if accepted:
            return r.fail(pr.target, f"{bad}: {text}", ev)
        j = judge(pr, o)
        if j.verdict is Verdict.INCONCLUSIVE:
            return _unmeasured(pr, r, j, o.address)
        return r.passed(pr.target, f"{good}: {text}", ev)
    if accepted:
        return r.passed(pr.target, f"{good}: {text}", ev)
    # A valid address refused: a failure only when another valid address got through (else the
    # refusal may be aimed at us: every recipient refused).
    if not any(c is not o and is_control(c) and _got_2xx(c) for c in pr.outcomes):
        return r.inconclusive(pr.target, f"{text}, but no other valid address was accepted either", ev)
    return r.fail(pr.target, f"{bad}: {text}", ev)


def _got_2xx(o: RcptOutcome) -> bool:
    return any(x is not None and x.klass == 2 for x in (o.reply, o.retry))


def _judge_fed(r: Rule, pr: ProbeResult, absent: str, bad: str, good: str) -> Finding:
    gap = _gap(pr, r)
    if gap is not None:
        return gap
    fed = pr.fed(r.id)
    if not fed:
        return r.not_applicable(pr.target, absent, _evidence(pr))
    return _combine(r, pr, [_expected(r, pr, o, bad, good) for o in fed])


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
    """
    for pr in obs.of(ProbeResult):
        yield _judge_fed(
            r,
            pr,
            "subdomain probe not run (--no-subdomain-probe)",
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
    """
    for pr in obs.of(ProbeResult):
        gap = _gap(pr, r)
        if gap is not None:
            yield gap
            continue
        nulls = [o for o in pr.fed(r.id) if o.role is Role.NULL_POSTMASTER]
        if not nulls:
            yield r.not_applicable(
                pr.target, "null sender not tested on this address (per-address sample)", _evidence(pr)
            )
            continue
        yield _combine(r, pr, [_null_001(r, pr, o) for o in nulls])


def _null_001(r: Rule, pr: ProbeResult, null: RcptOutcome) -> Finding:
    ev = _evidence(pr)
    # The same recipient asked with the normal probe sender, else any accepted valid address.
    normals = [o for o in pr.outcomes if is_control(o)]
    normal = next((o for o in normals if o.address.lower() == null.address.lower()), None) or next(
        (o for o in normals if _got_2xx(o)), None
    )
    normal_final = final_reply(normal) if normal else None
    if null.outcome is Outcome.MAIL_REFUSED and null.mail_reply is not None:
        refusal = null.mail_reply
        why = setup_refusal(refusal)
        normal_in = any(o.mail_reply is not None and o.mail_reply.klass == 2 for o in normals)
        # "Client host rejected" for <> while our normal sender got in from the same client is
        # about <>; a rate limit or postscreen is about timing, never about the null sender.
        if why in (Why.RATE, Why.POSTSCREEN, Why.TARPIT) or (
            why is not None and why is not Why.SENDER and not normal_in
        ):
            fix = fix_for(why, pr)
            return r.inconclusive(pr.target, f"MAIL FROM:<> refused ({refusal}): {fix}", ev, remediation=fix)
        if refusal.klass == 5 and normal_in:
            return r.fail(pr.target, f"MAIL FROM:<> refused: {refusal}", ev)
        return r.inconclusive(
            pr.target,
            f"MAIL FROM:<> refused ({refusal}), and the normal sender was not accepted either"
            if refusal.klass == 5
            else f"MAIL FROM:<> answered {refusal}: a temporary refusal, run again later",
            ev,
        )
    final = final_reply(null)
    if final is None:
        return _unmeasured(pr, r, judge(pr, null), "the null-sender RCPT")
    if final.klass == 2:
        return r.passed(pr.target, f"MAIL FROM:<> and RCPT {null.address} accepted: {final}", ev)
    why = setup_refusal(final)
    if final.klass == 5 and why is None and normal_final is not None and normal_final.klass == 2:
        return r.fail(
            pr.target,
            f"RCPT {null.address} refused after MAIL FROM:<> ({final}) but accepted for the normal "
            f"sender ({normal_final})",
            ev,
        )
    if why is not None:
        fix = fix_for(why, pr)
        return r.inconclusive(pr.target, f"null-sender RCPT answered {final}: {fix}", ev, remediation=fix)
    return r.inconclusive(
        pr.target,
        f"null-sender RCPT answered {_reply_text(null)}; the normal sender got {normal_final or 'no answer'}",
        ev,
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
    """
    for pr in obs.of(ProbeResult):
        if pr.failure is Reason.BANNER_554:
            yield r.not_applicable(pr.target, "the server answers 554 at connection time", _evidence(pr))
            continue
        yield _judge_fed(r, pr, "postmaster scenario not run", "postmaster refused", "postmaster accepted")


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
    """
    for pr in obs.of(ProbeResult):
        yield _judge_fed(
            r, pr, "no --relay-test-domain given", "relays to a foreign domain", "refuses to relay"
        )
