"""Renderers: each output format is a separate view of the same :class:`~auditor.model.Report`.

A renderer is a module in this package with ``FORMAT = "name"`` and
``render(report, options=None) -> str`` (:class:`~auditor.render._options.RenderOptions`: width,
colour, detail — presentation only); modules are discovered, so adding a format is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType

from auditor.model import Report
from auditor.render._options import RenderOptions

Renderer = Callable[[Report, RenderOptions | None], str]

# Formats whose stdout must hold nothing but the report (no progress, no colour).
MACHINE_FORMATS = frozenset({"json", "sarif", "junit", "csv", "github", "gitlab"})


def _modules() -> list[ModuleType]:
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            mod = importlib.import_module(f"{__name__}.{info.name}")
            if hasattr(mod, "FORMAT") and hasattr(mod, "render"):
                mods.append(mod)
    return mods


def renderers() -> dict[str, Renderer]:
    """Format name → render function."""
    return {m.FORMAT: m.render for m in _modules()}


def formats() -> list[str]:
    preferred = ["text", "json", "sarif", "junit", "markdown", "html", "csv", "github", "gitlab"]
    names = list(renderers())
    return [f for f in preferred if f in names] + sorted(f for f in names if f not in preferred)


def render(report: Report, fmt: str, options: RenderOptions | None = None) -> str:
    try:
        fn = renderers()[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(formats())})") from None
    return fn(report, options)


__all__ = ["MACHINE_FORMATS", "RenderOptions", "formats", "render", "renderers"]
