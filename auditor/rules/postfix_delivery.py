"""Postfix rules about what happens after the queue: filters, pipes, quota, NDR size.

PF-FILTER-001, PF-PIPE-001, PF-QUOTA-001, PF-DSN-001 (PF-FILTER-004 is in ``postfix_content``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from auditor.model import Evidence, Finding, Location, Severity, Status
from auditor.observations.amavis import AmavisConfig
from auditor.observations.postfix import MasterService, ParamValue, PostfixConfig
from auditor.rules.amavis import placements
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.postfix_common import (
    NO_MASTER_CF,
    Fixes,
    Role,
    classify,
    conclude,
    effective,
    evidence,
    fix_param,
    has_template,
    is_templated,
    parse_restrictions,
    read,
    scopes,
    service_label,
    service_target,
    split_list,
    table_specs,
    template_note,
    where,
)

_REF_POSTCONF = "https://www.postfix.org/postconf.5.html"
_REF_FILTER = "https://www.postfix.org/FILTER_README.html"
_REF_BACKSCATTER = "https://www.postfix.org/BACKSCATTER_README.html"

# Transport-selecting parameters: a master.cf service named here receives mail.
_TRANSPORT_PARAMS = (
    "content_filter",
    "default_transport",
    "relay_transport",
    "local_transport",
    "virtual_transport",
    "mailbox_transport",
    "fallback_transport",
    "fallback_transport_maps",
)


def _loc(svc: MasterService, cfg: PostfixConfig) -> Evidence:
    return Evidence(f"{service_label(svc)} {svc.command} {' '.join(svc.args)}".strip(), svc.location)


def reinjection_listeners(cfg: PostfixConfig) -> list[MasterService]:
    """smtpd listeners that receive mail back from an after-queue filter (loopback / trusted only)."""
    out = []
    for s in cfg.services:
        if not s.is_smtpd or s.type != "inet":
            continue
        role = classify(cfg, s).role
        cleared = "content_filter" in s.overrides and not s.overrides["content_filter"].value.strip()
        if role is Role.INTERNAL and (cleared or s.is_loopback_only):
            out.append(s)
    return out


@rule(
    "PF-FILTER-001",
    title="after-queue content filter that rejects or bounces",
    family="postfix",
    cause="in-session-filtering",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=(PostfixConfig,),
    remediation=(
        "Check the filter's own settings and make it discard and quarantine what it refuses, never "
        "reject or bounce: for amavis `$final_virus_destiny`, `$final_banned_destiny`, "
        "`$final_spam_destiny` and `$final_bad_header_destiny` = D_DISCARD (and no `D_BOUNCE` in "
        "policy banks); for a script filter, exit 0 after discarding. Or move the decision before the "
        "queue (smtpd_milters, or smtpd_proxy_filter), where a reject is an in-session 5xx the real "
        "client sees. Keep content_filter: removing it switches the scanning off."
    ),
    references=(_REF_FILTER, f"{_REF_POSTCONF}#content_filter", f"{_REF_POSTCONF}#smtpd_proxy_filter"),
)
def after_queue_filter(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `content_filter` set in main.cf or as `-o content_filter=` on a listener that takes anonymous
    Internet mail. Whether the filter rejects or bounces is decided by the filter's own settings
    (amavisd.conf, the script's exit codes), which are outside the Postfix folder, so the finding is
    `inconclusive` and says what to check. The message names the filter transport, the master.cf
    service it resolves to, and whether master.cf has the loopback re-injection listener. On
    submission listeners the filter only sees authenticated senders, so it is reported as `pass`
    there. `FILTER` actions inside access or header tables are not visible to this rule. When the
    run also read amavis's configuration (`lint amavis --postfix-dir`, or `[amavis]` in site.toml)
    and the filter is amavis, CF-AMAVIS-001 judges it and this rule is `not-applicable` there.

    ## Why it causes backscatter
    After the queue the SMTP client is gone. When the scanner answers Postfix's delivery with a
    reject (amavis `D_REJECT`/`D_BOUNCE`, a script filter exiting 69), Postfix writes a bounce to
    the envelope sender, who for spam and viruses is forged: the maillog shows
    `status=bounced (host 127.0.0.1[127.0.0.1] said: 554 5.7.0 Reject ...)` followed by
    `sender non-delivery notification`.

    ## Example
    ```
    content_filter = smtp-amavis:[127.0.0.1]:10024
    ```
    """
    # With amavis's own configuration in the run, CF-AMAVIS-001 judges the paths that lead to it.
    judged_by_amavis = {
        pl.target: pl.how
        for a in obs.of(AmavisConfig)
        for pl in placements(obs, a) or ()
        if pl.where == "after"
    }
    for cfg in obs.of(PostfixConfig):
        back = reinjection_listeners(cfg)
        for sc in scopes(cfg, ("content_filter",)):
            if sc.target in judged_by_amavis:
                yield r.not_applicable(
                    sc.target,
                    f"the after-queue filter is amavis ({judged_by_amavis[sc.target]}): its destinies are "
                    "judged by CF-AMAVIS-001 from amavis's own configuration",
                )
                continue
            vals = read(cfg, sc.service, ("content_filter",))
            p = vals.params["content_filter"]
            cf = vals["content_filter"].strip()
            transport, _, nexthop = cf.partition(":")
            svc = next((s for s in cfg.services if s.name == transport and s.type == "unix"), None)
            ev = [evidence(cfg, p)]
            detail = f"after-queue filter {cf}: transport {transport!r}"
            if svc is not None and re.fullmatch(r"[a-z][a-z0-9_-]*", svc.command):
                detail += f" is a {svc.command}(8) service"
                ev.append(_loc(svc, cfg))
            if nexthop:
                detail += f" to {nexthop}"
            if back:
                detail += "; re-injection listener " + ", ".join(service_label(s) for s in back)
                ev += [_loc(s, cfg) for s in back]
            else:
                detail += "; no loopback re-injection listener in master.cf"
            if cf and vals.undecidable is None and sc.role is Role.MX:
                yield r.inconclusive(
                    sc.target,
                    detail + ": any reject or bounce the filter returns becomes a bounce to the envelope "
                    "sender; whether it does is set in the filter's own configuration, not in this folder",
                    ev,
                    note=f"check the {transport} filter's settings: it must discard and quarantine, never "
                    "reject or bounce (amavis: $final_*_destiny = D_DISCARD)",
                )
                continue
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=bool(cf),
                fail_msg=detail,
                pass_msg="no after-queue content_filter",
                ev=ev,
            )


