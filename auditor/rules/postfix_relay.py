"""Postfix relay control, compatibility traps and address verification (PF-RELAY, PF-COMPAT, PF-VERIFY)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from auditor.model import Evidence, Finding, Remediation, Severity
from auditor.observations.postfix import MasterService, PostfixConfig
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.postfix import _codes_fix, relay_recipient_findings
from auditor.rules.postfix_common import (
    GATES,
    RELAY_SAFE_PERMITS,
    RESTRICTION_LISTS,
    TRUSTED_PERMITS,
    Fixes,
    Restriction,
    Role,
    Values,
    conclude,
    destination_domains,
    effective,
    evidence,
    fix_param,
    group_name,
    has_template,
    is_templated,
    level_tuple,
    list_source,
    map_type,
    parse_restrictions,
    read,
    scopes,
    split_list,
    template_note,
)

_REF_POSTCONF = "https://www.postfix.org/postconf.5.html"
_REF_VERIFY = "https://www.postfix.org/ADDRESS_VERIFICATION_README.html"
_REF_COMPAT = "https://www.postfix.org/COMPATIBILITY_README.html"

_GATES = frozenset({"reject_unauth_destination", "defer_unauth_destination", "reject", "defer"})


def relay_gate(restrictions: list[Restriction]) -> tuple[str, str, list[Restriction]]:
    """Walk a relay/recipient restriction list the way smtpd does for a mail to a foreign domain.

    Returns (state, detail, conditional lookups met before the gate) with state ``gated`` (a
    reject_unauth_destination or unconditional reject is reached before anything admits an
    anonymous client), ``open`` (a broad permit comes first) or ``ungated`` (the list ends, which
    permits).
    """
    lookups: list[Restriction] = []
    for x in restrictions:
        if x.warn_only:
            continue
        if x.name in _GATES:
            return "gated", x.name, lookups
        if x.name in RELAY_SAFE_PERMITS:
            continue
        if x.is_access_lookup:
            lookups.append(x)
            continue
        if x.name.startswith("permit"):
            return "open", f"{x.name} comes before reject_unauth_destination", lookups
    return "ungated", "no reject_unauth_destination", lookups


def _wide_networks(value: str) -> list[str]:
    """mynetworks entries that trust the whole Internet or a large public range."""
    wide: list[str] = []
    for item in split_list(value):
        if item.startswith("!") or (":" in item and "/" not in item and "[" not in item):
            continue  # negations and lookup tables
        text = item.strip("[]").replace("]/", "/")
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        limit = 16 if net.version == 4 else 32
        if net.prefixlen == 0 or (net.prefixlen < limit and not net.is_private):
            wide.append(item)
        elif net.version == 4 and net.is_private and not net.is_loopback and net.prefixlen <= 12:
            wide.append(item)  # a whole 10/8 or 172.16/12: every host of a provider's or VPN's network
    return wide


def _private(item: str) -> bool:
    try:
        return ipaddress.ip_network(item.strip("[]").replace("]/", "/"), strict=False).is_private
    except ValueError:
        return False


def _is_ok_action(value: str) -> bool:
    """access(5): OK, an all-numerical result (treated as OK) or a permit_* restriction."""
    action = (value.split() or [""])[0]
    return action.upper() == "OK" or action.isdigit() or action.lower().startswith("permit")


def _broad_ok(cfg: PostfixConfig, lookups: list[Restriction]) -> list[str]:
    """Specs of collected access tables, met before the gate, whose match-all entries say OK."""
    specs = {x.arg or x.name for x in lookups}
    return [
        t.spec
        for t in cfg.tables
        if t.spec in specs and any(_is_ok_action(e.value) for e in t.match_all_entries)
    ]


@rule(
    "PF-RELAY-001",
    title="relay control misconfiguration",
    family="postfix",
    cause="relay-control",
    controls=("RFC5321-3.6.2",),
    severity=Severity.CRITICAL,
    needs=(PostfixConfig,),
    remediation=(
        "Put reject_unauth_destination in the relay restrictions before anything that can admit an "
        "anonymous client (a broad permit, an access table or policy service that may answer OK), "
        "after permit_mynetworks and permit_sasl_authenticated; list only trusted networks in "
        "mynetworks."
    ),
    references=(f"{_REF_POSTCONF}#smtpd_relay_restrictions", f"{_REF_POSTCONF}#smtpd_recipient_restrictions"),
)
def relay_control(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    On an MX listener: neither `smtpd_relay_restrictions` nor `smtpd_recipient_restrictions`
    reaches `reject_unauth_destination` / `defer_unauth_destination` (or an unconditional
    `reject`) before a broad permit (`permit`, `permit_dnswl_client`, ...) or the end of the list;
    `mynetworks` containing `0.0.0.0/0`, `::/0` or a public range wider than /16 (IPv4) or /32
    (IPv6), or a whole private `10.0.0.0/8` or `172.16.0.0/12` (high: every host of a provider's,
    container platform's or VPN's network may relay); `mynetworks_style = class`.
    `permit_mynetworks`, `permit_sasl_authenticated`, `permit_auth_destination` before the gate
    are fine. `check_*_access` lookups before the gate
    are listed in the message: their tables may return OK for broad keys. When the collector read
    such a table and a pattern in it that matches every address answers OK (or a number, or a
    `permit_*` action), that list counts as open.

    `mynetworks_style = subnet` with no explicit `mynetworks` is `inconclusive`: it trusts the
    server's whole IP subnet, which on shared hosting includes other customers, and the size of
    that subnet is not in the configuration.

    ## Why it causes backscatter
    An open relay accepts mail for any destination; what it cannot deliver is bounced to the forged
    senders, on top of the spam it relays.

    ## Example
    ```
    smtpd_relay_restrictions =
    smtpd_recipient_restrictions = permit_mynetworks, permit
    ```
    """
    lists = ("smtpd_relay_restrictions", "smtpd_recipient_restrictions")
    for cfg in obs.of(PostfixConfig):
        for sc in scopes(cfg, (*lists, "mynetworks", "mynetworks_style")):
            vals = read(cfg, sc.service, lists)
            problems: list[str] = []
            doubts: list[str] = []
            ev: list[Evidence] = [evidence(cfg, vals.params[n]) for n in lists]
            states = {n: relay_gate(parse_restrictions(vals[n])) for n in lists}
            fx = Fixes(cfg)
            if vals.undecidable is None and not any(s[0] == "gated" for s in states.values()):
                problems.append(
                    "no relay gate: " + "; ".join(f"{n}: {states[n][1]}" for n in lists) + " (open relay)"
                )
                _gate_fix(fx, sc.service, vals)
            lookups = [x for n in lists for x in states[n][2] if states[n][0] == "gated"]
            broad = {n: _broad_ok(cfg, states[n][2]) for n in lists if states[n][0] == "gated"}
            if vals.undecidable is None and broad and all(broad.values()) and not problems:
                for n in broad:
                    fx.place_gate(sc.service, n)
                problems.append(
                    "access tables before reject_unauth_destination return OK for any address: "
                    + ", ".join(sorted({spec for specs in broad.values() for spec in specs}))
                    + " (open relay)"
                )
                ev += [
                    Evidence(f"{e.key} {e.value}", e.location)
                    for t in cfg.tables
                    if t.spec in {spec for specs in broad.values() for spec in specs}
                    for e in t.match_all_entries
                ]
            nets = effective(cfg, "mynetworks", sc.service)
            style = effective(cfg, "mynetworks_style", sc.service)
            private_only = False
            nets_explicit = nets.explicit or nets.location is not None
            if nets_explicit:
                ev.append(evidence(cfg, nets))
                wide = _wide_networks(nets.value)
                if wide:
                    problems.append("mynetworks trusts " + ", ".join(wide))
                    private_only = all(_private(w) for w in wide)
                    kept = [n for n in split_list(nets.raw if nets.explicit else nets.value) if n not in wide]
                    fx.set(fx.own(sc.service, "mynetworks"), "mynetworks", " ".join(kept) or LOOPBACK)
                elif has_template(nets.raw) or nets.templated:
                    doubts.append(template_note(cfg, nets))
            else:
                ev.append(evidence(cfg, style))
                level = level_tuple(effective(cfg, "compatibility_level").value) or (0,)
                style_v = (
                    style.value
                    if (style.explicit or style.location)
                    else ("subnet" if level < (2,) else "host")
                )
                if style_v == "class":
                    problems.append("mynetworks_style = class trusts the server's whole class A/B/C network")
                    fx.set(fx.own(sc.service, "mynetworks_style"), "mynetworks_style", "host")
                elif style_v == "subnet":
                    doubts.append("mynetworks_style = subnet trusts every host on the server's IP subnets")
            msg_lookups = (
                "; access lookups before the gate (check their tables for broad OK keys): "
                + ", ".join(f"{x.name} {x.arg}" for x in lookups)
                if lookups
                else ""
            )
            if problems or vals.undecidable is not None or not doubts:
                yield conclude(
                    r,
                    cfg,
                    sc,
                    vals,
                    bad=bool(problems),
                    fail_msg="; ".join(problems),
                    pass_msg="relaying is gated by reject_unauth_destination" + msg_lookups,
                    ev=ev,
                    remediation=fx.remediation(r),
                    # trusting a whole private /8-/12 is not an open relay to the Internet
                    severity=Severity.HIGH if private_only and len(problems) == 1 else None,
                )
            elif sc.role is Role.MX:
                yield r.inconclusive(
                    sc.target,
                    "relay gate present, but " + "; ".join(doubts) + msg_lookups,
                    ev,
                    severity=Severity.MEDIUM,
                    note="; ".join(doubts),
                    remediation=fix_param(
                        r, cfg, Fixes(cfg).own(sc.service, "mynetworks_style"), "mynetworks_style", "host"
                    ),
                )
            else:
                yield r.passed(sc.target, f"relay gate present; listener not MX ({sc.reason})", ev)


