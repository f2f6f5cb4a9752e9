"""Postfix rules about what happens after the queue: filters, pipes, quota, NDR size.

PF-FILTER-001, PF-PIPE-001, PF-QUOTA-001, PF-DSN-001 (PF-FILTER-004 is in ``postfix_content``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum

from auditor.model import Evidence, Finding, Location, Severity, Status
from auditor.observations.amavis import AmavisConfig
from auditor.observations.postfix import MasterService, ParamValue, PostfixConfig
from auditor.rules.amavis import placements
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.postfix_common import (
    LOCAL_ONLY_DOMAINS,
    NO_MASTER_CF,
    Fixes,
    Listener,
    Role,
    classify,
    conclude,
    describe,
    effective,
    evidence,
    fix_param,
    has_template,
    interfaces_loopback,
    is_templated,
    parse_restrictions,
    read,
    scopes,
    service_label,
    service_target,
    smtpd_listeners,
    split_list,
    strip_templates,
    table_specs,
    template_note,
)
from auditor.rules.postfix_tables import table_unread

_REF_POSTCONF = "https://www.postfix.org/postconf.5.html"
_REF_FILTER = "https://www.postfix.org/FILTER_README.html"
_REF_BACKSCATTER = "https://www.postfix.org/BACKSCATTER_README.html"


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


def transport_name(result: str) -> str:
    """The transport of a transport(5) result: ``autoreply:nexthop`` → ``autoreply``."""
    words = result.split()
    return words[0].split(":", 1)[0] if words else ""


# --- PF-PIPE-001: which clients can send mail down a delivery path ---------------------------------


class Reach(str, Enum):
    """Who can send mail down one delivery path."""

    OUTSIDE = "outside"  # an anonymous Internet client
    UNKNOWN = "unknown"  # the configuration does not say (templates, tables whose keys are unknown)
    CLOSED = "closed"  # only local submissions and trusted or authenticated clients


@dataclass(frozen=True)
class _Path:
    """One way mail reaches a transport, and who can send it that way."""

    reach: Reach
    how: str
    evidence: tuple[Evidence, ...] = ()


def _best(paths: list[_Path]) -> Reach:
    reaches = {p.reach for p in paths}
    for r in (Reach.OUTSIDE, Reach.UNKNOWN):
        if r in reaches:
            return r
    return Reach.CLOSED


# Domain classes an anonymous client may address: reject_unauth_destination lets them through.
_DOMAIN_CLASSES = ("mydestination", "virtual_alias_domains", "virtual_mailbox_domains", "relay_domains")
_SYSEXITS = (
    "75 (EX_TEMPFAIL) defers and is retried, 0 after discarding unwanted mail is silent; 67 (EX_NOUSER), "
    "69 (EX_UNAVAILABLE), 77 (EX_NOPERM) and every non-sysexits status (1, 2, 127 after a crash) bounce to "
    "the envelope sender"
)


@dataclass
class _Site:
    """What one configuration accepts from anonymous Internet clients (worked out once per config)."""

    outside: list[Listener] = field(default_factory=list)  # MX listeners on a non-loopback address
    undecided: list[Listener] = field(default_factory=list)  # MX listeners whose address is a template
    closed_why: str = ""  # why no anonymous Internet client reaches any smtpd
    closed_evidence: list[Evidence] = field(default_factory=list)
    domains: dict[str, list[str]] = field(default_factory=dict)  # class -> literal domain names
    opaque: dict[str, list[str]] = field(default_factory=dict)  # class -> tables, files, templates

    def gate(self, reach: Reach, how: str, ev: Sequence[Evidence] = ()) -> _Path:
        """A path that needs an Internet-facing smtpd: closed when there is none."""
        if not self.outside and not self.undecided:
            return _Path(Reach.CLOSED, f"{how}, but {self.closed_why}", (*ev, *self.closed_evidence))
        if not self.outside and reach is Reach.OUTSIDE:
            labels = ", ".join(lst.label for lst in self.undecided)
            return _Path(Reach.UNKNOWN, f"{how}, if {labels} listens on an Internet address", tuple(ev))
        return _Path(reach, how, tuple(ev))

    def accepts(self, domain: str, subdomains: bool = False) -> str:
        """The class that accepts ``domain`` (or, with ``subdomains``, a domain below it), or ""."""
        for cls, names in self.domains.items():
            for d in names:
                parent = d.lstrip(".")
                if subdomains and (d == domain or d.endswith("." + domain)):
                    return cls
                if not subdomains and (
                    d == domain or (cls == "relay_domains" and domain.endswith("." + parent))
                ):
                    return cls
        return ""

    def unknown_members(self) -> str:
        return "; ".join(f"{cls}: {', '.join(items[:3])}" for cls, items in self.opaque.items() if items)


def _binding(cfg: PostfixConfig, svc: MasterService | None, loopback: bool | None) -> bool | None:
    """True when the listener listens on loopback only, None when a template hides its address."""
    if svc is None:
        return loopback
    if svc.type == "pass":  # behind postscreen: as reachable as the postscreen in front of it
        fronts = {
            _binding(cfg, s, loopback) for s in cfg.services if s.command == "postscreen" and s.type == "inet"
        }
        if False in fronts:
            return False
        return None if None in fronts else True
    if has_template(svc.name):
        return None
    if svc.host is not None:
        return svc.is_loopback_only
    return loopback  # no address in the service name: it listens on inet_interfaces


def _site(cfg: PostfixConfig) -> _Site:
    site = _Site()
    iface = effective(cfg, "inet_interfaces")
    # classify() already puts loopback listeners aside; a templated inet_interfaces leaves the
    # listeners without an address of their own undecided.
    loopback = None if is_templated(iface) else False
    listeners = smtpd_listeners(cfg)
    mx = [lst for lst in listeners if lst.role is Role.MX]
    for lst in mx:
        bound = _binding(cfg, lst.service, loopback)
        (site.outside if bound is False else site.undecided).append(lst)
    if not mx:
        why = "; ".join(f"{lst.label}: {lst.reason}" for lst in listeners) or "master.cf has no smtpd service"
        site.closed_why = f"no smtpd listener takes mail from anonymous Internet clients ({why})"
        if interfaces_loopback(cfg):
            site.closed_evidence.append(evidence(cfg, iface))
        site.closed_evidence += [
            Evidence(f"master.cf service {lst.label}: {lst.reason}", lst.service.location)
            for lst in listeners[:3]
            if lst.service is not None and lst.service.location is not None
        ]
    for cls in _DOMAIN_CLASSES:
        p = effective(cfg, cls)
        text = p.value
        if is_templated(p):
            site.opaque.setdefault(cls, []).append(template_note(cfg, p))
            text = strip_templates(p.value if has_template(p.value) else p.raw)
        for item in split_list(text):
            if ":" in item or item.startswith(("/", "$")):
                site.opaque.setdefault(cls, []).append(item)
            elif item.strip("{}"):
                site.domains.setdefault(cls, []).append(item.lower().rstrip("."))
    return site


def _class_path(cfg: PostfixConfig, site: _Site, param: ParamValue, cls: str) -> _Path:
    """Mail for one domain class (virtual_mailbox_domains for virtual_transport, ...)."""
    ev = [evidence(cfg, param)]
    p = effective(cfg, cls)
    names, opaque = site.domains.get(cls, []), site.opaque.get(cls, [])
    if not names and not opaque:
        return _Path(Reach.CLOSED, f"{describe(param)}, but {cls} is empty", (*ev, evidence(cfg, p)))
    ev.append(evidence(cfg, p))
    if not names and is_templated(p) and len(opaque) == 1:
        return site.gate(Reach.UNKNOWN, f"{describe(param)}: mail for {cls}, which is templated", ev)
    shown = ", ".join([*names, *(o for o in opaque if ":" in o or o.startswith("/"))][:3])
    return site.gate(Reach.OUTSIDE, f"{describe(param)}: mail for {cls} ({shown})", ev)


def _local_class_path(cfg: PostfixConfig, site: _Site, param: ParamValue) -> _Path:
    """The local domain class: $mydestination, and user@[address] literals of the listening addresses,
    which resolve locally whatever mydestination holds (postconf(5) mydestination)."""
    names = site.domains.get("mydestination", [])
    facing = [n for n in names if n not in LOCAL_ONLY_DOMAINS and not n.startswith("localhost.")]
    dest = effective(cfg, "mydestination")
    on = ", ".join(lst.label for lst in site.outside[:3])
    what = (
        f"mydestination ({', '.join(facing[:3])})"
        if facing
        else f"user@[IP] address literals{' on ' + on if on else ''} ({describe(dest)})"
    )
    shown = describe(param) if param.value.strip() else "local_transport = local (default)"
    return site.gate(
        Reach.OUTSIDE, f"{shown}: mail for the local domain class, {what}", [evidence(cfg, param)]
    )


def _key_path(cfg: PostfixConfig, site: _Site, how: str, key: str, loc: Location) -> _Path:
    """A transport_maps entry: can an anonymous client address what its key matches?"""
    ev = [Evidence(how, loc)]
    k = key.strip().lower()
    if k == "*":
        return site.gate(Reach.OUTSIDE, f"{how}: the * entry routes every recipient", ev)
    if k.startswith("/"):
        m = re.fullmatch(r"/(.*)/([a-z]*)", key.strip(), re.DOTALL)
        samples = [f"postmaster@{d.lstrip('.')}" for names in site.domains.values() for d in names]
        try:
            rx = re.compile(m.group(1), 0 if "i" in m.group(2) else re.IGNORECASE) if m else None
        except re.error:
            rx = None
        if rx is None:
            return site.gate(Reach.UNKNOWN, f"{how}: pattern not evaluated", ev)
        hit = next((a for a in samples if rx.search(a)), None)
        if hit:
            return site.gate(Reach.OUTSIDE, f"{how}: the pattern matches {hit}, an accepted address", ev)
        if site.unknown_members():
            return site.gate(
                Reach.UNKNOWN,
                f"{how}: whether the pattern matches accepted addresses is "
                f"not known ({site.unknown_members()})",
                ev,
            )
        return _Path(Reach.CLOSED, f"{how}: the pattern matches no accepted domain", tuple(ev))
    domain = k.rpartition("@")[2] if "@" in k else k
    if not domain or has_template(domain):
        return site.gate(Reach.UNKNOWN, f"{how}: the key names no domain", ev)
    sub = domain.startswith(".")
    cls = site.accepts(domain.lstrip("."), subdomains=sub)
    if cls:
        return site.gate(Reach.OUTSIDE, f"{how}: {domain.lstrip('.')} is in {cls}", ev)
    if site.unknown_members():
        return site.gate(
            Reach.UNKNOWN,
            f"{how}: whether {domain.lstrip('.')} is an accepted domain is not known "
            f"({site.unknown_members()})",
            ev,
        )
    return _Path(
        Reach.CLOSED,
        f"{how}: {domain.lstrip('.')} is in no accepted domain class ({', '.join(_DOMAIN_CLASSES)}), so "
        "reject_unauth_destination refuses it to anonymous clients (PF-RELAY-001 checks that gate); only "
        "trusted or authenticated clients relay mail to it",
        tuple(ev),
    )


@dataclass
class _MapRoutes:
    paths: dict[str, list[_Path]] = field(default_factory=dict)  # transport -> the entries naming it
    unread: list[str] = field(default_factory=list)  # tables whose entries are unknown
    params: list[ParamValue] = field(default_factory=list)


def _transport_map_routes(cfg: PostfixConfig, site: _Site, wanted: set[str]) -> _MapRoutes:
    """Which of the ``wanted`` transports the entries of transport_maps (main.cf or any ``-o``) name,
    and who can reach each entry."""
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
                out.unread.append(table_unread(t, key="<domain>"))
            listed = set(t.contents)
            # result_kinds holds the first entry naming each transport, over the whole table
            for e in [*t.contents, *(k for k in t.result_kinds if k not in listed)]:
                name = transport_name(e.value)
                if name in wanted:
                    loc = e.location or Location(t.resolved_path or t.name)
                    how = f'the transport_maps {spec} entry "{e.key} {e.value}"'
                    out.paths.setdefault(name, []).append(_key_path(cfg, site, how, e.key, loc))
    return out


def _holders(cfg: PostfixConfig, name: str) -> list[tuple[MasterService | None, ParamValue]]:
    """main.cf's value of ``name`` (set or default) and every master.cf ``-o name=``."""
    out: list[tuple[MasterService | None, ParamValue]] = [(None, effective(cfg, name))]
    out += [(s, s.overrides[name]) for s in cfg.services if name in s.overrides]
    return out


