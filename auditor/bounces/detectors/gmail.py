"""Gmail / Google Workspace text bounces ("Delivery to the following recipient failed permanently")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "gmail"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(
        r"Delivery to the following recipients? (?:failed permanently|has been delayed)|"
        r"Technical details of (?:permanent|temporary) failure",
        re.I,
    ),
    start=re.compile(
        r"Delivery to the following recipients? (?:failed permanently|has been delayed):?", re.I
    ),
    delay=re.compile(r"has been delayed|temporary failure|THIS IS A WARNING MESSAGE ONLY", re.I),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
