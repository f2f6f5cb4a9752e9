"""Lotus/HCL Domino and Notes ("Your message … was not delivered to: … because: …")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "domino"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(
        r"DELIVERY[ _]FAILURE:|was not delivered to:|not listed in (?:the )?Domino Directory", re.I
    ),
    start=re.compile(r"was not delivered to:", re.I),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
