"""Novell GroupWise ("Message status - undeliverable", "was undeliverable to the following")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "groupwise"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(
        r"Message status - undeliverable|The message that you sent was undeliverable to the following", re.I
    ),
    start=re.compile(r"was undeliverable to the following:?", re.I),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
