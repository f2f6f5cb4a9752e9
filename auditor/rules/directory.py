"""Directory rules (rules.md §9, ``LDAP-``): the recipient directory and the maps that query it.

Catalog ids: LDAP-ADDR-001, LDAP-ADDR-002, LDAP-ACCT-001, LDAP-GRP-001, LDAP-SYNC-001,
LDAP-QUERY-001. Additions (new ids, not in rules.md yet): LDAP-DOM-001 (addresses in domains
that are not accepted), LDAP-DOM-002 (accepted domains without directory entries), LDAP-DUP-001
(one address on several entries).

A directory read that did not finish (server down, bind refused, limit hit, stalled page) makes
every rule that found nothing ``inconclusive``: absence in a partial read proves nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from auditor.model import Evidence, Finding, Location, Severity
from auditor.observations.directory import AddressRef, DirectoryRecipients
from auditor.observations.postfix import LdapMapCheck, PostfixConfig
from auditor.observations.smtp import ProbeResult
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.postfix_common import evidence, fix_param, is_templated, split_list, table_specs
from auditor.rules.smtp_verdicts import Verdict, classify, final_reply

_REF_LDAP_README = "https://www.postfix.org/LDAP_README.html"
_REF_LDAP_TABLE = "https://www.postfix.org/ldap_table.5.html"
_REF_LOCAL = "https://www.postfix.org/LOCAL_RECIPIENT_README.html"
_REF_UAC = "MS-ADTS 2.2.16 userAccountControl (ACCOUNTDISABLE 0x2)"
_RECIPIENT_PARAMS = (
    "relay_recipient_maps",
    "virtual_mailbox_maps",
    "virtual_alias_maps",
    "local_recipient_maps",
)
# Lookup types that ask a directory or database: an empty answer there means "not found".
_DIRECTORY_TYPES = ("ldap", "mysql", "pgsql", "sqlite", "memcache", "socketmap", "tcp")


def _dn_evidence(summary: str, dn: str, **data: object) -> Evidence:
    return Evidence(summary=summary, data={"dn": dn, **data})


def _clean(r: Rule, d: DirectoryRecipients, message: str) -> Finding:
    """Nothing found: a pass only when the whole directory was read, else inconclusive."""
    return r.passed(d.target, message) if d.complete else r.inconclusive(d.target, _partial(d))


def _partial(d: DirectoryRecipients) -> str:
    return f"the directory read did not finish ({d.error}); absence of this defect is not proven"


@rule(
    "LDAP-ADDR-001",
    title="build the authoritative valid-address set",
    family="directory",
    severity=Severity.INFO,
    needs=(DirectoryRecipients,),
    remediation=(
        "Nothing when it passes. When inconclusive: check `--ldap-url`, `--ca-file` (the server "
        "certificate must name the host you connect to), `--bind-dn` and the password source, and raise "
        "`--size-limit`/`--time-limit` or the server's limits for the bind DN, then re-run."
    ),
    references=(_REF_LDAP_README,),
    tier="ext",
)
def address_set(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    The directory read itself: how many recipient addresses each accepted domain has, and from which
    server. Addresses of disabled accounts are not valid recipients and are left out (counted in the
    message; LDAP-ACCT-001 reports them); shared, room and equipment mailboxes stay in. A read that
    could not finish (server down, wrong password, TLS name mismatch, a size or time limit, a server
    that stopped answering mid-page) is `inconclusive` at severity high, because every directory
    cross-check then rests on partial data.

    ## Why it matters
    A site can only reject unknown recipients during SMTP if every MX knows the valid ones; the
    directory is that truth, and the probe's known-valid controls come from it.
    """
    for d in obs.of(DirectoryRecipients):
        ev = [
            Evidence(
                summary=f"{d.connection.url or 'no server'} ({d.connection.tls}, {d.connection.bind} bind), "
                f"profile {d.profile or '?'}, {d.entries} entries in {d.pages} pages",
                transcript=tuple(f"{a.url}: {'ok' if a.ok else a.error}" for a in d.connection.attempts),
            )
        ]
        if not d.complete:
            yield r.inconclusive(
                d.target, f"could not read the directory: {d.error}", ev, severity=Severity.HIGH
            )
            continue
        counts = ", ".join(f"{dom}: {len(book)}" for dom, book in sorted(d.recipients.items()))
        valid = d.all_addresses()
        held = {a for e in d.disabled if not e.exempt for a in e.addresses if a not in valid}
        left_out = f"; {len(held)} address(es) of disabled accounts left out" if held else ""
        yield r.passed(d.target, f"{d.address_count} recipient addresses ({counts or 'none'}){left_out}", ev)


