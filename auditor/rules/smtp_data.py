"""Rules on DATA probes: confirmed accept-then-bounce, end-of-DATA rejects, NDRs to the header From."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.model import Evidence, Finding, Location, Severity
from auditor.observations.smtp import DataOutcome, DataProbeResult
from auditor.rules.base import Observations, Rule, rule

_REFS_NDR = (
    "RFC 5321 §6.1 (after accepting, the receiver must notify the reverse-path)",
    "RFC 5321 §6.2 (prefer rejection during the SMTP transaction)",
    "Postfix BACKSCATTER_README",
)


def _backscatter_probes(obs: Observations) -> list[DataProbeResult]:
    """The unknown-recipient DATA probes (content-filter tests are judged by CF-PROBE-*)."""
    return [p for p in obs.of(DataProbeResult) if p.probe == "unknown-recipient"]


def _evidence(p: DataProbeResult, summary: str) -> list[Evidence]:
    ev = [
        Evidence(
            summary,
            transcript=p.transcript,
            data={
                "token": f"bsa-{p.token}",
                "envelope_from": p.envelope_from,
                "recipient": p.recipient,
                "outcome": p.outcome,
                "bounce_seconds": p.bounce_seconds,
                "bounce_kind": p.bounce_kind,
            },
        )
    ]
    if p.bounce_path:
        ev.append(
            Evidence(f"the NDR as received ({p.bounce_kind or 'unknown kind'})", Location(p.bounce_path))
        )
    return ev


@rule(
    "SMTP-NDR-001",
    title="Confirmed accept-then-bounce (NDR received for a probe)",
    family="smtp",
    cause="confirmed-backscatter",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(DataProbeResult,),
    remediation="""
        Reject unknown recipients during the SMTP session on this MX: give it the list of valid
        recipients (Postfix: relay_recipient_maps / virtual_mailbox_maps; Exchange:
        Set-RecipientFilterConfig -RecipientValidationEnabled $true), or remove the MX record if it
        cannot know them. Then run the DATA probe again: the random recipient must get a 5xx at RCPT.
        """,
    references=_REFS_NDR,
)
def confirmed_backscatter(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags

    An MX address that accepted a test message for a random, non-existent recipient and then sent a
    bounce (NDR) to the probe's envelope sender. The NDR was caught by the auditor's sink and tied
    to the probe by its token; the time from end of DATA to the bounce is part of the evidence.

    ## Why it causes backscatter

    This is backscatter itself, observed: every spam with a forged sender that reaches this MX for
    an unknown address turns into a bounce to an innocent third party.

    ## Example

    A backup MX with ``relay_domains = example.com`` and no ``relay_recipient_maps`` accepts
    ``xq7…@example.com``, relays it to the primary, gets ``550 5.1.1`` and bounces to the sender.
    """
    for p in _backscatter_probes(obs):
        if p.outcome is DataOutcome.ACCEPTED and p.bounce_seconds is not None:
            yield r.fail(
                p.target,
                f"{p.mx_host} [{p.address}] accepted mail for unknown {p.recipient} and bounced it "
                f"to the envelope sender {p.bounce_seconds:.1f} s later",
                _evidence(p, "DATA probe accepted, then an NDR arrived at the probe's envelope sender"),
            )
        elif p.outcome is DataOutcome.ACCEPTED:
            yield r.inconclusive(
                p.target,
                f"{p.mx_host} [{p.address}] accepted mail for unknown {p.recipient}; no bounce arrived "
                f"within {p.waited:.0f} s (catch-all, silent discard, or a queue that bounces later)"
                + (f"; {p.error}" if p.error else ""),
                _evidence(p, "accepted at end of DATA; nothing came back in the observation window"),
            )
        elif p.outcome in (
            DataOutcome.REJECTED_AT_RCPT,
            DataOutcome.REJECTED_AT_DATA,
            DataOutcome.REJECTED_AFTER_DATA,
        ):
            yield r.passed(
                p.target,
                f"{p.mx_host} [{p.address}] refused the unknown recipient in the session ({p.outcome})",
                _evidence(p, f"refused during SMTP: {p.reply}"),
            )
        elif p.outcome is DataOutcome.DEFERRED:
            yield r.inconclusive(
                p.target,
                f"{p.mx_host} [{p.address}] deferred the DATA probe ({p.reply}): greylisting or a temporary "
                "failure; run it again later",
                _evidence(p, f"4xx: {p.reply}"),
            )
        elif p.outcome is DataOutcome.PROTOCOL_ERROR:
            yield r.inconclusive(
                p.target,
                f"{p.mx_host} [{p.address}] answered {p.reply}, which no SMTP server may answer there "
                "(only a 5xx is a refusal): not measured",
                _evidence(p, f"protocol error: {p.reply}"),
            )
        elif p.outcome is DataOutcome.ERROR:
            yield r.inconclusive(
                p.target,
                f"DATA probe of {p.mx_host} [{p.address}] could not complete: {p.error}",
                _evidence(p, p.error),
            )


