"""What the NDR analyser finds in one message, and the observation rules judge.

``NdrAnalysis`` is the analyser's result for one message (a bounce, a DSN, an auto-reply, a
feedback report, or something else); ``CapturedNdr`` wraps it with the envelope facts of how it
reached us, as an observation for the ``NDR-`` rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from auditor.model import Observation

# The kinds of message the classifier tells apart (rules.md §12.3).
KINDS: tuple[str, ...] = ("failure", "delay", "success", "autoreply", "feedback", "not-bounce")
# How much of the original message an NDR carries back (NDR-FMT-002).
RETURNED: tuple[str, ...] = ("full", "headers", "none")


@dataclass(frozen=True)
class NdrRecipient:
    """One recipient an NDR reports on."""

    address: str
    status: str = ""  # RFC 3463 X.Y.Z, given or derived ("" when unknown)
    action: str = ""  # failed | delayed | delivered | relayed | expanded
    diagnostic: str = ""
    remote_mta: str = ""


@dataclass(frozen=True)
class OriginalMessage:
    """What the NDR quotes of the message it reports on."""

    message_id: str = ""
    from_: str = ""
    to: str = ""
    subject: str = ""
    envelope_from: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "message_id": self.message_id,
            "from": self.from_,
            "to": self.to,
            "subject": self.subject,
            "envelope_from": self.envelope_from,
        }


@dataclass(frozen=True)
class NdrAnalysis:
    """The analysis of one message."""

    path: str
    kind: str  # one of KINDS
    recipients: tuple[NdrRecipient, ...] = ()
    reporting_mta: str = ""
    returned: str = "none"  # one of RETURNED
    original: OriginalMessage = field(default_factory=OriginalMessage)
    family: str = ""  # the detector that recognised it (rfc3464, qmail, exim, ...)
    envelope_id: str = ""  # Original-Envelope-Id of a DSN
    # Header facts of the NDR itself.
    return_path: str | None = None  # None: no Return-Path header; "": Return-Path: <>
    delivered_to: str = ""
    header_from: str = ""
    header_to: str = ""
    subject: str = ""
    message_id: str = ""
    auto_submitted: str = ""
    content_type: str = ""
    size: int = 0
    notes: tuple[str, ...] = ()  # what the analyser could not do (truncated, MIME too deep, ...)
    # Every distinct ``bsa-…`` string seen anywhere in the raw message (bounded): correlate() reads it.
    probe_marks: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The per-message record of ``backscatter-audit ndr --format json``."""
        return {
            "path": self.path,
            "kind": self.kind,
            "recipients": [
                {"address": r.address, "status": r.status, "action": r.action, "diagnostic": r.diagnostic}
                for r in self.recipients
            ],
            "reporting_mta": self.reporting_mta,
            "returned": self.returned,
            "original": self.original.as_dict(),
            "family": self.family,
            "envelope_id": self.envelope_id,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CapturedNdr(Observation):
    """A captured NDR (or auto-reply) with the envelope facts of its delivery to us.

    ``target`` names what it is about (the probed site or the file). ``probe_envelope_from`` and
    ``probe_header_from`` are set by the correlator when the NDR answers one of our probes: they
    tell NDR-ENV-002 whether the NDR went to the envelope sender or to the forgeable header From.
    """

    kind: ClassVar[str] = "ndr.captured"

    analysis: NdrAnalysis = field(default_factory=lambda: NdrAnalysis(path="", kind="not-bounce"))
    envelope_sender: str | None = None  # MAIL FROM of the NDR ("" = <>); None = unknown
    envelope_recipient: str | None = None  # RCPT TO of the NDR; None = unknown
    probe_token: str | None = None
    probe_envelope_from: str | None = None
    probe_header_from: str | None = None

    @classmethod
    def from_analysis(
        cls,
        analysis: NdrAnalysis,
        *,
        target: str = "",
        envelope_sender: str | None = None,
        envelope_recipient: str | None = None,
        probe_token: str | None = None,
        probe_envelope_from: str | None = None,
        probe_header_from: str | None = None,
    ) -> CapturedNdr:
        """Wrap an analysis; without an SMTP envelope, Return-Path/Delivered-To stand in for it."""
        if envelope_sender is None:
            envelope_sender = analysis.return_path
        if envelope_recipient is None and analysis.delivered_to:
            envelope_recipient = analysis.delivered_to
        return cls(
            target=target or analysis.path,
            analysis=analysis,
            envelope_sender=envelope_sender,
            envelope_recipient=envelope_recipient,
            probe_token=probe_token,
            probe_envelope_from=probe_envelope_from,
            probe_header_from=probe_header_from,
        )
