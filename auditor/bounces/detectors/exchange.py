"""Microsoft Exchange / Office 365 / Outlook.com text, incl. Exchange 2003 "did not reach"."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "exchange"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(
        r"did not reach the following recipient|Delivery has failed to these recipients or groups|"
        r"Your message to .{1,300} couldn'?t be delivered|Diagnostic information for administrators|"
        r"RESOLVER\.ADR\.|MSEXCH:|Generating server:",
        re.I,
    ),
    start=re.compile(
        r"did not reach the following recipient\(?s?\)?:?|"
        r"Delivery has failed to these recipients or groups:?|Your message to|couldn'?t be delivered",
        re.I,
    ),
    delay=re.compile(
        r"Delivery has been delayed|has not been delivered yet|Delivery Status Notification \(Delay\)", re.I
    ),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