@rule(
    "SMTP-RCPT-004",
    title="Unknown recipient rejected only at end of DATA",
    family="smtp",
    cause="local-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.LOW,
    needs=(DataProbeResult,),
    remediation="Move recipient validation to RCPT time (Postfix: reject_unlisted_recipient with "
    "the right recipient maps; appliances: validate recipients at RCPT).",
    references=(
        "Postfix ADDRESS_VERIFICATION_README (Limitations)",
        "postconf(5) smtp_address_verify_target",
    ),
)
def rejected_after_data(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags

    An MX that answered 250 to RCPT for a random unknown recipient and rejected the message only
    after the end of DATA (``250`` at RCPT, ``354`` at DATA, then ``5xx``).

    ## Why it matters

    Not backscatter by itself (the reject is still in the session), but a multi-recipient message
    cannot be rejected per recipient after DATA: such systems either lose the valid recipients or
    accept all and bounce the invalid ones. It also breaks other sites' recipient callouts.
    """
    for p in _backscatter_probes(obs):
        if p.outcome is DataOutcome.REJECTED_AFTER_DATA:
            yield r.fail(
                p.target,
                f"{p.mx_host} [{p.address}] accepted unknown {p.recipient} at RCPT and rejected only "
                f"after DATA: {p.reply}",
                _evidence(p, "250 at RCPT, 5xx after end of DATA"),
            )
        elif p.outcome is DataOutcome.REJECTED_AT_RCPT:
            yield r.passed(p.target, f"{p.mx_host} [{p.address}] rejects unknown recipients at RCPT")
        elif p.outcome is DataOutcome.DEFERRED:
            yield r.inconclusive(p.target, f"{p.mx_host} [{p.address}] deferred the probe: {p.reply}")
        elif p.outcome is DataOutcome.PROTOCOL_ERROR:
            yield r.inconclusive(
                p.target, f"{p.mx_host} [{p.address}] answered {p.reply} out of protocol: not measured"
            )


@rule(
    "SMTP-NDR-002",
    title="Bounce or auto-reply sent to the header From instead of the envelope sender",
    family="smtp",
    cause="auto-replies",
    controls=("RFC3834",),
    severity=Severity.HIGH,
    needs=(DataProbeResult,),
    remediation="Configure the responder or gateway to address NDRs and auto-replies to the envelope "
    "return path (Return-Path) only, never to From/Reply-To/Sender, and never to null-sender mail.",
    references=(
        "RFC 3464 §2 (DSNs go to the envelope return address)",
        "RFC 3834 §4 (responses go to Return-Path)",
        "RFC 5321 §4.5.5",
    ),
)
def ndr_to_header_from(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags

    A DATA probe whose header ``From:`` was a second, separate token address of the auditor, and an
    NDR or auto-reply arrived at that header address.

    ## Why it causes backscatter

    Header addresses are trivially forged and no envelope defence (BATV, null-sender rules) can
    stop replies aimed at them.
    """
    for p in obs.of(DataProbeResult):
        if p.outcome is not DataOutcome.ACCEPTED:
            continue
        if p.bounce_to_header_from:
            yield r.fail(
                p.target,
                f"{p.mx_host} [{p.address}] sent a notification to the header From {p.header_from}",
                _evidence(p, "a message arrived at the probe's header From token"),
            )
        elif p.bounce_seconds is not None:
            yield r.passed(
                p.target,
                f"{p.mx_host} [{p.address}] addressed its NDR to the envelope sender; nothing reached the "
                f"header From within the {p.waited:.0f} s observation window",
            )
