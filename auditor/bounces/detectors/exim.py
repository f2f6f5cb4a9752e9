"""Exim bounces ("The following address(es) failed:", X-Failed-Recipients) and delay warnings."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "exim"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(
        r"This message was created automatically by mail delivery software|"
        r"following address(?:es)? failed:|Mail delivery failed: returning message to sender",
        re.I,
    ),
    start=re.compile(
        r"following address(?:es)? failed:|address to which the message has not yet been delivered", re.I
    ),
    delay=re.compile(r"has not yet been delivered|^Warning: message .* delayed", re.I | re.M),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