_LDA_MARKERS = ("dovecot-lda", "dovecot/deliver", "/deliver ", "/lmtp ", "dovecot")


def _argv(svc: MasterService) -> str:
    text = " ".join(svc.args)
    return text.split("argv=", 1)[1] if "argv=" in text else text


def _transport_refs(cfg: PostfixConfig) -> dict[str, list[Evidence]]:
    refs: dict[str, list[Evidence]] = {}
    holders = [(None, cfg.params.get(n)) for n in _TRANSPORT_PARAMS] + [
        (s, s.overrides.get(n)) for s in cfg.services for n in _TRANSPORT_PARAMS
    ]
    for _svc, p in holders:
        if p is None:
            continue
        for item in split_list(p.value):
            name = item.split(":", 1)[0]
            if name:
                refs.setdefault(name, []).append(Evidence(f"{p.name} = {p.value}", where(cfg, p)))
    return refs


def transport_name(result: str) -> str:
    """The transport of a transport(5) result: ``autoreply:nexthop`` → ``autoreply``."""
    words = result.split()
    return words[0].split(":", 1)[0] if words else ""


@dataclass
class _MapRoutes:
    refs: dict[str, list[Evidence]] = field(default_factory=dict)  # transport -> the entries naming it
    unread: list[str] = field(default_factory=list)  # tables whose entries are unknown
    params: list[ParamValue] = field(default_factory=list)


