"""The files the tool reads at run time (package data), found through :mod:`importlib.resources`.

Every loader asks here, so that an installed wheel or pipx venv and a source checkout (run with
``PYTHONPATH`` or an editable install) find the same files. The probe scenarios are the one special
case: their source of truth is the top-level ``probes/`` folder, which the build copies into the
package as ``auditor/probes`` (see ``setup.py``); a checkout reads ``probes/`` in place.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from auditor.model import InputError

_CHECKOUT_PROBES = Path(__file__).resolve().parent.parent / "probes"


def path(package: str, *parts: str) -> Path:
    """A file or folder shipped inside ``package``, as a file-system path.

    Callers hand it to tools that need a real path (jinja2's loader, the admin who copies the
    collector script). A package imported from a zip archive has none: that is a clear error.
    """
    item = resources.files(package).joinpath(*parts)
    if not isinstance(item, Path):
        raise InputError(f"package data {'/'.join(parts)!r} of {package} is not a file on disk (zip import?)")
    return item


def read_text(package: str, *parts: str) -> str:
    """The UTF-8 text of a file shipped inside ``package``."""
    return resources.files(package).joinpath(*parts).read_text(encoding="utf-8")


def probes_dir() -> Path:
    """The built-in probe scenarios: ``auditor/probes`` when installed, else the checkout's ``probes/``."""
    shipped = path("auditor", "probes")
    return shipped if shipped.is_dir() else _CHECKOUT_PROBES
