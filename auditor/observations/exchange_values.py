"""Reading PowerShell display values: booleans, sizes, dates, lists.

Hand-written because these are PowerShell's own display conventions (``10 MB (10,485,760 bytes)``,
``/Date(1700000000000)/``, ``PT5S``), which no Python library parses.
"""

from __future__ import annotations

import datetime as _dt
import re

_TRUE = {"true", "$true", "1"}
_FALSE = {"false", "$false", "0"}


def parse_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    return None


def bool_text(value: bool) -> str:
    return "True" if value else "False"


_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
# Digits first, and no class overlapping the one before "bytes": linear time on hostile input.
_BYTES_IN_PARENS = re.compile(r"\((\d[\d,.\u00a0' ]*)bytes\)", re.I)
_NUM_UNIT = re.compile(r"^\s*([\d.,]+)\s*([kmgt]?b)?\s*$", re.I)


def parse_size(text: str | None) -> int | None:
    """Bytes from a ByteQuantifiedSize display (``10 MB (10,485,760 bytes)``, ``0 B (0 bytes)``, ``10MB``).

    ``Unlimited`` and anything unreadable give None (the caller reports it as unknown).
    """
    if text is None:
        return None
    m = _BYTES_IN_PARENS.search(text)
    if m:
        digits = re.sub(r"[^\d]", "", m.group(1))
        return int(digits) if digits else None
    m = _NUM_UNIT.match(text)
    if not m:
        return None
    number = m.group(1).replace(",", "")
    try:
        amount = float(number)
    except ValueError:
        return None
    return int(amount * _UNITS[(m.group(2) or "b").lower()])


_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def ms_json_date(text: str) -> str | None:
    """ISO-8601 UTC from the ``/Date(ms)/`` form PowerShell 5.1's ConvertTo-Json writes."""
    m = _MS_DATE.match(text)
    if not m:
        return None
    try:
        when = _dt.datetime.fromtimestamp(int(m.group(1)) / 1000, _dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return when.isoformat().replace("+00:00", "Z")


_ISO_DURATION = re.compile(r"^-?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$")


def timespan_text(iso: str) -> str:
    """``00:00:05`` (PowerShell's TimeSpan display) from CLIXML's ``PT5S``; unchanged if unreadable."""
    m = _ISO_DURATION.match(iso.strip())
    if not m or iso.strip() in ("P", "PT"):
        return iso
    days, hours, minutes = (int(g or 0) for g in m.groups()[:3])
    seconds = float(m.group(4) or 0)
    whole = int(seconds)
    text = f"{hours:02d}:{minutes:02d}:{whole:02d}"
    if days:
        text = f"{days}.{text}"
    if seconds != whole:
        text += f".{round((seconds - whole) * 1e7):07d}"
    return ("-" if iso.startswith("-") else "") + text


def split_list(text: str) -> list[str]:
    """Entries of a flags-enum or comma list display: ``AnonymousUsers, ExchangeUsers``."""
    return [p.strip() for p in text.split(",") if p.strip()]
