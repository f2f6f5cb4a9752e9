"""site.toml: one file describes the site to audit.

Sections map to frozen dataclasses; unknown keys and wrong types are :class:`InputError`s naming the
file and line, because a typo in a safety setting (say ``alow_external_mx``) must never be ignored
silently. tomllib reports syntax errors with a line but says nothing about semantic ones, so
:class:`_Lines` finds the line of a key by scanning the text.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin, get_type_hints

from auditor.model import InputError, Severity


@dataclass(frozen=True)
class SiteSection:
    name: str = ""
    domains: tuple[str, ...] = ()
    # Domains the organisation owns that must not receive mail (DNS-NULLMX-001).
    non_mail_domains: tuple[str, ...] = ()
    # Networks the MXs trust (mynetworks): probes from inside them prove nothing.
    trusted_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class DnsSection:
    nameservers: tuple[str, ...] = ()
    timeout: float = 5.0


@dataclass(frozen=True)
class MxOverride:
    domain: str = ""
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeSection:
    enabled: bool = True
    ehlo: str = ""
    mail_from: str = ""
    controls: tuple[str, ...] = ()
    timeout: float = 30.0
    audit_timeout: float = 900.0
    session_delay: float = 1.0
    concurrency: int = 4
    retry_after: float = 0.0
    allow_external_mx: bool = False
    source_address: str = ""
    relay_test_domain: str = ""
    data_probes: bool = False
    sink_domain: str = ""
    bounce_wait: float = 120.0
    # Where bounces of DATA probes come back: our own sink listening here (the sink domain's MX
    # points at this host) ...
    sink_listen: str = ""
    sink_maildir: str = "bounces"
    # Live probe tokens are also written here, for a sink run separately (`backscatter-audit sink
    # --token-dir`) on the host the sink domain's MX points at.
    sink_token_dir: str = ""
    # ... or a Maildir / mbox your own MX delivers the sink domain's mail to ...
    bounce_mailbox: str = ""
    # ... or an IMAP folder (password from bounce_imap_password_file or BSA_IMAP_PASSWORD).
    bounce_imap_host: str = ""
    bounce_imap_port: int = 993
    bounce_imap_user: str = ""
    bounce_imap_folder: str = "INBOX"
    bounce_imap_password_file: str = ""
    # A test mailbox of yours: with DATA probes it also gets a GTUBE and an EICAR test message.
    content_test_mailbox: str = ""


@dataclass(frozen=True)
class DirectorySection:
    urls: tuple[str, ...] = ()
    bind_dn: str = ""
    password_file: str = ""
    base: str = ""
    filter: str = ""
    profile: str = "auto"
    start_tls: bool = False
    ca_file: str = ""
    verify_tls: bool = True
    domains: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    sample: int = 5


@dataclass(frozen=True)
class PostfixSection:
    config_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExchangeSection:
    exports: tuple[str, ...] = ()


@dataclass(frozen=True)
class NdrSection:
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportSection:
    output_dir: str = "reports"
    formats: tuple[str, ...] = ("html", "markdown", "json")
    fail_on: str = "low"
    suppressions: str = ""


@dataclass(frozen=True)
class SiteConfig:
    path: str = ""
    site: SiteSection = field(default_factory=SiteSection)
    dns: DnsSection = field(default_factory=DnsSection)
    mx_override: tuple[MxOverride, ...] = ()
    probe: ProbeSection = field(default_factory=ProbeSection)
    directory: DirectorySection = field(default_factory=DirectorySection)
    postfix: PostfixSection = field(default_factory=PostfixSection)
    exchange: ExchangeSection = field(default_factory=ExchangeSection)
    ndr: NdrSection = field(default_factory=NdrSection)
    report: ReportSection = field(default_factory=ReportSection)

    def resolve(self, p: str) -> str:
        """Paths in site.toml are relative to the file itself."""
        if not p or os.path.isabs(p):
            return p
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(self.path)), p))


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")


class _Lines:
    """Find the line of ``table.key`` (or of the table header) in the TOML text."""

    def __init__(self, text: str) -> None:
        self.keys: dict[tuple[str, int, str], int] = {}
        self.tables: dict[tuple[str, int], int] = {}
        table, index, counts = "", 0, dict[str, int]()
        for no, line in enumerate(text.splitlines(), 1):
            m = _HEADER.match(line)
            if m:
                table = m.group(2).replace('"', "").replace("'", "").strip()
                if m.group(1) == "[[":
                    counts[table] = counts.get(table, -1) + 1
                    index = counts[table]
                else:
                    index = 0
                self.tables.setdefault((table, index), no)
                continue
            k = _KEY.match(line)
            if k:
                self.keys.setdefault((table, index, k.group(1).strip('"')), no)

    def line(self, table: str, index: int, key: str | None) -> int | None:
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        return self.tables.get((table, index))


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is tuple:
        inner = {str: "strings", bool: "booleans", int: "integers", float: "numbers"}
        return "a list of " + inner.get(get_args(tp)[0], "values")
    return {str: "a string", bool: "true or false", int: "an integer", float: "a number"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(tp: Any, value: Any) -> Any:
    """Check one TOML value against a field type; raise TypeError with the expected type."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _convert(arg, value)
            except TypeError:
                continue
        raise TypeError(_type_name(tp))
    if origin is tuple:
        (inner,) = [a for a in get_args(tp) if a is not Ellipsis]
        if not isinstance(value, list):
            raise TypeError(_type_name(tp))
        return tuple(_convert(inner, v) for v in value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise TypeError(_type_name(tp))
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise TypeError(_type_name(tp))


def _build(cls: type, data: Any, table: str, index: int, lines: _Lines, path: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"[{table}] must be a table", path, lines.line(table, index, None))
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "path"}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{table}.{key}" if table else key
        if key not in names:
            known = ", ".join(sorted(names))
            raise InputError(f"unknown key {where!r} (known: {known})", path, lines.line(table, index, key))
        tp = hints[key]
        sub = dataclasses.is_dataclass(tp) and isinstance(tp, type)
        if sub:
            kwargs[key] = _build(tp, value, key, 0, lines, path)
            continue
        if get_origin(tp) is tuple and dataclasses.is_dataclass(get_args(tp)[0]):
            if not isinstance(value, list):
                raise InputError(
                    f"{where} must be an array of tables ([[{key}]])", path, lines.line("", 0, key)
                )
            kwargs[key] = tuple(
                _build(get_args(tp)[0], item, key, i, lines, path) for i, item in enumerate(value)
            )
            continue
        try:
            kwargs[key] = _convert(tp, value)
        except TypeError as exc:
            raise InputError(
                f"{where} must be {exc}, not {type(value).__name__} {value!r}",
                path,
                lines.line(table, index, key),
            ) from None
    return cls(**kwargs)


