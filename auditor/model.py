"""The finding model: what collectors observe, what rules conclude, what renderers print.

Everything here is a frozen dataclass or a ``str`` enum, so a report is plain data: it can be
written to JSON (the source of truth, see :mod:`auditor.serialize`) and read back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, TypeVar


class Severity(str, Enum):
    """How bad a failing finding is (rules.md §0.2)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: critical=4 … info=0."""
        return _SEVERITY_RANK[self]

    def at_least(self, threshold: Severity) -> bool:
        return self.rank >= threshold.rank


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Status(str, Enum):
    """The outcome of one rule for one target.

    ``inconclusive`` is what a rule says when it could not measure (timeout, truncated export,
    template placeholder); it is never turned into ``pass``.
    """

    FAIL = "fail"
    PASS = "pass"
    INCONCLUSIVE = "inconclusive"
    NOT_APPLICABLE = "not-applicable"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class Location:
    """Where evidence lives in a file: config findings point their users here (SARIF, editors)."""

    path: str
    line: int | None = None
    column: int | None = None
    end_line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Evidence:
    """One piece of proof behind a finding: a config line, an SMTP transcript, an LDAP DN, an NDR."""

    summary: str
    location: Location | None = None
    transcript: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


_O = TypeVar("_O", bound="Observation")


@dataclass(frozen=True)
class Observation:
    """Base of all observations: facts a collector saw, with evidence, and no judgement.

    Subclasses set the class variable ``kind`` (e.g. ``"postfix.config"``); that name is written
    to JSON, and :data:`auditor.observations.KINDS` maps it back when a saved report is loaded.
    """

    kind: ClassVar[str] = "observation"

    target: str


@dataclass(frozen=True)
class FixCommand:
    """One shell line of a fix: what it changes and whether it can be pasted as is.

    ``safe`` is False when the line holds a placeholder the admin must fill in first; the
    placeholders are written in the line as ``<…>`` and listed in ``placeholders``. ``directory``
    names the configuration directory the line edits ("" when it edits none).
    """

    line: str
    changes: str = ""  # e.g. "main.cf smtpd_recipient_restrictions", "master.cf smtp/inet"
    safe: bool = True
    placeholders: tuple[str, ...] = ()
    directory: str = ""


@dataclass(frozen=True)
class Remediation:
    """How to fix one finding: an explanation and the commands that make the change."""

    text: str = ""
    commands: tuple[FixCommand, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.text or self.commands)

    def as_text(self) -> str:
        """Text then commands, one per line: for plain-text views."""
        lines = [self.text] if self.text else []
        lines += [c.line for c in self.commands]
        return "\n".join(lines)


@dataclass(frozen=True)
class Finding:
    """A rule's conclusion about one target."""

    rule_id: str
    status: Status
    severity: Severity
    target: str
    message: str
    title: str = ""
    evidence: tuple[Evidence, ...] = ()
    remediation: Remediation = field(default_factory=Remediation)
    references: tuple[str, ...] = ()
    note: str = ""

    @property
    def location(self) -> Location | None:
        """The first file location among the evidence (what SARIF and editors point at)."""
        for ev in self.evidence:
            if ev.location is not None:
                return ev.location
        return None

    @property
    def key(self) -> tuple[str, str]:
        """Identity across runs, for baselines and ``report diff``."""
        return (self.rule_id, self.target)


@dataclass(frozen=True)
class RunInfo:
    """Run metadata: who produced the report, when, over what."""

    tool: str
    tool_version: str
    started: str
    finished: str
    command: str
    scope: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    partial: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """Findings + observations + run metadata: the one object every renderer draws from."""

    run: RunInfo
    findings: tuple[Finding, ...]
    observations: tuple[Observation, ...] = ()

    def of(self, cls: type[_O]) -> list[_O]:
        return [o for o in self.observations if isinstance(o, cls)]


class InputError(Exception):
    """Bad input from the user (a config file, an export, an argument): exit code 2, one clear line.

    ``path`` and ``line`` name the place; ``str(err)`` gives ``path:line: message``.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")
