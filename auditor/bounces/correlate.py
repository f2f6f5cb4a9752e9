"""Tie a captured NDR to the probe that caused it, by the probe's ``bsa-<token>`` mark."""

from __future__ import annotations

import re

from auditor.observations.ndr import NdrAnalysis

PREFIX = "bsa-"


def _norm(token: str) -> str:
    token = token.strip().lower()
    return token[len(PREFIX) :] if token.startswith(PREFIX) else token


def _holds(text: str, token: str) -> bool:
    """``bsa-<token>`` occurs in the text, not as the prefix of a longer token."""
    if not text:
        return False
    pattern = re.compile(re.escape(PREFIX + token) + r"(?![A-Za-z0-9])", re.I)
    return pattern.search(text) is not None


def correlate(analysis: NdrAnalysis, tokens: set[str], envelope_recipient: str = "") -> str | None:
    """The probe token this NDR answers, or None.

    Looks, most reliable first, in the envelope recipient (VERP), the DSN's Original-Envelope-Id,
    the returned original's headers, the NDR's Message-ID and Subject, then anywhere in the body.
    Tokens may be given with or without the ``bsa-`` prefix; the match ignores case.
    """
    wanted = [t for t in (_norm(t) for t in tokens) if t]
    if not wanted:
        return None
    o = analysis.original
    places = (
        envelope_recipient or analysis.delivered_to,
        analysis.envelope_id,
        " ".join((o.message_id, o.from_, o.to, o.subject, o.envelope_from)),
        " ".join(r.address for r in analysis.recipients),
        analysis.message_id,
        analysis.subject,
        " ".join(analysis.probe_marks),
    )
    for text in places:
        for token in sorted(wanted):
            if _holds(text, token):
                return token
    return None
