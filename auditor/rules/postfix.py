"""Postfix recipient-validation rules (PF-RCPT-*): does Postfix know, at RCPT time, who exists?

Every rule reads one :class:`~auditor.observations.postfix.PostfixConfig`. Settings that smtpd
uses are judged per listener (:func:`~auditor.rules.postfix_common.scopes`): once for main.cf
when an MX listener inherits it, and once per master.cf listener that overrides it with ``-o``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from auditor.model import Evidence, Finding, Remediation, Severity
from auditor.observations.postfix import MasterService, PostfixConfig
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.postfix_common import (
    RESTRICTION_LISTS,
    Fixes,
    Role,
    conclude,
    describe,
    destination_domains,
    effective,
    evidence,
    fix_param,
    is_templated,
    level_tuple,
    main_cf_location,
    map_type,
    parse_restrictions,
    read,
    scopes,
    service_target,
    split_list,
    strip_templates,
    template_note,
    where,
)

_REF_LOCAL = "https://www.postfix.org/LOCAL_RECIPIENT_README.html"
_REF_POSTCONF = "https://www.postfix.org/postconf.5.html"
_REF_CLASS = "https://www.postfix.org/ADDRESS_CLASS_README.html"
_REF_STANDARD = "https://www.postfix.org/STANDARD_CONFIGURATION_README.html"
_REF_FILTER = "https://www.postfix.org/FILTER_README.html"


@rule(
    "PF-RCPT-001",
    title="local_recipient_maps disabled for Internet-facing local domains",
    family="postfix",
    cause="local-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(PostfixConfig,),
    remediation=(
        "Remove the empty local_recipient_maps so the default `proxy:unix:passwd.byname $alias_maps` "
        "applies, or list every valid user. When local_transport hands mail to another delivery agent "
        "(LMTP, virtual), point local_recipient_maps at that agent's user list, e.g. "
        "`$virtual_mailbox_maps`. An empty map on a loopback re-injection listener is correct."
    ),
    references=(f"{_REF_LOCAL}", f"{_REF_POSTCONF}#local_recipient_maps", f"{_REF_POSTCONF}#mydestination"),
)
def local_recipient_maps_disabled(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `local_recipient_maps =` (empty) while `mydestination` lists a domain Internet clients can
    send to (anything but `localhost` names), on main.cf or on an MX listener's `-o` override.

    ## Why it causes backscatter
    With an empty `local_recipient_maps` smtpd cannot tell a real local user from a random one,
    so it accepts every local part of those domains. local(8) then finds no such user and
    bounces the message to the envelope sender, who for spam is a forged third party.

    ## Example
    ```
    mydestination = $myhostname, example.com, localhost
    local_recipient_maps =
    ```
    """
    for cfg in obs.of(PostfixConfig):
        for sc in scopes(cfg, ("local_recipient_maps", "mydestination")):
            vals = read(cfg, sc.service, ("local_recipient_maps", "mydestination", "local_transport"))
            lrm = vals.params["local_recipient_maps"]
            myd = vals.params["mydestination"]
            ev = [evidence(cfg, lrm), evidence(cfg, myd)]
            lrm_text = vals["local_recipient_maps"] if vals.undecidable is not lrm else lrm.value
            if strip_templates(lrm_text).strip():
                yield r.passed(sc.target, f"local recipients are validated: {describe(lrm)}", ev)
                continue
            if vals.undecidable is lrm and sc.role is Role.MX:
                yield r.inconclusive(
                    sc.target,
                    "local_recipient_maps is only a template placeholder",
                    ev,
                    note=template_note(cfg, lrm),
                )
                continue
            if sc.role is not Role.MX:
                yield r.passed(
                    sc.target,
                    f"local_recipient_maps is empty on a listener that takes no anonymous Internet mail "
                    f"({sc.reason}), where this is correct",
                    ev,
                )
                continue
            facing, _local, templ = destination_domains(cfg, vals["mydestination"], myd.raw)
            if vals.undecidable is myd:
                if not facing:
                    yield r.inconclusive(
                        sc.target,
                        "local_recipient_maps is empty; whether mydestination names Internet domains "
                        "depends on a template placeholder",
                        ev,
                        note=template_note(cfg, myd),
                    )
                    continue
                vals = replace(vals, undecidable=None)  # a literal public domain decides it already
            if not split_list(vals["mydestination"]):
                yield r.not_applicable(sc.target, "mydestination is empty: no local domains", ev)
                continue
            if not facing and templ and vals.undecidable is None:
                yield r.inconclusive(
                    sc.target,
                    "local_recipient_maps is empty; mydestination entries are unresolved: "
                    + ", ".join(templ),
                    ev,
                    note=f"{where(cfg, myd)}: mydestination = {myd.raw}",
                )
                continue
            transport = vals["local_transport"].split(":", 1)[0] or "local"
            fx = Fixes(cfg)
            owner = fx.own(sc.service, "local_recipient_maps")
            if transport != "local" and effective(cfg, "virtual_mailbox_maps", sc.service).value.strip():
                # local(8) is not the delivery agent: its users are the virtual mailboxes
                fx.set(owner, "local_recipient_maps", "$virtual_mailbox_maps")
            else:
                fx.reset(owner, "local_recipient_maps")
            fix = fx.remediation(r)
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=bool(facing),
                fail_msg=(
                    "local_recipient_maps is empty, so every local part of "
                    + ", ".join(facing)
                    + f" is accepted and unknown ones are bounced by {transport}(8)"
                ),
                pass_msg="local_recipient_maps is empty but mydestination lists only localhost names",
                ev=ev,
                remediation=fix,
            )


