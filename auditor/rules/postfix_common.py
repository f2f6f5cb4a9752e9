"""Shared reading of a Postfix configuration for the PF-* rules: restriction lists, listeners, evidence.

No rules live here. The helpers answer the questions several rules ask:

* which master.cf smtpd listeners take mail from anonymous Internet clients (MX traffic) and which
  are submission ports (SASL only) or internal ones (loopback, post-filter re-injection, postscreen
  hand-off without a public postscreen);
* what a restriction list contains (``check_*_access type:table`` consumes its table argument);
* the effective value of a parameter for one listener, with the evidence (file and line) behind it,
  and whether it holds an unresolved template token.

Templates (Jinja, Template Toolkit, ``%{x}``, ``PH_X``): a value whose token hides what a rule needs
is ``inconclusive``. One refinement, documented in each finding's note: when a value's only
tokens are ``if``/``else`` blocks, it is judged as the template renders with every option unset
(the configuration a default install gets). If that rendering already fails the rule, the finding
is ``fail``; if it passes, the finding stays ``inconclusive`` (other renderings were not judged).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

from auditor.model import Evidence, Finding, FixCommand, Location, Remediation, Severity
from auditor.observations.postfix import (
    MasterService,
    ParamValue,
    PostfixConfig,
    split_list,  # one tokeniser for collector and rules
)
from auditor.rules.base import Rule

# Built-in defaults (postconf -d, Postfix 3.x) of the parameters the rules read. Only used when the
# collector did not record a parameter at all; a recorded value always wins.
DEFAULTS: dict[str, str] = {
    "address_verify_sender": "double-bounce",
    "address_verify_sender_ttl": "0s",
    "bounce_size_limit": "50000",
    "compatibility_level": "0",
    "content_filter": "",
    "local_recipient_maps": "proxy:unix:passwd.byname $alias_maps",
    "luser_relay": "",
    "mydestination": "$myhostname, localhost.$mydomain, localhost",
    "mynetworks_style": "host",
    "permit_mx_backup_networks": "",
    "receive_override_options": "",
    "relay_recipient_maps": "",
    "smtpd_recipient_restrictions": "",
    "smtpd_reject_unlisted_recipient": "yes",
    "smtpd_restriction_classes": "",
    "soft_bounce": "no",
    "unknown_local_recipient_reject_code": "550",
    "unknown_relay_recipient_reject_code": "550",
    "unknown_virtual_alias_reject_code": "550",
    "unknown_virtual_mailbox_reject_code": "550",
    "unverified_recipient_defer_code": "450",
    "unverified_recipient_reject_code": "450",
    "unverified_sender_defer_code": "450",
    "unverified_sender_reject_code": "450",
}

# Defaults that depend on compatibility_level (COMPATIBILITY_README): (level, value below it, value at/above).
_LEVEL_DEFAULTS: dict[str, tuple[tuple[int, ...], Callable[[PostfixConfig], str], str]] = {
    "relay_domains": ((2,), lambda cfg: cfg.value("mydestination") or DEFAULTS["mydestination"], ""),
    "smtpd_relay_restrictions": (
        (1,),
        lambda cfg: "",
        "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
    ),
    "mynetworks_style": ((2,), lambda cfg: "subnet", "host"),
}

# smtpd restriction lists, in the order smtpd evaluates them for one RCPT command.
RESTRICTION_LISTS: tuple[str, ...] = (
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
)

# Permits that only trusted clients can satisfy.
TRUSTED_PERMITS = frozenset(
    {"permit_mynetworks", "permit_sasl_authenticated", "permit_tls_clientcerts", "permit_tls_all_clientcerts"}
)
_SASL_PERMITS = frozenset(
    {"permit_sasl_authenticated", "permit_tls_clientcerts", "permit_tls_all_clientcerts"}
)

# Restrictions that take the next list element as their argument (postconf(5)).
_ARG_TAKERS = frozenset(
    {
        "check_policy_service",
        "reject_rbl_client",
        "reject_rhsbl_client",
        "reject_rhsbl_helo",
        "reject_rhsbl_reverse_client",
        "reject_rhsbl_sender",
        "reject_rhsbl_recipient",
        "permit_dnswl_client",
        "permit_rhswl_client",
        "reject_dnsbl_client",
    }
)

# Template syntaxes found in real config generators (Jinja, Template Toolkit, %{x}, PH_X, @X@).
_TEMPLATE_RE = re.compile(
    r"(?<!\$)\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\[%.*?%\]|%\{[^}]*\}|(?<![\w%])%[a-z][a-z_]{2,}\b|\bPH_[A-Z0-9_]+|@[A-Z][A-Z0-9_]+@|<%.*?%>|<&.*?&>",
    re.DOTALL,
)
# Conditionals whose "all options off" rendering is the else branch (or nothing), not nested.
_JINJA_IF_RE = re.compile(
    r"\{%-?\s*if\b([^%]*)-?%\}(.*?)(?:\{%-?\s*else\s*-?%\}(.*?))?\{%-?\s*endif\s*-?%\}", re.DOTALL
)
_TT_IF_RE = re.compile(
    r"\[%-?\s*(IF|UNLESS)\b([^%]*)-?%\](.*?)(?:\[%-?\s*ELSE\s*-?%\](.*?))?\[%-?\s*END\s*-?%\]", re.DOTALL
)
_COMMENT_RE = re.compile(r"\{#.*?#\}", re.DOTALL)

LOCAL_ONLY_DOMAINS = frozenset({"localhost", "localhost.localdomain", "localdomain"})


@dataclass(frozen=True)
class Restriction:
    """One element of an smtpd restriction list: its name and (for table/policy lookups) its argument."""

    name: str
    arg: str = ""
    warn_only: bool = False  # preceded by warn_if_reject: it logs instead of rejecting

    @property
    def is_access_lookup(self) -> bool:
        """``check_*_access``, ``check_policy_service``, or a bare ``type:table`` (an access lookup too)."""
        return ":" in self.name or (
            self.name.startswith("check_")
            and (self.name.endswith("_access") or self.name == "check_policy_service")
        )


def _takes_arg(name: str) -> bool:
    return (name.startswith("check_") and name.endswith("_access")) or name in _ARG_TAKERS


def parse_restrictions(value: str) -> list[Restriction]:
    """Parse a restriction list; ``check_*_access`` and friends consume the next token."""
    tokens = [t for t in split_list(value) if t]
    out: list[Restriction] = []
    i = 0
    warn = False
    while i < len(tokens):
        name = tokens[i].lower()
        if name == "warn_if_reject":
            warn = True
            i += 1
            continue
        arg = ""
        if _takes_arg(name) and i + 1 < len(tokens):
            arg = tokens[i + 1]
            i += 1
        out.append(Restriction(name, arg, warn))
        warn = False
        i += 1
    return out


def has_template(text: str) -> bool:
    # every template syntax holds one of these: a 60 MB domain list is skipped without a regex scan
    if not any(c in text for c in ("{", "%", "PH_", "@", "<&")):
        return False
    return bool(_TEMPLATE_RE.search(text))


def strip_templates(text: str) -> str:
    """``text`` without its template tokens (what is certainly there whatever the rendering)."""
    return _FRAGMENT_RE.sub("", _TEMPLATE_RE.sub("", text))


def template_tokens(text: str) -> list[str]:
    return _TEMPLATE_RE.findall(text)


class Role(str, Enum):
    """What kind of SMTP traffic an smtpd listener takes."""

    MX = "mx"  # anonymous Internet clients may deliver mail for our domains here
    SUBMISSION = "submission"  # only authenticated (SASL / client certificate) clients get mail accepted
    INTERNAL = "internal"  # loopback, trusted networks only, or not reachable from outside


@dataclass(frozen=True)
class Listener:
    """An smtpd listener (or the main.cf defaults when there is no master.cf) and its role."""

    service: MasterService | None
    role: Role
    reason: str

    @property
    def label(self) -> str:
        if self.service is None:
            return "main.cf"
        return f"{self.service.name}/{self.service.type}"


def service_label(svc: MasterService) -> str:
    return f"{svc.name}/{svc.type}"


def service_target(cfg: PostfixConfig, svc: MasterService | None) -> str:
    """Finding target: the config directory, or ``DIR service name/type`` for a master.cf entry."""
    return cfg.target if svc is None else f"{cfg.target} service {service_label(svc)}"


def effective(cfg: PostfixConfig, name: str, svc: MasterService | None = None) -> ParamValue:
    """The value Postfix uses for ``name`` (service override, main.cf, or the built-in default)."""
    p = cfg.param(name, svc)
    if p is not None:
        return p
    value = DEFAULTS.get(name, "")
    if name in _LEVEL_DEFAULTS:
        lvl = cfg.params.get("compatibility_level")
        level = level_tuple(lvl.value if lvl else "0") or (0,)
        threshold, old, new = _LEVEL_DEFAULTS[name]
        value = old(cfg) if level < threshold else new
    return ParamValue(name=name, value=value, raw=value, source="default")


# A lone opener or closer: what is left of a template token that a field splitter cut in pieces.
_FRAGMENT_RE = re.compile(r"\{%|%\}|\[%|%\]|(?<!\$)\{\{")


def is_templated(p: ParamValue) -> bool:
    return (
        p.templated
        or has_template(p.raw)
        or has_template(p.value)
        or any(("{" in t or "%" in t) and _FRAGMENT_RE.search(t) for t in (p.raw, p.value))
    )


def main_cf_location(cfg: PostfixConfig) -> Location:
    return Location(cfg.main_cf or "main.cf")


def where(cfg: PostfixConfig, p: ParamValue) -> Location:
    """The line that sets ``p``; defaults point at main.cf without a line."""
    if p.location is not None:
        return p.location
    return main_cf_location(cfg)


def describe(p: ParamValue) -> str:
    """``name = value`` with where it comes from, for messages and evidence."""
    origin = "default" if p.source == "default" or (not p.explicit and p.location is None) else p.source
    shown = p.raw if is_templated(p) else p.value
    text = f"{p.name} = {shown}".rstrip()
    return f"{text} ({origin})" if origin == "default" else text


def evidence(cfg: PostfixConfig, p: ParamValue, summary: str | None = None) -> Evidence:
    return Evidence(summary or describe(p), where(cfg, p))


def template_note(cfg: PostfixConfig, p: ParamValue) -> str:
    """Name the file, line and template token that make ``p`` undecidable."""
    loc = where(cfg, p)
    if p.unresolved:  # not a template: the collector could not compute the value
        return f"{loc}: {p.name}: {p.unresolved}"
    for t in cfg.templates:
        if t.parameter == p.name and (p.location is None or t.location.path == loc.path):
            return f"{t.location}: {p.name} holds the template token {t.token!r}"
    toks = template_tokens(p.raw) or template_tokens(p.value)
    token = toks[0] if toks else p.raw
    return f"{loc}: {p.name} holds the template token {token!r}"


def _service_templated(svc: MasterService) -> bool:
    return has_template(svc.name)


def _closure(cfg: PostfixConfig, svc: MasterService | None) -> tuple[str, frozenset[str]] | None:
    """If some restriction list admits only trusted clients, return (list name, permits used)."""
    for lname in RESTRICTION_LISTS:
        p = effective(cfg, lname, svc)
        text: str | None = p.value
        if is_templated(p):
            text, _ = restriction_rendering(p.value if has_template(p.value) else p.raw)
            if text is None:
                continue
        permits: set[str] = set()
        for r in parse_restrictions(text or ""):
            if r.name in TRUSTED_PERMITS:
                permits.add(r.name)
                continue
            if r.name in ("reject", "defer") and not r.warn_only:
                return lname, frozenset(permits)
            if r.name.startswith(("reject_", "defer_")) or r.warn_only:
                continue  # can only refuse (or only log): the walk goes on
            break  # anything else may permit an anonymous client
    return None


def interfaces_loopback(cfg: PostfixConfig) -> bool:
    """``inet_interfaces`` names loopback addresses only (``loopback-only``, ``127.0.0.1, [::1]``):
    a service without an address in its name listens there, out of reach of Internet clients.
    False when templated: the rendering may name any address."""
    p = effective(cfg, "inet_interfaces")
    if is_templated(p):
        return False
    items = [i.strip("[]").lower() for i in split_list(p.value)]
    return bool(items) and all(_loopback_item(i) for i in items)


def _loopback_item(item: str) -> bool:
    if item in ("loopback-only", "localhost"):
        return True
    try:
        return ipaddress.ip_address(item.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _on_interfaces_loopback(cfg: PostfixConfig, svc: MasterService) -> bool:
    return svc.host is None and not _service_templated(svc) and interfaces_loopback(cfg)


def _loopback_reason(cfg: PostfixConfig) -> str:
    return f"listens on loopback only ({describe(effective(cfg, 'inet_interfaces'))})"


def _has_public_postscreen(cfg: PostfixConfig) -> bool:
    return any(
        s.command == "postscreen"
        and s.type == "inet"
        and not s.is_loopback_only
        and not _on_interfaces_loopback(cfg, s)
        for s in cfg.services
    )


def classify(cfg: PostfixConfig, svc: MasterService) -> Listener:
    """Decide what traffic an smtpd service takes (see the module docstring)."""
    if svc.type == "inet" and svc.is_loopback_only:
        return Listener(svc, Role.INTERNAL, f"bound to loopback ({svc.host})")
    if svc.type == "inet" and _on_interfaces_loopback(cfg, svc):
        return Listener(svc, Role.INTERNAL, _loopback_reason(cfg))
    if svc.type == "pass":
        if not _has_public_postscreen(cfg):
            return Listener(svc, Role.INTERNAL, "pass service without a public postscreen in front")
    elif svc.type != "inet":
        return Listener(svc, Role.INTERNAL, f"{svc.type} socket, not reachable over the network")
    closed = _closure(cfg, svc)
    if closed is not None:
        lname, permits = closed
        if permits & _SASL_PERMITS:
            return Listener(svc, Role.SUBMISSION, f"{lname} admits only authenticated clients")
        return Listener(svc, Role.INTERNAL, f"{lname} admits only $mynetworks clients")
    if svc.type == "pass":
        return Listener(svc, Role.MX, "receives the connections the public postscreen passes on")
    where_ = "an address given by a template" if _service_templated(svc) else "all interfaces"
    if svc.host and not _service_templated(svc):
        where_ = svc.host
    return Listener(svc, Role.MX, f"inet smtpd on {where_} open to anonymous clients")


def smtpd_listeners(cfg: PostfixConfig) -> list[Listener]:
    """Every smtpd listener with its role; a config without master.cf gets the stock ``smtp inet``."""
    stock = (Role.INTERNAL, _loopback_reason(cfg)) if interfaces_loopback(cfg) else (Role.MX, "uses main.cf")
    if not cfg.services and cfg.master_cf is None:
        return [Listener(None, stock[0], f"no master.cf: the stock smtp inet service {stock[1]}")]
    found = [classify(cfg, s) for s in cfg.services if s.is_smtpd]
    if not any(s.command in ("qmgr", "cleanup") for s in cfg.services) and not any(
        s.name == "smtp" and s.type == "inet" for s in cfg.services
    ):
        # Postfix cannot run without qmgr and cleanup: this master.cf is a fragment that an installer
        # appends to the stock file, whose "smtp inet smtpd" entry uses main.cf.
        found.insert(
            0, Listener(None, stock[0], f"master.cf fragment: the stock smtp inet service {stock[1]}")
        )
    return found


@dataclass(frozen=True)
class Scope:
    """Where a set of parameters is judged: main.cf (for listeners without overrides) or one listener."""

    target: str
    service: MasterService | None
    role: Role
    reason: str
    users: tuple[str, ...] = ()  # listeners that use the main.cf value (for the main.cf scope)


def scopes(cfg: PostfixConfig, params: Iterable[str]) -> Iterator[Scope]:
    """Yield the main.cf scope (if some MX listener uses main.cf values) and each overriding listener.

    The main.cf scope is judged as MX when at least one MX listener inherits any of ``params``
    from main.cf; a listener that overrides any of ``params`` is judged on its own.
    """
    names = tuple(params)
    listeners = smtpd_listeners(cfg)
    inheriting = [
        lst
        for lst in listeners
        if lst.role is Role.MX and (lst.service is None or not all(n in lst.service.overrides for n in names))
    ]
    if inheriting:
        labels = tuple(lst.label for lst in inheriting)
        yield Scope(cfg.target, None, Role.MX, "used by " + ", ".join(labels), labels)
    elif not listeners or all(lst.role is not Role.MX for lst in listeners):
        yield Scope(cfg.target, None, Role.INTERNAL, "no smtpd listener takes anonymous Internet mail")
    for lst in listeners:
        svc = lst.service
        if svc is not None and any(n in svc.overrides for n in names):
            yield Scope(service_target(cfg, svc), svc, lst.role, lst.reason)


def level_tuple(text: str) -> tuple[int, ...] | None:
    """``3.6`` → (3, 6); None when not a compatibility level."""
    m = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*", text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def table_specs(value: str) -> list[str]:
    """The ``type:name`` lookup tables named in a parameter value."""
    return [t for t in split_list(value) if re.match(r"^[a-z][a-z0-9_]*:", t) and not t.startswith("$")]


def internet_domains(value: str) -> tuple[list[str], list[str], list[str]]:
    """Split a mydestination-style list into (Internet-facing names or tables, local-only, templated)."""
    facing: list[str] = []
    local: list[str] = []
    templated: list[str] = []
    for item in split_list(value):
        low = item.lower().rstrip(".")
        if low in LOCAL_ONLY_DOMAINS or low.startswith("localhost."):
            local.append(item)
        elif has_template(item) or item.startswith("$"):
            templated.append(item)
        else:
            facing.append(item)
    return facing, local, templated


def _pick_jinja(m: re.Match[str]) -> str:
    negated = re.match(r"\s*not\b", m.group(1)) is not None
    return m.group(2) if negated else (m.group(3) or "")


def _pick_tt(m: re.Match[str]) -> str:
    negated = m.group(1) == "UNLESS" or m.group(2).strip().startswith("!")
    return m.group(3) if negated else (m.group(4) or "")


def _render_conditionals(text: str) -> str:
    out = _COMMENT_RE.sub("", text)
    out = _JINJA_IF_RE.sub(_pick_jinja, out)
    return _TT_IF_RE.sub(_pick_tt, out)


def default_rendering(text: str) -> str | None:
    """How a template renders with every optional variable unset (conditions false), or None.

    Config generators (Mailu, Proxmox, ...) ship a default by putting options in ``if`` blocks; the
    rendering with all options off is the configuration a default install gets. Values that still
    hold a token after the conditionals are removed (``{{ DOMAIN }}``) have no such rendering.
    """
    out = _render_conditionals(text)
    return None if has_template(out) else out


def restriction_rendering(text: str) -> tuple[str | None, bool]:
    """Like :func:`default_rendering` for a restriction list, tolerating tokens in table arguments.

    ``check_policy_service inet:127.0.0.1:PH_PORT`` is still a policy check whatever the port, so
    a token inside an argument does not hide which restrictions apply. Returns (rendering or None,
    whether template conditionals were resolved).
    """
    out = _render_conditionals(text)
    changed = out != text
    if any(has_template(x.name) for x in parse_restrictions(out) if not x.is_access_lookup):
        return None, changed
    return out, changed


@dataclass
class Values:
    """Effective values of several parameters for one scope, with template handling.

    ``undecidable`` is the first parameter whose value cannot be known; ``rendered`` lists the
    parameters judged on their template's default rendering (see :func:`default_rendering`).
    """

    params: dict[str, ParamValue]
    values: dict[str, str]
    undecidable: ParamValue | None = None
    rendered: tuple[ParamValue, ...] = ()

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def note(self, cfg: PostfixConfig) -> str:
        parts = [
            f"{where(cfg, p)}: {p.name} judged as the template renders with its options unset "
            f"({self.values[p.name].strip()!r})"
            for p in self.rendered
        ]
        return "; ".join(parts)


def read(
    cfg: PostfixConfig, svc: MasterService | None, names: Iterable[str], presence: Iterable[str] = ()
) -> Values:
    """Read ``names`` for one scope; templated values get their default rendering when they have one.

    For the ``presence`` parameters only emptiness matters: a templated value with literal text
    around its tokens (``proxy:%{db_driver}:/etc/postfix/relay.cf``) is certainly non-empty.
    """
    only_presence = set(presence)
    params: dict[str, ParamValue] = {}
    values: dict[str, str] = {}
    undecidable: ParamValue | None = None
    rendered: list[ParamValue] = []
    for n in names:
        p = effective(cfg, n, svc)
        params[n] = p
        if not is_templated(p):
            values[n] = p.value
            continue
        text = p.value if has_template(p.value) else p.raw
        if n in only_presence and strip_templates(text).strip():
            values[n] = strip_templates(text)
            continue
        if n.endswith("_restrictions") or n == "smtpd_restriction_classes":
            lst, changed = restriction_rendering(text)
            if lst is not None:
                values[n] = lst
                if changed:
                    rendered.append(p)
                continue
        dflt = default_rendering(text)
        if dflt is None:
            values[n] = p.value
            undecidable = undecidable or p
        else:
            values[n] = dflt
            rendered.append(p)
    return Values(params, values, undecidable, tuple(rendered))


def conclude(
    r: Rule,
    cfg: PostfixConfig,
    sc: Scope,
    vals: Values,
    *,
    bad: bool,
    fail_msg: str,
    pass_msg: str,
    ev: Sequence[Evidence],
    remediation: str | Remediation | None = None,
    severity: Severity | None = None,
    extra_note: str = "",
) -> Finding:
    """Turn one scope's verdict into a finding, honouring templates and the listener's role.

    A bad setting on a listener that takes no anonymous Internet mail (re-injection, submission)
    is correct there and reported as ``pass`` with the reason, never as ``fail``.
    """
    if sc.service is not None and sc.service.location is not None:
        svc = sc.service
        ev = [*ev, Evidence(f"master.cf service {service_label(svc)} ({svc.command})", svc.location)]
    if vals.undecidable is not None and sc.role is not Role.MX:
        return r.passed(
            sc.target,
            f"{vals.undecidable.name} is templated, but {sc.target} takes no anonymous Internet mail "
            f"({sc.reason})",
            ev,
            note=template_note(cfg, vals.undecidable),
        )
    if vals.undecidable is not None:
        return r.inconclusive(
            sc.target,
            f"cannot judge: {vals.undecidable.name} depends on a template placeholder",
            ev,
            note=template_note(cfg, vals.undecidable),
        )
    note = "; ".join(n for n in (vals.note(cfg), extra_note) if n)
    if bad and sc.role is Role.MX:
        return r.fail(sc.target, fail_msg, ev, remediation=remediation, severity=severity, note=note)
    if bad:
        what = "this listener" if sc.service is not None else "main.cf"
        return r.passed(
            sc.target,
            f"{fail_msg}; but {what} takes no anonymous Internet mail ({sc.reason}), where this is correct",
            ev,
            note=note,
        )
    if vals.rendered:
        return r.inconclusive(
            sc.target,
            f"{pass_msg} in the template's default rendering only; other renderings untested",
            ev,
            note=note,
        )
    if cfg.master_cf is None and r.id in MASTER_SENSITIVE:
        return r.inconclusive(sc.target, f"{pass_msg} in main.cf; {NO_MASTER_CF}", ev, note=note)
    return r.passed(sc.target, pass_msg, ev)


# Settings that are classically put on one listener with -o (content_filter after a filter,
# receive_override_options on the re-injection port): without master.cf a pass would be a guess.
MASTER_SENSITIVE = frozenset({"PF-FILTER-001", "PF-RCPT-008"})
NO_MASTER_CF = "no master.cf was given, so per-listener -o overrides are unknown"


# --- fixes: commands computed from the observed configuration ------------------------------------
#
# A fix edits the site's own configuration in place: it names the linted directory (``postconf -c
# DIR``), inserts a missing restriction into the site's own list keeping every other element,
# changes a listener's ``-o`` override where the problem is in master.cf, and uses the map type the
# site already uses. Lines are shell-quoted; a line that needs a value from the admin says so.

LIVE_DIRECTORY = "/etc/postfix"
INDEXED_TYPES = ("hash", "btree", "lmdb", "cdb", "dbm", "sdbm")
GATES = ("reject_unauth_destination", "defer_unauth_destination")
# Permits that may stay in front of reject_unauth_destination (they do not open the relay).
RELAY_SAFE_PERMITS = TRUSTED_PERMITS | {"permit_auth_destination", "permit_mx_backup"}
_REF_ONLY = re.compile(r"\$(?:\{(\w+)\}|\((\w+)\)|(\w+))")


def config_dir(cfg: PostfixConfig) -> str:
    """The directory a fix names with ``postconf -c``.

    "" only for the live ``/etc/postfix`` read through the installed ``postconf``: there a plain
    ``postconf`` edits the right files. A copy (or a file-parser read) must be named, or the
    pasted command edits the machine's own configuration instead.
    """
    if cfg.source == "postconf" and os.path.normpath(cfg.target) == LIVE_DIRECTORY:
        return ""
    return cfg.target


def map_type(cfg: PostfixConfig) -> str:
    """The indexed map type for a new table: the type the site's own tables use most, else the
    site's ``default_database_type``, else ``hash`` (Postfix's compiled-in default)."""
    seen: list[str] = [t.type for t in cfg.tables if t.type in INDEXED_TYPES]
    for p in cfg.params.values():
        if p.explicit and not is_templated(p):
            for spec in table_specs(p.value):
                typ = spec.removeprefix("proxy:").split(":", 1)[0]
                if typ in INDEXED_TYPES:
                    seen.append(typ)
    if seen:
        counts = {t: seen.count(t) for t in seen}
        return max(counts, key=lambda t: (counts[t], -seen.index(t)))
    dflt = cfg.value("default_database_type").strip()
    return dflt if dflt in INDEXED_TYPES else "hash"


def restriction_groups(text: str) -> list[list[str]]:
    """A restriction list as written, one group per restriction (``warn_if_reject`` and table or
    policy arguments stay with their restriction), tokens unchanged."""
    tokens = split_list(text)
    out: list[list[str]] = []
    i = 0
    while i < len(tokens):
        group = [tokens[i]]
        if tokens[i].lower() == "warn_if_reject" and i + 1 < len(tokens):
            i += 1
            group.append(tokens[i])
        if _takes_arg(tokens[i].lower()) and i + 1 < len(tokens):
            i += 1
            group.append(tokens[i])
        out.append(group)
        i += 1
    return out


def group_name(group: Sequence[str]) -> str:
    words = [w.lower() for w in group]
    return words[1] if words[0] == "warn_if_reject" and len(words) > 1 else words[0]


def _opens(group: Sequence[str], skip: frozenset[str]) -> bool:
    """Could this element end the walk for an anonymous client before an inserted restriction?

    Lookups, policy services, restriction classes, ``$name`` lists and permits other than ``skip``
    can answer OK/permit; ``reject``/``defer`` end the list. Only ``reject_*``/``defer_*`` checks
    and the ``skip`` permits let the walk go on for sure.
    """
    name = group_name(group)
    if group[0].lower() == "warn_if_reject" or name in skip:
        return False
    return not (name.startswith(("reject_", "defer_")) or name == "warn_if_reject")


def insert_at(groups: list[list[str]], skip: frozenset[str], after_gate: bool) -> int:
    """Where a new restriction goes: before the first element that could let an anonymous client
    through, and (``after_gate``) after the list's own reject_unauth_destination, so a recipient
    check never runs for mail the relay gate refuses."""
    pos = next((i for i, g in enumerate(groups) if _opens(g, skip)), len(groups))
    if after_gate:
        gate = next((i for i, g in enumerate(groups) if group_name(g) in GATES), None)
        if gate is not None and gate >= pos:
            pos = gate + 1
    return pos


@dataclass(frozen=True)
class ListSource:
    """Where one scope's restriction list is written, and its elements as written there."""

    service: MasterService | None  # the listener whose -o holds (or will hold) it; None = main.cf
    name: str  # the parameter to edit (a ``$name`` list it points to, e.g. bsa_greylist_restrictions)
    groups: list[list[str]]
    param: ParamValue