def parse_site_config(text: str, path: str) -> SiteConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(f"invalid TOML: {exc}", path, int(m.group(1)) if m else None) from None
    except RecursionError:
        raise InputError("invalid TOML: nested too deeply", path) from None
    lines = _Lines(text)
    cfg: SiteConfig = _build(SiteConfig, data, "", 0, lines, path)
    cfg = dataclasses.replace(cfg, path=path)
    _check_values(cfg, lines)
    return cfg


def _check_values(cfg: SiteConfig, lines: _Lines) -> None:
    """Value checks that types alone cannot express."""
    path = cfg.path
    if cfg.report.fail_on not in {s.value for s in Severity}:
        raise InputError(
            f"report.fail_on must be one of {', '.join(s.value for s in Severity)}",
            path,
            lines.line("report", 0, "fail_on"),
        )
    if cfg.directory.profile not in ("auto", "openldap", "ad"):
        raise InputError(
            "directory.profile must be auto, openldap or ad", path, lines.line("directory", 0, "profile")
        )
    if cfg.probe.data_probes and not cfg.probe.sink_domain:
        raise InputError(
            "probe.data_probes needs probe.sink_domain (the bounce sink's domain)",
            path,
            lines.line("probe", 0, "data_probes"),
        )
    pr = cfg.probe
    if pr.data_probes and not (pr.sink_listen or pr.bounce_mailbox or pr.bounce_imap_host):
        raise InputError(
            "probe.data_probes needs a way to receive bounces: probe.sink_listen, "
            "probe.bounce_mailbox or probe.bounce_imap_host",
            path,
            lines.line("probe", 0, "data_probes"),
        )
    if pr.content_test_mailbox and not pr.data_probes:
        raise InputError(
            "probe.content_test_mailbox needs probe.data_probes = true (the content tests are DATA probes)",
            path,
            lines.line("probe", 0, "content_test_mailbox"),
        )
    if pr.data_probes and pr.bounce_mailbox and not os.path.exists(cfg.resolve(pr.bounce_mailbox)):
        raise InputError(
            f"probe.bounce_mailbox {cfg.resolve(pr.bounce_mailbox)!r} does not exist",
            path,
            lines.line("probe", 0, "bounce_mailbox"),
        )
    box_domain = pr.content_test_mailbox.rpartition("@")[2].lower()
    if pr.content_test_mailbox and box_domain not in {d.lower() for d in cfg.site.domains}:
        raise InputError(
            "probe.content_test_mailbox must be an address in one of site.domains",
            path,
            lines.line("probe", 0, "content_test_mailbox"),
        )
    if pr.sink_listen and not re.fullmatch(r"\[?[0-9A-Fa-f:.]+\]?:\d+", pr.sink_listen):
        raise InputError("probe.sink_listen must be ADDR:PORT", path, lines.line("probe", 0, "sink_listen"))
    for key, value in (("concurrency", cfg.probe.concurrency), ("timeout", cfg.probe.timeout)):
        if value <= 0:
            raise InputError(f"probe.{key} must be positive", path, lines.line("probe", 0, key))
    if cfg.directory.password_file:
        pw = cfg.resolve(cfg.directory.password_file)
        if not os.path.isfile(pw):
            raise InputError(
                f"directory.password_file {pw!r} does not exist",
                path,
                lines.line("directory", 0, "password_file"),
            )
    for i, exp in enumerate(cfg.exchange.exports):
        p = cfg.resolve(exp)
        if not os.access(p, os.R_OK) or not os.path.isfile(p):
            raise InputError(
                f"exchange.exports[{i}] {p!r} is not a readable file",
                path,
                lines.line("exchange", 0, "exports"),
            )
    for i, d in enumerate(cfg.postfix.config_dirs):
        if not os.path.isdir(cfg.resolve(d)):
            raise InputError(
                f"postfix.config_dirs[{i}] {cfg.resolve(d)!r} is not a directory",
                path,
                lines.line("postfix", 0, "config_dirs"),
            )


