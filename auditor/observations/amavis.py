"""What the amavisd-new collector observes: the Perl assignments amavis would evaluate, in order.

amavis's configuration is Perl: each file is ``do``-ne in load order and the last assignment to a
variable wins. The collector evaluates the assignments it can (constants, numbers, strings, lists,
hashes, variable references) and records, for every setting a rule reads, the value the variable
holds after each assignment, with file and line. What it cannot evaluate is kept as a value of kind
``unknown`` with the reason, and statements that may change anything (an include that was not read,
``eval STRING``) are kept as :class:`AmavisOpaque`: rules turn both into ``inconclusive``.
No judgement lives here; :meth:`AmavisConfig.lookup` only applies Perl's last-assignment-wins and
the policy-bank overlay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.model import Location, Observation

# Amavis::Conf constants (amavisd-new 2.13, Amavis/Conf.pm): D_BOUNCE is -2, not 2.
DESTINIES: dict[str, int] = {"D_TEMPFAIL": -4, "D_REJECT": -3, "D_BOUNCE": -2, "D_DISCARD": 0, "D_PASS": 1}
DESTINY_NAMES: dict[int, str] = {v: k for k, v in DESTINIES.items()}
CCATS: dict[str, int] = {
    "CC_CATCHALL": 0,
    "CC_CLEAN": 1,
    "CC_MTA": 2,
    "CC_OVERSIZED": 3,
    "CC_BADH": 4,
    "CC_SPAMMY": 5,
    "CC_SPAM": 6,
    "CC_UNCHECKED": 7,
    "CC_BANNED": 8,
    "CC_VIRUS": 9,
}

# Variables the rules read (with their sigil). Policy banks name the same settings without sigil.
TRACKED: tuple[str, ...] = (
    "$final_virus_destiny",
    "$final_banned_destiny",
    "$final_spam_destiny",
    "$final_bad_header_destiny",
    "$final_unchecked_destiny",
    "%final_destiny_maps_by_ccat",
    "$warnbannedsender",
    "$warnbadhsender",
    "$warnvirussender",
    "$warnspamsender",
    "%warnsender_by_ccat",
    "$sa_dsn_cutoff_level",
    "$sa_crediblefrom_dsn_cutoff_level",
    "$sa_kill_level_deflt",
    "@spam_dsn_cutoff_level_maps",
    "@spam_kill_level_maps",
    "@viruses_that_fake_sender_maps",
    "$viruses_that_fake_sender_re",
    "$inet_socket_port",
    "$unix_socketname",
    "%interface_policy",
    "%policy_bank",
    "@client_ipaddr_policy",
    "@mynetworks",
)
# Old names that Amavis::Conf aliases to the current ones (``*final_destiny_by_ccat = \%...``).
ALIASES: dict[str, str] = {"%final_destiny_by_ccat": "%final_destiny_maps_by_ccat"}


@dataclass(frozen=True)
class PerlValue:
    """A Perl value as far as the reader could evaluate it.

    ``kind``: ``number``, ``string``, ``undef``, ``list`` (a ``(...)`` list or ``[...]`` array),
    ``hash`` (``{...}``; ``items`` alternate key, value), ``ref`` (``\\$x``: ``name`` is the
    variable), ``call`` (``new_RE(...)``, ``read_hash(...)``: ``name`` and arguments in ``items``),
    ``regexp`` (``qr``: the pattern in ``string``), ``code`` (``sub {...}``) or ``unknown``
    (``reason`` says why). ``name`` also keeps the constant a number came from (``D_BOUNCE``).
    """

    kind: str
    text: str = ""
    number: float | None = None
    string: str | None = None
    name: str = ""
    items: tuple[PerlValue, ...] = ()
    reason: str = ""

    @property
    def known(self) -> bool:
        return self.kind != "unknown"

    def pairs(self) -> list[tuple[PerlValue, PerlValue]]:
        """Key/value pairs of a hash (or of a list read as a hash)."""
        it = list(self.items)
        return [(it[i], it[i + 1]) for i in range(0, len(it) - 1, 2)]

    def as_key(self) -> str | None:
        """The hash key Perl would use for this value, or None when unknown."""
        if self.kind == "string":
            return self.string
        if self.kind == "number" and self.number is not None:
            n = self.number
            return str(int(n)) if n == int(n) else repr(n)
        return None

    def truthy(self) -> bool | None:
        """Perl truth of a scalar (None: unknown or not a scalar)."""
        if self.kind == "undef":
            return False
        if self.kind == "number":
            return bool(self.number)
        if self.kind == "string":
            return self.string not in ("", "0")
        if self.kind in ("ref", "code", "hash", "regexp"):
            return True
        return None

    def numeric(self) -> float | None:
        """Perl's numeric value of a scalar (a string numifies by its leading number, else 0)."""
        if self.kind == "undef":
            return 0.0
        if self.kind == "number":
            return self.number
        if self.kind == "string" and self.string is not None:
            m = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", self.string)
            return float(m.group(1)) if m else 0.0
        return None

    def show(self) -> str:
        if self.kind == "number" and self.name:
            return self.name
        if self.text:
            return self.text
        if self.kind == "undef":
            return "undef"
        if self.kind == "string":
            return repr(self.string)
        if self.kind == "number":
            return self.as_key() or ""
        return self.kind


