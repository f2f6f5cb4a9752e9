"""DragonFly Mail Agent (dma) bounces ("There was an error delivering your mail to <…>")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "dragonfly"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(r"This is the DragonFly Mail Agent|There was an error delivering your mail to", re.I),
    start=re.compile(r"(?=There was an error delivering your mail to)", re.I),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