def load_site_config(path: str) -> SiteConfig:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text", path, line) from None
    return parse_site_config(text, path)


SITE_TOML_TEMPLATE = """\
# Backscatter Auditor site description. Every key is optional except site.domains.
# Paths are relative to this file. Run: backscatter-audit audit --config site.toml

[site]
name = "Example Corp"
# The domains you run mail for: only these (and the MX hosts DNS gives for them) are ever probed.
domains = ["example.com"]
# Domains you own that must never receive mail: they should publish a null MX (RFC 7505).
non_mail_domains = []
# Networks your MXs trust (mynetworks). Probing from inside them proves nothing.
trusted_networks = []

[dns]
# Resolvers to ask (ADDR or ADDR:PORT). Empty: the system resolver.
nameservers = []
timeout = 5.0

# Probe these hosts instead of what DNS says (repeat the table per domain).
# [[mx_override]]
# domain = "example.com"
# hosts = ["mx1.example.com", "mx2.example.com"]

[probe]
enabled = true
# EHLO name and envelope sender of the probes: use a host and domain you control.
ehlo = ""
mail_from = ""
# Addresses known to be valid: they tell "rejects everything" from "rejects unknown".
controls = []
timeout = 30.0          # seconds per SMTP stage
audit_timeout = 900.0   # the whole audit; what is not measured by then is reported inconclusive
session_delay = 1.0     # between sessions to the same host
concurrency = 4         # hosts probed at once (always one session per host)
retry_after = 0.0       # re-probe 4xx answers after this many seconds (greylisting vs persistent 4xx)
allow_external_mx = false
source_address = ""
# An open-relay test is only ever addressed to a domain you name here as yours.
relay_test_domain = ""
# DATA probes deliver one labelled test message per MX to a random unknown recipient and wait
# for the bounce at sink_domain (whose MX must be this auditor's sink). Off unless you ask.
data_probes = false
sink_domain = ""
bounce_wait = 120.0     # seconds to wait for bounces after the last DATA probe
# Where the bounces come back (one of):
sink_listen = ""        # run the auditor's sink here, e.g. "0.0.0.0:25" (the sink domain's MX = this host)
sink_maildir = "bounces"
sink_token_dir = ""     # share live tokens with a sink run separately (backscatter-audit sink --token-dir)
bounce_mailbox = ""     # a Maildir or mbox your MX delivers the sink domain's mail to
bounce_imap_host = ""   # or an IMAP folder (password: bounce_imap_password_file or BSA_IMAP_PASSWORD)
bounce_imap_port = 993
bounce_imap_user = ""
bounce_imap_folder = "INBOX"
bounce_imap_password_file = ""
content_test_mailbox = ""  # a test mailbox of yours: also gets a GTUBE and an EICAR test (CF-PROBE-*)

[directory]
# LDAP / Active Directory holding your recipients (tried in order). Empty: skip the directory.
urls = []
bind_dn = ""
password_file = ""      # or the BSA_LDAP_PASSWORD environment variable; never put a password here
base = ""
filter = ""
profile = "auto"        # auto, openldap or ad
start_tls = false
ca_file = ""
verify_tls = true
domains = []            # accepted domains; default: site.domains
attributes = []         # extra address attributes
sample = 5              # valid addresses per domain checked live at every MX

[postfix]
# Postfix config directories (main.cf, master.cf and table sources).
config_dirs = []

[exchange]
# Exports: Collect-BackscatterAudit.ps1 JSON, Export-Clixml files or Format-List text.
exports = []

[ndr]
# Bounces you already have (files, mbox, Maildir) to analyse.
paths = []

[report]
output_dir = "reports"
formats = ["html", "markdown", "json"]
fail_on = "low"
suppressions = ""       # a suppressions TOML file
"""