@dataclass(frozen=True)
class AmavisSetting:
    """One assignment to a tracked setting, with the value the setting holds after it.

    ``variable`` carries its sigil (``$final_spam_destiny``); ``key`` is the hash key of an element
    assignment (``$interface_policy{'10026'}`` → ``10026``; ``""`` for the whole variable);
    ``bank`` names the policy bank the assignment sets (``""``: the global setting). A whole
    policy bank assignment is recorded as ``%policy_bank`` with ``key`` = the bank name, then one
    setting per tracked key of the bank. ``seq`` orders settings and opaque statements.
    """

    variable: str
    value: PerlValue
    location: Location
    seq: int
    key: str = ""
    bank: str = ""
    op: str = "="
    statement: str = ""


@dataclass(frozen=True)
class AmavisOpaque:
    """A statement that may change any setting and that the reader could not follow."""

    text: str
    location: Location
    reason: str
    seq: int


@dataclass(frozen=True)
class AmavisFile:
    """One file of the load order: ``read``, or ``skipped`` (run-parts naming rules, not a file)."""

    path: str
    status: str
    reason: str = ""
    statements: int = 0


@dataclass(frozen=True)
class Resolved:
    """The effective value of one setting for one policy bank.

    ``setting`` is None when no file sets it (amavis's compiled-in default applies). ``after``
    holds opaque statements that come after the assignment and may have changed it.
    """

    setting: AmavisSetting | None
    after: tuple[AmavisOpaque, ...] = ()
    from_bank: bool = False

    @property
    def value(self) -> PerlValue | None:
        return None if self.setting is None else self.setting.value


@dataclass(frozen=True)
class AmavisConfig(Observation):
    """The configuration of one amavisd-new instance, as its files would be evaluated."""

    kind = "amavis.config"

    files: tuple[AmavisFile, ...] = ()
    settings: tuple[AmavisSetting, ...] = ()
    opaque: tuple[AmavisOpaque, ...] = ()
    recognised: int = 0  # assignments to well-known amavis variables (any, tracked or not)
    notes: tuple[str, ...] = ()
    banks_seen: tuple[str, ...] = field(default_factory=tuple)

    def files_read(self) -> list[AmavisFile]:
        return [f for f in self.files if f.status == "read"]

    def _after(self, seq: int) -> tuple[AmavisOpaque, ...]:
        return tuple(o for o in self.opaque if o.seq > seq)

    def _last(self, variable: str, key: str, bank: str, since: int = -1) -> AmavisSetting | None:
        found: AmavisSetting | None = None
        for s in self.settings:
            if s.seq <= since or s.bank != bank or s.variable != variable:
                continue
            if s.key == key:
                found = s
            elif key and s.key == "":
                found = s  # a whole-hash assignment (rules look the key up in its value)
        return found

    def bank_reset(self, bank: str) -> AmavisSetting | None:
        """The last whole assignment ``$policy_bank{'NAME'} = {...}``."""
        return self._last("%policy_bank", bank, "")

    def lookup(self, variable: str, key: str = "", bank: str = "") -> Resolved:
        """Last assignment wins; a policy bank overrides the global value of the settings it names."""
        if bank:
            reset = self.bank_reset(bank)
            since = reset.seq if reset is not None else -1
            s = self._last(variable, key, bank, since)
            if s is not None:
                return Resolved(s, self._after(s.seq), from_bank=True)
            if reset is not None and not reset.value.known:
                return Resolved(reset, self._after(reset.seq), from_bank=True)
        s = self._last(variable, key, "")
        if s is None:
            return Resolved(None, tuple(self.opaque))
        return Resolved(s, self._after(s.seq))

    def bank_names(self) -> list[str]:
        names = [s.key for s in self.settings if s.variable == "%policy_bank" and s.key]
        names += [s.bank for s in self.settings if s.bank]
        return list(dict.fromkeys([*self.banks_seen, *names]))
