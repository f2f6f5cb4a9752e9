"""DNS observations: the inbound mail paths (MX, implicit MX, null MX) of one domain."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Observation

OK, NXDOMAIN, NODATA, SERVFAIL, TIMEOUT, ERROR = "ok", "nxdomain", "nodata", "servfail", "timeout", "error"
FAILED = (SERVFAIL, TIMEOUT, ERROR)


@dataclass(frozen=True)
class MxHost:
    """One MX target (or the domain itself for an implicit MX) and the addresses it resolves to."""

    name: str
    preference: int
    addresses: tuple[str, ...] = ()
    # Lookup outcome for the addresses: ok when at least one A/AAAA came back.
    status: str = OK
    detail: str = ""
    cname: str = ""  # the canonical name when the MX target is an alias (RFC 2181 §10.3 forbids it)
    ip_literal: bool = False  # the MX target is written as an IP address, not a host name
    external: bool = False  # not the domain itself nor under any domain in scope


@dataclass(frozen=True)
class DnsMx(Observation):
    """The inbound paths of one domain (``target`` is the domain)."""

    kind = "dns.mx"

    status: str = OK  # outcome of the MX query: ok / nxdomain / nodata / servfail / timeout / error
    detail: str = ""
    hosts: tuple[MxHost, ...] = ()
    implicit: bool = False  # no MX RRset: the domain's own A/AAAA receive mail
    null_mx: bool = False  # exactly one MX, preference 0, target "." (RFC 7505 §3)
    malformed_null_mx: bool = False  # a "." target mixed with other MX or with preference ≠ 0
    non_mail: bool = False  # the user declared this domain as one that must not receive mail
    nameservers: tuple[str, ...] = ()
    overridden: bool = False  # hosts come from the user's mx_override, not from the MX RRset

    @property
    def failed(self) -> bool:
        return self.status in FAILED or any(h.status in FAILED for h in self.hosts)
