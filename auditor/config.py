"""site.toml: one file describes the site to audit.

Sections map to frozen dataclasses; unknown keys and wrong types are :class:`InputError`s naming the
file and line, because a typo in a safety setting (say ``alow_external_mx``) must never be ignored
silently. tomllib reports syntax errors with a line but says nothing about semantic ones, so
:class:`_Lines` finds the line of a key by scanning the text.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import stat
import tomllib
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin, get_type_hints

from auditor.inputfile import read_regular_file
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
    # Postfix config directories whose mynetworks the MXs trust (read for that only, not linted).
    mynetworks_from: tuple[str, ...] = ()
    subdomain_probe: bool = True  # also ask for a random subdomain of each domain
    scenarios: str = ""  # folder of probe scenario TOML files; empty: the shipped probes/
    port: int = 25  # SMTP port of the MX hosts (other than 25 for test labs only)


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
    timeout: float = 10.0  # connect and receive timeout
    follow_referrals: bool = False
    page_size: int = 500
    size_limit: int = 0  # entries; 0: the server's limit
    time_limit: int = 0  # seconds; 0: the server's limit
    # ldap_table(5) files to test besides the ldap: maps of postfix.config_dirs.
    postfix_maps: tuple[str, ...] = ()
    postmap: bool = True  # compare the maps with `postmap -q` where Postfix is installed


@dataclass(frozen=True)
class PostfixSection:
    config_dirs: tuple[str, ...] = ()
    postconf: bool = True  # read through the real postconf command where it is installed


@dataclass(frozen=True)
class ExchangeSection:
    exports: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogsSection:
    postfix: tuple[str, ...] = ()  # Postfix mail logs (plain, .gz, .xz), rotated sets in any order
    queue: tuple[str, ...] = ()  # saved `postqueue -j` output
    queue_live: tuple[str, ...] = ()  # Postfix config dirs whose queue is read with `postqueue -c DIR -j`
    mynetworks_from: tuple[str, ...] = ()  # Postfix config dirs whose mynetworks are the inside
    year: int = 0  # year of the first RFC 3164 (year-less) timestamp; 0: from each file's mtime


@dataclass(frozen=True)
class EximSection:
    paths: tuple[str, ...] = ()  # exim.conf / exim4.conf files, or Debian's /etc/exim4 directories
    use_exim: bool = True  # ask an installed exim binary for its built-in macros


@dataclass(frozen=True)
class AmavisSection:
    paths: tuple[str, ...] = ()  # amavisd.conf files or conf.d folders, in the order amavis reads them


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
    amavis: AmavisSection = field(default_factory=AmavisSection)
    exim: EximSection = field(default_factory=EximSection)
    logs: LogsSection = field(default_factory=LogsSection)
    ndr: NdrSection = field(default_factory=NdrSection)
    report: ReportSection = field(default_factory=ReportSection)

    def resolve(self, p: str) -> str:
        """Paths in site.toml are relative to the file itself (from arguments: to the working directory)."""
        if not p or os.path.isabs(p) or not self.path:
            return p
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(self.path)), p))


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_PART = r"(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')"
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")
_PARTS = re.compile(_PART)


def _unquote(part: str) -> str:
    return part[1:-1] if part[:1] in "\"'" else part


class _Lines:
    """Find the line of ``table.key`` (or of the table header) in the TOML text.

    Dotted keys (``probe.timeout = 5`` at the top, ``sub.key`` inside a table) count as keys of
    the table they name, so an error in one names its own line.
    """

    def __init__(self, text: str) -> None:
        self.keys: dict[tuple[str, int, str], int] = {}
        self.tables: dict[tuple[str, int], int] = {}
        table, index, counts = "", 0, dict[str, int]()
        for no, line in enumerate(text.splitlines(), 1):
            m = _HEADER.match(line)
            if m:
                table = ".".join(_unquote(p) for p in _PARTS.findall(m.group(2)))
                if m.group(1) == "[[":
                    counts[table] = counts.get(table, -1) + 1
                    index = counts[table]
                else:
                    index = 0
                self.tables.setdefault((table, index), no)
                continue
            k = _KEY.match(line)
            if not k:
                continue
            parts = [_unquote(p) for p in _PARTS.findall(k.group(1))]
            where = table
            for part in parts[:-1]:
                self.keys.setdefault((where, index if where == table else 0, part), no)
                where = f"{where}.{part}" if where else part
                self.tables.setdefault((where, index if where == table else 0), no)
            self.keys.setdefault((where, index if where == table else 0, parts[-1]), no)

    def line(self, table: str, index: int, key: str | None) -> int | None:
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        if key is not None and (f"{table}.{key}" if table else key, 0) in self.tables:
            return self.tables[(f"{table}.{key}" if table else key, 0)]  # a [table.key] header
        if (table, index) in self.tables:
            return self.tables[(table, index)]
        # An inline table (``probe = { timeout = 5 }``): the line of its key.
        parent, _, name = table.rpartition(".")
        return self.keys.get((parent, 0, name))


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


# Every number a user can set, site.toml and command line alike: (lowest, highest, lowest allowed).
# Finite bounds keep a typo (1e308, 10**20, port 99999) from turning into an overflow or a hang.
LIMITS: dict[tuple[str, str], tuple[float, float, bool]] = {
    ("dns", "timeout"): (0, 3600, False),
    ("probe", "timeout"): (0, 3600, False),
    ("probe", "audit_timeout"): (0, 7 * 86400, False),
    ("probe", "session_delay"): (0, 3600, True),
    ("probe", "concurrency"): (1, 1024, True),
    ("probe", "retry_after"): (0, 86400, True),
    ("probe", "bounce_wait"): (0, 86400, False),
    ("probe", "bounce_imap_port"): (1, 65535, True),
    ("probe", "port"): (1, 65535, True),
    ("directory", "sample"): (0, 1000, True),
    ("directory", "timeout"): (0, 3600, False),
    ("directory", "page_size"): (1, 100000, True),
    ("directory", "size_limit"): (0, 2**31 - 1, True),
    ("directory", "time_limit"): (0, 2**31 - 1, True),
}


def range_error(value: float, section: str, key: str) -> str:
    """Why ``value`` is out of range for ``section.key`` ('' when it is fine)."""
    lo, hi, lo_ok = LIMITS[(section, key)]
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if value > hi or value < lo or (value == lo and not lo_ok):
        low = f"at least {lo:g}" if lo_ok else f"more than {lo:g}"
        return f"must be {low} and at most {hi:g}"
    return ""


def check_listen(spec: str, what: str) -> tuple[str, int]:
    """``ADDR:PORT`` / ``[V6]:PORT`` for a listening socket → (address, port)."""
    host, sep, port = spec.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not port.isdigit() or not host:
        raise InputError(f"{what} must be ADDR:PORT, not {spec!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"{what} {spec!r}: {host!r} is not an IP address") from None
    if not 0 < int(port) < 65536:
        raise InputError(f"{what} {spec!r}: port must be 1-65535")
    return host, int(port)


def _at(path: str, line: int | None) -> Callable[[InputError], InputError]:
    """Re-home an error of a value check on the site.toml line it came from."""
    return lambda exc: InputError(exc.message, path or exc.path, line if path else exc.line)


def check_site_config(cfg: SiteConfig, lines: _Lines | None = None) -> SiteConfig:
    """Check every value before anything touches the network; return it with domains normalised.

    site.toml and the single-source commands' arguments both end here: a bad value is one
    :class:`InputError` (with file and line for site.toml), never a traceback after the probes ran.
    """
    from auditor.collect.dns import normalize_domain, normalize_host
    from auditor.collect.smtp.engine import check_address, check_smtp_token

    path = cfg.path

    def line(table: str, key: str | None, index: int = 0) -> int | None:
        return lines.line(table, index, key) if lines else None

    def fail(message: str, table: str, key: str | None, index: int = 0) -> InputError:
        return InputError(message, path or None, line(table, key, index))

    def domains(table: str, key: str, values: tuple[str, ...], what: str) -> tuple[str, ...]:
        try:
            return tuple(dict.fromkeys(normalize_domain(v, what) for v in values))
        except InputError as exc:
            raise _at(path, line(table, key))(exc) from None

    for (table, key), _limits in LIMITS.items():
        value = getattr(getattr(cfg, table), key)
        why = range_error(value, table, key)
        if why:
            raise fail(f"{table}.{key} {why}, not {value!r}", table, key)
    try:
        from auditor.collect.dns import make_resolver

        make_resolver(cfg.dns.nameservers, cfg.dns.timeout)
    except InputError as exc:
        raise _at(path, line("dns", "nameservers"))(exc) from None
    try:
        from auditor.collect.smtp.vantage import parse_networks

        parse_networks(cfg.site.trusted_networks)
    except InputError as exc:
        raise _at(path, line("site", "trusted_networks"))(exc) from None
    site = dataclasses.replace(
        cfg.site,
        domains=domains("site", "domains", cfg.site.domains, "domain"),
        non_mail_domains=domains("site", "non_mail_domains", cfg.site.non_mail_domains, "non-mail domain"),
    )
    overrides = []
    for i, o in enumerate(cfg.mx_override):
        if not o.hosts:
            # An empty list would probe nothing and still read as "every path enumerated".
            raise fail("mx_override.hosts must name at least one host", "mx_override", "hosts", i)
        try:
            o = MxOverride(
                normalize_domain(o.domain, "mx_override domain"), tuple(normalize_host(h) for h in o.hosts)
            )
        except InputError as exc:
            raise _at(path, line("mx_override", "domain", i))(exc) from None
        overrides.append(o)
    pr = cfg.probe
    probe_kw: dict[str, Any] = {}
    for key, check in (("ehlo", check_smtp_token), ("mail_from", check_address)):
        if getattr(pr, key):
            try:
                check(getattr(pr, key), f"probe.{key}")
            except InputError as exc:
                raise _at(path, line("probe", key))(exc) from None
    for c in pr.controls:
        try:
            check_address(c, "probe.controls")
        except InputError as exc:
            raise _at(path, line("probe", "controls"))(exc) from None
        if normalize_domain(c.rpartition("@")[2]) not in site.domains:
            raise fail(
                f"probe.controls {c!r}: must be an address in one of site.domains", "probe", "controls"
            )
    for key in ("relay_test_domain", "sink_domain"):
        if getattr(pr, key):
            probe_kw[key] = domains("probe", key, (getattr(pr, key),), f"probe.{key}")[0]
    if probe_kw.get("relay_test_domain") in site.domains:
        raise fail(
            "probe.relay_test_domain must be a domain this site does NOT serve (and that you own)",
            "probe",
            "relay_test_domain",
        )
    if pr.sink_listen:
        try:
            check_listen(pr.sink_listen, "probe.sink_listen")
        except InputError as exc:
            raise _at(path, line("probe", "sink_listen"))(exc) from None
    d = cfg.directory
    directory = dataclasses.replace(d, domains=domains("directory", "domains", d.domains, "directory domain"))
    cfg = dataclasses.replace(
        cfg,
        site=site,
        mx_override=tuple(overrides),
        probe=dataclasses.replace(pr, **probe_kw),
        directory=directory,
    )
    _check_values(cfg, lines or _Lines(""))
    return cfg


def parse_site_config(text: str, path: str) -> SiteConfig:
    text = text.removeprefix("\ufeff")  # Notepad writes a BOM; TOML itself has no place for one
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(f"invalid TOML: {exc}", path, int(m.group(1)) if m else None) from None
    except RecursionError:
        raise InputError("invalid TOML: nested too deeply", path) from None
    lines = _Lines(text)
    cfg: SiteConfig = _build(SiteConfig, data, "", 0, lines, path)
    return check_site_config(dataclasses.replace(cfg, path=path), lines)


def _check_values(cfg: SiteConfig, lines: _Lines) -> None:
    """Value checks that types alone cannot express."""
    path = cfg.path or None
    from auditor.render import formats

    known = formats()
    for fmt in cfg.report.formats:
        if fmt not in known:
            raise InputError(
                f"report.formats: unknown format {fmt!r} (choose from {', '.join(known)})",
                path,
                lines.line("report", 0, "formats"),
            )
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
    if pr.data_probes and pr.sink_listen:
        maildir = cfg.resolve(pr.sink_maildir)
        if os.path.exists(maildir) and not os.path.isdir(maildir):
            raise InputError(
                f"probe.sink_maildir {maildir!r} exists and is not a directory",
                path,
                lines.line("probe", 0, "sink_maildir"),
            )
    if cfg.directory.password_file:
        pw = cfg.resolve(cfg.directory.password_file)
        if not os.path.isfile(pw):
            raise InputError(
                f"directory.password_file {pw!r} does not exist",
                path,
                lines.line("directory", 0, "password_file"),
            )
    # (table, key, value): a list names the index of the bad entry, a single path does not.
    files: list[tuple[str, str, str | tuple[str, ...]]] = [
        ("exchange", "exports", cfg.exchange.exports),
        ("directory", "postfix_maps", cfg.directory.postfix_maps),
        ("directory", "ca_file", cfg.directory.ca_file),
        ("report", "suppressions", cfg.report.suppressions),
    ]
    for table, key, where, p in _paths(cfg, files):
        why = _unreadable(p, "CA file" if key == "ca_file" else "file", directory=False)
        if why:
            raise InputError(f"{where} {p!r}: {why}", path, lines.line(table, 0, key))
    dirs: list[tuple[str, str, str | tuple[str, ...]]] = [
        ("postfix", "config_dirs", cfg.postfix.config_dirs),
        ("probe", "mynetworks_from", cfg.probe.mynetworks_from),
        ("probe", "scenarios", cfg.probe.scenarios),
    ]
    for table, key, where, p in _paths(cfg, dirs):
        why = _unreadable(p, "directory", directory=True)
        if why:
            raise InputError(f"{where} {p!r}: {why}", path, lines.line(table, 0, key))
    if cfg.logs.year and not 1970 <= cfg.logs.year <= 9999:
        raise InputError(f"logs.year {cfg.logs.year} is out of range", path, lines.line("logs", 0, "year"))
    for key in ("postfix", "queue"):
        for i, p in enumerate(getattr(cfg.logs, key)):
            if p != "-" and not os.path.exists(cfg.resolve(p)):
                raise InputError(
                    f"logs.{key}[{i}] {cfg.resolve(p)!r}: no such file",
                    path,
                    lines.line("logs", 0, key),
                )
    for i, p in enumerate(cfg.exim.paths):
        if not os.path.exists(cfg.resolve(p)):
            raise InputError(
                f"exim.paths[{i}] {cfg.resolve(p)!r}: no such file or directory",
                path,
                lines.line("exim", 0, "paths"),
            )
    for i, p in enumerate(cfg.amavis.paths):
        if not os.path.exists(cfg.resolve(p)):
            raise InputError(
                f"amavis.paths[{i}] {cfg.resolve(p)!r}: no such file or directory",
                path,
                lines.line("amavis", 0, "paths"),
            )
    for i, p in enumerate(cfg.ndr.paths):
        if not os.path.exists(cfg.resolve(p)):
            raise InputError(
                f"ndr.paths[{i}] {cfg.resolve(p)!r}: no such file or directory",
                path,
                lines.line("ndr", 0, "paths"),
            )


def _unreadable(p: str, what: str, *, directory: bool) -> str:
    """Why ``p`` cannot be read as a ``what`` ('' if it can): tried, not guessed from mode bits."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return f"no such {what}"
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else str(exc)
    if directory != stat.S_ISDIR(st.st_mode) or not (directory or stat.S_ISREG(st.st_mode)):
        return f"not a {what}" if directory else f"not a regular {what}"
    try:
        if directory:
            os.listdir(p)
        else:
            os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else str(exc)
    return ""


