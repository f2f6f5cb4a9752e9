"""Postfix's plain-text report ("This is the mail system at host …", "<addr>: host … said: …")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "postfix"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(r"This is the mail system at host|This is the Postfix program at host", re.I),
    start=re.compile(r"^[ \t]*The mail system[ \t]*$", re.I | re.M),
    delay=re.compile(r"Delayed Mail \(still being retried\)|THIS IS A WARNING ONLY", re.I),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
