"""Open one authenticated LDAP connection with ldap3: URLs in order, TLS verified, secrets kept out.

Server-side outcomes (down, TLS refused, bind rejected) come back as an error string for an
``inconclusive`` finding; local mistakes (a bad URL, an unreadable CA file) raise InputError.
"""

from __future__ import annotations

import contextlib
import math
import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ldap3 import NONE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

from auditor.model import InputError
from auditor.observations.directory import DirectoryConnection, UrlAttempt

_SCHEMES = {"ldap": 389, "ldaps": 636, "ldapi": 0}


@dataclass(frozen=True)
class LdapSettings:
    """How to reach the directory. ``password`` is excluded from repr and never written anywhere."""

    urls: tuple[str, ...]
    start_tls: bool = False
    ca_file: str | None = None
    verify: bool = True
    bind_dn: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    referrals: bool = False


@dataclass(frozen=True)
class _Url:
    scheme: str
    host: str
    port: int


def parse_url(url: str) -> _Url:
    """Split an LDAP URL; anything but ldap/ldaps/ldapi with a host is an input error."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InputError(f"bad LDAP URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InputError(f"bad LDAP URL {url!r}: scheme must be ldap://, ldaps:// or ldapi://")
    if scheme == "ldapi":
        path = unquote(parts.netloc) or "/var/run/ldapi"
        return _Url(scheme, path, 0)
    if not parts.hostname:
        raise InputError(f"bad LDAP URL {url!r}: no host")
    return _Url(scheme, parts.hostname, port or _SCHEMES[scheme])


def _tls(settings: LdapSettings, host: str) -> Tls:
    if settings.ca_file and not os.access(settings.ca_file, os.R_OK):
        raise InputError("CA file is missing or unreadable", settings.ca_file)
    return Tls(
        validate=ssl.CERT_REQUIRED if settings.verify else ssl.CERT_NONE,
        ca_certs_file=settings.ca_file,
        sni=host,
    )


def _describe(exc: BaseException) -> str:
    """A short one-line reason; ldap3 messages can be long reprs of certificates."""
    text = str(exc).replace("\n", " ")
    low = text.lower()
    if "doesn't match any name" in low or "hostname mismatch" in low or "ip address mismatch" in low:
        return "TLS: server certificate does not match the host name"
    if "certificate verify failed" in low:
        return "TLS: certificate verify failed (unknown CA or bad certificate; see --ca-file)"
    if "connection refused" in low:
        return "connection refused"
    if "timed out" in low:
        return "timed out"
    return f"{type(exc).__name__}: {text[:200]}"


def open_connection(settings: LdapSettings) -> tuple[Connection | None, DirectoryConnection, str]:
    """Try each URL in order until one connects (and negotiates TLS) and the bind succeeds.

    A bind refusal stops the loop (every replica shares the credentials); connection and TLS
    failures move on to the next URL. Returns (connection or None, facts, error).
    """
    parsed = [(u, parse_url(u)) for u in settings.urls]  # all input errors before any traffic
    attempts: list[UrlAttempt] = []
    last = "no LDAP URL given"
    for url, p in parsed:
        tls_kind = {"ldaps": "ldaps", "ldapi": "ldapi"}.get(
            p.scheme, "starttls" if settings.start_tls else "none"
        )
        tls = _tls(settings, p.host) if tls_kind in ("ldaps", "starttls") else None
        if p.scheme == "ldapi":
            server = Server(f"ldapi://{p.host}", get_info=NONE, connect_timeout=settings.timeout)
        else:
            server = Server(
                p.host,
                port=p.port,
                use_ssl=p.scheme == "ldaps",
                tls=tls,
                get_info=NONE,
                connect_timeout=settings.timeout,
            )
        conn = Connection(
            server,
            user=settings.bind_dn or None,
            password=settings.password if settings.bind_dn else None,
            client_strategy=SYNC,
            auto_bind=False,
            read_only=True,
            raise_exceptions=False,
            auto_referrals=settings.referrals,
            receive_timeout=max(1, math.ceil(settings.timeout)),  # ldap3 packs it as an integer
            return_empty_attributes=False,
        )
        try:
            conn.open()
            if tls_kind == "starttls" and not conn.start_tls():
                raise _Refused(f"StartTLS refused: {conn.result.get('description', '?')}")
            bound = conn.bind()
        except _CONNECT_ERRORS as exc:
            last = str(exc) if isinstance(exc, _Refused) else _describe(exc)
            attempts.append(UrlAttempt(url, False, last))
            close_quietly(conn)
            continue
        facts = DirectoryConnection(
            url=url,
            tls=tls_kind,
            verified=tls_kind in ("ldaps", "starttls") and settings.verify,
            bind="simple" if settings.bind_dn else "anonymous",
            bind_dn=settings.bind_dn or "",
        )
        if not bound:
            desc = conn.result.get("description", "") if conn.result else ""
            last = f"bind as {settings.bind_dn or 'anonymous'} rejected: {desc or 'unknown error'}"
            attempts.append(UrlAttempt(url, False, last))
            close_quietly(conn)
            return None, _with_attempts(facts, attempts), last
        attempts.append(UrlAttempt(url, True))
        return conn, _with_attempts(facts, attempts), ""
    return None, DirectoryConnection(attempts=tuple(attempts)), f"no LDAP server answered: {last}"


class _Refused(Exception):
    pass


# What ldap3 raises talking to a broken or hostile server: its own exceptions, socket errors, and
# (from its BER decoder, on garbage) KeyError/IndexError/ValueError/TypeError. All mean "no usable
# answer from this server", never a crash of the audit.
LDAP_ERRORS: tuple[type[BaseException], ...] = (
    LDAPException,
    OSError,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    AttributeError,
)
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (*LDAP_ERRORS, _Refused)


def _with_attempts(facts: DirectoryConnection, attempts: list[UrlAttempt]) -> DirectoryConnection:
    return DirectoryConnection(
        url=facts.url,
        tls=facts.tls,
        verified=facts.verified,
        bind=facts.bind,
        bind_dn=facts.bind_dn,
        vendor=facts.vendor,
        attempts=tuple(attempts),
    )


def close_quietly(conn: Connection) -> None:
    """Unbind; a broken connection has nothing left to report."""
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()
