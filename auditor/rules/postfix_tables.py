"""PF-RCPT-004: recipient tables that match any address (catch-alls, wildcards, match-all patterns).

Judged from the tables the collector read beside the configuration (``LookupTable``): their
``@domain`` keys, match-all regexp/pcre patterns, ``static:`` maps and the lookup of a random address.
``ldap:`` tables are judged from the directory stage's sample lookups (``LdapMapCheck``) when the
run has them, with LDAP-SYNC-001's reading of each answer.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator, Sequence

from auditor.model import Evidence, Finding, Remediation, Severity
from auditor.observations.postfix import LdapMapCheck, LookupTable, PostfixConfig, TableEntry
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.directory import _effective as map_answer  # LDAP-SYNC-001's reading of a sample
from auditor.rules.postfix_common import (
    INDEXED_TYPES,
    describe,
    evidence,
    is_templated,
    main_cf_location,
    split_list,
    table_specs,
    template_note,
    where,
)

_REF_LOCAL = "https://www.postfix.org/LOCAL_RECIPIENT_README.html"
_REF_POSTCONF = "https://www.postfix.org/postconf.5.html"
_REF_VIRTUAL = "https://www.postfix.org/VIRTUAL_README.html"


# Map types answered by a server or a database: the collector finds their definition file but never
# queries them (``LookupTable.readable`` False, no error); the directory stage queries ldap: maps.
QUERIED_TYPES = frozenset(
    {"ldap", "mysql", "pgsql", "sqlite", "memcache", "tcp", "socketmap", "nis", "nisplus", "netinfo"}
)


def table_unread(t: LookupTable, key: str = "<address>") -> str:
    """Why a table's entries are unknown, telling a definition file read from a map queried."""
    if t.error:
        return f"{t.spec} could not be read: {t.error}"
    if t.type in QUERIED_TYPES:
        ask = f"run `postmap -q {key} {t.spec}` on the server"
        if t.resolved_path:
            return f"the {t.spec} map was read ({t.resolved_path}) but not queried: {ask}"
        return (
            f"the {t.spec} map was not queried and its definition file is not in the linted directory: {ask}"
        )
    return f"{t.spec}: contents not read"


_RECIPIENT_TABLE_PARAMS = (
    "relay_recipient_maps",
    "virtual_mailbox_maps",
    "virtual_alias_maps",
    "local_recipient_maps",
)


def _hosted_domains(cfg: PostfixConfig) -> set[str]:
    out: set[str] = set()
    for name in ("mydestination", "virtual_alias_domains", "virtual_mailbox_domains", "relay_domains"):
        out.update(d.lower() for d in split_list(cfg.value(name)) if ":" not in d and not d.startswith("$"))
    return out


def _forwards_offsite(entry: TableEntry, hosted: set[str]) -> bool:
    """A catch-all whose result is an address in a domain we do not host forwards spam off-site."""
    for target in split_list(entry.value):
        if "@" in target:
            dom = target.rsplit("@", 1)[1].lower().rstrip(">")
            if dom and dom not in hosted and not any(dom.endswith("." + h) for h in hosted):
                return True
    return False


