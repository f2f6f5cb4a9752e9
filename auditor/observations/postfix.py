"""What the Postfix collector observes: effective parameters, master.cf services, lookup tables.

These are facts with their evidence (file and line), no judgement. The rules in
``auditor/rules/postfix.py`` read them; the collector (``parse.py`` for plain files, ``postconf.py``
for the real ``postconf`` binary) fills them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from auditor.model import Location, Observation

# Every parameter some rule reads. The collector records the effective value of each of these
# (plus every parameter set explicitly), whether or not the config sets it.
RULE_PARAMETERS: tuple[str, ...] = (
    "address_verify_sender",
    "address_verify_sender_ttl",
    "alias_maps",
    "bounce_size_limit",
    "cleanup_service_name",
    "compatibility_level",
    "content_filter",
    "default_database_type",  # the map type a fix uses for a new table when the site has none
    "header_checks",
    "body_checks",
    "mime_header_checks",
    "nested_header_checks",
    "inet_interfaces",
    "local_recipient_maps",
    "local_transport",
    "luser_relay",
    "mail_version",
    "mydestination",
    "mydomain",
    "myhostname",
    "mynetworks",
    "mynetworks_style",
    "parent_domain_matches_subdomains",
    "permit_mx_backup_networks",
    "proxy_interfaces",
    "receive_override_options",
    "relay_domains",
    "relay_recipient_maps",
    "relay_transport",
    "smtpd_client_restrictions",
    "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_milters",
    "smtpd_proxy_filter",
    "smtpd_recipient_restrictions",
    "smtpd_reject_unlisted_recipient",
    "smtpd_relay_restrictions",
    "smtpd_sender_restrictions",
    "soft_bounce",
    "transport_maps",
    "unknown_local_recipient_reject_code",
    "unknown_relay_recipient_reject_code",
    "unknown_virtual_alias_reject_code",
    "unknown_virtual_mailbox_reject_code",
    "unverified_recipient_defer_code",
    "unverified_recipient_reject_code",
    "unverified_sender_defer_code",
    "unverified_sender_reject_code",
    "virtual_alias_domains",
    "virtual_alias_maps",
    "virtual_mailbox_domains",
    "virtual_mailbox_maps",
    "virtual_transport",
    "mailbox_transport",
    "mailbox_command",
    "delay_warning_time",
    "bounce_queue_lifetime",
    "maximal_queue_lifetime",
)


@dataclass(frozen=True)
class ParamValue:
    """One parameter's value as Postfix would use it.

    ``value`` is fully expanded ($name, ${name?x}, ${name:x}); ``raw`` is what was written (or the
    default's expression). ``templated`` marks a value that holds an unresolved template token
    (``{{ x }}``, ``%{x}``, ``PH_X``): rules must not judge it as if it were real. ``unresolved``
    says why the value could not be computed at all (an expansion past the collector's bounds);
    such a value is kept raw and also marked ``templated``.
    """

    name: str
    value: str
    raw: str
    source: str  # "main.cf" | "master.cf" | "default" | "postconf"
    location: Location | None = None
    explicit: bool = False
    templated: bool = False
    unresolved: str = ""


@dataclass(frozen=True)
class MasterService:
    """One master.cf entry (``service type private unpriv chroot wakeup maxproc command args``)."""

    name: str
    type: str
    private: str
    unpriv: str
    chroot: str
    wakeup: str
    maxproc: str
    command: str
    args: tuple[str, ...] = ()
    overrides: dict[str, ParamValue] = field(default_factory=dict)
    location: Location | None = None
    templated: bool = False  # a field or argument holds an unrendered template token

    @property
    def host(self) -> str | None:
        """The listen address of an inet service (``127.0.0.1:10025`` → ``127.0.0.1``), or None."""
        if self.type != "inet" or ":" not in self.name:
            return None
        host = self.name.rsplit(":", 1)[0].strip("[]")
        return host or None

    @property
    def is_smtpd(self) -> bool:
        return self.command == "smtpd"

    @property
    def is_loopback_only(self) -> bool:
        """A listener bound to a loopback address only (a content-filter re-injection port)."""
        host = self.host
        if host is None:
            return False
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def is_public_smtpd(self) -> bool:
        """An smtpd on an inet socket that is not loopback-only: Internet clients may reach it."""
        return self.is_smtpd and self.type == "inet" and not self.is_loopback_only


MAX_CONTENTS = 5000  # entries kept per content-check / transport table
MAX_RESULT_KINDS = 1000  # distinct result keywords kept per table


@dataclass(frozen=True)
class TableEntry:
    """One key (or pattern) of a lookup table source, with its result and line."""

    key: str
    value: str
    location: Location | None = None
    note: str = ""  # why the entry could not be evaluated (in ``LookupTable.unevaluated``)


@dataclass(frozen=True)
class LookupTable:
    """A lookup table named by a recipient-validation, content-check or transport parameter.

    ``wildcard_entries`` are ``@domain`` keys; ``match_all_entries`` are regexp/pcre patterns
    (or ``static:`` maps) that match any address. ``random_lookup`` is what a lookup of a random
    unknown address returned (via ``postmap -q`` when installed, else our own evaluation), with
    None meaning "not found" and "" meaning "not tried" (content-check and transport tables are
    never looked up with addresses).

    ``contents`` holds every entry (key or pattern, its action or result in ``value``, and its
    line) of tables used by ``header_checks``, ``body_checks``, ``mime_header_checks``,
    ``nested_header_checks`` or ``transport_maps``: rules judge their actions. Recipient tables
    can hold millions of entries, so only their counts and catch-all entries are kept.
    ``contents_truncated`` says that ``contents`` stops at :data:`MAX_CONTENTS` entries.
    ``result_kinds`` holds, over the whole table, the first entry of each distinct result keyword
    (a content check's action such as ``REJECT``, a transport name such as ``autoreply``): complete
    even when ``contents`` is truncated, and small.

    ``unevaluated`` lists the regexp/pcre entries whose match against the probe addresses is
    unknown (each ``note`` says why: over the matcher's time budget, unsupported syntax, past the
    per-table bounds); ``looked_up_with`` says what gave ``random_lookup``: "postmap" (the real
    lookup, every entry evaluated by Postfix) or "parser" (our own evaluation).
    """

    spec: str  # as written, e.g. "hash:/etc/postfix/relay_recipients"
    type: str  # hash, lmdb, texthash, regexp, pcre, cidr, ldap, static, inline, proxy:…
    name: str
    used_by: tuple[str, ...] = ()  # parameter names (or "service/type/param" for -o overrides)
    resolved_path: str | None = None  # the source file read, inside the linted directory
    entries: int = 0
    wildcard_entries: tuple[TableEntry, ...] = ()
    match_all_entries: tuple[TableEntry, ...] = ()
    random_lookup: str | None = ""
    readable: bool = False
    error: str = ""
    contents: tuple[TableEntry, ...] = ()
    contents_truncated: bool = False
    result_kinds: tuple[TableEntry, ...] = ()
    unevaluated: tuple[TableEntry, ...] = ()
    looked_up_with: str = ""

    def used_for(self, parameter: str) -> bool:
        """Is this table named by ``parameter`` in main.cf or in some service's ``-o``?"""
        return any(u == parameter or u.endswith("/" + parameter) for u in self.used_by)


@dataclass(frozen=True)
class TemplateToken:
    """An unresolved template placeholder: findings that depend on it are inconclusive.

    ``parameter`` is the main.cf parameter (or ``service/type/name`` for a master.cf ``-o``) whose
    value the token belongs to, None when it belongs to none. ``skipped_text`` is set when the
    collector dropped the token's whole line because it is template syntax, not Postfix syntax
    (``[%- IF x %] reject_unverified_recipient[% END %]`` or ``%{flag}  proxy:...``, which render
    as a continuation of ``parameter``): it holds the Postfix words of that line without the
    template tokens, i.e. what the template may add to ``parameter`` when rendered.
    """

    token: str
    location: Location
    parameter: str | None = None
    skipped_text: str = ""


@dataclass(frozen=True)
class PostfixConfig(Observation):
    """The effective configuration of one Postfix instance (one config directory)."""

    kind = "postfix.config"

    source: str = "parser"  # "parser" (files only) | "postconf" (the real binary)
    main_cf: str | None = None
    master_cf: str | None = None
    mail_version: str = ""
    defaults_version: str = ""  # the Postfix version the built-in defaults come from
    params: dict[str, ParamValue] = field(default_factory=dict)
    services: tuple[MasterService, ...] = ()
    tables: tuple[LookupTable, ...] = ()
    templates: tuple[TemplateToken, ...] = ()
    notes: tuple[str, ...] = ()

    def value(self, name: str) -> str:
        """Effective main.cf value ("" when unknown)."""
        p = self.params.get(name)
        return p.value if p else ""

    def param(self, name: str, service: MasterService | None = None) -> ParamValue | None:
        """Effective value for a service: its ``-o`` override if any, else the main.cf value."""
        if service is not None and name in service.overrides:
            return service.overrides[name]
        return self.params.get(name)

    def public_smtpd_services(self) -> list[MasterService]:
        return [s for s in self.services if s.is_public_smtpd]

    def tables_for(self, parameter: str) -> list[LookupTable]:
        return [t for t in self.tables if parameter in t.used_by]


_SEPARATORS = re.compile(r"[\s,]+")


def split_list(value: str) -> list[str]:
    """Split a Postfix list value on whitespace and commas, keeping ``{ … }`` groups whole.

    Hand-written because Postfix's own grammar (``mystrtok`` with ``{}`` grouping, Postfix 3.0+)
    has no Python library.
    """
    if "{" not in value:
        return [w for w in _SEPARATORS.split(value) if w]
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in value:
        if ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        if depth == 0 and (ch.isspace() or ch == ","):
            if cur:
                out.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


@dataclass(frozen=True)
class LdapTableConfig:
    """One parsed ldap_table(5) file. ``bind_pw`` is REDACTED when set, "" when not."""

    path: str
    server_hosts: tuple[str, ...]
    server_port: int
    search_base: str
    query_filter: str
    result_attribute: tuple[str, ...]
    special_result_attribute: tuple[str, ...] = ()
    terminal_result_attribute: tuple[str, ...] = ()
    leaf_result_attribute: tuple[str, ...] = ()
    result_format: str = "%s"
    domain: tuple[str, ...] = ()
    scope: str = "sub"
    bind: str = "yes"
    bind_dn: str = ""
    bind_pw: str = ""
    start_tls: bool = False
    version: int = 2
    timeout: int = 10
    size_limit: int = 0
    recursion_limit: int = 1000
    tls_ca_cert_file: str = ""
    tls_require_cert: bool = False
    unknown: tuple[str, ...] = ()
    lines: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the parser changed or ignored (a password in a server URL)

    def location(self, param: str) -> Location:
        return Location(self.path, self.lines.get(param))


# --- observation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LdapMapCheck(Observation):
    """One sample lookup through a Postfix ``ldap:`` map: our evaluation and, if run, ``postmap -q``.

    ``sample`` is ``known`` (a valid primary address from the directory), ``alias`` (a secondary
    address), ``random`` (an unknown local part), ``catchall`` (the ``@domain`` key Postfix looks up
    last) or ``metachar`` (filter metacharacters).
    ``postmap_result``: None = not found, "" = postmap not run (see ``postmap_error``).
    """

    kind = "postfix.ldapmap"

    map_path: str = ""
    used_by: tuple[str, ...] = ()
    table: LdapTableConfig | None = None
    sample: str = ""
    address: str = ""
    queried: bool = False
    search_base: str = ""
    filter: str = ""
    result: tuple[str, ...] | None = None
    error: str = ""
    note: str = ""
    postmap_result: str | None = ""
    postmap_error: str = ""

    @property
    def found(self) -> bool:
        return self.result is not None

    @property
    def agrees(self) -> bool | None:
        """Our evaluation vs postmap (None when either could not decide)."""
        if self.error or self.postmap_error or self.postmap_result == "":
            return None
        if self.postmap_result is None:
            return self.result is None
        if self.result is None:
            return False
        return {v.strip() for v in self.postmap_result.split(",")} == set(self.result)