@rule(
    "PF-RCPT-002",
    title="smtpd_reject_unlisted_recipient = no",
    family="postfix",
    cause="local-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(PostfixConfig,),
    remediation=(
        "Set smtpd_reject_unlisted_recipient = yes (the default) in main.cf, or remove the "
        "`-o smtpd_reject_unlisted_recipient=no` override from the public listener."
    ),
    references=(f"{_REF_POSTCONF}#smtpd_reject_unlisted_recipient", _REF_CLASS),
)
def reject_unlisted_recipient_off(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `smtpd_reject_unlisted_recipient = no` on main.cf or as `-o` on a listener that takes mail
    from anonymous Internet clients, with no explicit `reject_unlisted_recipient` in that
    listener's restriction lists.

    Submission listeners (every restriction path ends in `reject` for clients that are not
    SASL-authenticated) and loopback/trusted-network listeners are not MX traffic: the setting is
    reported there as `pass` with the reason. A `submission` service that admits anonymous
    clients is judged like port 25.

    ## Why it causes backscatter
    The switch turns off the implicit "User unknown" reject for every address class (local,
    virtual alias, virtual mailbox, relay). Unknown recipients are accepted and bounced later.

    ## Example
    ```
    smtp inet n - n - - smtpd
      -o smtpd_reject_unlisted_recipient=no
    ```
    """
    names = ("smtpd_reject_unlisted_recipient", *RESTRICTION_LISTS)
    for cfg in obs.of(PostfixConfig):
        for sc in scopes(cfg, names):
            vals = read(cfg, sc.service, ("smtpd_reject_unlisted_recipient",))
            p = vals.params["smtpd_reject_unlisted_recipient"]
            explicit = any(
                rs.name == "reject_unlisted_recipient" and not rs.warn_only
                for lname in RESTRICTION_LISTS
                for rs in parse_restrictions(effective(cfg, lname, sc.service).value)
            )
            off = vals["smtpd_reject_unlisted_recipient"].strip().lower() == "no"
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=off and not explicit,
                fail_msg="smtpd_reject_unlisted_recipient = no: unknown recipients accepted, then bounced",
                pass_msg=(
                    "reject_unlisted_recipient is listed explicitly"
                    if off
                    else "unknown recipients are rejected at RCPT (smtpd_reject_unlisted_recipient = yes)"
                ),
                ev=[evidence(cfg, p)],
                remediation=_unlisted_fix(r, cfg, sc.service),
            )


def _unlisted_fix(r: Rule, cfg: PostfixConfig, svc: MasterService | None) -> Remediation:
    """Remove the listener's ``no`` override; or set main.cf to yes (which an override-free listener uses)."""
    fx = Fixes(cfg)
    owner = fx.own(svc, "smtpd_reject_unlisted_recipient")
    if owner is not None and effective(cfg, "smtpd_reject_unlisted_recipient").value.strip().lower() != "no":
        fx.reset(owner, "smtpd_reject_unlisted_recipient")
    else:
        fx.set(owner, "smtpd_reject_unlisted_recipient", "yes")
    return fx.remediation(r)


_VERIFY_LISTS = ("smtpd_recipient_restrictions", "smtpd_relay_restrictions")


def _optional_verification(cfg: PostfixConfig, svc: MasterService | None) -> str:
    """A note when reject_unverified_recipient sits only on a skipped template line of a list.

    The collector drops template-only continuation lines (``[%- IF x %] reject_unverified_recipient
    [% END %]``) and reports their tokens with the parameter they continue: an option the rendered
    configuration may or may not have. It counts for the scope that inherits that main.cf list.
    """
    places: dict[str, str] = {}  # one per line: its first token names the condition
    for t in cfg.templates:
        if t.parameter not in _VERIFY_LISTS or "reject_unverified_recipient" not in t.skipped_text.split():
            continue
        if svc is not None and t.parameter in svc.overrides:
            continue  # this listener replaces the main.cf list that holds the conditional
        places.setdefault(f"{t.location} ({t.parameter})", t.token)
    if not places:
        return ""
    shown = "; ".join(f"{place}: {token}" for place, token in places.items())
    return "reject_unverified_recipient only inside a template conditional: " + shown


@rule(
    "PF-RCPT-003",
    title="relay domains without a recipient list (gateway / backup MX)",
    family="postfix",
    cause="relay-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(PostfixConfig,),
    remediation=(
        "Give Postfix the list of valid addresses of the relay domains: export them (one "
        "`user@domain OK` per line, e.g. from LDAP) into a table named by relay_recipient_maps, or "
        "query LDAP/SQL directly with an ldap:/mysql: map. If that is impossible, use recipient "
        "address verification (PF-VERIFY-002)."
    ),
    references=(
        f"{_REF_POSTCONF}#relay_recipient_maps",
        f"{_REF_POSTCONF}#relay_domains",
        _REF_STANDARD,
    ),
)
def relay_without_recipients(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `relay_domains` is non-empty (explicitly, or implicitly `$mydestination` when
    `compatibility_level` is below 2 and `relay_domains` is not set) while `relay_recipient_maps`
    is empty and no `reject_unverified_recipient` guards the MX listener.

    A template that could add `reject_unverified_recipient` through an option (Proxmox Mail
    Gateway's "verify receivers") does not excuse the missing list: the configuration rendered
    with the option off accepts every address, so the finding is `fail` with a note.

    ## Why it causes backscatter
    The relay address class has no idea which users exist downstream. Postfix accepts every
    recipient of those domains, the inside server rejects the unknown ones, and Postfix sends the
    bounce to the (forged) sender. Gateways and backup MX hosts are the classic backscatter sources.

    ## Example
    ```
    relay_domains = hash:/etc/pmg/domains
    # relay_recipient_maps not set
    ```
    """
    for cfg in obs.of(PostfixConfig):
        yield from relay_recipient_findings(cfg, r, verify_rule=False)


RELAY_TABLE = "<your relay recipient table>"


def relay_recipient_findings(cfg: PostfixConfig, r: Rule, *, verify_rule: bool) -> Iterator[Finding]:
    """Shared by PF-RCPT-003 and PF-VERIFY-002 (the catalog reports them together)."""
    base = ("relay_recipient_maps", "smtpd_recipient_restrictions", "smtpd_relay_restrictions")
    for sc in scopes(cfg, ("relay_domains", "mydestination", *base)):
        rd_p = effective(cfg, "relay_domains", sc.service)
        implicit = False
        extra: tuple[str, ...] = ("relay_domains",)
        if not (rd_p.explicit or rd_p.location is not None):
            lvl = effective(cfg, "compatibility_level")
            implicit = (level_tuple(lvl.value) or (0,)) < (2,)
            extra = ("compatibility_level", "mydestination") if implicit else extra
        vals = read(cfg, sc.service, (*extra, *base), presence=("relay_domains", "relay_recipient_maps"))
        domains = vals["mydestination"] if implicit else vals["relay_domains"]
        rrm = vals.params["relay_recipient_maps"]
        ev = [evidence(cfg, rd_p), evidence(cfg, rrm)]
        if implicit:
            ev.append(evidence(cfg, vals.params["compatibility_level"]))
            myd = vals.params["mydestination"]
            facing, _local, templ = destination_domains(cfg, domains, myd.raw)
            if not facing and not templ and vals.undecidable is None:
                yield r.not_applicable(
                    sc.target, "relay_domains is implicitly $mydestination, which lists only localhost", ev
                )
                continue
        elif not split_list(domains) and vals.undecidable is None:
            yield r.not_applicable(sc.target, "relay_domains is empty: this host relays for no domain", ev)
            continue
        verified = any(
            rs.name == "reject_unverified_recipient" and not rs.warn_only
            for lname in ("smtpd_recipient_restrictions", "smtpd_relay_restrictions")
            for rs in parse_restrictions(vals[lname])
        )
        has_list = bool(vals["relay_recipient_maps"].strip())
        optional = _optional_verification(cfg, sc.service)
        what = "relay_domains (implicitly $mydestination)" if implicit else "relay_domains"
        shown = f"subdomains of {domains}" if implicit else (rd_p.raw if is_templated(rd_p) else domains)
        if verify_rule:
            if has_list and vals.undecidable is None:
                yield r.not_applicable(sc.target, "relay_recipient_maps lists the valid recipients", ev)
                continue
            fx = Fixes(cfg)
            fx.insert(sc.service, "smtpd_recipient_restrictions", ["reject_unverified_recipient"])
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=not verified,
                fail_msg=f"{what} = {shown} with no recipient list and no reject_unverified_recipient",
                pass_msg="recipients of relay domains are verified (reject_unverified_recipient)",
                ev=ev,
                extra_note=optional,
                remediation=fx.remediation(r),
            )
            continue
        fx = Fixes(cfg)
        typ = map_type(cfg)
        fx.postmap(f"{typ}:{RELAY_TABLE}", "the relay recipient table", [RELAY_TABLE])
        owner = fx.own(sc.service, "relay_recipient_maps")
        fx.set(owner, "relay_recipient_maps", f"{typ}:{RELAY_TABLE}", [RELAY_TABLE])
        yield conclude(
            r,
            cfg,
            sc,
            vals,
            bad=not has_list and not verified,
            fail_msg=(
                f"{what} = {shown} but relay_recipient_maps is empty: every recipient of those domains is "
                "accepted and the downstream server's rejections become bounces"
            ),
            pass_msg=(
                f"relay recipients are validated: relay_recipient_maps = {vals['relay_recipient_maps']}"
                if has_list
                else "relay recipients are verified with reject_unverified_recipient"
            ),
            ev=ev,
            extra_note=optional,
            remediation=fx.remediation(r),
        )


@rule(
    "PF-RCPT-005",
    title="luser_relay catch-all",
    family="postfix",
    cause="local-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=(PostfixConfig,),
    remediation="Remove luser_relay, and keep local_recipient_maps validating local users (PF-RCPT-001).",
    references=(f"{_REF_POSTCONF}#luser_relay", _REF_LOCAL),
)
def luser_relay(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `luser_relay` set in main.cf or in a master.cf `-o` override.

    ## Why it causes backscatter
    local(8) sends every unknown local recipient to another address; the Postfix documentation
    says this requires switching off SMTP-time local recipient checks, so every random address is
    accepted. When the luser_relay target is remote or fails, the bounce goes to the forged sender.

    ## Example
    ```
    luser_relay = catchall@example.com
    local_recipient_maps =
    ```
    """
    for cfg in obs.of(PostfixConfig):
        found = False
        candidates = [(None, cfg.params.get("luser_relay"))] + [
            (s, s.overrides.get("luser_relay")) for s in cfg.services
        ]
        for svc, p in candidates:
            if p is None:
                continue
            found = True
            target = service_target(cfg, svc)
            if is_templated(p):
                yield r.inconclusive(
                    target, "luser_relay is templated", [evidence(cfg, p)], note=template_note(cfg, p)
                )
            elif p.value.strip():
                yield r.fail(
                    target,
                    f"luser_relay = {p.value}: unknown local recipients are redirected instead of rejected",
                    [evidence(cfg, p)],
                    remediation=fix_param(r, cfg, svc, "luser_relay"),
                )
            elif svc is None:
                yield r.passed(target, "luser_relay is empty", [evidence(cfg, p)])
        if not found:
            yield r.passed(
                cfg.target,
                "luser_relay is not set (default empty)",
                [Evidence("luser_relay (default)", main_cf_location(cfg))],
            )


_REJECT_CODES = (
    "unknown_local_recipient_reject_code",
    "unknown_relay_recipient_reject_code",
    "unknown_virtual_alias_reject_code",
    "unknown_virtual_mailbox_reject_code",
)


@rule(
    "PF-RCPT-006",
    title="unknown-recipient reject codes set to 4xx",
    family="postfix",
    cause="permanent-reject",
    controls=("RFC5321-4.2.5-5xx",),
    severity=Severity.MEDIUM,
    needs=(PostfixConfig,),
    remediation=(
        "Set the unknown-recipient reject codes back to 550 (or remove them, the default is 550), in "
        "main.cf and in every listener's -o override."
    ),
    references=(
        f"{_REF_POSTCONF}#unknown_local_recipient_reject_code",
        "https://www.postfix.org/BACKSCATTER_README.html",
        "Postfix RELEASE_NOTES-2.4 [Incompat 20061209]",
    ),
)
def reject_codes_4xx(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    Any of `unknown_local_recipient_reject_code`, `unknown_relay_recipient_reject_code`,
    `unknown_virtual_alias_reject_code`, `unknown_virtual_mailbox_reject_code` set to a 4xx code,
    on main.cf or on an MX listener. Postfix 2.0–2.3 wrote `unknown_local_recipient_reject_code =
    450` into main.cf at install time, so old configurations still carry it.

    ## Why it causes backscatter
    A 4xx makes the sending MTA retry for days instead of giving up. Legitimate senders learn of
    their typo only when their own queue expires, your backup MX queues mail it can never deliver,
    and third-party relays that accepted forged mail for you end up emitting the NDR.

    ## Example
    ```
    unknown_local_recipient_reject_code = 450
    ```
    """
    for cfg in obs.of(PostfixConfig):
        for sc in scopes(cfg, _REJECT_CODES):
            vals = read(cfg, sc.service, _REJECT_CODES)
            soft = [n for n in _REJECT_CODES if vals[n].strip().startswith("4")]
            ev = [evidence(cfg, vals.params[n]) for n in (soft or _REJECT_CODES)]
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=bool(soft),
                fail_msg="unknown recipients get a temporary error: "
                + ", ".join(f"{n} = {vals[n]}" for n in soft),
                pass_msg="unknown-recipient reject codes are 5xx",
                ev=ev,
                remediation=_codes_fix(r, cfg, sc.service, soft, lambda n: "550"),
            )


def _codes_fix(
    r: Rule, cfg: PostfixConfig, svc: MasterService | None, names: list[str], good: Callable[[str], str]
) -> Remediation | None:
    """Reset a listener's bad override when main.cf is good, else set the good code where it is set."""
    if not names:
        return None
    fx = Fixes(cfg)
    for n in names:
        owner = fx.own(svc, n)
        main_good = effective(cfg, n).value.strip() == good(n) or not effective(cfg, n).value.startswith(
            ("2", "4")
        )
        if owner is not None and main_good:
            fx.reset(owner, n)
        else:
            fx.set(owner, n, good(n))
    return fx.remediation(r)


@rule(
    "PF-RCPT-007",
    title="soft_bounce = yes left on",
    family="postfix",
    cause="permanent-reject",
    controls=("RFC5321-4.2.5-5xx",),
    severity=Severity.HIGH,
    needs=(PostfixConfig,),
    remediation=(
        "Set soft_bounce = no (the default) in main.cf and remove any -o soft_bounce=yes, then reload "
        "Postfix."
    ),
    references=(f"{_REF_POSTCONF}#soft_bounce",),
)
def soft_bounce_on(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `soft_bounce = yes` in main.cf or as `-o soft_bounce=yes` on any master.cf service.

    ## Why it causes backscatter
    Every 5xx reject becomes a 4xx: senders and your own backup MX retry for days and finally
    their MTAs generate the NDRs; locally, mail that should bounce sits in the queue. It is meant
    as a temporary safety net while testing a configuration change, not a permanent setting.

    ## Example
    ```
    soft_bounce = yes
    ```
    """
    for cfg in obs.of(PostfixConfig):
        main = effective(cfg, "soft_bounce")
        bad = False
        for svc, p in [(None, main)] + [
            (s, s.overrides["soft_bounce"]) for s in cfg.services if "soft_bounce" in s.overrides
        ]:
            target = service_target(cfg, svc)
            if is_templated(p):
                yield r.inconclusive(
                    target, "soft_bounce is templated", [evidence(cfg, p)], note=template_note(cfg, p)
                )
            elif p.value.strip().lower() == "yes":
                bad = True
                yield r.fail(
                    target,
                    "soft_bounce = yes: every permanent reject is turned into a temporary one",
                    [evidence(cfg, p)],
                    remediation=fix_param(r, cfg, svc, "soft_bounce")
                    if svc
                    else fix_param(r, cfg, None, "soft_bounce", "no"),
                )
        if not bad and not is_templated(main) and main.value.strip().lower() != "yes":
            yield r.passed(cfg.target, f"soft_bounce = {main.value or 'no'}", [evidence(cfg, main)])


@rule(
    "PF-RCPT-008",
    title="recipient checks disabled on the Internet-facing listener",
    family="postfix",
    cause="local-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(PostfixConfig,),
    remediation=(
        "Remove no_unknown_recipient_checks from receive_override_options of the public listener (or "
        "main.cf) and keep it only on the post-filter re-injection listener."
    ),
    references=(f"{_REF_POSTCONF}#receive_override_options", _REF_FILTER),
)
def no_unknown_recipient_checks(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `receive_override_options` containing `no_unknown_recipient_checks` in main.cf, or in the
    `-o` overrides of a listener that takes mail from anonymous Internet clients.

    On the post-filter re-injection listener (`127.0.0.1:10025`, or any listener that admits only
    `$mynetworks`) the option is the documented, correct setting and is reported as `pass`.

    ## Why it causes backscatter
    The option turns off the unknown-recipient checks smtpd makes at RCPT time, so random
    recipients are accepted and then bounced by the delivery agent.

    ## Example
    ```
    smtp inet n - n - - smtpd
      -o receive_override_options=no_unknown_recipient_checks
    ```
    """
    for cfg in obs.of(PostfixConfig):
        for sc in scopes(cfg, ("receive_override_options",)):
            vals = read(cfg, sc.service, ("receive_override_options",))
            p = vals.params["receive_override_options"]
            opts = {o.lower() for o in split_list(vals["receive_override_options"])}
            owner = (
                sc.service
                if sc.service is not None and "receive_override_options" in sc.service.overrides
                else None
            )
            rest = [
                o
                for o in split_list(vals["receive_override_options"])
                if o.lower() != "no_unknown_recipient_checks"
            ]
            fix = fix_param(r, cfg, owner, "receive_override_options", ",".join(rest) if rest else None)
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad="no_unknown_recipient_checks" in opts,
                fail_msg="receive_override_options = no_unknown_recipient_checks: no RCPT-time validation",
                pass_msg="recipient checks are not overridden",
                ev=[evidence(cfg, p)],
                remediation=fix,
            )


@rule(
    "PF-RCPT-009",
    title="permit_mx_backup without permit_mx_backup_networks",
    family="postfix",
    cause="relay-recipients",
    controls=("RFC5321-3.6.2",),
    severity=Severity.HIGH,
    needs=(PostfixConfig,),
    remediation=(
        "Limit permit_mx_backup to the primary MX hosts with permit_mx_backup_networks, or better, "
        "replace it with explicit relay_domains plus relay_recipient_maps."
    ),
    references=(f"{_REF_POSTCONF}#permit_mx_backup", f"{_REF_POSTCONF}#permit_mx_backup_networks"),
)
def permit_mx_backup_open(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `permit_mx_backup` in `smtpd_relay_restrictions` or `smtpd_recipient_restrictions` of an MX
    listener while `permit_mx_backup_networks` is empty.

    ## Why it causes backscatter
    The host then relays for *any* domain that lists it as an MX, and anyone can publish such a
    record. There is no recipient validation at all: an accept-all relay for attacker-chosen
    domains, whose undeliverable mail is bounced to the forged senders.

    ## Example
    ```
    smtpd_recipient_restrictions = permit_mynetworks, permit_mx_backup, reject_unauth_destination
    ```
    """
    lists = ("smtpd_relay_restrictions", "smtpd_recipient_restrictions")
    for cfg in obs.of(PostfixConfig):
        for sc in scopes(cfg, (*lists, "permit_mx_backup_networks")):
            vals = read(cfg, sc.service, (*lists, "permit_mx_backup_networks"))
            used = [
                ln for ln in lists if any(x.name == "permit_mx_backup" for x in parse_restrictions(vals[ln]))
            ]
            if vals.undecidable is None and not used:
                yield r.not_applicable(sc.target, "permit_mx_backup is not used")
                continue
            nets = vals.params["permit_mx_backup_networks"]
            fx = Fixes(cfg)
            owner = fx.own(sc.service, "permit_mx_backup_networks")
            fx.set(owner, "permit_mx_backup_networks", PRIMARY_NETS, [PRIMARY_NETS])
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=bool(used) and not vals["permit_mx_backup_networks"].strip(),
                fail_msg="permit_mx_backup relays for any domain that names this host as MX "
                "(permit_mx_backup_networks is empty)",
                pass_msg=f"permit_mx_backup is limited to permit_mx_backup_networks = {nets.value}",
                ev=[evidence(cfg, vals.params[ln]) for ln in used] + [evidence(cfg, nets)],
                remediation=fx.remediation(r),
            )


PRIMARY_NETS = "<your primary MX networks>"