def _names(p: ParamValue) -> list[str]:
    """The transports a transport setting names (``local:$myhostname`` → ``local``), templated or not:
    a template token after the colon hides only the next hop."""
    text = p.value if has_template(p.value) or not is_templated(p) else p.raw
    return [n for n in (item.split(":", 1)[0] for item in split_list(text)) if n]


class _Routes:
    """Every way mail reaches each transport of one configuration, and who can send it that way."""

    def __init__(self, cfg: PostfixConfig) -> None:
        self.cfg = cfg
        self.site = _site(cfg)
        # only the routes to pipe(8) and local(8) services matter here
        wanted = {s.name for s in cfg.services if s.command in ("pipe", "local")}
        self.maps = _transport_map_routes(cfg, self.site, wanted if cfg.master_cf is not None else {"local"})
        self.paths: dict[str, list[_Path]] = {}
        for name, paths in self.maps.paths.items():
            self.paths.setdefault(name, []).extend(paths)
        self._content_filter()
        cls_of = {
            "local_transport": None,
            "virtual_transport": "virtual_mailbox_domains",
            "relay_transport": "relay_domains",
        }
        for param, cls in cls_of.items():
            for _svc, p in _holders(cfg, param):
                names = _names(p) or (["local"] if param == "local_transport" else [])
                if not names:
                    continue
                name = names[0]  # one transport per class
                if has_template(name):
                    self._add(name, _Path(Reach.UNKNOWN, f"{describe(p)} is templated", (evidence(cfg, p),)))
                    continue
                path = (
                    _local_class_path(cfg, self.site, p)
                    if cls is None
                    else _class_path(cfg, self.site, p, cls)
                )
                self._add(name, path)
        for _svc, p in _holders(cfg, "default_transport"):
            for n in _names(p):
                self._add(
                    n,
                    self.site.gate(
                        Reach.UNKNOWN,
                        f"{describe(p)}: mail for remote domains, which anonymous clients may not "
                        "address but an alias may forward accepted mail to",
                        [evidence(cfg, p)],
                    ),
                )
        local = self.local_delivery()
        for param in ("mailbox_transport", "fallback_transport", "fallback_transport_maps"):
            for _svc, p in _holders(cfg, param):
                for n in _names(p):
                    self._add(n, self._through_local(local, p))

    def _add(self, name: str, path: _Path) -> None:
        self.paths.setdefault(name, []).append(path)

    def _content_filter(self) -> None:
        cfg, site = self.cfg, self.site
        users = [
            lst
            for lst in smtpd_listeners(cfg)
            if lst.service is None or "content_filter" not in lst.service.overrides
        ]
        for svc, p in _holders(cfg, "content_filter"):
            names = _names(p)
            if not names:
                continue
            ev = [evidence(cfg, p)]
            if svc is None:
                mine = [lst for lst in users if lst.role is Role.MX]
                how = (
                    f"{describe(p)} on {', '.join(lst.label for lst in mine) or 'local submission (pickup)'}"
                )
            elif svc.is_smtpd:
                lst = classify(cfg, svc)
                mine = [lst] if lst.role is Role.MX else []
                how = f"{describe(p)} on {lst.label} ({lst.reason})"
            else:
                mine = []
                how = f"{describe(p)} on {service_label(svc)}, a {svc.command}(8) service"
            outside = [lst for lst in mine if lst in site.outside]
            undecided = [lst for lst in mine if lst in site.undecided]
            if outside:
                path = _Path(Reach.OUTSIDE, f"{how}: all mail they accept", tuple(ev))
            elif undecided:
                path = _Path(Reach.UNKNOWN, f"{how}, if they listen on an Internet address", tuple(ev))
            elif mine:
                path = _Path(Reach.CLOSED, f"{how}, which listen on loopback only", tuple(ev))
            elif svc is None and site.closed_why:
                path = _Path(Reach.CLOSED, f"{how}, but {site.closed_why}", (*ev, *site.closed_evidence))
            else:
                path = _Path(Reach.CLOSED, f"{how}, which takes no anonymous Internet mail", tuple(ev))
            for n in names:
                self._add(n, path)

    def local_delivery(self) -> list[_Path]:
        """How mail reaches local(8) (and so mailbox_command, mailbox_transport, fallback_transport)."""
        cfg = self.cfg
        if cfg.master_cf is None:
            local_names = {"local"}
        else:
            local_names = {s.name for s in cfg.services if s.command == "local" and s.type == "unix"}
        return [p for n in local_names for p in self.paths.get(n, [])]

    def _through_local(self, local: list[_Path], p: ParamValue) -> _Path:
        ev = (evidence(self.cfg, p),)
        if not local:
            return _Path(Reach.CLOSED, f"{describe(p)}, but no transport setting routes mail to local(8)", ev)
        best = _best(local)
        via = next(x for x in local if x.reach is best)
        return _Path(best, f"through local(8), which gets {via.how}", (*ev, *via.evidence))


