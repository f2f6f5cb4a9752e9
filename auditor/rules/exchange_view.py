"""A read-only view of a run's Exchange observations, shaped for the EX-* rules (no I/O, no judgement).

It answers the questions several rules ask: the objects of one cmdlet, whether that cmdlet ran (or
failed, per the collector manifest), the environment, and reads one property as a boolean or name,
telling *why* when it cannot (missing from the export, truncated, unrecognised).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from auditor.model import Evidence, Observation
from auditor.observations.exchange import ExchangeCmdletOutput, ExchangeRun, ExObject
from auditor.observations.exchange_values import parse_bool, split_list


@dataclass(frozen=True)
class Row:
    """One object with the output it came from (for evidence: file, line, form)."""

    out: ExchangeCmdletOutput
    obj: ExObject

    @property
    def identity(self) -> str:
        ident = self.obj.identity
        if ident == "(unnamed object)":  # singleton config objects pasted without Identity/Name
            return self.out.cmdlet.split("-", 1)[-1]
        return ident

    def evidence(self, *props: str, note: str = "") -> Evidence:
        shown = []
        for p in props:
            v = self.obj.get(p)
            shown.append(f"{p} = {v.display() if v is not None else '(not in export)'}")
        summary = f"{self.out.cmdlet} {self.identity!r}: " + "; ".join(shown) + (f" ({note})" if note else "")
        data: dict[str, str | None] = {
            "cmdlet": self.out.cmdlet,
            "form": self.out.form,
            "identity": self.identity,
        }
        for p in props:
            v = self.obj.get(p)
            data[p] = v.display() if v is not None else None
        return Evidence(
            summary=summary, location=self.out.location(self.obj, props[0] if props else None), data=data
        )


class ExchangeView:
    def __init__(self, items: Iterable[Observation]) -> None:
        items = list(items)
        self.outputs = [o for o in items if isinstance(o, ExchangeCmdletOutput)]
        runs = [o for o in items if isinstance(o, ExchangeRun)]
        self.environment = runs[0].environment if runs else ""

    @property
    def online(self) -> bool:
        return self.environment == "ExchangeOnline"

    def rows(self, cmdlet: str) -> list[Row]:
        return [Row(o, obj) for o in self.outputs if o.cmdlet == cmdlet and not o.error for obj in o.objects]

    def ran(self, cmdlet: str) -> bool:
        """The cmdlet's output is in the data (possibly empty)."""
        return any(o.cmdlet == cmdlet and not o.error for o in self.outputs)

    def error(self, cmdlet: str) -> str | None:
        """The collector's recorded error for a cmdlet that produced no output."""
        if self.ran(cmdlet):
            return None
        return next((o.error for o in self.outputs if o.cmdlet == cmdlet and o.error), None)


def why_unknown(obj: ExObject, prop: str) -> str:
    v = obj.get(prop)
    if v is None:
        return f"{prop} is not in the export"
    if v.truncated:
        return f"the value of {prop} was truncated in the export"
    return f"{prop} has an unrecognised value {v.display()!r}"


def flag(obj: ExObject, prop: str) -> bool | None:
    """A boolean property, or None when missing, truncated or not a boolean."""
    return parse_bool(obj.text(prop))


def name(obj: ExObject, prop: str, allowed: Iterable[str]) -> str | None:
    """An enum property's name (case-normalised to ``allowed``), or None when unknown."""
    t = obj.text(prop)
    if t is None:
        return None
    for a in allowed:
        if a.lower() == t.strip().lower():
            return a
    return None


def items(obj: ExObject, prop: str) -> list[str] | None:
    """Entries of a multi-valued property (or of a comma-separated display), None when unknown."""
    v = obj.get(prop)
    if v is None or v.truncated:
        return None
    if v.multi:
        return list(v.items)
    return split_list(v.value or "")


_ALL_V4 = ipaddress.ip_network("0.0.0.0/0")
_ALL_V6 = ipaddress.ip_network("::/0")


def covers_everyone(ranges: list[str]) -> bool:
    """Whether RemoteIPRanges admit any Internet client (a full IPv4 or IPv6 range, or /0)."""
    for r in ranges:
        r = r.strip()
        try:
            if "-" in r:
                lo, hi = (ipaddress.ip_address(x.strip()) for x in r.split("-", 1))
                if (str(lo), str(hi)) in (("0.0.0.0", "255.255.255.255"),) or (
                    lo.version == 6 and int(lo) == 0 and int(hi) == int(_ALL_V6.broadcast_address)
                ):
                    return True
            else:
                net = ipaddress.ip_network(r, strict=False)
                if net in (_ALL_V4, _ALL_V6):
                    return True
        except ValueError:
            continue
    return False


def ports(bindings: list[str]) -> set[int]:
    out = set()
    for b in bindings:
        _, _, port = b.rpartition(":")
        if port.isdigit():
            out.add(int(port))
    return out