def list_source(cfg: PostfixConfig, svc: MasterService | None, lname: str) -> ListSource:
    """The restriction list ``lname`` as the scope ``svc`` uses it, and where to edit it.

    A listener that inherits main.cf gets its own ``-o`` copy (the change stays on that listener);
    a value that is only ``$other`` is edited in ``other``; defaults and values with list-level
    ``$name`` elements are written out expanded (every element kept).
    """
    p = effective(cfg, lname, svc)
    owner = svc
    name = lname
    for _ in range(4):
        m = _REF_ONLY.fullmatch(p.raw.strip()) if p.explicit else None
        ref = next((g for g in m.groups() if g), "") if m else ""
        target = cfg.params.get(ref)
        if target is None or not target.explicit:
            break
        owner, name, p = None, ref, target
    text = p.raw if p.explicit else p.value
    if any(g[0].startswith("$") for g in restriction_groups(text)):
        text = p.value
    return ListSource(owner, name, restriction_groups(text), p)


def _without(text: str, placeholders: Sequence[str]) -> str:
    for ph in placeholders:
        text = text.replace(ph, "")
    return text


class Fixes:
    """The commands of one finding's fix, built against one configuration."""

    def __init__(self, cfg: PostfixConfig) -> None:
        self.cfg = cfg
        self.commands: list[FixCommand] = []
        self.notes: list[str] = []
        self.placeholders: list[str] = []  # every placeholder a line of this fix may hold

    def _postconf(self, args: Sequence[str], changes: str, placeholders: Sequence[str] = ()) -> None:
        d = config_dir(self.cfg)
        argv = ["postconf", *(("-c", d) if d else ()), *args]
        self.command(argv, changes, placeholders)

    def postmap(self, spec: str, changes: str, placeholders: Sequence[str] = ()) -> None:
        """Build an indexed table; postmap reads the linted directory's main.cf too."""
        if self.cfg.templates:  # postmap cannot read an unrendered main.cf
            self.notes.append(f"Build {changes} where the template is rendered: postmap {shlex.quote(spec)}.")
            self.placeholders.extend(placeholders)
            return
        d = config_dir(self.cfg)
        self.command(["postmap", *(("-c", d) if d else ()), spec], changes, placeholders)

    def command(self, argv: Sequence[str], changes: str, placeholders: Sequence[str] = ()) -> None:
        self.placeholders.extend(placeholders)
        line = shlex.join(argv)
        placeholders = [p for p in self.placeholders if p in line]
        self.commands.append(
            FixCommand(
                line=line,
                changes=changes,
                safe=not placeholders,
                placeholders=tuple(dict.fromkeys(placeholders)),
                directory=self.cfg.target,
            )
        )

    def _templated(self, svc: MasterService | None, name: str, what: str) -> bool:
        p = self.cfg.param(name, svc) if svc is None or name in svc.overrides else None
        # only a line written in a file can be a template line; a default is set afresh
        if p is not None and (p.explicit or p.location is not None) and is_templated(p):
            self.notes.append(f"{where(self.cfg, p)} is a template line: {what} in the template's source")
            return True
        return False

    def own(self, svc: MasterService | None, name: str) -> MasterService | None:
        """The scope that holds ``name``: the listener when it overrides it, else main.cf (None)."""
        return svc if svc is not None and name in svc.overrides else None

    def set(self, svc: MasterService | None, name: str, value: str, placeholders: Sequence[str] = ()) -> None:
        """Set ``name`` in main.cf (svc None) or as the listener's ``-o`` override."""
        if self._templated(svc, name, f"set {name} = {value}"):
            return
        if svc is None:
            self._postconf(["-e", f"{name} = {value}"], f"main.cf {name}", placeholders)
            return
        if has_template(svc.name) or has_template(svc.type):
            self.notes.append(
                f"{svc.location or 'master.cf'}: the service name is a template: give it the line  "
                f"-o {name}={value}  in the template's source"
            )
            return
        marks = {f"\x00{i}\x00": ph for i, ph in enumerate(placeholders)}
        for mark, ph in marks.items():
            value = value.replace(ph, mark)
        if any(c.isspace() for c in value):
            value = ",".join(split_list(value))  # postconf -P refuses whitespace; lists take commas
        for mark, ph in marks.items():
            value = value.replace(mark, ph)
        if any(c.isspace() for c in _without(value, placeholders)):
            self.notes.append(
                f"edit master.cf by hand: give {service_label(svc)} the line  -o {{ {name} = {value} }}"
            )
            return
        key = f"{service_label(svc)}/{name}"
        self._postconf(["-P", f"{key}={value}"], f"master.cf {service_label(svc)} -o {name}", placeholders)

    def reset(self, svc: MasterService | None, name: str) -> None:
        """Remove ``name`` from main.cf (its default applies) or the listener's ``-o`` override."""
        if self._templated(svc, name, f"remove {name}"):
            return
        if svc is not None and (has_template(svc.name) or has_template(svc.type)):
            self.notes.append(
                f"{svc.location or 'master.cf'}: the service name is a template: remove its -o {name} "
                "in the template's source"
            )
            return
        if svc is None:
            self._postconf(["-X", name], f"main.cf {name}")
        else:
            label = service_label(svc)
            self._postconf(["-PX", f"{label}/{name}"], f"master.cf {label} -o {name}")

    def _templated_list(self, src: ListSource, what: str) -> bool:
        if src.param.explicit and is_templated(src.param):
            self.notes.append(
                f"{where(self.cfg, src.param)} is a template line: {what} in the template's source"
            )
            return True
        return False

    def replace(
        self,
        svc: MasterService | None,
        lname: str,
        old: str,
        new: Sequence[Sequence[str]],
        placeholders: Sequence[str] = (),
    ) -> None:
        """Replace every ``old`` restriction of the scope's ``lname`` list by ``new``, in place."""
        self.placeholders.extend(placeholders)
        src = list_source(self.cfg, svc, lname)
        if self._templated_list(src, f"replace {old} in {src.name}"):
            return
        groups: list[Sequence[str]] = []
        for g in src.groups:
            groups.extend(new if group_name(g) == old else [g])
        self.write_list(src, groups)

    def write_list(self, src: ListSource, groups: Sequence[Sequence[str]]) -> None:
        value = ", ".join(" ".join(g) for g in groups)
        self.set(src.service, src.name, value)

    def insert(
        self,
        cfg_svc: MasterService | None,
        lname: str,
        new: Sequence[str],
        *,
        skip: frozenset[str] = TRUSTED_PERMITS,
        after_gate: bool = True,
        placeholders: Sequence[str] = (),
    ) -> bool:
        """Insert the restriction ``new`` into the scope's own ``lname`` list; False if already there."""
        self.placeholders.extend(placeholders)
        src = list_source(self.cfg, cfg_svc, lname)
        if self._templated_list(src, f"add {new[0]} to {src.name}"):
            return True
        groups = [list(g) for g in src.groups]
        if any(group_name(g) == new[0] and g[0].lower() != "warn_if_reject" for g in groups):
            return False
        if not groups and lname == "smtpd_recipient_restrictions":
            groups = self._trusted_prefix(cfg_svc)
        groups.insert(insert_at(groups, skip, after_gate), list(new))
        self.write_list(src, groups)
        return True

    def _trusted_prefix(self, svc: MasterService | None) -> list[list[str]]:
        """What an empty recipient list gets in front of a new check: the scope's trusted permits
        (as its relay list has them) and a relay gate when that list has none, so mail from trusted
        clients and mail to foreign domains is not checked."""
        relay = restriction_groups(effective(self.cfg, "smtpd_relay_restrictions", svc).value)
        permits = [g for g in relay if group_name(g) in TRUSTED_PERMITS]
        out = permits or [["permit_mynetworks"], ["permit_sasl_authenticated"]]
        if not any(group_name(g) in GATES for g in relay):
            out.append(["reject_unauth_destination"])
        return out

    def place_gate(self, svc: MasterService | None, lname: str) -> None:
        """Put the relay gate of ``lname`` before anything that could admit an anonymous client."""
        src = list_source(self.cfg, svc, lname)
        if self._templated_list(src, f"put reject_unauth_destination early in {src.name}"):
            return
        groups = [list(g) for g in src.groups]
        gate = next(
            (g for g in groups if group_name(g) in GATES and len(g) == 1), ["reject_unauth_destination"]
        )
        groups = [g for g in groups if g is not gate]
        if not any(group_name(g) in TRUSTED_PERMITS for g in groups):
            groups.insert(0, ["permit_mynetworks"])  # the site's own clients keep relaying
            sasl = effective(self.cfg, "smtpd_sasl_auth_enable", svc).value.strip().lower()
            if sasl == "yes":
                groups.insert(1, ["permit_sasl_authenticated"])
        groups.insert(insert_at(groups, RELAY_SAFE_PERMITS, after_gate=False), gate)
        self.write_list(src, groups)

    def remediation(self, r: Rule, text: str = "") -> Remediation:
        """The fix: ``text`` (else the rule's generic fix), notes, and the commands."""
        full = " ".join(t for t in (text or r.remediation, *self.notes) if t)
        return Remediation(text=full, commands=tuple(self.commands))


def fix_param(
    r: Rule, cfg: PostfixConfig, svc: MasterService | None, name: str, value: str | None = None
) -> Remediation:
    """One setting's fix: reset (value None) or set ``name`` in its scope."""
    fx = Fixes(cfg)
    if value is None:
        fx.reset(svc, name)
    else:
        fx.set(svc, name, value)
    return fx.remediation(r)


_MYHOSTNAME_RE = re.compile(r"\$(?:\{|\()?myhostname\b")


def destination_domains(cfg: PostfixConfig, value: str, raw: str) -> tuple[list[str], list[str], list[str]]:
    """:func:`internet_domains` of a mydestination value, knowing what ``$myhostname`` stands for.

    An unset ``myhostname`` is the machine's fully-qualified name (gethostname), which on a mail
    server is a public name: it counts as Internet-facing even though the files cannot spell it.
    """
    facing, local, templ = internet_domains(value)
    if _MYHOSTNAME_RE.search(raw) and not cfg.value("myhostname").strip():
        facing.append("$myhostname (this host's own name)")
    return facing, local, templ