def _paths(
    cfg: SiteConfig, specs: list[tuple[str, str, str | tuple[str, ...]]]
) -> list[tuple[str, str, str, str]]:
    """(table, key, name for the message, resolved path) of every path-valued setting given."""
    out = []
    for table, key, value in specs:
        if isinstance(value, str):
            if value:
                out.append((table, key, f"{table}.{key}", cfg.resolve(value)))
        else:
            out.extend((table, key, f"{table}.{key}[{i}]", cfg.resolve(v)) for i, v in enumerate(value))
    return out


# A site.toml is a few KiB; anything this large is not one.
SITE_TOML_CAP = 1 << 20


def load_site_config(path: str) -> SiteConfig:
    raw = read_regular_file(path, SITE_TOML_CAP, "site.toml")
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
mynetworks_from = []    # Postfix config dirs whose mynetworks your MXs trust (read, not linted)
subdomain_probe = true  # also ask for a random subdomain of each domain
scenarios = ""          # folder of probe scenario TOML files (default: the shipped probes/)

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
timeout = 10.0          # connect and receive timeout
follow_referrals = false
page_size = 500
size_limit = 0          # entries; 0: the server's limit
time_limit = 0          # seconds; 0: the server's limit
postfix_maps = []       # ldap_table(5) files to test besides the ldap: maps of postfix.config_dirs
postmap = true          # compare the maps with `postmap -q` where Postfix is installed

