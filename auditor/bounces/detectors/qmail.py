"""qmail's QSBMF bounces ("Hi. This is the qmail-send program at …"), also used by Yahoo and vpopmail."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "qmail"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(r"This is the qmail-send program at|I'?m afraid I wasn'?t able to deliver", re.I),
    start=re.compile(
        r"I'?m afraid I wasn'?t able to deliver[^\n]*\n(?:[^\n]*(?:given up|didn'?t work)[^\n]*\n)*", re.I
    ),
    delay=re.compile(r"I'?m not going to try again|is not yet|still trying|temporary", re.I),
)


def detect(ctx: Context) -> Detection | None:
    found = detect_layout(LAYOUT, ctx)
    if found is not None and found.kind == "delay" and "permanent error" in ctx.report.lower():
        found.kind = "failure"
    return found
