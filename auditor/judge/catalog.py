"""The catalog entries a report carries: one :class:`~auditor.model.RuleInfo` per rule it names.

They come from the rule registry; a rule this build does not know (a saved report from another
build, a test rule) gets an entry from what its findings carry, so every renderer finds one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from auditor.model import Finding, Remediation, RuleInfo
from auditor.rules import Rule, get

# Family names by id prefix (rules.md §0.1), for rules this build does not know.
_FAMILY_BY_PREFIX = {
    "SMTP": "smtp",
    "DNS": "dns",
    "PF": "postfix",
    "EX": "exchange",
    "EXIM": "exim",
    "QMAIL": "qmail",
    "SENDMAIL": "sendmail",
    "CF": "content-filter",
    "AR": "autoresponder",
    "FWD": "forwarding",
    "LDAP": "directory",
    "NDR": "ndr",
    "BSA": "audit",
}


def family_by_prefix(rule_id: str) -> str:
    return _FAMILY_BY_PREFIX.get(rule_id.split("-", 1)[0].upper(), "other")


def _fix_text(fix: object) -> str:
    # The catalog's fix is text today; once it is data, its text view is what the page shows.
    return fix.as_text() if isinstance(fix, Remediation) else str(fix or "")


def from_rule(r: Rule) -> RuleInfo:
    return RuleInfo(
        id=r.id,
        title=r.title,
        family=r.family,
        severity=r.severity,
        cause=r.cause,
        controls=tuple(r.controls),
        doc=r.doc,
        remediation=_fix_text(r.remediation),
        references=tuple(r.references),
    )


def from_finding(f: Finding) -> RuleInfo:
    """An entry for a rule unknown to this build: what one of its findings says about it."""
    return RuleInfo(
        id=f.rule_id,
        title=f.title or f.rule_id,
        family=family_by_prefix(f.rule_id),
        severity=f.severity,
        references=f.references,
    )


def registry_entry(rule_id: str) -> RuleInfo | None:
    try:
        r = get(rule_id)
    except Exception:  # a broken rule module must not stop a report from being judged
        return None
    return from_rule(r) if r is not None else None


def entries(
    findings: Iterable[Finding], known: Mapping[str, RuleInfo] | None = None, *, registry: bool = True
) -> dict[str, RuleInfo]:
    """One entry per rule id of ``findings``, sorted by id: from ``known`` first, else (when
    ``registry``) the rule registry, else the finding itself."""
    out: dict[str, RuleInfo] = {}
    for f in findings:
        if f.rule_id in out:
            continue
        info = (known or {}).get(f.rule_id) or (registry_entry(f.rule_id) if registry else None)
        out[f.rule_id] = info or from_finding(f)
    return dict(sorted(out.items()))


__all__ = ["entries", "family_by_prefix", "from_finding", "from_rule", "registry_entry"]