[postfix]
# Postfix config directories (main.cf, master.cf and table sources).
config_dirs = []
postconf = true         # read through the real postconf command where it is installed

[exchange]
# Exports: Collect-BackscatterAudit.ps1 JSON, Export-Clixml files or Format-List text.
exports = []

[amavis]
# amavisd-new configuration (amavisd.conf, or conf.d folders in the order amavis reads them);
# judged together with the Postfix config above (where amavis sits: before or after the queue).
paths = []

[exim]
# Exim configurations: exim.conf / exim4.conf, or Debian's /etc/exim4 directory.
paths = []

[logs]
# What the site already sent: Postfix mail logs (plain, .gz, .xz; rotated sets in any order) and
# queue snapshots. Clients outside site.trusted_networks (else the mynetworks of [postfix]) are
# "outside": notifications for their mail are backscatter (PF-LOG-001).
postfix = []            # e.g. ["/var/log/mail.log", "/var/log/mail.log.1", "/var/log/mail.log.2.gz"]
queue_live = []         # Postfix config dirs whose queue to read now (postqueue -c DIR -j)

[ndr]
# Bounces you already have (files, mbox, Maildir) to analyse.
paths = []

[report]
output_dir = "reports"
formats = ["html", "markdown", "json"]
fail_on = "low"
suppressions = ""       # a suppressions TOML file
"""
