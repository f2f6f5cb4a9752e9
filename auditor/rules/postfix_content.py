"""PF-FILTER-004: header/body REJECT actions on paths where the message is already queued.

cleanup(8) applies ``header_checks``, ``body_checks``, ``mime_header_checks`` and
``nested_header_checks``; each input path (an smtpd listener, pickup) hands mail to the cleanup
service named by its ``cleanup_service_name``, so the checks a path gets are that cleanup service's
``-o`` overrides or main.cf. The path's own ``receive_override_options = no_header_body_checks``
switches them off. The rule judges the tables' real entries (``LookupTable.contents``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from auditor.model import Evidence, Finding, Location, Severity
from auditor.observations.postfix import LookupTable, MasterService, ParamValue, PostfixConfig, TableEntry
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.postfix_common import (
    effective,
    evidence,
    fix_param,
    is_templated,
    service_label,
    service_target,
    split_list,
    table_specs,
    template_note,
    where,
)
from auditor.rules.postfix_delivery import reinjection_listeners

_REF_FILTER = "https://www.postfix.org/FILTER_README.html"
_REF_BACKSCATTER = "https://www.postfix.org/BACKSCATTER_README.html"
HB_PARAMS = ("header_checks", "body_checks", "mime_header_checks", "nested_header_checks")
BOUNCING_ACTIONS = frozenset({"REJECT"})  # header_checks(5): the only action that refuses the message
MAX_SHOWN = 5


def action(entry: TableEntry) -> str:
    """The header_checks(5) action of an entry (``REJECT text`` → ``REJECT``); actions ignore case."""
    words = entry.value.split(None, 1)
    return words[0].upper() if words else ""


def cleanup_service(cfg: PostfixConfig, svc: MasterService) -> MasterService | None:
    """The cleanup(8) service this input service hands its mail to (None: not in master.cf)."""
    name = effective(cfg, "cleanup_service_name", svc).value.strip() or "cleanup"
    return next((s for s in cfg.services if s.name == name and s.type == "unix"), None)


@dataclass
class PathChecks:
    """What the content checks of one input path do."""

    active: list[ParamValue] = field(default_factory=list)
    rejects: list[tuple[ParamValue, LookupTable, TableEntry]] = field(default_factory=list)
    actions: set[str] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)  # why some table could not be judged
    templated: ParamValue | None = None
    truncated: bool = False  # some table holds more entries than the collector kept: counts are minimums


def _table(cfg: PostfixConfig, spec: str, param: str) -> LookupTable | None:
    return next((t for t in cfg.tables if t.spec == spec and t.used_for(param)), None)


def path_checks(cfg: PostfixConfig, csvc: MasterService | None) -> PathChecks:
    """Read the four content-check parameters as the cleanup service ``csvc`` sees them."""
    out = PathChecks()
    seen: set[str] = set()  # mime_ and nested_header_checks default to $header_checks: count once
    for name in HB_PARAMS:
        p = effective(cfg, name, csvc)
        if not p.value.strip():
            continue
        out.active.append(p)
        if is_templated(p):
            out.templated = out.templated or p
            continue
        for spec in table_specs(p.value):
            if spec in seen:
                continue
            seen.add(spec)
            t = _table(cfg, spec, name)
            if t is None:
                out.unknown.append(f"{spec}: not collected")
                continue
            if not t.readable:
                out.unknown.append(f"{spec}: {t.error or 'contents not readable'}")
                continue
            listed = set(t.contents)
            # result_kinds covers the whole table: a REJECT past a truncated ``contents`` still counts
            for e in [*t.contents, *(k for k in t.result_kinds if k not in listed)]:
                act = action(e)
                out.actions.add(act)
                if act in BOUNCING_ACTIONS:
                    out.rejects.append((p, t, e))
            out.truncated = out.truncated or t.contents_truncated
    return out


def _entry_evidence(cfg: PostfixConfig, p: ParamValue, t: LookupTable, e: TableEntry) -> Evidence:
    loc = e.location or Location(t.resolved_path or t.name)
    return Evidence(f"{p.name} {t.spec}: {e.key} {e.value}".strip(), loc)


def _svc_evidence(svc: MasterService) -> Evidence:
    return Evidence(f"{service_label(svc)} {svc.command} {' '.join(svc.args)}".strip(), svc.location)


def _paths(cfg: PostfixConfig) -> list[tuple[MasterService, Severity, str]]:
    paths = [(s, Severity.MEDIUM, "re-injection listener") for s in reinjection_listeners(cfg)]
    paths += [(s, Severity.LOW, "local submission (pickup)") for s in cfg.services if s.command == "pickup"]
    return paths


@rule(
    "PF-FILTER-004",
    title="header/body REJECT rules applied to already-queued mail",
    family="postfix",
    cause="in-session-filtering",
    severity=Severity.MEDIUM,
    needs=(PostfixConfig,),
    remediation=(
        "Add no_header_body_checks to receive_override_options of the re-injection listener (the "
        "checks already ran on the first pass) or of pickup, and use DISCARD or HOLD rather than "
        "REJECT for patterns that match already-queued mail such as virus notifications."
    ),
    references=("header_checks(5)", "cleanup(8)", _REF_FILTER, _REF_BACKSCATTER),
)
def header_checks_after_queue(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A `REJECT` entry in a `header_checks`, `body_checks`, `mime_header_checks` or
    `nested_header_checks` table that applies on a path carrying already-queued mail: a
    post-filter re-injection listener without `receive_override_options = no_header_body_checks`
    (medium), or the `pickup` service (locally submitted mail, low). The message quotes the REJECT
    lines with file and line.

    The checks belong to cleanup(8): a path gets those of the cleanup service its
    `cleanup_service_name` names (that service's `-o` overrides, else main.cf). An `-o header_checks=`
    on an smtpd line changes nothing, and the rule says so. Tables whose contents could not be read
    (missing file, `ldap:`/SQL, templated name) make the path `inconclusive`; in a table too big to
    keep whole the collector still records the first entry of each action, so a REJECT anywhere in
    it is seen. Tables with only
    DISCARD, HOLD, WARN, REDIRECT and the like `pass`. Checks on the public smtpd are not flagged:
    there a REJECT is an end-of-DATA 5xx to the real client.

    ## Why it causes backscatter
    For mail arriving through smtpd a REJECT is an in-session reply. For mail that is already
    queued or is being re-injected by a content filter, REJECT means Postfix (or the filter that
    gets the 5xx) bounces it to the envelope sender, who for spam is forged.

    ## Example
    ```
    header_checks = regexp:/etc/postfix/header_checks   # /^Subject: .*viagra/ REJECT
    127.0.0.1:10025 inet n - n - - smtpd
      -o content_filter=
    ```
    """
    for cfg in obs.of(PostfixConfig):
        paths = _paths(cfg)
        cleanups = {id(s): cleanup_service(cfg, s) for s, _, _ in paths}
        found = {
            (p.name, str(p.location)): p
            for c in [None, *(s for s in cfg.services if s.command == "cleanup")]
            for p in (effective(cfg, n, c) for n in HB_PARAMS)
            if p.value.strip()
        }
        anywhere = list(found.values())
        if not anywhere:
            yield r.not_applicable(cfg.target, "no header_checks or body_checks are configured")
            continue
        for svc, sev, what in paths:
            yield _judge_path(r, cfg, svc, sev, what, cleanups[id(svc)])
        if not paths:
            shown = ", ".join(f"{p.name} = {p.raw if is_templated(p) else p.value}" for p in anywhere)
            yield r.passed(
                cfg.target,
                f"{shown} apply only to smtpd (in-session rejects)",
                [evidence(cfg, p) for p in anywhere],
            )


