"""NDR- rules: judge the NDRs and auto-replies a site sent (rules.md §10), from captured messages.

Each captured message is one ``CapturedNdr`` observation (``auditor.bounces``); the envelope facts
come from the bounce sink's SMTP session, or from Return-Path / Delivered-To of a saved file.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.model import Evidence, Finding, Location, Severity
from auditor.observations.ndr import CapturedNdr
from auditor.rules.base import Observations, Rule, rule

_NDR_KINDS = ("failure", "delay", "success")
_ANSWER_KINDS = (*_NDR_KINDS, "autoreply")


def _evidence(c: CapturedNdr, summary: str) -> Evidence:
    a = c.analysis
    return Evidence(
        summary=summary,
        location=Location(a.path) if a.path else None,
        data={
            "kind": a.kind,
            "format": a.family,
            "envelope_sender": c.envelope_sender,
            "envelope_recipient": c.envelope_recipient,
            "header_from": a.header_from,
            "subject": a.subject,
            "reporting_mta": a.reporting_mta,
            "returned": a.returned,
            "recipients": [f"{r.address} {r.status}".strip() for r in a.recipients[:20]],
        },
    )


def _target(c: CapturedNdr) -> str:
    return c.target or c.analysis.path or "(captured message)"


@rule(
    "NDR-ENV-001",
    title="NDR envelope sender is not <>",
    family="ndr",
    cause="ndr-payload",
    controls=("RFC3464",),
    severity=Severity.MEDIUM,
    needs=(CapturedNdr,),
    remediation="""
        Send delivery status notifications with the null reverse-path (MAIL FROM:<>). In Postfix the
        bounce daemon always does; look for a content filter, script or appliance that re-injects
        bounces with a real sender (e.g. `sendmail -f postmaster` in a pipe script) and make it use
        `-f ''` / `<>` instead.
    """,
    references=("RFC 3464 §2", "RFC 5321 §4.5.5", "RFC 5321 §6.1"),
)
def envelope_sender_not_null(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A bounce, delay or success notification (DSN) that arrived with a non-empty envelope sender
    (Return-Path), e.g. `MAIL FROM:<postmaster@example.com>`.

    ## Why it causes backscatter
    A notification must be sent with the null reverse-path `<>` so that it can never be bounced
    again. With a real sender, a notification about forged spam that cannot be delivered produces a
    second notification (loops, double backscatter), receivers cannot tell it from ordinary mail,
    and BATV/null-sender filters at the victim cannot recognise it as a bounce.

    ## Example
    `Return-Path: <MAILER-DAEMON@mx.example.com>` on a "Returned mail: User unknown" message fails;
    `Return-Path: <>` passes. Without any Return-Path (a saved file without envelope data) the
    result is inconclusive.
    """
    for c in obs.of(CapturedNdr):
        a = c.analysis
        target = _target(c)
        if a.kind not in _NDR_KINDS:
            yield r.not_applicable(target, f"not a delivery notification ({a.kind})")
        elif c.envelope_sender is None:
            yield r.inconclusive(
                target,
                "envelope sender unknown (no SMTP envelope and no Return-Path header)",
                [_evidence(c, "no envelope sender recorded")],
            )
        elif c.envelope_sender.strip("<> ") == "":
            yield r.passed(
                target, "NDR sent with the null envelope sender <>", [_evidence(c, "MAIL FROM:<>")]
            )
        else:
            yield r.fail(
                target,
                f"NDR sent with envelope sender <{c.envelope_sender}> instead of <>",
                [_evidence(c, f"envelope sender <{c.envelope_sender}>")],
            )


