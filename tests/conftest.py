"""Shared test helpers.

``need(tool)``: a test that needs a real component (postconf, slapd, dnsmasq, netns) skips on a
developer machine without it, but FAILS in CI (``CI=true``), where .ci/run must have installed it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
SCHEMAS = SHARED / "schemas"

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, what: str) -> None:
    """Skip (developer machine) or fail (CI) when a real component is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true) but missing", pytrace=False)
    pytest.skip(f"{what} not available")


def need_tool(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    need(path is not None, f"the {name!r} command")
    assert path is not None
    return path


def need_shared(path: Path) -> Path:
    need(path.exists(), f"shared data {path}")
    return path
