"""Search helpers on plain ldap3: the root DSE and the search outcome types shared with the reader.

Entries are read by the one paged reader, :func:`auditor.collect.ldap.wire.paged_search_fast`
(BER decoded from the socket, ~6x faster than ldap3's own decoding: benchmarks/RESULTS-ldap.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from ldap3 import BASE, Connection

from auditor.collect.ldap.connect import LDAP_ERRORS

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
Entry = tuple[str, dict[str, list[str]]]

# LDAP result codes that end a search early but leave the entries so far valid.
_PARTIAL = {3: "time limit exceeded", 4: "size limit exceeded", 11: "administrative limit exceeded"}


class SearchIncomplete(Exception):
    """The search stopped before the end; ``reason`` is one line for the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SearchStats:
    pages: int = 0
    entries: int = 0
    references: int = 0


def root_dse(conn: Connection, timeout: float) -> dict[str, list[str]]:
    """The root DSE attributes used for profile detection and the default base ({} if unreadable)."""
    attrs = [
        "namingContexts",
        "defaultNamingContext",
        "rootDomainNamingContext",
        "forestFunctionality",
        "domainFunctionality",
        "domainControllerFunctionality",
        "isGlobalCatalogReady",
        "vendorName",
        "vendorVersion",
        "supportedControl",
    ]
    try:
        ok = conn.search("", "(objectClass=*)", search_scope=BASE, attributes=attrs, time_limit=int(timeout))
    except LDAP_ERRORS:
        return {}
    if not ok or not conn.response:
        return {}
    raw = conn.response[0].get("raw_attributes", {})
    return {k: [_text(v) for v in vals] for k, vals in raw.items()}


def _text(v: bytes | str) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