def _judge_path(
    r: Rule,
    cfg: PostfixConfig,
    svc: MasterService,
    sev: Severity,
    what: str,
    csvc: MasterService | None,
) -> Finding:
    target = service_target(cfg, svc)
    label = f"{what} {service_label(svc)}"
    via = f" (cleanup service {service_label(csvc)})" if csvc is not None and csvc.name != "cleanup" else ""
    own = [svc.overrides[n] for n in HB_PARAMS if n in svc.overrides]
    ignored = (
        f"{where(cfg, own[0])}: -o {', '.join(p.name for p in own)} on {service_label(svc)} has no effect: "
        "cleanup(8) applies the checks (give the path its own cleanup service with cleanup_service_name)"
        if own and svc.command != "cleanup"
        else ""
    )
    opts = effective(cfg, "receive_override_options", svc)
    ev_svc = [_svc_evidence(svc)] + ([_svc_evidence(csvc)] if csvc is not None and via else [])
    if "no_header_body_checks" in {o.lower() for o in split_list(opts.value)}:
        return r.passed(target, f"{label} skips header/body checks", [evidence(cfg, opts)], note=ignored)
    checks = path_checks(cfg, csvc)
    if not checks.active:
        return r.passed(target, f"no header/body checks apply to {label}{via}", ev_svc, note=ignored)
    ev_params = [evidence(cfg, p) for p in checks.active]
    notes = [ignored] if ignored else []
    if checks.rejects:
        shown = checks.rejects[:MAX_SHOWN]
        more = len(checks.rejects) - len(shown)
        ev = [*(_entry_evidence(cfg, p, t, e) for p, t, e in shown), *ev_params, *ev_svc]
        tables = ", ".join(dict.fromkeys(f"{p.name} = {t.spec}" for p, t, _ in checks.rejects))
        rest = [o for o in split_list(opts.value) if o]
        value = ",".join(dict.fromkeys(["no_header_body_checks", *rest]))
        if checks.unknown:
            notes.append("not read: " + "; ".join(checks.unknown))
        return r.fail(
            target,
            f"{label}{via} applies {tables} with {'at least ' if checks.truncated else ''}"
            f"{len(checks.rejects)} REJECT rule(s) to already-queued "
            f"mail: each match becomes a bounce to the envelope sender"
            + (f" (first {len(shown)} shown, {more} more)" if more else ""),
            ev,
            severity=sev,
            remediation=fix_param(r, cfg, svc, "receive_override_options", value),
            note="; ".join(notes),
        )
    if checks.templated is not None:
        notes.append(template_note(cfg, checks.templated))
        return r.inconclusive(
            target,
            f"{checks.templated.name} on {label}{via} names a templated table",
            [*ev_params, *ev_svc],
            note="; ".join(notes),
            severity=sev,
        )
    if checks.unknown:
        notes.append("; ".join(checks.unknown))
        return r.inconclusive(
            target,
            f"{label}{via} applies header/body checks whose tables could not be read: REJECT rules, if any, "
            "become bounces",
            [*ev_params, *ev_svc],
            note="; ".join(notes),
            severity=sev,
        )
    used = ", ".join(sorted(a for a in checks.actions if a)) or "none"
    return r.passed(
        target,
        f"{label}{via} applies header/body checks without REJECT actions (actions: {used})",
        [*ev_params, *ev_svc],
        note="; ".join(notes),
    )
