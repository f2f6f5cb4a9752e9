"""AOL bounces that name recipients by screen name only ("mykewlaolacct"), completed with the domain."""

from __future__ import annotations

import re

from auditor.bounces.caseless import Caseless
from auditor.bounces.detectors.base import Context, Detection, first_address, recipient

FAMILY = "aol"
_MARKER = Caseless(r"Your mail to the following recipients could not be delivered")
_NAME = re.compile(r"^[ \t]+([A-Za-z0-9._+-]{1,64}(?:@[A-Za-z0-9.-]{1,253})?)[ \t]*$")


def detect(ctx: Context) -> Detection | None:
    frm = first_address(ctx.from_)
    if not frm.endswith("@aol.com") or not _MARKER.search(ctx.report):
        return None
    m = _MARKER.search(ctx.report)
    assert m is not None
    lines = ctx.report[m.end() :].splitlines()[1:50]
    names = [n.group(1) for n in (_NAME.match(line) for line in lines) if n]
    recips = [recipient(n if "@" in n else f"{n}@aol.com", ctx.report[:2000]) for n in names]
    return Detection(family=FAMILY, recipients=recips, kind="failure") if recips else None