LOOPBACK = "127.0.0.0/8 [::1]/128"


def _gate_fix(fx: Fixes, svc: MasterService | None, vals: Values) -> None:
    """Gate the list that decides relaying: the relay list when set, else the recipient list."""
    for name in ("smtpd_relay_restrictions", "smtpd_recipient_restrictions"):
        if split_list(vals[name]):
            fx.place_gate(svc, name)
            return
    fx.set(
        fx.own(svc, "smtpd_relay_restrictions"),
        "smtpd_relay_restrictions",
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
    )


def relay_list_from(cfg: PostfixConfig) -> str:
    """An explicit smtpd_relay_restrictions that decides relaying as smtpd_recipient_restrictions does:
    its elements up to the relay gate, without the reject_* checks (they stay in the recipient list)."""
    groups = list_source(cfg, None, "smtpd_recipient_restrictions").groups
    out: list[list[str]] = []
    gate = ["reject_unauth_destination"]
    for g in groups:
        name = group_name(g)
        if name in GATES:
            gate = g
            break
        if name.startswith("permit") and name not in RELAY_SAFE_PERMITS:
            break  # a broad permit: the copy stops here and gets a real gate
        if not name.startswith(("reject_", "defer_")) and name != "warn_if_reject":
            out.append(g)
    if not any(group_name(g) in TRUSTED_PERMITS for g in out):
        out.insert(0, ["permit_mynetworks"])
    return ", ".join(" ".join(g) for g in [*out, gate])


