"""The test lab: real Postfix, slapd, DNS and a bounce sink in network namespaces.

``Lab(state_dir).up() -> LabInfo``, ``.down()``, ``.status()``; ``with Lab() as info: ...``.
Layout and expected verdicts are data in :mod:`auditor.lab.topology`.

Imports are lazy: ``auditor.lab.slapd`` and the lab's daemons (sink, greylist) must not pull in
pyroute2, which only the orchestrator needs (it is the optional ``lab`` extra).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Endpoint": "auditor.lab.info",
    "LabInfo": "auditor.lab.info",
    "LdapInfo": "auditor.lab.info",
    "PostfixInfo": "auditor.lab.info",
    "Lab": "auditor.lab.orchestrator",
    "default_state_dir": "auditor.lab.orchestrator",
    "LabError": "auditor.lab.procs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'auditor.lab' has no attribute {name!r}")