def _transport_map_routes(cfg: PostfixConfig) -> _MapRoutes:
    """Which transports the entries of transport_maps (main.cf or any ``-o``) name."""
    out = _MapRoutes()
    holders = [cfg.params.get("transport_maps")] + [s.overrides.get("transport_maps") for s in cfg.services]
    for p in holders:
        if p is None or not p.value.strip():
            continue
        out.params.append(p)
        if is_templated(p):
            out.unread.append(template_note(cfg, p))
            continue
        for spec in table_specs(p.value):
            t = next((t for t in cfg.tables if t.spec == spec and t.used_for("transport_maps")), None)
            if t is None:
                out.unread.append(f"{spec}: not collected")
                continue
            if not t.readable:
                out.unread.append(f"{spec}: {t.error or 'contents not read'}")
            listed = set(t.contents)
            # result_kinds holds the first entry naming each transport, over the whole table
            for e in [*t.contents, *(k for k in t.result_kinds if k not in listed)]:
                name = transport_name(e.value)
                if name:
                    loc = e.location or Location(t.resolved_path or t.name)
                    out.refs.setdefault(name, []).append(
                        Evidence(f"transport_maps {spec}: {e.key} {e.value}".strip(), loc)
                    )
    return out


@rule(
    "PF-PIPE-001",
    title="pipe(8) delivery scripts that fail hard",
    family="postfix",
    severity=Severity.MEDIUM,
    needs=(PostfixConfig,),
    remediation=(
        "Make the script exit 75 (EX_TEMPFAIL) on internal errors, so the message is retried, and 0 "
        "after discarding unwanted mail; never 67, 69 or 77 for spam."
    ),
    references=(_REF_FILTER, "pipe(8)", f"{_REF_POSTCONF}#mailbox_command"),
)
def pipe_scripts(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    master.cf `pipe` services that some transport setting (`content_filter`, `*_transport`) routes
    mail to, and a `mailbox_command`: the message quotes the argv. Medium for scripts (auto
    responders, ticket systems, list managers, maildrop/procmail); low for dovecot-lda/deliver,
    which returns 75 on temporary errors but bounces over-quota mail (see PF-QUOTA-001).
    `transport_maps` entries count too: the collector reads the tables (hash, texthash, regexp,
    pcre beside main.cf) and an entry whose result names a pipe service (`example.com autoreply:`)
    routes mail to it; the evidence quotes the entry with file and line. Pipe services nothing
    routes to are `pass` ("defined but unused"), or one low `inconclusive` finding when a
    `transport_maps` table could not be read (missing file, `ldap:`/SQL, templated).

    ## Why it causes backscatter
    pipe(8) and local(8) map exit codes with sysexits.h: only 75 (EX_TEMPFAIL) and 71 (EX_OSERR)
    defer; 67, 69, 77 and every non-sysexits code (1, 2, 127 after a crash...) bounce to the
    envelope sender, unless the command's output starts with a 4.X.X enhanced status code. A
    script that exits non-zero for spam, or crashes, bounces forged mail.

    ## Example
    ```
    autoreply unix - n n - - pipe
      flags=F user=nobody argv=/usr/local/bin/autoreply ${sender}
    ```
    """
    for cfg in obs.of(PostfixConfig):
        refs = _transport_refs(cfg)
        pipes = [s for s in cfg.services if s.command == "pipe"]
        routes = _transport_map_routes(cfg) if pipes else _MapRoutes()
        for name, evs in routes.refs.items():
            refs.setdefault(name, []).extend(evs[:3])
        unused: list[MasterService] = []
        mbc = cfg.params.get("mailbox_command")
        if cfg.master_cf is None:
            # The stock services stand in for a master.cf we did not see: its pipes are unknown.
            unknown = r.inconclusive(cfg.target, f"pipe(8) services: {NO_MASTER_CF}", severity=Severity.LOW)
            if mbc is None or not mbc.value.strip():
                yield unknown
                continue
            pipes = []
        elif not pipes and (mbc is None or not mbc.value.strip()):
            yield r.not_applicable(cfg.target, "no pipe(8) service and no mailbox_command")
            continue
        for svc in pipes:
            if svc.name not in refs:
                unused.append(svc)
                continue
            argv = _argv(svc)
            lda = any(m in argv + " " for m in _LDA_MARKERS)
            ev = [_loc(svc, cfg), *refs[svc.name]]
            note = (
                f"{svc.location or cfg.master_cf}: argv holds a template token" if has_template(argv) else ""
            )
            if lda:
                yield r.fail(
                    service_target(cfg, svc),
                    f"mail is delivered through pipe(8) to {argv}: it defers temporary errors (75) but "
                    "bounces over-quota and unknown-user results (see PF-QUOTA-001)",
                    ev,
                    severity=Severity.LOW,
                    note=note,
                )
            else:
                yield r.fail(
                    service_target(cfg, svc),
                    f"mail is delivered through pipe(8) to {argv}: every exit status but 0, 71 and 75 "
                    "bounces to the envelope sender",
                    ev,
                    note=note,
                )
        if cfg.master_cf is None:
            yield unknown
        if mbc is not None and mbc.value.strip():
            yield r.fail(
                f"{cfg.target} mailbox_command",
                f"local(8) runs mailbox_command = {mbc.value}: every exit status but 0, 71 and 75 bounces",
                [evidence(cfg, mbc)],
                severity=Severity.LOW if "dovecot" in mbc.value else None,
            )
        if unused:
            labels = ", ".join(service_label(s) for s in unused)
            ev = [_loc(s, cfg) for s in unused]
            if routes.unread:
                yield r.inconclusive(
                    cfg.target,
                    f"pipe services {labels} are not named by any transport setting, but transport_maps "
                    "tables that could not be read may route mail to them",
                    [*ev, *(evidence(cfg, p) for p in routes.params)],
                    severity=Severity.LOW,
                    note="; ".join(routes.unread),
                )
            else:
                checked = " or transport_maps entry" if routes.params else ""
                yield r.passed(
                    cfg.target,
                    f"pipe services {labels} are defined but no transport setting{checked} routes mail "
                    "to them",
                    [*ev, *(evidence(cfg, p) for p in routes.params)],
                )


@rule(
    "PF-QUOTA-001",
    title="over-quota decided after the queue",
    family="postfix",
    severity=Severity.MEDIUM,
    needs=(PostfixConfig,),
    remediation=(
        "If Dovecot enforces quota (its quota plugin), run its quota-status service "
        "(`service quota-status { executable = quota-status -p postfix; inet_listener { port = 12340 } }`) "
        "and add `check_policy_service` with that address to smtpd_recipient_restrictions, after "
        "reject_unauth_destination, so a full mailbox gets 552 at RCPT."
    ),
    references=(
        "https://doc.dovecot.org/configuration_manual/quota_plugin/",
        "Exim wiki: Checking quota at RCPT time",
    ),
)
def quota_after_queue(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    Mail delivered to a mailbox server over LMTP (`virtual_transport`/`mailbox_transport` =
    `lmtp:...`, or an lmtp(8) service) or through dovecot-lda/deliver, with no
    `check_policy_service` in the MX listener's recipient restrictions that asks a quota service
    (Dovecot `quota-status`, conventionally port 12340). A policy service that is not recognisably
    a quota service gives `inconclusive`. Whether the quota plugin is enabled is in the Dovecot
    configuration, outside the Postfix folder, so a missing quota check is `inconclusive` too: the
    finding says to check Dovecot's quota plugin (`doveconf -n | grep -i quota`). Submission and
    internal listeners (only authenticated or trusted clients) are not judged.

    ## Why it causes backscatter
    "Mailbox full" is then decided at delivery time, after the SMTP session: Postfix bounces the
    message to the (possibly forged) sender instead of answering 552 at RCPT.

    ## Example
    ```
    virtual_transport = lmtp:unix:private/dovecot-lmtp
    smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
    ```
    """
    for cfg in obs.of(PostfixConfig):
        backends: list[Evidence] = []
        for n in ("virtual_transport", "mailbox_transport", "local_transport"):
            p = effective(cfg, n)
            text = (p.raw if is_templated(p) else p.value).strip()
            name = text.split(":", 1)[0]
            svc = next((s for s in cfg.services if s.name == name and s.type == "unix"), None)
            if text.startswith("lmtp:") or (
                svc is not None and (svc.command == "lmtp" or "dovecot" in _argv(svc))
            ):
                backends.append(evidence(cfg, p))
        mbc = cfg.params.get("mailbox_command")
        if mbc is not None and "dovecot" in mbc.value:
            backends.append(evidence(cfg, mbc))
        if not backends:
            yield r.not_applicable(cfg.target, "no LMTP / dovecot-lda delivery configured")
            continue
        for sc in scopes(cfg, ("smtpd_recipient_restrictions", "smtpd_relay_restrictions")):
            if sc.role is not Role.MX:
                continue
            vals = read(cfg, sc.service, ("smtpd_recipient_restrictions", "smtpd_relay_restrictions"))
            policies = [
                x.arg
                for n in ("smtpd_relay_restrictions", "smtpd_recipient_restrictions")
                for x in parse_restrictions(vals[n])
                if x.name == "check_policy_service"
            ]
            quota = [a for a in policies if "12340" in a or "quota" in a.lower()]
            ev = [*backends, evidence(cfg, vals.params["smtpd_recipient_restrictions"])]
            if vals.undecidable is None and policies and not quota:
                yield r.inconclusive(
                    sc.target,
                    "delivery goes to a mailbox server; policy services "
                    + ", ".join(policies)
                    + " may or may not check quota at RCPT time",
                    ev,
                )
                continue
            if vals.undecidable is None and not quota:
                fx = Fixes(cfg)
                fx.insert(
                    sc.service,
                    "smtpd_recipient_restrictions",
                    ["check_policy_service", QUOTA_SERVICE],
                    placeholders=[QUOTA_SERVICE],
                )
                yield r.inconclusive(
                    sc.target,
                    "delivery goes over LMTP/LDA and no RCPT-time quota check is configured: if the "
                    "mailbox server enforces quota, over-quota mail is bounced after the queue",
                    ev,
                    note="check whether Dovecot's quota plugin is enabled (doveconf -n | grep -i quota); "
                    "the Dovecot configuration is outside the Postfix folder",
                    remediation=fx.remediation(r),
                )
                continue
            yield conclude(
                r,
                cfg,
                sc,
                vals,
                bad=False,
                fail_msg="",
                pass_msg="RCPT-time quota check: check_policy_service " + ", ".join(quota),
                ev=ev,
            )


QUOTA_SERVICE = "<your quota-status service>"


_NDR_SOURCES = (
    "PF-RCPT-001",
    "PF-RCPT-002",
    "PF-RCPT-003",
    "PF-RCPT-004",
    "PF-RCPT-005",
    "PF-RCPT-008",
    "PF-RCPT-009",
    "PF-FILTER-001",
    "PF-FILTER-004",
    "PF-PIPE-001",
    "PF-QUOTA-001",
    "PF-VERIFY-001",
)


def ndr_sources(cfg: PostfixConfig, status: Status = Status.FAIL) -> list[str]:
    """Ids of the rules that say ``status`` (medium or worse) on this config: the ways it emits NDRs
    to outside senders (FAIL), or may (INCONCLUSIVE).

    Rules are pure functions, so calling them here is cheap and has no side effect.
    """
    from auditor.rules import load_all  # all rule modules registered, whatever imported this one

    registry = load_all()
    obs = Observations([cfg])
    out = []
    for rid in _NDR_SOURCES:
        other = registry.get(rid)
        if other is not None and any(
            f.status is status and f.severity.at_least(Severity.MEDIUM) for f in other.check(obs, other)
        ):
            out.append(rid)
    return out


@rule(
    "PF-DSN-001",
    title="NDRs carry the full original message",
    family="postfix",
    cause="ndr-payload",
    controls=("RFC3464",),
    severity=Severity.MEDIUM,
    needs=(PostfixConfig,),
    remediation=(
        "Lower bounce_size_limit, e.g. to 8192, so most originals come back headers only. Senders can "
        "also ask for headers only with RET=HDRS (RFC 3461)."
    ),
    references=(
        f"{_REF_POSTCONF}#bounce_size_limit",
        _REF_BACKSCATTER,
        "https://www.postfix.org/DSN_README.html",
    ),
)
def ndr_full_message(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `bounce_size_limit` at or above the default 50000 (with Postfix ≥ 2.5 an NDR returns the whole
    original as `message/rfc822` when it fits within the limit, headers only otherwise) on a
    configuration that emits NDRs to outside senders: it fails a rule that makes it bounce mail
    it accepted (PF-RCPT-001…005, -008, -009, PF-FILTER-001/-004, PF-PIPE-001, PF-QUOTA-001,
    PF-VERIFY-001). When such a rule is only `inconclusive`, so is this one (low); when none of
    them fails, the limit harms no outside party and the finding is `pass`.

    ## Why it causes backscatter
    Each backscatter NDR re-delivers the spam payload to the victim. Headers-only NDRs remain
    useful for diagnosis and for recognising forgeries (the BACKSCATTER_README plea).

    ## Example
    ```
    bounce_size_limit = 10240000
    ```
    """
    for cfg in obs.of(PostfixConfig):
        p = effective(cfg, "bounce_size_limit")
        if is_templated(p):
            yield r.inconclusive(
                cfg.target, "bounce_size_limit is templated", [evidence(cfg, p)], note=template_note(cfg, p)
            )
            continue
        try:
            limit = int(p.value.strip())
        except ValueError:
            yield r.inconclusive(
                cfg.target, f"bounce_size_limit = {p.value!r} is not a number", [evidence(cfg, p)]
            )
            continue
        if limit < 50000:
            yield r.passed(
                cfg.target,
                f"bounce_size_limit = {limit}: NDRs return little of the original",
                [evidence(cfg, p)],
            )
            continue
        fix = fix_param(r, cfg, None, "bounce_size_limit", "8192")
        sources = ndr_sources(cfg)
        if sources:
            yield r.fail(
                cfg.target,
                f"bounce_size_limit = {limit}: NDRs return originals up to {limit} bytes, and this "
                f"configuration emits NDRs to outside senders ({', '.join(sources)})",
                [evidence(cfg, p)],
                remediation=fix,
            )
            continue
        maybe = ndr_sources(cfg, Status.INCONCLUSIVE)
        if maybe:
            yield r.inconclusive(
                cfg.target,
                f"bounce_size_limit = {limit}: NDRs return originals up to {limit} bytes; whether this "
                f"configuration bounces mail of outside senders is undecided ({', '.join(maybe)})",
                [evidence(cfg, p)],
                severity=Severity.LOW,
                remediation=fix,
            )
            continue
        yield r.passed(
            cfg.target,
            f"bounce_size_limit = {limit}, but no rule found a way this configuration bounces mail it "
            "accepted from outside senders",
            [evidence(cfg, p)],
        )
