"""What the Exchange collector observes: cmdlet output, normalised from any of the three export forms.

The collector script's JSON, an ``Export-Clixml`` file and a ``Format-List`` paste all become the
same :class:`ExchangeCmdletOutput` observations, so a rule never knows (or cares) which form the
admin handed over. Values are kept as the strings PowerShell would display, with a ``truncated``
flag where the export lost data (depth limits, ``...`` in console output): rules treat a truncated
or missing value as unknown, never as a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.model import Location, Observation

# Forms of input, as recorded in ``ExchangeCmdletOutput.form``.
FORM_COLLECTOR = "collector-json"
FORM_JSON = "convertto-json"
FORM_CLIXML = "clixml"
FORM_FORMAT_LIST = "format-list"
FORM_TABLE = "format-table"

ENV_ONPREM = "OnPremises"
ENV_ONLINE = "ExchangeOnline"


@dataclass(frozen=True, slots=True)  # hundreds of thousands in a large export
class ExValue:
    """One property value as PowerShell displays it.

    ``value`` is the scalar text (``True``/``False`` for booleans, enum names, ``00:00:05`` for
    time spans, ``10 MB (10,485,760 bytes)`` for sizes) or ``None`` for ``$null``/empty. A multi-valued
    property has ``multi=True`` and its entries in ``items``. ``truncated`` means the export did not
    carry the whole value, so nothing may be concluded from it.
    """

    value: str | None = None
    items: tuple[str, ...] = ()
    multi: bool = False
    truncated: bool = False
    line: int | None = None

    def display(self) -> str:
        if self.multi:
            text = "{" + ", ".join(self.items) + "}"
        else:
            text = "$null" if self.value is None else self.value
        return text + (" (truncated)" if self.truncated else "")


@dataclass(frozen=True)
class ExObject:
    """One object of a cmdlet's output: property name → value (names as PowerShell spells them)."""

    props: dict[str, ExValue] = field(default_factory=dict)
    line: int | None = None

    def get(self, name: str) -> ExValue | None:
        """Case-insensitive lookup, like PowerShell's own property access."""
        hit = self.props.get(name)
        if hit is not None:
            return hit
        low = name.lower()
        for key, val in self.props.items():
            if key.lower() == low:
                return val
        return None

    def text(self, name: str) -> str | None:
        """The plain value, or None when missing, null or truncated."""
        v = self.get(name)
        if v is None or v.truncated:
            return None
        if v.multi:
            return ", ".join(v.items)
        return v.value

    @property
    def identity(self) -> str:
        """What Set-* cmdlets take as -Identity: Identity, else Name, else DomainName."""
        for key in ("Identity", "Name", "DomainName"):
            t = self.text(key)
            if t:
                return t
        return "(unnamed object)"


@dataclass(frozen=True)
class ExchangeCmdletOutput(Observation):
    """The output of one cmdlet from one input file (possibly empty, possibly an error)."""

    kind = "exchange.cmdlet"

    cmdlet: str = ""
    path: str = ""
    form: str = ""
    objects: tuple[ExObject, ...] = ()
    error: str = ""
    line: int | None = None

    def location(self, obj: ExObject | None = None, prop: str | None = None) -> Location:
        line = self.line
        if obj is not None:
            line = obj.line or line
            v = obj.get(prop) if prop else None
            if v is not None and v.line:
                line = v.line
        return Location(self.path, line)


@dataclass(frozen=True)
class ExchangeRun(Observation):
    """Facts about the whole Exchange input of one run: which environment it describes and from where.

    ``environment`` is ``OnPremises``, ``ExchangeOnline`` or ``""`` (unknown);
    ``environment_source`` says how it was decided (collector manifest, or which cmdlets were seen).
    """

    kind = "exchange.run"

    environment: str = ""
    environment_source: str = ""
    server: str = ""
    exchange_version: str = ""
    collected: str = ""
    inputs: tuple[str, ...] = ()
    cmdlets: tuple[str, ...] = ()
