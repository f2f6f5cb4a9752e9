"""Old Lotus Notes SMTP MTA ("------- Failure Reasons --------" … "------- Returned Message --------")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "notes"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(r"^-+[ \t]*Failure Reasons[ \t]*-+", re.I | re.M),
    start=re.compile(r"^-+[ \t]*Failure Reasons[ \t]*-+", re.I | re.M),
    end=re.compile(r"^-+[ \t]*Returned Message[ \t]*-+", re.I | re.M),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