@rule(
    "PF-RCPT-004",
    title="catch-all / wildcard entries in recipient tables",
    family="postfix",
    cause="catch-all",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=(PostfixConfig, LdapMapCheck),
    remediation=(
        "Delete the wildcard (`@domain` key, match-all pattern, static: map) and list the real "
        "addresses. If a catch-all is a business requirement, deliver it to a local mailbox and "
        "discard spam there; never forward it."
    ),
    references=(_REF_VIRTUAL, _REF_LOCAL, f"{_REF_POSTCONF}#virtual_mailbox_maps"),
)
def catch_all_entries(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A table used for recipient validation (`relay_recipient_maps`, `virtual_mailbox_maps`,
    `virtual_alias_maps`, `local_recipient_maps`) that matches a random address: `@domain` keys,
    regexp/pcre patterns that match any address (`/./`, `/@example\\.com$/`), `static:` maps, or a
    `postmap -q` of a random address that returned a result. One finding per table.

    `ldap:` tables are judged from the sample lookups of the directory stage
    (`backscatter-audit directory --postfix-dir DIR`, or the audit's directory stage): a `random`
    address or the `@domain` (`catchall`) key that the map finds is `fail`; a random address it
    does not find is `pass` for that table. The answer is read as LDAP-SYNC-001 reads it
    (`postmap -q` when it ran cleanly, else our ldap3 evaluation), so the two rules agree.
    Other tables the collector could not read (SQL, missing files, LDAP without samples) are
    `inconclusive`.

    ## Why it causes backscatter
    The entry makes every address "valid". The catch-all also receives the bounces for spam forged
    in the domain's name, and when its target is remote or full, the bounce goes to the forged
    sender. A catch-all that forwards off-site is critical.

    ## Example
    ```
    # /etc/postfix/virtual  (virtual_alias_maps)
    @example.com    someone@gmail.com
    ```
    """
    ldap_checks = obs.of(LdapMapCheck)
    for cfg in obs.of(PostfixConfig):
        hosted = _hosted_domains(cfg)
        seen_specs: set[str] = set()
        any_param = templated_seen = safe_seen = False
        for param in _RECIPIENT_TABLE_PARAMS:
            p = cfg.params.get(param)
            if p is None or not p.value.strip():
                continue
            any_param = True
            if is_templated(p):
                templated_seen = True
                yield r.inconclusive(
                    f"{cfg.target} {param}",
                    f"{param} names a templated table",
                    [evidence(cfg, p)],
                    note=template_note(cfg, p),
                )
                continue
            tables = {t.spec: t for t in cfg.tables_for(param)}
            # The passwd file and alias tables key on bare local parts: no wildcard syntax exists there.
            aliases = set(table_specs(cfg.value("alias_maps")))
            for spec in table_specs(p.value):
                if "passwd.byname" in spec or spec in aliases:
                    safe_seen = True
                    continue
                if spec in seen_specs:
                    continue
                seen_specs.add(spec)
                t = tables.get(spec)
                if t is None:
                    yield r.inconclusive(
                        f"{cfg.target} table {spec}",
                        f"{param} table {spec} was not collected",
                        [evidence(cfg, p)],
                        note=f"{where(cfg, p)}: table contents unavailable",
                    )
                    continue
                if t.type == "ldap" and not t.readable:
                    yield _judge_ldap(r, cfg, param, t, _checks_for(t, ldap_checks))
                    continue
                yield _judge_table(r, cfg, param, t, hosted)
        if not any_param:
            yield r.not_applicable(cfg.target, "no recipient validation table is configured")
        elif not seen_specs and not templated_seen:
            names = ", ".join(describe(cfg.params[n]) for n in _RECIPIENT_TABLE_PARAMS if n in cfg.params)
            ev = [Evidence(names, main_cf_location(cfg))]
            if safe_seen:
                yield r.passed(
                    cfg.target,
                    f"recipient validation uses only passwd and alias tables (no wildcards): {names}",
                    ev,
                )
            else:
                yield r.inconclusive(cfg.target, f"no lookup table could be identified in {names}", ev)


def _judge_table(r: Rule, cfg: PostfixConfig, param: str, t: LookupTable, hosted: set[str]) -> Finding:
    target = f"{cfg.target} table {t.spec}"
    src = t.resolved_path or t.name
    hits = list(t.wildcard_entries) + list(t.match_all_entries)
    if t.type == "static":
        hits.append(TableEntry(key="(static: every lookup)", value=t.name))
    ev = [Evidence(f"{e.key} -> {e.value}".strip(), e.location or main_cf_location(cfg)) for e in hits] or [
        Evidence(f"{param} = {t.spec}", main_cf_location(cfg))
    ]
    random_hit = t.random_lookup not in (None, "")
    if random_hit:
        ev.append(Evidence(f"lookup of a random address returned {t.random_lookup!r}", None))
    if hits or random_hit:
        offsite = [e for e in hits if _forwards_offsite(e, hosted)]
        sev = Severity.CRITICAL if offsite else None
        extra = " and forwards off-site (" + ", ".join(e.value for e in offsite) + ")" if offsite else ""
        return r.fail(
            target,
            f"{param} table {t.spec} matches any address{extra}: every random recipient is 'valid'",
            ev,
            severity=sev,
            remediation=_table_fix(r, cfg, t, hits),
        )
    if not t.readable and t.type in QUERIED_TYPES and not t.error:
        return r.inconclusive(
            target,
            f"{param}: {table_unread(t)}; a result for a random address would mean it matches any address",
            ev,
        )
    if not t.readable:
        return r.inconclusive(
            target, f"{param} table {t.spec} could not be read", ev, note=f"{src}: {t.error or 'unreadable'}"
        )
    if t.unevaluated and t.looked_up_with != "postmap":  # postmap -q evaluated every entry itself
        shown = t.unevaluated[:5]
        more = f" and {len(t.unevaluated) - len(shown)} more" if len(t.unevaluated) > len(shown) else ""
        where_ = "; ".join(f"{e.location or src}: {e.key[:60]} ({e.note})" for e in shown)
        return r.inconclusive(
            target,
            f"{param} table {t.spec}: {len(t.unevaluated)} entries could not be evaluated",
            [*ev, *(Evidence(e.key, e.location) for e in shown)],
            note=f"not evaluated: {where_}{more}; check them with postmap -q",
        )
    return r.passed(target, f"{param} table {t.spec}: {t.entries} entries, no catch-all", ev)


def _table_fix(r: Rule, cfg: PostfixConfig, t: LookupTable, hits: list[TableEntry]) -> Remediation:
    """Name the lines to delete; an indexed table must then be rebuilt (in the linted directory)."""
    if t.type == "static":
        return Remediation(
            text=f"{r.remediation} Replace {t.spec} by a table of the real addresses in its parameter."
        )
    lines = ", ".join(f"{e.key} ({e.location})" if e.location else e.key for e in hits) or "the catch-all"
    src = t.resolved_path or t.name
    text = f"{r.remediation} In {src} delete: {lines}."
    if t.type in INDEXED_TYPES:
        text += f" Then rebuild it: postmap {shlex.quote(f'{t.type}:{src}')}"
    return Remediation(text=text)


def _same_file(a: str, b: str | None) -> bool:
    return b is not None and os.path.normpath(a) == os.path.normpath(b)


def _checks_for(t: LookupTable, checks: Sequence[LdapMapCheck]) -> list[LdapMapCheck]:
    """The sample lookups made through this table's map file (as written or as found in DIR)."""
    return [c for c in checks if _same_file(c.map_path, t.name) or _same_file(c.map_path, t.resolved_path)]


def _judge_ldap(
    r: Rule, cfg: PostfixConfig, param: str, t: LookupTable, checks: list[LdapMapCheck]
) -> Finding:
    target = f"{cfg.target} table {t.spec}"
    ev = [Evidence(f"{param} = {t.spec}", main_cf_location(cfg))]
    samples = [c for c in checks if c.sample in ("random", "catchall")]
    if not samples:
        return r.inconclusive(
            target,
            f"{param}: {table_unread(t)} (no sample lookups in this run)",
            ev,
            note="or run `backscatter-audit directory --postfix-dir` (or the audit's directory stage) to "
            "query it with sample addresses",
        )
    found: list[tuple[LdapMapCheck, str, str]] = []
    clean: list[LdapMapCheck] = []
    undecided: list[str] = []
    for c in samples:
        value, source = map_answer(c)
        loc = c.table.location("query_filter") if c.table else None
        shown = value if value is not None else (c.error or "not found")
        ev.append(Evidence(f"{c.sample} sample {c.address}: {shown}", loc))
        if c.error and source != "postmap -q":
            undecided.append(f"{c.sample} {c.address}: {c.error}")
        elif value is not None:
            found.append((c, value, source))
        else:
            clean.append(c)
    if found:
        what = ", ".join(f"{c.sample} address {c.address} -> {v!r} (via {src})" for c, v, src in found)
        return r.fail(
            target,
            f"{param} table {t.spec} finds addresses that do not exist ({what}): every random recipient is "
            "'valid'",
            ev,
            remediation=f"make the query_filter of {t.resolved_path or t.name} match real addresses only "
            "(no wildcard entry, no @domain result); see LDAP-SYNC-001",
        )
    if undecided or not any(c.sample == "random" for c in clean):
        return r.inconclusive(
            target,
            f"{param} table {t.spec} could not be judged from its sample lookups",
            ev,
            note="; ".join(undecided) or "no random-address sample answered",
        )
    return r.passed(target, f"{param} table {t.spec}: a random address is not found (LDAP sample lookup)", ev)