@rule(
    "LDAP-ADDR-002",
    title="wildcard addresses in the directory",
    family="directory",
    cause="catch-all",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=(DirectoryRecipients,),
    remediation="""
        # remove the @domain value from the entry, e.g.
        ldapmodify <<'EOF'
        dn: uid=bob,ou=people,dc=example,dc=com
        changetype: modify
        delete: mailLocalAddress
        mailLocalAddress: @example.com
        EOF
        # and set `domain = example.com` in every Postfix ldap: table so @domain keys are never queried
    """,
    references=(_REF_LDAP_README, _REF_LOCAL, _REF_LDAP_TABLE),
)
def wildcard_values(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    Address attribute values that start with `@` (`mailLocalAddress: @example.com`,
    `proxyAddresses: smtp:@example.com`): a catch-all for the whole domain. One finding per value.

    ## Why it causes backscatter
    Postfix looks up `@domain` after the full address for virtual and alias maps, and an `ldap:`
    table without a `domain =` restriction sends that key to the directory: the wildcard entry then
    makes every local part valid, so spam to random addresses is accepted and later bounced.

    ## Example
    ```
    dn: uid=bob,ou=people,dc=example,dc=com
    mailLocalAddress: @example.com
    ```
    """
    for d in obs.of(DirectoryRecipients):
        if d.catch_alls:
            by_value: dict[str, list[str]] = defaultdict(list)
            for ref in d.catch_alls:
                by_value[ref.address].append(f"{ref.dn} ({ref.attribute})")
            for value, owners in sorted(by_value.items()):
                yield r.fail(
                    f"{d.target} {value}",
                    f"catch-all value {value} on {len(owners)} entr{'y' if len(owners) == 1 else 'ies'}",
                    [_dn_evidence(f"{o}: {value}", o.split(" (")[0]) for o in owners],
                )
        else:
            yield _clean(r, d, f"no @domain values among {d.entries} entries")


@rule(
    "LDAP-ACCT-001",
    title="disabled accounts still treated as valid recipients",
    family="directory",
    severity=Severity.MEDIUM,
    needs=(DirectoryRecipients,),
    remediation="""
        Remove the addresses of disabled accounts (or hide and remove them from the edge recipient
        list), or convert the mailbox to a shared mailbox if it must keep receiving mail:
        Set-Mailbox leaver@example.com -Type Shared
    """,
    references=(_REF_UAC, "rules.md LDAP-ACCT-001"),
)
def disabled_accounts(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    Entries whose `userAccountControl` has bit 0x2 (ACCOUNTDISABLE) and that still own SMTP
    addresses. Shared, room, equipment and linked mailboxes (by `msExchRecipientTypeDetails`),
    contacts, groups and public folders are disabled by design and are not flagged.

    ## Why it causes backscatter
    The edge accepts mail for the address because the directory lists it; the mailbox server then
    refuses delivery to the disabled account and the NDR goes to the (forged) sender.
    """
    for d in obs.of(DirectoryRecipients):
        if d.profile == "openldap":
            yield r.not_applicable(d.target, "the openldap profile has no account-disabled flag")
            continue
        flagged = [e for e in d.disabled if not e.exempt]
        for e in flagged:
            yield r.fail(
                e.dn,
                f"disabled account (userAccountControl={e.user_account_control}) still owns "
                f"{len(e.addresses)} address(es): {', '.join(e.addresses[:5])}",
                [
                    _dn_evidence(
                        f"{e.dn}: userAccountControl={e.user_account_control}",
                        e.dn,
                        addresses=list(e.addresses),
                    )
                ],
            )
        if flagged:
            continue
        if not d.complete:
            yield r.inconclusive(d.target, _partial(d))
        else:
            exempt = sum(1 for e in d.disabled if e.exempt)
            yield r.passed(
                d.target, f"no disabled account owns an address ({exempt} shared/room/equipment exempt)"
            )


@rule(
    "LDAP-DUP-001",
    title="one address on several directory entries",
    family="directory",
    severity=Severity.MEDIUM,
    needs=(DirectoryRecipients,),
    remediation="Keep each address on exactly one entry; remove it from the others.",
    references=("rules.md LDAP-ADDR-001 (addition)",),
)
def duplicate_addresses(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    An address (case-insensitive) found on two or more directory entries. Addition to the catalog.

    ## Why it causes backscatter
    The edge accepts the address, but the mailbox server cannot pick one recipient and rejects the
    message as ambiguous after acceptance (Exchange: 5.1.4 ambiguous address), so the NDR goes to
    the sender, forged or not.
    """
    for d in obs.of(DirectoryRecipients):
        for dup in d.duplicates:
            yield r.fail(
                dup.address,
                f"{dup.address} is on {len(dup.dns)} entries",
                [_dn_evidence(dn, dn) for dn in dup.dns],
            )
        if d.duplicates:
            continue
        yield _clean(r, d, f"every one of {d.address_count} addresses is on one entry")


@rule(
    "LDAP-DOM-001",
    title="directory addresses in domains that are not accepted",
    family="directory",
    severity=Severity.LOW,
    needs=(DirectoryRecipients,),
    remediation="Accept the domain on every MX, or remove the stale addresses from the directory.",
    references=("rules.md LDAP-SYNC-001 (addition)",),
)
def foreign_domains(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    Mailbox addresses (not contacts' external addresses, not forwarding targets) whose domain is not
    among the accepted domains given with `--domain`. Addition to the catalog.

    ## Why it matters
    Either the MX list of domains is missing one the organisation still uses (valid mail rejected),
    or the directory carries stale addresses of a former domain that generated tables will export.
    """
    for d in obs.of(DirectoryRecipients):
        if not d.accepted_domains:
            yield r.not_applicable(d.target, "no accepted domains given (--domain)")
            continue
        by_domain: dict[str, list[AddressRef]] = defaultdict(list)
        for ref in d.out_of_domain:
            by_domain[ref.address.rpartition("@")[2]].append(ref)
        for dom, refs in sorted(by_domain.items()):
            yield r.fail(
                f"{d.target} {dom}",
                f"{len(refs)} address(es) in {dom}, which is not an accepted domain: "
                + ", ".join(x.address for x in refs[:5]),
                [_dn_evidence(f"{x.dn}: {x.attribute}: {x.address}", x.dn) for x in refs[:20]],
            )
        if by_domain:
            continue
        yield _clean(r, d, f"every address is in {', '.join(d.accepted_domains)}")


@rule(
    "LDAP-DOM-002",
    title="accepted domains without any directory entry",
    family="directory",
    severity=Severity.MEDIUM,
    needs=(DirectoryRecipients,),
    remediation="""
        Give the domain a recipient list (directory entries, relay_recipient_maps) or stop accepting it;
        a domain that must not receive mail gets a null MX (RFC 7505): `example.net. IN MX 0 .`
    """,
    references=("rules.md LDAP-SYNC-001 (addition)", "RFC 7505"),
)
def empty_domains(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    An accepted domain (`--domain`) for which the directory holds no address. Addition to the
    catalog.

    ## Why it causes backscatter
    If the MX validates recipients from the directory, all mail to the domain is rejected; if it does
    not (a relay domain without a recipient list), it accepts every local part and bounces later.
    """
    for d in obs.of(DirectoryRecipients):
        if not d.accepted_domains:
            yield r.not_applicable(d.target, "no accepted domains given (--domain)")
            continue
        if not d.complete:
            yield r.inconclusive(d.target, _partial(d))
            continue
        for dom in d.empty_domains:
            yield r.fail(dom, f"accepted domain {dom} has no directory entry (base {d.base})")
        if not d.empty_domains:
            yield r.passed(d.target, "every accepted domain has directory entries")


@rule(
    "LDAP-GRP-001",
    title="sender-restricted groups enforced after acceptance",
    family="directory",
    severity=Severity.MEDIUM,
    needs=(DirectoryRecipients,),
    remediation="""
        Enforce the restriction at the perimeter (Edge recipient filtering blocks Internet mail to
        restricted groups), or list the group's address as blocked on the gateway. If the perimeter
        already enforces it, suppress this finding.
    """,
    references=("Exchange: Recipient filtering on Edge Transport servers (restricted distribution groups)",),
)
def restricted_groups(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    Groups with `msExchRequireAuthToSendTo=TRUE` (the Exchange default for new distribution groups).

    ## Why it causes backscatter
    Unless the perimeter enforces the restriction, external mail to the group is accepted and then
    refused with an NDR ("not authorized") to the forged sender.
    """
    for d in obs.of(DirectoryRecipients):
        if d.profile == "openldap":
            yield r.not_applicable(d.target, "the openldap profile has no group sender restrictions")
            continue
        for g in d.restricted_groups:
            yield r.fail(
                g.dn,
                f"group {', '.join(g.addresses)} only accepts authenticated senders ({g.restriction})",
                [_dn_evidence(f"{g.dn}: {g.restriction}", g.dn)],
                note="fine if the perimeter (Edge recipient filtering) enforces it",
            )
        if d.restricted_groups:
            continue
        yield _clean(r, d, "no sender-restricted group")


def _effective(c: LdapMapCheck) -> tuple[str | None, str]:
    """(result, source): postmap's answer when it ran cleanly, else our own evaluation."""
    if c.postmap_result != "" and not c.postmap_error:
        return c.postmap_result, "postmap -q"
    return (",".join(c.result) if c.result is not None else None), "ldap3 evaluation"


def _map_evidence(c: LdapMapCheck) -> Evidence:
    lines = []
    if c.queried:
        lines.append(f"search base {c.search_base!r} filter {c.filter}")
    lines.append(f"evaluation: {','.join(c.result) if c.result is not None else 'not found'}")
    if c.postmap_result != "" or c.postmap_error:
        pm = c.postmap_error or (c.postmap_result if c.postmap_result is not None else "not found")
        lines.append(f"postmap -q {c.address} ldap:{c.map_path}: {pm}")
    loc = c.table.location("query_filter") if c.table else Location(c.map_path)
    return Evidence(summary=f"{c.sample} sample {c.address}", location=loc, transcript=tuple(lines))


@rule(
    "LDAP-SYNC-001",
    title="MTA recipient list vs directory drift",
    family="directory",
    cause="relay-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=(LdapMapCheck, ProbeResult),
    remediation="""
        Make the map's query find every address form the directory holds, e.g.
        query_filter = (|(mail=%s)(mailLocalAddress=%s)(proxyAddresses=smtp:%s))
        and add `domain = example.com` so @domain and foreign keys are never queried. Escape nothing
        by hand: Postfix escapes `*()\\` itself.
    """,
    references=(_REF_LDAP_TABLE, _REF_LDAP_README),
)
def map_drift(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A Postfix `ldap:` recipient map, queried with sample addresses, that
    (a) returns something for a random unknown address, for the `@domain` key (Postfix's last
    lookup for an address) or for an address full of LDAP filter metacharacters (the site accepts
    everything: high), or
    (b) returns nothing for a known-valid address or alias from the directory (the site rejects
    valid mail: medium).
    Where `postmap -q` ran, its answer is the truth; when it disagrees with our ldap3 evaluation
    the finding says so. A map that could not be queried is `inconclusive`.

    With a live probe whose control addresses came from the directory (`sample_addresses`), every
    MX address must accept them: an MX that answers 5xx to a directory address has a stale recipient
    list (the classic backup MX); medium, one finding per MX address.

    ## Why it causes backscatter
    (a) every spam to a random local part is accepted and later bounced to the forged sender.
    (b) is the availability side of the same drift: valid mail rejected. A backup MX with a stale
    list also tends to be the one that accepts and bounces what the primary would reject.
    """
    yield from _probe_drift(obs, r)
    by_map: dict[str, list[LdapMapCheck]] = defaultdict(list)
    for c in obs.of(LdapMapCheck):
        by_map[c.target].append(c)
    for target, checks in sorted(by_map.items()):
        problems = 0
        undecided = []
        for c in checks:
            value, source = _effective(c)
            if c.error and source != "postmap -q":
                undecided.append(f"{c.sample} {c.address}: {c.error}")
                continue
            disagree = c.agrees is False
            note = f"postmap and the ldap3 evaluation disagree for {c.address}" if disagree else ""
            if c.sample in ("random", "metachar", "catchall") and value is not None:
                problems += 1
                yield r.fail(
                    target,
                    f"{c.sample} address {c.address} is found ({value!r} via {source}): the map accepts "
                    "addresses that do not exist",
                    [_map_evidence(c)],
                    note=note,
                )
            elif c.sample in ("known", "alias") and value is None:
                problems += 1
                yield r.fail(
                    target,
                    f"{c.sample} directory address {c.address} is not found (via {source}): "
                    "valid mail is rejected",
                    [_map_evidence(c)],
                    severity=Severity.MEDIUM,
                    note=note,
                )
            elif disagree:
                undecided.append(note)
        if problems:
            continue
        kinds = {c.sample for c in checks}
        if undecided:
            yield r.inconclusive(target, "; ".join(undecided), [_map_evidence(c) for c in checks])
        elif not ({"random"} <= kinds and kinds & {"known", "alias"}):
            yield r.inconclusive(
                target,
                "needs both a random and a known-valid sample (give a directory to take samples from)",
                [_map_evidence(c) for c in checks],
            )
        else:
            yield r.passed(
                target,
                f"{len(checks)} samples answered as the directory says",
                [_map_evidence(c) for c in checks],
            )


def _probe_drift(obs: Observations, r: Rule) -> Iterator[Finding]:
    """Directory addresses used as probe controls must be accepted by every MX address."""
    known: set[str] = set()
    for d in obs.of(DirectoryRecipients):
        known |= d.all_addresses()
    if not known:
        return  # no directory in this run: the probe's controls are not directory facts
    for pr in obs.of(ProbeResult):
        ctl = [o for o in pr.outcomes if o.role == "control" and o.address.lower() in known]
        if not ctl:
            continue
        target = f"{pr.mx_host or pr.target} [{pr.address}]" if pr.address else pr.target
        finals = [(o, final_reply(o)) for o in ctl]
        ev = [
            Evidence(summary=f"RCPT TO:<{o.address}> -> {rep if rep else o.error or 'no answer'}")
            for o, rep in finals
        ]
        rejected = [o.address for o, rep in finals if rep is not None and rep.klass == 5]
        verdict = classify(pr)
        if verdict.verdict in (Verdict.INCONCLUSIVE, Verdict.NOT_PROBED):
            # Everything refused (our address blocklisted, a 554 banner) says nothing about the list.
            yield r.inconclusive(
                target, f"MX {target} could not be measured: {verdict.reason or verdict.verdict.value}", ev
            )
        elif rejected:
            yield r.fail(
                target,
                f"MX {target} rejects directory address(es) {', '.join(rejected)}: its recipient list is "
                "stale (valid mail rejected)",
                ev,
                severity=Severity.MEDIUM,
            )
        elif all(rep is not None and rep.klass == 2 for _, rep in finals):
            yield r.passed(target, f"MX {target} accepts the {len(finals)} directory control address(es)", ev)
        else:
            yield r.inconclusive(target, f"MX {target} did not clearly answer the directory controls", ev)


def _is_directory_map(spec: str) -> bool:
    t = spec.split(":", 2)
    kind = t[1] if t[0] == "proxy" and len(t) > 1 else t[0]
    return kind in _DIRECTORY_TYPES


def _permissive(cfg: PostfixConfig, spec: str) -> str:
    if spec.startswith("static:"):
        return "static: map matches every address"
    for t in cfg.tables:
        if t.spec == spec and (t.match_all_entries or t.random_lookup):
            return "table matches a random address"
    return ""


@rule(
    "LDAP-QUERY-001",
    title="lookup failure semantics: directory map followed by a permissive fallback",
    family="directory",
    cause="catch-all",
    severity=Severity.HIGH,
    needs=(PostfixConfig,),
    remediation=(
        "Drop the permissive fallback from the recipient map list: let the directory map be the only "
        'source (or list real addresses after it), so a directory answer of "not found" rejects.'
    ),
    references=(_REF_LOCAL, _REF_LDAP_TABLE),
)
def permissive_fallback(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A `*_recipient_maps` (or virtual alias/mailbox) list where an `ldap:`/SQL map is followed by a
    map that matches every address (`static:`, a match-all pcre/regexp, a table that answers a random
    address).

    ## Why it causes backscatter
    An empty directory answer means "not found" and Postfix goes on to the next map: the fallback
    then declares every unknown address valid, so the MX accepts and later bounces. A directory
    outage must end as 4xx (Postfix's default), never as acceptance.

    ## Example
    ```
    relay_recipient_maps = ldap:/etc/postfix/ldap-relay.cf, static:OK
    ```
    """
    for cfg in obs.of(PostfixConfig):
        saw_directory = False
        for param in _RECIPIENT_PARAMS:
            p = cfg.params.get(param)
            if p is None or not p.value.strip():
                continue
            specs = table_specs(p.value)
            idx = next((i for i, s in enumerate(specs) if _is_directory_map(s)), None)
            if idx is None:
                continue
            saw_directory = True
            if is_templated(p):
                yield r.inconclusive(
                    f"{cfg.target} {param}", f"{param} holds a template placeholder", [evidence(cfg, p)]
                )
                continue
            bad = [(s, why) for s in specs[idx + 1 :] if (why := _permissive(cfg, s))]
            if bad:
                fallbacks = {s for s, _ in bad}
                kept = [w for w in split_list(p.raw if p.explicit else p.value) if w not in fallbacks]
                yield r.fail(
                    f"{cfg.target} {param}",
                    f"{param}: {specs[idx]} is followed by {bad[0][0]} ({bad[0][1]})",
                    [evidence(cfg, p)],
                    remediation=fix_param(r, cfg, None, param, ", ".join(kept)),
                )
            else:
                yield r.passed(f"{cfg.target} {param}", f"{param}: no permissive map after {specs[idx]}")
        if not saw_directory:
            yield r.not_applicable(cfg.target, "no LDAP/SQL recipient map")
