"""Microsoft SMTP Service, Hotmail and Outlook.com text notices ("Delivery to the following recipients
failed.").

Most Outlook.com and Office 365 bounces carry a message/delivery-status part (read by ``rfc3464``);
this reads the text-only variant.
"""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "hotmail"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(r"Delivery to the following recipients? (?:failed|has been delayed)\.", re.I),
    start=re.compile(r"Delivery to the following recipients? (?:failed|has been delayed)\.", re.I),
    delay=re.compile(r"has been delayed|Delivery Status Notification \(Delay\)", re.I),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
