"""The rule registry: one rule = one catalog entry (its metadata as data) + one pure function.

A rule module declares rules with the :func:`rule` decorator::

    @rule(
        "PF-RCPT-005",
        title="luser_relay catch-all",
        family="postfix",
        cause="local-recipients",
        controls=("RFC5321-6.1",),
        severity=Severity.HIGH,
        needs=(PostfixConfig,),
        remediation="Remove luser_relay so unknown local recipients are rejected at RCPT time.",
        references=("postconf(5) luser_relay",),
    )
    def luser_relay(obs: Observations, r: Rule) -> Iterator[Finding]:
        '''## What it flags ... ## Why it causes backscatter ... ## Example ...'''
        for cfg in obs.of(PostfixConfig):
            yield r.fail(cfg.target, "luser_relay is set", ..., remediation=commands)

One entry, one place. The decorator is the catalog entry: id, title, severity, root cause,
controls, references and the *generic fix* (``remediation=``). The docstring is the rule's page
(``backscatter-audit explain ID``, in the spirit of ruff's rule docs) and holds only prose: what
the rule flags, why it causes backscatter, an example; it has no "How to fix" section. The fix
lives in the decorator rather than in the docstring because a fix is data that every finding
carries (``Finding.remediation.text``) and the plan groups, like the other fields there; the
docstring is free text that nothing parses. A finding's own fix (``remediation=`` of
:meth:`Rule.fail` etc.) is the concrete version of that generic fix: the commands computed from
the observed configuration (:class:`auditor.model.FixCommand`), with the rule's text unless the
finding needs a different sentence. ``explain`` prints the generic fix once.

Rules never do I/O; a rule whose inputs are absent from a run produces nothing, and a rule that
has its inputs but cannot decide says ``inconclusive``, never ``pass``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from auditor.model import Evidence, Finding, Observation, Remediation, Severity, Status

_O = TypeVar("_O", bound=Observation)


class Observations:
    """The observations of one run, indexed by type, as rules see them."""

    def __init__(self, items: Iterable[Observation]) -> None:
        self.items: tuple[Observation, ...] = tuple(items)

    def of(self, cls: type[_O]) -> list[_O]:
        return [o for o in self.items if isinstance(o, cls)]

    def has(self, cls: type[Observation]) -> bool:
        return any(isinstance(o, cls) for o in self.items)


CheckFn = Callable[[Observations, "Rule"], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """A catalog rule: metadata as data plus the check function."""

    id: str
    title: str
    family: str
    severity: Severity
    check: CheckFn = field(repr=False, compare=False)
    needs: tuple[type[Observation], ...] = ()
    remediation: str = ""  # the generic fix: prose, the one place it is written
    references: tuple[str, ...] = ()
    tier: str = "core"
    cause: str = ""  # the root cause (remediation plan) this rule's failure belongs to
    controls: tuple[str, ...] = ()  # compliance controls (RFC sections) this rule evidences

    @property
    def doc(self) -> str:
        """The rule page: the check function's docstring, dedented."""
        return inspect.cleandoc(self.check.__doc__ or "")

    def applies(self, obs: Observations) -> bool:
        """A rule runs when any observation kind it needs is present in this run."""
        return not self.needs or any(obs.has(cls) for cls in self.needs)

    def finding(
        self,
        status: Status,
        target: str,
        message: str,
        evidence: Sequence[Evidence] = (),
        *,
        severity: Severity | None = None,
        remediation: str | Remediation | None = None,
        note: str = "",
    ) -> Finding:
        if remediation is None:
            remediation = self.remediation
        fix = remediation if isinstance(remediation, Remediation) else Remediation(text=remediation)
        if not fix.text:
            fix = Remediation(text=self.remediation, commands=fix.commands)  # the concrete generic fix
        return Finding(
            rule_id=self.id,
            status=status,
            severity=severity or self.severity,
            target=target,
            message=message,
            title=self.title,
            evidence=tuple(evidence),
            remediation=fix,
            references=self.references,
            note=note,
        )

    def fail(self, target: str, message: str, evidence: Sequence[Evidence] = (), **kw: object) -> Finding:
        return self.finding(Status.FAIL, target, message, evidence, **kw)  # type: ignore[arg-type]

    def passed(self, target: str, message: str, evidence: Sequence[Evidence] = (), **kw: object) -> Finding:
        return self.finding(Status.PASS, target, message, evidence, **kw)  # type: ignore[arg-type]

    def inconclusive(
        self, target: str, message: str, evidence: Sequence[Evidence] = (), **kw: object
    ) -> Finding:
        return self.finding(Status.INCONCLUSIVE, target, message, evidence, **kw)  # type: ignore[arg-type]

    def not_applicable(
        self, target: str, message: str, evidence: Sequence[Evidence] = (), **kw: object
    ) -> Finding:
        return self.finding(Status.NOT_APPLICABLE, target, message, evidence, **kw)  # type: ignore[arg-type]


REGISTRY: dict[str, Rule] = {}


def rule(
    rule_id: str,
    *,
    title: str,
    family: str,
    severity: Severity,
    needs: tuple[type[Observation], ...] = (),
    remediation: str = "",
    references: tuple[str, ...] = (),
    tier: str = "core",
    cause: str = "",
    controls: tuple[str, ...] = (),
) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under a catalog id (ids are unique; a duplicate is a bug)."""

    def register(fn: CheckFn) -> CheckFn:
        if rule_id in REGISTRY:
            raise RuntimeError(f"rule {rule_id} registered twice")
        if not (fn.__doc__ or "").strip():
            raise RuntimeError(f"rule {rule_id} has no docstring (its explain page)")
        REGISTRY[rule_id] = Rule(
            id=rule_id,
            title=title,
            family=family,
            severity=severity,
            check=fn,
            needs=needs,
            remediation=inspect.cleandoc(remediation),
            references=references,
            tier=tier,
            cause=cause,
            controls=controls,
        )
        return fn

    return register
