"""Search helpers on plain ldap3: the root DSE, the shared search errors, and a reference paged search.

The collector reads entries with :mod:`auditor.collect.ldap.wire` (same contract, ~6x faster);
:func:`paged_search` here is ldap3's own RFC 2696 loop, kept as the reference the fast reader is
tested against. Both stream one page at a time: the caller drops each page before the next.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ldap3 import BASE, SUBTREE, Connection

from auditor.collect.ldap.connect import LDAP_ERRORS, _describe

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


def paged_search(
    conn: Connection,
    base: str,
    search_filter: str,
    attributes: Sequence[str],
    *,
    page_size: int = 500,
    size_limit: int = 0,
    time_limit: int = 0,
    deadline: float | None = None,
    stats: SearchStats | None = None,
) -> Iterator[list[Entry]]:
    """Yield the entries page by page; raise SearchIncomplete when the search cannot finish.

    ``deadline`` (a ``time.monotonic()`` value) bounds the whole search on the client side;
    each receive is bounded by the connection's receive timeout.
    """
    st = stats if stats is not None else SearchStats()
    cookie: bytes | None = None
    attrs = list(attributes)
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise SearchIncomplete(f"client time limit reached after {st.pages} pages, {st.entries} entries")
        try:
            conn.search(
                base,
                search_filter,
                search_scope=SUBTREE,
                attributes=attrs,
                paged_size=page_size,
                paged_cookie=cookie,
                size_limit=size_limit,
                time_limit=time_limit,
            )
        except LDAP_ERRORS as exc:
            raise SearchIncomplete(
                f"server stopped answering after {st.pages} pages, {st.entries} entries ({_describe(exc)})"
            ) from None
        result = conn.result or {}
        code = int(result.get("result", 80))
        page: list[Entry] = []
        for item in conn.response or ():
            kind = item.get("type")
            if kind == "searchResEntry":
                raw = item.get("raw_attributes", {})
                page.append((item.get("dn", ""), {k: [_text(v) for v in vals] for k, vals in raw.items()}))
            elif kind == "searchResRef":
                st.references += 1  # referrals are off by default: counted, not followed
        st.pages += 1
        st.entries += len(page)
        yield page
        del page
        if code in _PARTIAL:
            raise SearchIncomplete(f"{_PARTIAL[code]} after {st.entries} entries (the directory holds more)")
        if code != 0:
            desc = result.get("description", "") or "error"
            msg = (result.get("message") or "").strip()
            raise SearchIncomplete(f"search failed: {desc}{': ' + msg if msg else ''} (result code {code})")
        ctrl = (result.get("controls") or {}).get(PAGED_RESULTS_OID)
        cookie = ctrl["value"]["cookie"] if ctrl else None
        if not cookie:
            return