@rule(
    "PF-COMPAT-001",
    title="backwards-compatibility traps (relay_domains, smtpd_relay_restrictions)",
    family="postfix",
    cause="relay-recipients",
    controls=("RFC5321-3.6.2",),
    severity=Severity.HIGH,
    needs=(PostfixConfig,),
    remediation=(
        "Set relay_domains and smtpd_relay_restrictions explicitly (relay_domains empty or the intended "
        'list), then raise compatibility_level to the running version after reviewing the "using '
        'backwards-compatible default setting" lines in the maillog.'
    ),
    references=(_REF_COMPAT, f"{_REF_POSTCONF}#compatibility_level"),
)
def compatibility_traps(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `compatibility_level` below 2 (unset counts as 0) with `relay_domains` not set, so Postfix
    uses the old default `relay_domains = $mydestination` and relays mail for every subdomain of
    those domains without a recipient list; and `compatibility_level` below 1 with
    `smtpd_relay_restrictions` not set, so relay control rests on `smtpd_recipient_restrictions`
    alone (high when that list lacks `reject_unauth_destination`).

    `mydestination` holding only `localhost` names makes the first trap harmless: not flagged.

    ## Why it causes backscatter
    The implicit relay domains have no recipient list: mail to any address of any subdomain is
    accepted and bounced when the next hop rejects it or loops back.

    ## Example
    ```
    # no compatibility_level, no relay_domains
    mydestination = $myhostname, example.com
    ```
    """
    for cfg in obs.of(PostfixConfig):
        lvl_p = effective(cfg, "compatibility_level")
        if is_templated(lvl_p):
            yield r.inconclusive(
                cfg.target,
                "compatibility_level is templated",
                [evidence(cfg, lvl_p)],
                note=template_note(cfg, lvl_p),
            )
            continue
        level = level_tuple(lvl_p.value)
        if level is None:
            yield r.inconclusive(
                cfg.target, f"compatibility_level = {lvl_p.value!r} is not a level", [evidence(cfg, lvl_p)]
            )
            continue
        problems: list[str] = []
        ev = [evidence(cfg, lvl_p)]
        sev = Severity.HIGH
        fx = Fixes(cfg)
        rd = effective(cfg, "relay_domains")
        if level < (2,) and not (rd.explicit or rd.location is not None):
            myd = effective(cfg, "mydestination")
            facing, _local, templ = destination_domains(cfg, myd.value, myd.raw)
            if facing or templ:
                problems.append(
                    "relay_domains is not set, so it defaults to $mydestination "
                    f"({myd.value}): subdomains are relayed without a recipient list"
                )
                fx.set(None, "relay_domains", "")
                ev.append(evidence(cfg, myd))
        rr = effective(cfg, "smtpd_relay_restrictions")
        if level < (1,) and not (rr.explicit or rr.location is not None):
            rcpt = effective(cfg, "smtpd_recipient_restrictions")
            state = relay_gate(parse_restrictions(rcpt.value))[0]
            text = "smtpd_relay_restrictions is not set, so it is empty and relay control rests on "
            if state == "gated":
                text += "smtpd_recipient_restrictions (which does reach reject_unauth_destination)"
                sev = sev if problems else Severity.LOW
            else:
                text += "smtpd_recipient_restrictions, which lacks reject_unauth_destination"
            problems.append(text)
            ev.append(evidence(cfg, rcpt))
            fx.set(None, "smtpd_relay_restrictions", relay_list_from(cfg))
        if problems:
            yield r.fail(
                cfg.target,
                f"compatibility_level = {lvl_p.value}: " + "; ".join(problems),
                ev,
                severity=sev,
                remediation=fx.remediation(r),
            )
        else:
            yield r.passed(
                cfg.target, f"compatibility_level = {lvl_p.value}: no relay default depends on it", ev
            )


_VERIFY_CODES = (
    "unverified_recipient_reject_code",
    "unverified_recipient_defer_code",
    "unverified_sender_reject_code",
    "unverified_sender_defer_code",
)


@rule(
    "PF-VERIFY-001",
    title="verification results turned into accept (code 250)",
    family="postfix",
    cause="permanent-reject",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(PostfixConfig,),
    remediation=(
        "Set the unverified_*_defer_code parameters to 450 and the unverified_*_reject_code parameters "
        "to 450, or 550 once the verification cache is trusted."
    ),
    references=(
        f"{_REF_VERIFY}#recipient",
        f"{_REF_POSTCONF}#unverified_recipient_reject_code",
        f"{_REF_POSTCONF}#unverified_recipient_defer_code",
    ),
)
def verify_codes_accept(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `unverified_recipient_reject_code`, `unverified_recipient_defer_code` or their sender
    equivalents set to 250. Critical when `reject_unverified_recipient`/`reject_unverified_sender`
    is in use on that listener; low (latent) otherwise.

    ## Why it causes backscatter
    Postfix allows 250 here, and its documentation warns that a defer code of 250 turns MX servers
    into backscatter sources under load: when probes time out the recipient is accepted, and the
    later delivery failure becomes a bounce.

    ## Example
    ```
    unverified_recipient_defer_code = 250
    ```
    """
    for cfg in obs.of(PostfixConfig):
        for sc in scopes(cfg, _VERIFY_CODES):
            vals = read(cfg, sc.service, _VERIFY_CODES)
            accepts = [n for n in _VERIFY_CODES if vals[n].strip() == "250"]
            used = {
                x.name
                for n in RESTRICTION_LISTS
                for x in parse_restrictions(effective(cfg, n, sc.service).value)
                if x.name.startswith("reject_unverified_")
            }
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=bool(accepts),
                fail_msg=", ".join(f"{n} = 250" for n in accepts)
                + (
                    f": {', '.join(sorted(used))} accepts what it could not verify"
                    if used
                    else " (latent: unused)"
                ),
                pass_msg="verification reject/defer codes are not 250",
                ev=[evidence(cfg, vals.params[n]) for n in (accepts or _VERIFY_CODES)],
                severity=None if used else Severity.LOW,
                remediation=_codes_fix(r, cfg, sc.service, accepts, lambda n: "450"),
            )


