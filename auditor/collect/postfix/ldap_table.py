"""Postfix ``ldap:`` tables (ldap_table(5)): parse, evaluate with ldap3, compare with ``postmap -q``.

The parser never keeps ``bind_pw``: the parsed table holds a redacted marker, and the evaluator
re-reads the secret from the file into a local variable only for the bind.

Evaluation mirrors Postfix's lookup (src/global/dict_ldap.c, db_common.c): the key is folded to
lower case; the ``domain`` list suppresses queries for other domains and for ``@domain`` keys;
``%s %u %d %[1-9]`` (and upper-case forms) expand with RFC 4515 escaping of ``*()\\`` in the filter;
a template using ``%u`` suppresses keys with an empty local part, ``%d``/``%[1-9]`` keys without
(enough) domain labels; results are ``result_attribute`` values through ``result_format``, with
``special_result_attribute`` DNs followed (bounded) and leaf/terminal attributes honoured.
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldap3 import BASE, LEVEL, NONE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from auditor.collect.ldap.connect import close_quietly, parse_url
from auditor.collect.postfix.redact import redact_userinfo
from auditor.collect.postfix.textfile import read_bounded
from auditor.model import InputError
from auditor.observations.postfix import LdapMapCheck, LdapTableConfig, PostfixConfig

REDACTED = "<redacted>"

# ldap_table(5) parameters and their defaults (Postfix 3.x).
DEFAULTS: dict[str, str] = {
    "server_host": "localhost",
    "server_port": "389",
    "search_base": "",
    "query_filter": "(mailacceptinggeneralid=%s)",
    "result_attribute": "maildrop",
    "special_result_attribute": "",
    "terminal_result_attribute": "",
    "leaf_result_attribute": "",
    "result_format": "%s",
    "domain": "",
    "scope": "sub",
    "bind": "yes",
    "bind_dn": "",
    "bind_pw": "",
    "start_tls": "no",
    "version": "2",
    "timeout": "10",
    "size_limit": "0",
    "recursion_limit": "1000",
    "expansion_limit": "0",
    "dereference": "0",
    "chase_referrals": "no",
    "tls_ca_cert_file": "",
    "tls_ca_cert_dir": "",
    "tls_cert": "",
    "tls_key": "",
    "tls_require_cert": "no",
    "tls_random_file": "",
    "tls_cipher_suite": "",
    "sasl_mechs": "",
    "sasl_realm": "",
    "sasl_authz_id": "",
    "sasl_minssf": "0",
    "debuglevel": "0",
    "cache": "no",
    "cache_expiry": "",
    "cache_size": "",
}
_YES = {"yes", "true", "1", "on"}
# Our own bounds on special_result_attribute recursion (Postfix allows up to recursion_limit).
_MAX_DEPTH = 10
_MAX_SEARCHES = 100


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.replace(",", " ").split() if p)


def _int(name: str, value: str, path: str, line: int | None) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InputError(f"{name} = {value!r} is not a number", path, line) from None


def read_settings(path: str) -> tuple[dict[str, str], dict[str, int]]:
    """``name = value`` pairs with continuation lines, like Postfix's cfg_parser (values raw)."""
    try:
        # regular files only, at most MAX_FILE_BYTES: a link to /dev/zero is refused, not read
        text = read_bounded(Path(path)).decode("utf-8", errors="replace")
    except InputError as exc:
        what = "ldap table file not found" if exc.message == "no such file" else f"ldap table: {exc.message}"
        raise InputError(what, path) from None
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    current: str | None = None
    for no, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0] in " \t":
            if current is None:
                raise InputError("continuation line without a preceding parameter", path, no)
            values[current] += " " + raw.strip()
            continue
        name, sep, value = raw.partition("=")
        name = name.strip()
        if not sep or not name or " " in name:
            raise InputError("expected 'name = value'", path, no)
        values[name] = value.strip()
        lines[name] = no
        current = name
    return values, lines


