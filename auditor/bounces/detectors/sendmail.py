"""Legacy Sendmail bounces ("----- The following addresses had permanent fatal errors -----")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "sendmail"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(
        r"-{3,} ?The following addresses? had (?:permanent fatal errors|delivery (?:problems|errors)|"
        r"transient non-fatal errors)|-{3,} ?Transcript of session follows",
        re.I,
    ),
    start=re.compile(r"-{3,} ?The following addresses? had[^\n]*", re.I),
    delay=re.compile(
        r"transient non-fatal errors|^Warning: could not send message|will be retried", re.I | re.M
    ),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
