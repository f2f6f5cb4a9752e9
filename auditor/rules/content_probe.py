"""CF-PROBE-001/002: live GTUBE and EICAR tests to a test mailbox the user named (authorised audits)."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.model import Evidence, Finding, Location, Severity
from auditor.observations.smtp import DataOutcome, DataProbeResult
from auditor.rules.base import Observations, Rule, rule

_REMEDIATION = """
    Reject spam and viruses during the SMTP session (milter or before-queue proxy: a 5xx at end of
    DATA reaches the real sender's own server), or quarantine / deliver to junk silently. Never send
    a notice to the sender of detected spam or malware: it is forged. amavis: $final_spam_destiny /
    $final_virus_destiny = D_DISCARD (with quarantine) in after-queue mode, $warn*sender = 0;
    Exchange: Set-MalwareFilterPolicy -EnableExternalSenderNotifications $false, transport rules
    -DeleteMessage instead of -RejectMessageReasonText.
    """


# A notice from a content filter usually leaves within seconds; less than this is no evidence.
MIN_SILENCE = 30.0


def _judge(r: Rule, kind: str, obs: Observations) -> Iterator[Finding]:
    for p in obs.of(DataProbeResult):
        if p.probe != kind:
            continue
        ev = [
            Evidence(
                f"{kind.upper()} test to {p.recipient} via {p.mx_host} [{p.address}]: {p.outcome}",
                transcript=p.transcript,
                data={"token": f"bsa-{p.token}", "outcome": p.outcome, "bounce_kind": p.bounce_kind},
            )
        ]
        if p.bounce_path:
            ev.append(
                Evidence(
                    f"the notice as received ({p.bounce_kind or 'unknown kind'})", Location(p.bounce_path)
                )
            )
        where = f"{p.mx_host} [{p.address}]"
        if p.outcome is DataOutcome.ACCEPTED and (p.bounce_seconds is not None or p.bounce_to_header_from):
            to = "the header From" if p.bounce_to_header_from and p.bounce_seconds is None else "the sender"
            yield r.fail(
                p.target,
                f"{where} accepted the {kind.upper()} test message and then sent a notice "
                f"({p.bounce_kind or 'message'}) to {to}: detected spam/malware becomes backscatter",
                ev,
            )
        elif p.outcome is DataOutcome.ACCEPTED and p.waited < MIN_SILENCE:
            yield r.inconclusive(
                p.target,
                f"{where} accepted the {kind.upper()} test message; {p.waited:.0f} s is too short a watch "
                f"to call the silence a pass (at least {MIN_SILENCE:.0f} s)",
                ev,
            )
        elif p.outcome is DataOutcome.ACCEPTED:
            yield r.passed(
                p.target,
                f"{where} accepted the {kind.upper()} test message and sent no notice within "
                f"{p.waited:.0f} s (quarantined, junked or delivered silently)",
                ev,
            )
        elif p.outcome in (DataOutcome.REJECTED_AFTER_DATA, DataOutcome.REJECTED_AT_DATA):
            yield r.passed(
                p.target, f"{where} rejected the {kind.upper()} test in the session: {p.reply}", ev
            )
        elif p.outcome is DataOutcome.REJECTED_AT_RCPT:
            yield r.inconclusive(
                p.target,
                f"{where} refused the test mailbox {p.recipient} at RCPT ({p.reply}): "
                "name a mailbox that exists",
                ev,
            )
        elif p.outcome is DataOutcome.DEFERRED:
            yield r.inconclusive(
                p.target, f"{where} deferred the {kind.upper()} test ({p.reply}): run it later", ev
            )
        elif p.outcome is DataOutcome.PROTOCOL_ERROR:
            yield r.inconclusive(
                p.target, f"{where} answered {p.reply} out of protocol (only a 5xx is a refusal)", ev
            )
        elif p.outcome is DataOutcome.ERROR:
            yield r.inconclusive(p.target, f"the {kind.upper()} test could not be sent: {p.error}", ev)


@rule(
    "CF-PROBE-001",
    title="Live GTUBE test: detected spam must not cause a notice to the sender",
    family="content-filter",
    cause="in-session-filtering",
    severity=Severity.HIGH,
    needs=(DataProbeResult,),
    remediation=_REMEDIATION,
    references=("rules.md CF-PROBE-001", "Postfix FILTER_README", "RFC 5321 §6.2"),
)
def gtube(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags

    A message carrying the GTUBE spam test string, sent (only when you name a test mailbox, e.g.
    ``probe.content_test_mailbox``) to that mailbox through the primary MX, that was accepted and
    then answered with an NDR or notice to the probe's sender.

    ## Why it causes backscatter

    Spam senders are forged. A filter that accepts spam and then "rejects" it after the session, or
    notifies the sender, mails an innocent third party for every spam it catches.

    ## What passes
    A 5xx at end of DATA, or 250 and silence.
    """
    yield from _judge(r, "gtube", obs)


@rule(
    "CF-PROBE-002",
    title="Live EICAR test: detected malware must not cause a notice to the sender",
    family="content-filter",
    cause="in-session-filtering",
    severity=Severity.HIGH,
    needs=(DataProbeResult,),
    remediation=_REMEDIATION,
    references=("rules.md CF-PROBE-002, CF-AMAVIS-002", "Set-MalwareFilterPolicy"),
    tier="ext",
)
def eicar(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags

    The EICAR anti-virus test file, attached to a message to the test mailbox you named, accepted and
    then answered with a notice to the sender.

    ## Why it causes backscatter

    Malware senders are forged just like spam senders. Note amavis's stock
    ``@viruses_that_fake_sender_maps`` exempts EICAR, so a notice here may not happen for real
    viruses, and a silence here does not prove real viruses are handled the same way (CF-AMAVIS-002).
    """
    yield from _judge(r, "eicar", obs)