def _server_hosts(value: str, path: str, line: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """server_host URLs without ``user:password@``: Postfix binds with bind_dn/bind_pw and ignores
    a URL's userinfo, which must not be kept or printed. (hosts, notes)"""
    hosts, notes = [], []
    for h in _split_list(value):
        cleaned, found = redact_userinfo(h)
        if found:
            scheme, _, rest = cleaned.partition("://")
            cleaned = f"{scheme}://{rest.split('@', 1)[1]}"
            notes.append(
                f"{path}:{line}: server_host {cleaned} carried a user name and password in the URL: "
                "Postfix does not use them (bind_dn/bind_pw do), removed here; take them out of the file"
            )
        hosts.append(cleaned)
    return tuple(hosts), tuple(notes)


def parse_ldap_table(path: str) -> LdapTableConfig:
    """Parse an ldap_table(5) file; malformed content raises InputError naming file and line."""
    values, lines = read_settings(path)
    v = {**DEFAULTS, **values}
    server_hosts, notes = _server_hosts(v["server_host"], path, lines.get("server_host"))
    scope = v["scope"].strip().lower()
    if scope not in ("sub", "one", "base"):
        raise InputError(f"scope = {v['scope']!r}: expected sub, one or base", path, lines.get("scope"))
    table = LdapTableConfig(
        path=path,
        server_hosts=server_hosts,
        server_port=_int("server_port", v["server_port"], path, lines.get("server_port")),
        search_base=v["search_base"],
        query_filter=v["query_filter"],
        result_attribute=_split_list(v["result_attribute"]),
        special_result_attribute=_split_list(v["special_result_attribute"]),
        terminal_result_attribute=_split_list(v["terminal_result_attribute"]),
        leaf_result_attribute=_split_list(v["leaf_result_attribute"]),
        result_format=v.get("result_format") or v.get("result_filter") or "%s",
        domain=tuple(d.lower() for d in _split_list(v["domain"])),
        scope=scope,
        bind=v["bind"].strip().lower(),
        bind_dn=v["bind_dn"],
        bind_pw=REDACTED if v["bind_pw"] else "",
        start_tls=v["start_tls"].strip().lower() in _YES,
        version=_int("version", v["version"], path, lines.get("version")),
        timeout=_int("timeout", v["timeout"], path, lines.get("timeout")),
        size_limit=_int("size_limit", v["size_limit"], path, lines.get("size_limit")),
        recursion_limit=_int("recursion_limit", v["recursion_limit"], path, lines.get("recursion_limit")),
        tls_ca_cert_file=v["tls_ca_cert_file"],
        tls_require_cert=v["tls_require_cert"].strip().lower() in _YES,
        unknown=tuple(sorted(k for k in values if k not in DEFAULTS and k != "result_filter")),
        lines=lines,
        notes=notes,
    )
    _server_specs(table)  # a malformed server_host URL is an input error, named by file and line
    return table


# --- expansion --------------------------------------------------------------------------------


def _rfc2253_quote(s: str) -> str:
    # Same character set as Postfix's rfc2253_quote (search base); ldap3 has no exact equivalent.
    return "".join(f"\\{ord(c):02X}" if c in ' \t"#+,;<>\\' else c for c in s)


def _codes(template: str) -> list[str]:
    """The characters after each ``%`` of a template (``%%`` gives "%")."""
    out, i = [], 0
    while i < len(template):
        if template[i] == "%" and i + 1 < len(template):
            out.append(template[i + 1])
            i += 2
        else:
            i += 1
    return out


def _needs(template: str) -> tuple[bool, bool, int]:
    """(uses the key's local part, uses its domain, highest %[1-9]) of a query template."""
    codes = _codes(template)
    digits = [int(c) for c in codes if c.isdigit() and c != "0"]
    return (
        any(c in "uU" for c in codes),
        any(c in "dD" for c in codes) or bool(digits),
        max(digits, default=0),
    )


def expand_template(template: str, key: str, quote: str = "filter") -> str | None:
    """Expand a query/search-base template for ``key``; None when Postfix would skip the query."""
    escape = escape_filter_chars if quote == "filter" else (_rfc2253_quote if quote == "dn" else str)
    user_needed, domain_needed, nparts = _needs(template)
    at = key.rfind("@")
    local, domain = (key[:at], key[at + 1 :]) if at >= 0 else (key, None)
    if domain_needed and not domain:
        return None
    if user_needed and at == 0:
        return None
    labels = domain.split(".") if domain else []
    if nparts and (len(labels) < nparts or any(not labels[-i] for i in range(1, nparts + 1))):
        return None
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(template):
            raise ValueError(f"invalid template {template!r}: trailing %")
        c = template[i + 1]
        i += 2
        if c == "%":
            out.append("%")
        elif c in "sS":
            out.append(escape(key))
        elif c in "uU":
            out.append(escape(local))
        elif c in "dD":
            out.append(escape(domain or ""))
        elif c.isdigit() and c != "0":
            out.append(escape(labels[-int(c)]))
        else:
            raise ValueError(f"invalid template {template!r}: %{c}")
    return "".join(out)


def format_result(fmt: str, value: str, key: str) -> str | None:
    """``result_format``: lower case = parts of the value, upper case = parts of the key."""
    vat, kat = value.rfind("@"), key.rfind("@")
    vlocal, vdom = (value[:vat], value[vat + 1 :]) if vat >= 0 else (value, "")
    klocal, kdom = (key[:kat], key[kat + 1 :]) if kat >= 0 else (key, "")
    codes = _codes(fmt)
    if not value or ("d" in codes and not vdom) or ("u" in codes and vat == 0):
        return None
    parts = {"s": value, "u": vlocal, "d": vdom, "S": key, "U": klocal, "D": kdom, "%": "%"}
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in parts:
            out.append(parts[fmt[i + 1]])
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def domain_allows(table: LdapTableConfig, key: str) -> bool | None:
    """db_common_check_domain: False = no query; None = the list uses a lookup table (unknown)."""
    if not table.domain:
        return True
    at = key.rfind("@")
    if at <= 0:
        return False  # no domain, or an "@domain" key
    if any(":" in d for d in table.domain):
        return None
    return key[at + 1 :] in table.domain


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookupResult:
    """What one lookup gave. ``values`` None = not found; ``error`` set = the lookup failed."""

    queried: bool
    search_base: str = ""
    filter: str = ""
    values: tuple[str, ...] | None = None
    error: str = ""
    note: str = ""


def read_bind_pw(path: str) -> str:
    """The raw ``bind_pw`` for the bind only: callers must never store or print it."""
    values, _ = read_settings(path)
    return values.get("bind_pw", "")


def _server_specs(table: LdapTableConfig) -> list[tuple[str, str, int]]:
    out = []
    for h in table.server_hosts:
        if "://" in h:
            try:
                u = parse_url(h)
            except InputError as exc:
                raise InputError(
                    f"server_host: {exc.message}", table.path, table.lines.get("server_host")
                ) from None
            out.append((u.scheme, u.host, u.port))
        else:
            host, _, port = h.rpartition(":") if h.count(":") == 1 else (h, "", "")
            out.append(("ldap", host or h, int(port) if port.isdigit() else table.server_port))
    return out


def _connect(table: LdapTableConfig, password: str) -> tuple[Connection | None, str]:
    last = "no server_host"
    for scheme, host, port in _server_specs(table):
        tls = None
        if scheme == "ldaps" or table.start_tls:
            # Mirror the map's own policy (tls_require_cert, default no) so we see what Postfix sees.
            tls = Tls(
                validate=ssl.CERT_REQUIRED if table.tls_require_cert else ssl.CERT_NONE,
                ca_certs_file=table.tls_ca_cert_file or None,
                sni=host,
            )
        if scheme == "ldapi":
            server = Server(f"ldapi://{host}", get_info=NONE, connect_timeout=table.timeout)
        else:
            server = Server(
                host,
                port=port,
                use_ssl=scheme == "ldaps",
                tls=tls,
                get_info=NONE,
                connect_timeout=table.timeout,
            )
        binding = table.bind in _YES and bool(table.bind_dn)
        conn = Connection(
            server,
            user=table.bind_dn if binding else None,
            password=password if binding else None,
            client_strategy=SYNC,
            read_only=True,
            raise_exceptions=False,
            auto_referrals=False,
            receive_timeout=max(1, table.timeout),
        )
        try:
            conn.open()
            if table.start_tls and scheme == "ldap" and not conn.start_tls():
                raise OSError("StartTLS refused")
            if not conn.bind():
                desc = (conn.result or {}).get("description", "error")
                close_quietly(conn)
                return None, f"bind rejected: {desc}"
            return conn, ""
        except (LDAPException, OSError) as exc:
            last = f"{host}:{port}: {type(exc).__name__}: {str(exc)[:160]}"
            close_quietly(conn)
    return None, f"cannot reach any server_host ({last})"


def _decode(v: bytes | str) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _search(
    conn: Connection, base: str, scope: object, flt: str, attrs: list[str], size: int
) -> list[dict[str, Any]]:
    ok = conn.search(base, flt, search_scope=scope, attributes=attrs, size_limit=size)
    code = int((conn.result or {}).get("result", 80))
    if not ok and code not in (0, 32):  # 32 noSuchObject = not found
        raise LDAPException(f"search failed: {(conn.result or {}).get('description', code)}")
    return [r for r in conn.response or () if r.get("type") == "searchResEntry"]


def lookup(table: LdapTableConfig, address: str, conn: Connection | None) -> LookupResult:
    """One Postfix-equivalent lookup of ``address`` (``conn`` None: only decide whether to query)."""
    key = address.lower()
    allowed = domain_allows(table, key)
    if allowed is False:
        return LookupResult(False, note="no query: key not in the map's domain list")
    try:
        base = expand_template(table.search_base, key, "dn")
        flt = expand_template(table.query_filter, key, "filter")
    except ValueError as exc:
        return LookupResult(False, error=str(exc))
    if base is None or flt is None:
        return LookupResult(False, note="no query: the key lacks the parts the templates need")
    note = "domain list uses a lookup table: assumed to match" if allowed is None else ""
    if not flt.startswith("("):
        flt = f"({flt})"
    if conn is None:
        return LookupResult(True, base, flt, None, error="not connected", note=note)
    scope = {"sub": SUBTREE, "one": LEVEL, "base": BASE}[table.scope]
    attrs = [*table.terminal_result_attribute, *table.leaf_result_attribute, *table.result_attribute]
    special = list(table.special_result_attribute)
    values: list[str] = []
    searches = 0
    try:
        pending: list[tuple[str, object, str, int]] = [(base, scope, flt, 1)]
        while pending:
            b, sc, f, depth = pending.pop(0)
            searches += 1
            if searches > _MAX_SEARCHES:
                return LookupResult(True, base, flt, None, error="special_result_attribute fan-out too large")
            for entry in _search(conn, b, sc, f, attrs + special, table.size_limit):
                raw = {
                    k.lower(): [_decode(x) for x in vs] for k, vs in entry.get("raw_attributes", {}).items()
                }
                terminal = any(raw.get(a.lower()) for a in table.terminal_result_attribute)
                is_leaf = not any(raw.get(a.lower()) for a in special)
                if terminal:
                    wanted = table.terminal_result_attribute
                elif is_leaf:
                    wanted = (*table.leaf_result_attribute, *table.result_attribute)
                else:
                    wanted = table.result_attribute
                for a in wanted:
                    for val in raw.get(a.lower(), ()):
                        out = format_result(table.result_format, val, key)
                        if out is not None:
                            values.append(out)
                if terminal or depth >= min(table.recursion_limit, _MAX_DEPTH):
                    continue
                for a in special:
                    for dn in raw.get(a.lower(), ()):
                        if dn.lower().startswith("ldap"):
                            note = "LDAP URL values of special_result_attribute are not followed"
                            continue
                        pending.append((dn, BASE, "(objectClass=*)", depth + 1))
    except LDAPException as exc:
        return LookupResult(True, base, flt, None, error=str(exc)[:200], note=note)
    return LookupResult(True, base, flt, tuple(values) if values else None, note=note)


# --- postmap -----------------------------------------------------------------------------------


def postmap_query(path: str, address: str, *, timeout: float = 20.0) -> tuple[str | None, str]:
    """``postmap -q ADDR ldap:FILE`` → (value or None when not found, error). ("", "…") = not run."""
    postmap = shutil.which("postmap") or (
        "/usr/sbin/postmap" if os.access("/usr/sbin/postmap", os.X_OK) else None
    )
    if postmap is None:
        return "", "postmap is not installed"
    # postmap needs a main.cf; an empty one in a private directory keeps the host's config out.
    with tempfile.TemporaryDirectory(prefix="bsa-postmap-") as cfgdir:
        open(os.path.join(cfgdir, "main.cf"), "w").close()
        try:
            proc = subprocess.run(
                [postmap, "-c", cfgdir, "-q", address, f"ldap:{os.path.abspath(path)}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "", f"postmap timed out after {timeout:.0f} s"
        except OSError as exc:
            return "", f"postmap could not run: {exc}"
    if proc.returncode == 0:
        return proc.stdout.strip(), ""
    fatal = [ln for ln in proc.stderr.splitlines() if "fatal:" in ln or "error" in ln.lower()]
    if proc.returncode == 1 and not fatal:
        return None, ""
    return "", (fatal[-1] if fatal else proc.stderr.strip()[-200:]) or f"postmap exit {proc.returncode}"


def random_address(domain: str) -> str:
    return f"bsa-nosuchuser-{secrets.token_hex(6)}@{domain}"


def metachar_address(domain: str) -> str:
    return f"bsa-*)(x=*\\@{domain}"


def check_map(
    path: str,
    samples: Sequence[tuple[str, str]],
    *,
    used_by: Sequence[str] = (),
    use_postmap: bool | None = None,
) -> list[LdapMapCheck]:
    """Evaluate ``samples`` ((kind, address) pairs) through the map at ``path``.

    ``use_postmap`` None = when installed. Returns one LdapMapCheck per sample; a server that
    cannot be reached gives checks with ``error`` set (inconclusive), never an exception.
    """
    table = parse_ldap_table(path)
    # a password written into a server_host URL: never in a message (postmap's errors quote the URL)
    _, hidden = redact_userinfo(read_settings(path)[0].get("server_host", ""))

    def scrub(text: str) -> str:
        for secret in sorted(hidden, key=len, reverse=True):
            text = text.replace(secret, REDACTED) if secret else text
        return text

    need_conn = any(lookup(table, a, None).queried for _, a in samples)
    conn, conn_err = (None, "")
    if need_conn:
        pw = read_bind_pw(path) if table.bind_pw else ""
        conn, conn_err = _connect(table, pw)
        del pw
    out: list[LdapMapCheck] = []
    try:
        for sample, address in samples:
            res = lookup(table, address, conn)
            err = res.error
            if res.queried and conn is None:
                err = conn_err
            pm: tuple[str | None, str] = ("", "")
            if use_postmap is not False:
                pm = postmap_query(path, address, timeout=float(table.timeout) * 2 + 5)
                if use_postmap is None and pm == ("", "postmap is not installed"):
                    pm = ("", "")
            out.append(
                LdapMapCheck(
                    target=f"ldap:{path}",
                    map_path=path,
                    used_by=tuple(used_by),
                    table=table,
                    sample=sample,
                    address=address,
                    queried=res.queried,
                    search_base=res.search_base,
                    filter=res.filter,
                    result=res.values if not err else None,
                    error=scrub(err),
                    note="; ".join(n for n in (res.note, *table.notes) if n),
                    postmap_result=pm[0],
                    postmap_error=scrub(pm[1]),
                )
            )
    finally:
        if conn is not None:
            close_quietly(conn)
    return out


def ldap_maps(cfg: PostfixConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(table file, parameters using it) for every ``ldap:`` / ``proxy:ldap:`` table of a config."""
    out: dict[str, tuple[str, ...]] = {}
    for t in cfg.tables:
        if t.type == "ldap" or t.spec.startswith(("ldap:", "proxy:ldap:")):
            path = t.resolved_path or t.name
            if path.startswith("ldap:"):
                path = path[5:]
            out[path] = tuple(sorted(set(out.get(path, ()) + t.used_by)))
    return sorted(out.items())
