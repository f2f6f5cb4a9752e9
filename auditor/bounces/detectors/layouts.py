"""Shared code of the plain-text vendor detectors: recognise a layout, read its recipient block."""

from __future__ import annotations

from auditor.bounces.detectors import generic
from auditor.bounces.detectors.base import Context, Detection, TextLayout, recipient


def detect_layout(layout: TextLayout, ctx: Context) -> Detection | None:
    """Recipients from the layout's block (generic address positions), or None when it does not apply."""
    if not layout.matches(ctx):
        return None
    block = layout.block(ctx)
    pairs = generic.extract(ctx, block)
    if not pairs:
        return None
    delay = layout.is_delay(ctx)
    recips = [recipient(a, diag or block[:3000], permanent=not delay) for a, diag in pairs]
    return Detection(family=layout.family, recipients=recips, kind="delay" if delay else "failure")