@rule(
    "NDR-ENV-002",
    title="NDR or auto-reply addressed to the header From instead of the envelope sender",
    family="ndr",
    cause="auto-replies",
    controls=("RFC3464",),
    severity=Severity.HIGH,
    needs=(CapturedNdr,),
    remediation="""
        Send notifications and auto-replies only to the envelope sender (Return-Path), never to
        From:, Reply-To: or Sender:. Replace responders or scripts that read the header From (e.g. a
        procmail/Sieve script using the From: line, a helpdesk tool's "reply to sender") with ones
        that use the envelope, and never answer messages whose envelope sender is <>.
    """,
    references=("RFC 3464 §2", "RFC 3834 §4", "RFC 3834 §2", "RFC 5321 §4.5.5"),
)
def addressed_to_header_from(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A probe was sent with envelope sender A and header `From:` B (or with `MAIL FROM:<>` and
    `From:` B); the site's NDR or auto-reply arrived at B.

    ## Why it causes backscatter
    Header addresses are free text chosen by whoever sends the message: spam forges them at will.
    A site that answers the header From sends its bounces and auto-replies to whoever the spammer
    named, and envelope-based defences (BATV, null-sender rules, SPF on the return path) cannot
    stop it. Answering a message whose envelope sender is `<>` at all is forbidden.

    ## Example
    Probe `MAIL FROM:<bsa-1a2b@sink.example>` with `From: <bsa-1a2b-hdr@sink.example>`: an
    auto-reply delivered to `bsa-1a2b-hdr@sink.example` fails; one delivered to
    `bsa-1a2b@sink.example` passes.
    """
    for c in obs.of(CapturedNdr):
        a = c.analysis
        target = _target(c)
        if a.kind not in _ANSWER_KINDS:
            yield r.not_applicable(target, f"not an NDR or auto-reply ({a.kind})")
            continue
        if c.probe_header_from is None or c.probe_envelope_from is None:
            yield r.not_applicable(target, "not correlated to a probe with distinct envelope and header From")
            continue
        env = c.probe_envelope_from.strip("<> ").lower()
        hdr = c.probe_header_from.strip("<> ").lower()
        rcpt = (c.envelope_recipient or "").strip("<> ").lower()
        ev = [_evidence(c, f"probe envelope <{env}>, header From <{hdr}>, answer sent to <{rcpt}>")]
        if env == hdr:
            yield r.inconclusive(target, "the probe used the same envelope and header sender", ev)
        elif not rcpt:
            yield r.inconclusive(target, "the answer's envelope recipient is unknown", ev)
        elif rcpt == hdr:
            yield r.fail(target, f"{a.kind} sent to the header From <{hdr}>, not the envelope sender", ev)
        elif env and rcpt == env:
            yield r.passed(target, f"{a.kind} sent to the envelope sender <{env}>", ev)
        else:
            yield r.inconclusive(target, f"{a.kind} sent to <{rcpt}>, neither probe sender", ev)


@rule(
    "NDR-FMT-002",
    title="NDR returns the full original message",
    family="ndr",
    cause="ndr-payload",
    controls=("RFC3464",),
    severity=Severity.MEDIUM,
    needs=(CapturedNdr,),
    remediation="""
        Return only the headers of the original:
        Postfix: `postconf -e 'bounce_size_limit = 8192'` (originals larger than the limit come back
        as text/rfc822-headers); Exchange: `Set-TransportConfig -ExternalDsnMaxMessageAttachSize 0`;
        Exim: `bounce_return_body = false`; Sendmail: add `nobodyreturn` to `confPRIVACY_FLAGS`.
    """,
    references=(
        "RFC 6522 §3-4",
        "RFC 3461 (RET=HDRS)",
        "postconf(5) bounce_size_limit",
        "Set-TransportConfig -ExternalDsnMaxMessageAttachSize",
    ),
)
def returns_full_original(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A bounce or delay notification that carries the whole original message (a `message/rfc822`
    part, or an inline copy with the body), not just its headers.

    ## Why it matters
    When the original was spam or a virus with a forged sender, returning it in full delivers
    the spam to the innocent third party anyway (the bounce "reflects" the payload), and makes the
    backscatter larger. RFC 6522 allows headers only (`text/rfc822-headers`).

    ## Example
    A Postfix bounce with `Content-Type: message/rfc822` and the body fails; one with
    `text/rfc822-headers` passes; an NDR that returns nothing passes.
    """
    for c in obs.of(CapturedNdr):
        a = c.analysis
        target = _target(c)
        if a.kind not in ("failure", "delay"):
            yield r.not_applicable(target, f"not a bounce or delay notification ({a.kind})")
        elif a.returned == "full":
            yield r.fail(target, "the NDR returns the full original message", [_evidence(c, "full original")])
        else:
            how = "only the headers" if a.returned == "headers" else "nothing"
            yield r.passed(target, f"the NDR returns {how} of the original", [_evidence(c, a.returned)])
