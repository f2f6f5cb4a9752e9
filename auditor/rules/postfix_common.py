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

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

from auditor.collect.postfix.model import MasterService, ParamValue, PostfixConfig
from auditor.collect.postfix.tables import split_list  # one tokeniser for collector and rules
from auditor.model import Evidence, Finding, Location, Severity
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
    r"(?<!\$)\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\[%.*?%\]|%\{[^}]*\}|(?<![\w%])%[a-z][a-z_]{2,}\b|\bPH_[A-Z0-9_]+|@[A-Z][A-Z0-9_]+@",
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
        takes_arg = (name.startswith("check_") and name.endswith("_access")) or name in _ARG_TAKERS
        if takes_arg and i + 1 < len(tokens):
            arg = tokens[i + 1]
            i += 1
        out.append(Restriction(name, arg, warn))
        warn = False
        i += 1
    return out


def has_template(text: str) -> bool:
    # every template syntax holds one of these: a 60 MB domain list is skipped without a regex scan
    if not any(c in text for c in ("{", "%", "PH_", "@")):
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


def _has_public_postscreen(cfg: PostfixConfig) -> bool:
    return any(
        s.command == "postscreen" and s.type == "inet" and not s.is_loopback_only for s in cfg.services
    )


def classify(cfg: PostfixConfig, svc: MasterService) -> Listener:
    """Decide what traffic an smtpd service takes (see the module docstring)."""
    if svc.type == "inet" and svc.is_loopback_only:
        return Listener(svc, Role.INTERNAL, f"bound to loopback ({svc.host})")
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
    if not cfg.services and cfg.master_cf is None:
        return [Listener(None, Role.MX, "no master.cf: the stock smtp inet service uses main.cf")]
    found = [classify(cfg, s) for s in cfg.services if s.is_smtpd]
    if not any(s.command in ("qmgr", "cleanup") for s in cfg.services) and not any(
        s.name == "smtp" and s.type == "inet" for s in cfg.services
    ):
        # Postfix cannot run without qmgr and cleanup: this master.cf is a fragment that an installer
        # appends to the stock file, whose "smtp inet smtpd" entry uses main.cf.
        found.insert(
            0, Listener(None, Role.MX, "master.cf fragment: the stock smtp inet service uses main.cf")
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
    remediation: str | None = None,
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


def fix_param(svc: MasterService | None, name: str, value: str | None = None) -> str:
    """The exact postconf command that resets (value None) or sets a parameter in its scope."""
    if svc is None:
        return f"postconf -X {name}" if value is None else f"postconf -e '{name} = {value}'"
    key = f"{svc.name}/{svc.type}/{name}"
    return f"postconf -PX '{key}'" if value is None else f"postconf -P '{key}={value}'"


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
