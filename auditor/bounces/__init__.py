"""NDR analysis: recognise bounces, DSNs, auto-replies and feedback reports, and read them.

Public API::

    analyse_bytes(data, path="") -> NdrAnalysis     # one RFC 5322 message, never raises
    iter_messages(paths) -> Iterator[(path, bytes)]  # files, mbox files, Maildirs, folders
    correlate(analysis, tokens) -> str | None        # which probe token (bsa-<token>) it answers
"""

from __future__ import annotations

from auditor.bounces.analyse import analyse_bytes
from auditor.bounces.correlate import correlate
from auditor.bounces.source import iter_messages
from auditor.observations.ndr import CapturedNdr, NdrAnalysis, NdrRecipient, OriginalMessage

__all__ = [
    "CapturedNdr",
    "NdrAnalysis",
    "NdrRecipient",
    "OriginalMessage",
    "analyse_bytes",
    "correlate",
    "iter_messages",
]
