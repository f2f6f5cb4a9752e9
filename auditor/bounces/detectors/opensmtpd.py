"""OpenSMTPD bounces ("This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.")."""

from __future__ import annotations

import re

from auditor.bounces.detectors.base import Context, Detection, TextLayout
from auditor.bounces.detectors.layouts import detect_layout

FAMILY = "opensmtpd"
LAYOUT = TextLayout(
    family=FAMILY,
    marker=re.compile(
        r"This is the MAILER-DAEMON, please DO NOT REPLY|"
        r"An error has occurred while attempting to deliver a message for",
        re.I,
    ),
    start=re.compile(r"following list of recipients:?|attempting to deliver a message for[^\n]*", re.I),
    delay=re.compile(r"Delivery status notification: delay|has not been delivered yet|temporarily", re.I),
)


def detect(ctx: Context) -> Detection | None:
    return detect_layout(LAYOUT, ctx)