@rule(
    "PF-VERIFY-002",
    title="relay host without recipient knowledge and without recipient verification",
    family="postfix",
    cause="relay-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(PostfixConfig,),
    remediation=(
        "Add reject_unverified_recipient to smtpd_recipient_restrictions, after "
        "reject_unauth_destination and before any policy service or permit that admits anonymous "
        "clients. Caveats: verification loads the downstream server under dictionary attacks; it "
        "cannot see failures the downstream decides after end-of-DATA (use "
        "`smtp_address_verify_target = data` on that transport); with `enable_original_recipient = no` "
        "on Postfix 3.2 and older, results for aliased addresses break."
    ),
    references=(
        _REF_VERIFY,
        f"{_REF_POSTCONF}#reject_unverified_recipient",
        f"{_REF_POSTCONF}#smtp_address_verify_target",
    ),
)
def relay_without_verification(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    The PF-RCPT-003 condition (relay domains, no `relay_recipient_maps`) with no
    `reject_unverified_recipient` in `smtpd_recipient_restrictions`/`smtpd_relay_restrictions`.
    Reported together with PF-RCPT-003 as the fallback fix. `not-applicable` when a recipient
    list exists.

    ## Why it causes backscatter
    Without a list and without verification, every recipient of the relay domains is accepted
    and every one the downstream server rejects is bounced to the (forged) sender. Recipient
    address verification probes the downstream server during the SMTP session and caches the
    result, so unknown users get a 5xx in-session instead.

    ## Example
    ```
    relay_domains = example.com
    smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
    ```
    """
    for cfg in obs.of(PostfixConfig):
        yield from relay_recipient_findings(cfg, r, verify_rule=True)


@rule(
    "PF-VERIFY-003",
    title="sender address verification (callouts) used broadly",
    family="postfix",
    cause="sender-callouts",
    controls=("OPERATOR-NO-BACKSCATTER",),
    severity=Severity.MEDIUM,
    needs=(PostfixConfig,),
    remediation=(
        "Verify only a short list of frequently forged domains: a check_sender_access table whose "
        "entries name a restriction class that holds reject_unverified_sender (or remove sender "
        "verification); keep address_verify_sender at its default ($double_bounce_sender) and set a "
        "non-round address_verify_sender_ttl such as 5h17m."
    ),
    references=(
        f"{_REF_VERIFY}#forged_sender",
        f"{_REF_POSTCONF}#address_verify_sender",
        f"{_REF_POSTCONF}#address_verify_sender_ttl",
        "https://www.backscatterer.org/?target=usage",
    ),
)
def sender_verification_broad(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `reject_unverified_sender` written directly in an smtpd restriction list of an MX listener
    (so every sender is probed), instead of inside a restriction class reached only for a few
    frequently forged domains; and, whenever address verification is used,
    `address_verify_sender` empty or `<>`. With broad sender verification,
    `address_verify_sender_ttl = 0` is named in the message too.

    ## Why it causes backscatter
    Every forged sender triggers a probe to an innocent domain. backscatterer.org lists hosts doing
    sender callouts, and the Postfix documentation warns of denylisting. A null probe sender
    breaks at sites that wrongly reject `<>`; a fixed one gets harvested.

    ## Example
    ```
    smtpd_sender_restrictions = reject_unverified_sender
    ```
    """
    for cfg in obs.of(PostfixConfig):
        for sc in scopes(cfg, (*RESTRICTION_LISTS, "address_verify_sender", "address_verify_sender_ttl")):
            vals = read(
                cfg, sc.service, (*RESTRICTION_LISTS, "address_verify_sender", "address_verify_sender_ttl")
            )
            direct = [
                n
                for n in RESTRICTION_LISTS
                for x in parse_restrictions(vals[n])
                if x.name == "reject_unverified_sender" and not x.warn_only
            ]
            classes = split_list(effective(cfg, "smtpd_restriction_classes", sc.service).value)
            in_class = [
                c
                for c in classes
                if any(x.name == "reject_unverified_sender" for x in parse_restrictions(cfg.value(c)))
            ]
            recipient_verify = any(
                x.name == "reject_unverified_recipient"
                for n in RESTRICTION_LISTS
                for x in parse_restrictions(vals[n])
            )
            if vals.undecidable is None and not (direct or in_class or recipient_verify):
                yield r.not_applicable(sc.target, "address verification is not used")
                continue
            problems: list[str] = []
            sender = vals["address_verify_sender"].strip()
            avs = vals.params["address_verify_sender"]
            ev = [evidence(cfg, avs)] + [evidence(cfg, vals.params[n]) for n in dict.fromkeys(direct)]
            if direct:
                ttl = vals["address_verify_sender_ttl"].strip()
                problems.append(
                    "reject_unverified_sender probes every sender (in "
                    + ", ".join(dict.fromkeys(direct))
                    + ")"
                    + (
                        f"; address_verify_sender_ttl = {ttl or '0'} reuses one probe sender"
                        if ttl in ("", "0", "0s")
                        else ""
                    )
                )
            if sender in ("", "<>"):
                problems.append("address_verify_sender is the null sender <>")
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=bool(problems),
                fail_msg="; ".join(problems),
                pass_msg=(
                    "sender verification is limited to restriction classes " + ", ".join(in_class)
                    if in_class
                    else "sender addresses are not verified broadly"
                ),
                ev=ev,
                remediation=_sender_verify_fix(r, cfg, sc.service, direct, classes, sender in ("", "<>")),
            )


FORGED_TABLE = "<your table of forged sender domains>"


def _sender_verify_fix(
    r: Rule, cfg: PostfixConfig, svc: MasterService | None, direct: list[str], classes: list[str], null: bool
) -> Remediation:
    """Move reject_unverified_sender into a restriction class reached through a sender table."""
    fx = Fixes(cfg)
    if direct:
        cls = next(
            n
            for n in ("verify_sender", "bsa_verify_sender", "bsa_verify_sender2")
            if n not in classes and n not in cfg.params
        )
        typ = map_type(cfg)
        fx.set(None, "smtpd_restriction_classes", " ".join([*classes, cls]))
        fx.set(None, cls, "reject_unverified_sender")
        fx.postmap(f"{typ}:{FORGED_TABLE}", f"the sender table (entries: domain {cls})", [FORGED_TABLE])
        for n in dict.fromkeys(direct):
            fx.replace(
                svc,
                n,
                "reject_unverified_sender",
                [["check_sender_access", f"{typ}:{FORGED_TABLE}"]],
                [FORGED_TABLE],
            )
    if null:
        fx.reset(fx.own(svc, "address_verify_sender"), "address_verify_sender")
    return fx.remediation(r)
