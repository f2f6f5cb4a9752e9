"""Yahoo! Mail bounces ("Sorry, we were unable to deliver your message to the following address.")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "yahoo"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(r"Sorry,? we were unable to deliver your message to the following address", re.I),
    start=re.compile(r"Sorry,? we were unable to deliver your message to the following address[^\n]*", re.I),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
