"""The finding model: what collectors observe, what rules conclude, what renderers print.

Everything here is a frozen dataclass or a ``str`` enum, so a report is plain data: it can be
written to JSON (the source of truth, see :mod:`auditor.serialize`) and read back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
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
    site_name: str = ""  # site.toml's site.name: the report's title


class ReportVerdict(str, Enum):
    """The headline of a report, decided by the judge together with the exit code."""

    FAIL = "fail"  # a finding at or above --fail-on failed (exit 1)
    INCONCLUSIVE = "inconclusive"  # nothing at or above it failed, but something could not be measured (3)
    PASS = "pass"  # measured, and nothing at or above --fail-on failed or is unmeasured (0)
    NOT_ASSESSED = "not-assessed"  # no check produced a measured result (0)

    @property
    def word(self) -> str:
        """FAIL / INCONCLUSIVE / PASS / NOT ASSESSED, as headlines print it."""
        return self.value.replace("-", " ").upper()


@dataclass(frozen=True)
class Assessment:
    """The headline: verdict, the threshold it was judged at, the exit code, and the counts."""

    verdict: ReportVerdict
    fail_on: Severity
    exit_code: int
    summary: str  # the one sentence a manager reads first
    by_status: dict[Status, int]
    failed_by_severity: dict[Severity, int]  # FAIL findings only


class Effort(str, Enum):
    """How long a root cause takes to fix: one setting, a table or a process, an architecture change."""

    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"

    @property
    def rank(self) -> int:
        return _EFFORT_RANK[self]


_EFFORT_RANK = {Effort.MINUTES: 1, Effort.HOURS: 2, Effort.DAYS: 3}


@dataclass(frozen=True)
class FindingRef:
    """A failing finding a plan step answers, by its identity and where it was seen."""

    rule_id: str
    target: str
    severity: Severity
    location: Location | None = None


@dataclass(frozen=True)
class PlanStep:
    """One fix of the plan: the findings it answers and what to run (commands name their directory)."""

    text: str
    commands: tuple[FixCommand, ...]
    findings: tuple[FindingRef, ...]

    @property
    def to_fill(self) -> tuple[str, ...]:
        """The placeholders to fill in before the commands can run."""
        return tuple(dict.fromkeys(p for c in self.commands if not c.safe for p in c.placeholders))


@dataclass(frozen=True)
class PlanItem:
    """One root cause: its ordered steps and how to check the fix took effect."""

    cause: str  # the root cause id ("relay-recipients"), or the rule id of a rule without one
    title: str
    effort: Effort
    severity: Severity  # the worst of its findings
    steps: tuple[PlanStep, ...]
    verify: tuple[str, ...] = ()

    @property
    def findings(self) -> tuple[FindingRef, ...]:
        return tuple(r for s in self.steps for r in s.findings)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.rule_id for r in self.findings))


class ControlStatus(str, Enum):
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ACCEPTED_RISK = "accepted-risk"
    PASS = "pass"
    NOT_ASSESSED = "not-assessed"


@dataclass(frozen=True)
class ControlResult:
    """One row of the compliance table: a control and what the findings of its rules say."""

    control: str  # e.g. "RFC5321-6.1"
    source: str  # the standard and section, e.g. "RFC 5321 §6.1"
    requirement: str
    status: ControlStatus
    rule_ids: tuple[str, ...] = ()  # rules with a finding (not-applicable ones excluded)


@dataclass(frozen=True)
class RuleInfo:
    """The catalog entry of a rule that appears in the report, so a saved report renders alone."""

    id: str
    title: str
    family: str
    severity: Severity
    cause: str = ""
    controls: tuple[str, ...] = ()
    doc: str = ""  # the rule page (``explain ID``)
    remediation: str = ""  # the catalog's fix text
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """Everything a report says, decided once by the judge (:mod:`auditor.judge`).

    Renderers draw from it and compute nothing: the headline is ``assessment``, the fixes ``plan``,
    the standards table ``compliance``, the rule metadata ``rules``.
    """

    run: RunInfo
    findings: tuple[Finding, ...]
    observations: tuple[Observation, ...] = ()
    assessment: Assessment = field(kw_only=True)
    plan: tuple[PlanItem, ...] = field(kw_only=True)
    compliance: tuple[ControlResult, ...] = field(kw_only=True)
    rules: tuple[RuleInfo, ...] = field(default=(), kw_only=True)

    def of(self, cls: type[_O]) -> list[_O]:
        return [o for o in self.observations if isinstance(o, cls)]

    def rule(self, rule_id: str) -> RuleInfo | None:
        """The catalog entry the report carries for ``rule_id``."""
        return self._rules_by_id.get(rule_id)

    @cached_property
    def _rules_by_id(self) -> dict[str, RuleInfo]:
        return {r.id: r for r in self.rules}


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
