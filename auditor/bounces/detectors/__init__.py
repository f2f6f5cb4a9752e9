"""One small detector per NDR format family, tried in order (most specific first).

Each module has ``FAMILY`` and ``detect(ctx) -> Detection | None``. The first detector that
recognises the message and finds recipients wins; ``generic`` (text heuristics) is last.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

from auditor.bounces.detectors.base import Context, Detection

# Order matters: structured DSN fields first, then vendor layouts. The text heuristics
# (``generic``) run separately, after the auto-reply check, so that an out-of-office reply that
# mentions "could not be delivered" is not taken for a bounce.
ORDER: tuple[str, ...] = (
    "rfc3464",
    "amazonses",
    "qmail",
    "exim",
    "postfix",
    "sendmail",
    "exchange",
    "hotmail",
    "domino",
    "notes",
    "groupwise",
    "gmail",
    "yahoo",
    "dragonfly",
    "opensmtpd",
    "aol",
)

Detector = Callable[[Context], Detection | None]


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


DETECTORS: tuple[tuple[str, Detector], ...] = tuple((name, _load(name).detect) for name in ORDER)


def run(ctx: Context) -> Detection | None:
    """The first detection with recipients (or a definite kind), in ORDER, without the generic fallback."""
    for _name, detect in DETECTORS:
        found = detect(ctx)
        if found is not None and (found.recipients or found.kind):
            return found
    return None


__all__ = ["DETECTORS", "ORDER", "Context", "Detection", "run"]