def _hows(paths: list[_Path], reach: Reach) -> str:
    chosen = [p.how for p in paths if p.reach is reach]
    more = f" (and {len(chosen) - 2} more)" if len(chosen) > 2 else ""
    return "; ".join(chosen[:2]) + more


def _path_evidence(paths: list[_Path], reach: Reach) -> list[Evidence]:
    out: list[Evidence] = []
    for p in paths:
        if p.reach is reach:
            out.extend(e for e in p.evidence if e not in out)
    return out[:6]


def _judge_pipe(
    r: Rule, target: str, what: str, paths: list[_Path], base: Sequence[Evidence], lda: bool, note: str = ""
) -> Finding:
    reach = _best(paths)
    ev = list(base)
    ev += [e for e in _path_evidence(paths, reach) if e not in ev]
    how = _hows(paths, reach)
    sev = Severity.LOW if lda else None
    check = (
        f"check that {what} exits 75 (EX_TEMPFAIL) on temporary errors; with Dovecot, whether over-quota "
        "mail bounces is set by its quota plugin and quota_full_tempfail (see PF-QUOTA-001)"
        if lda
        else f"check the exit codes of {what}: {_SYSEXITS}"
    )
    notes = "; ".join(n for n in (check, note) if n)
    if reach is Reach.OUTSIDE:
        return r.inconclusive(
            target,
            f"mail from anonymous Internet clients reaches {what} ({how}); whether it bounces depends on its "
            "exit codes, which are not in the Postfix folder",
            ev,
            severity=sev,
            note=notes,
        )
    if reach is Reach.UNKNOWN:
        return r.inconclusive(
            target,
            f"{what} receives mail ({how}); whether anonymous Internet clients can send it there is not "
            "decided",
            ev,
            severity=sev,
            note=notes,
        )
    return r.passed(
        target,
        f"{what} is reached only by local submissions and trusted or authenticated clients ({how}): a bounce "
        "it causes goes to a sender that was not forged by an outside client",
        ev,
    )


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
    master.cf `pipe` services that mail is routed to, and a `mailbox_command`, when anonymous
    Internet clients can send mail down that route. The message quotes the argv and the route.
    Routes: `content_filter` (main.cf or `-o` on a listener), `local_transport` (the local domain
    class: `$mydestination`, and `user@[IP]` literals of the listening addresses),
    `virtual_transport` (`virtual_mailbox_domains`), `relay_transport` (`relay_domains`),
    `default_transport` (remote domains, reached when an alias forwards), `mailbox_transport` /
    `fallback_transport` / `mailbox_command` (through local(8)), and `transport_maps` entries (the
    collector reads hash, texthash, regexp and pcre tables beside main.cf; the evidence quotes the
    entry with file and line).

    Who can use a route is worked out from the configuration: an smtpd listener that takes
    anonymous mail (not SASL-only, not `$mynetworks`-only) on a non-loopback address
    (`inet_interfaces = loopback-only` makes a null client: nothing from outside), and a domain
    that is in an accepted class (`mydestination`, `virtual_alias_domains`,
    `virtual_mailbox_domains`, `relay_domains`). A `transport_maps` entry for a pseudo-domain in
    none of them (a spam-training address only local users relay to) is reachable only by trusted
    clients. Such routes are `pass`.

    Whether a reachable script bounces is decided by its exit codes, and the script is not in the
    Postfix folder: the finding is `inconclusive` and says what to check. Medium for scripts (auto
    responders, ticket systems, list managers, maildrop/procmail); low for dovecot-lda/deliver,
    which returns 75 on temporary errors but may bounce over-quota mail (see PF-QUOTA-001). Pipe
    services nothing routes to are `pass` ("defined but unused"), or one low `inconclusive`
    finding when a `transport_maps` table could not be read (missing file, `ldap:`/SQL not
    queried, templated). Aliases that pipe to a command (`|/path` in alias_maps) are not read.

    ## Why it causes backscatter
    pipe(8) and local(8) map exit codes with sysexits.h: only 75 (EX_TEMPFAIL) and 71 (EX_OSERR)
    defer; 67, 69, 77 and every non-sysexits code (1, 2, 127 after a crash...) bounce to the
    envelope sender, unless the command's output starts with a 4.X.X enhanced status code. A
    script that exits non-zero for spam, or crashes, bounces forged mail. Mail that only local or
    authenticated users can send down the route bounces to them, not to a forged third party.

    ## Example
    ```
    autoreply unix - n n - - pipe
      flags=F user=nobody argv=/usr/local/bin/autoreply ${sender}
    ```
    """
    for cfg in obs.of(PostfixConfig):
        pipes = [s for s in cfg.services if s.command == "pipe"]
        mbc = cfg.params.get("mailbox_command")
        has_mbc = mbc is not None and bool(mbc.value.strip())
        if cfg.master_cf is None:
            # The stock services stand in for a master.cf we did not see: its pipes are unknown.
            unknown = r.inconclusive(cfg.target, f"pipe(8) services: {NO_MASTER_CF}", severity=Severity.LOW)
            if not has_mbc:
                yield unknown
                continue
            pipes = []
        elif not pipes and not has_mbc:
            yield r.not_applicable(cfg.target, "no pipe(8) service and no mailbox_command")
            continue
        routes = _Routes(cfg)
        unused: list[MasterService] = []
        for svc in pipes:
            paths = routes.paths.get(svc.name)
            if not paths:
                unused.append(svc)
                continue
            argv = _argv(svc)
            note = (
                f"{svc.location or cfg.master_cf}: argv holds a template token" if has_template(argv) else ""
            )
            yield _judge_pipe(
                r,
                service_target(cfg, svc),
                f"pipe(8) service {service_label(svc)} ({argv})",
                paths,
                [_loc(svc, cfg)],
                any(m in argv + " " for m in _LDA_MARKERS),
                note,
            )
        if cfg.master_cf is None:
            yield unknown
        if has_mbc and mbc is not None:
            local = routes.local_delivery()
            paths = [routes._through_local(local, mbc)]
            yield _judge_pipe(
                r,
                f"{cfg.target} mailbox_command",
                f"mailbox_command = {mbc.value.strip()}",
                paths,
                [evidence(cfg, mbc)],
                "dovecot" in mbc.value,
            )
        if unused:
            labels = ", ".join(service_label(s) for s in unused)
            ev = [_loc(s, cfg) for s in unused]
            maps = routes.maps
            if maps.unread:
                yield r.inconclusive(
                    cfg.target,
                    f"pipe services {labels} are not named by any transport setting, but transport_maps "
                    "tables whose entries are unknown may route mail to them",
                    [*ev, *(evidence(cfg, p) for p in maps.params)],
                    severity=Severity.LOW,
                    note="; ".join(maps.unread),
                )
            else:
                checked = " or transport_maps entry" if maps.params else ""
                yield r.passed(
                    cfg.target,
                    f"pipe services {labels} are defined but no transport setting{checked} routes mail "
                    "to them",
                    [*ev, *(evidence(cfg, p) for p in maps.params)],
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
