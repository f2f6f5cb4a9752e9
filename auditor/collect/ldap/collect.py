"""Collect the directory's recipients: connect, pick a profile, page through, fold into facts."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ldap3.core.exceptions import LDAPException
from ldap3.operation.search import parse_filter

from auditor.collect.ldap.accumulate import Accumulator
from auditor.collect.ldap.connect import LdapSettings, close_quietly, open_connection
from auditor.collect.ldap.profiles import detect_profile, entry_facts, make_profile
from auditor.collect.ldap.search import SearchIncomplete, SearchStats, root_dse
from auditor.collect.ldap.wire import paged_search
from auditor.model import InputError
from auditor.observations.directory import DirectoryConnection, DirectoryRecipients

# With no time limit given, one directory collection still ends within this many seconds.
DEFAULT_CLIENT_BOUND = 900.0


@dataclass(frozen=True)
class DirectoryQuery:
    """What to read: base, extra filter, profile, accepted domains, extra address attributes, limits."""

    base: str | None = None
    filter: str | None = None
    profile: str = "auto"  # openldap | ad | auto
    domains: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    page_size: int = 500
    size_limit: int = 0  # entries, 0 = the server's limit
    time_limit: int = 0  # seconds, 0 = the server's limit


def check_filter(text: str) -> None:
    """Reject a malformed ``--filter`` before any traffic (an input error, exit 2)."""
    try:
        parse_filter(text, None, True, True, None, False)
    except LDAPException:
        raise InputError(f"malformed LDAP filter {text!r}") from None


def _validate(query: DirectoryQuery) -> None:
    if query.profile not in ("openldap", "ad", "auto"):
        raise InputError(f"unknown profile {query.profile!r} (openldap, ad, auto)")
    if query.filter:
        check_filter(query.filter)
    if query.page_size < 1 or query.page_size > 100000:
        raise InputError("page size must be between 1 and 100000")
    if query.size_limit < 0 or query.time_limit < 0:
        raise InputError("size and time limits must not be negative")
    for a in query.attributes:
        if not a.replace("-", "").replace(";", "").isalnum():
            raise InputError(f"bad attribute name {a!r}")


def collect(settings: LdapSettings, query: DirectoryQuery) -> DirectoryRecipients:
    """Read the directory. Server-side failures give ``complete=False`` with ``error`` set."""
    _validate(query)
    started = time.monotonic()
    target = settings.urls[0] if settings.urls else "(no LDAP URL)"
    conn, facts, error = open_connection(settings)
    profile_name = query.profile if query.profile != "auto" else ""
    if conn is None:
        return DirectoryRecipients(
            target=target,
            profile=profile_name,
            base=query.base or "",
            accepted_domains=tuple(query.domains),
            connection=facts,
            complete=False,
            error=error,
        )
    try:
        dse = root_dse(conn, settings.timeout)
        if not profile_name:
            profile_name = detect_profile(dse)
        vendor = " ".join((dse.get("vendorName") or []) + (dse.get("vendorVersion") or []))
        facts = DirectoryConnection(
            url=facts.url,
            tls=facts.tls,
            verified=facts.verified,
            bind=facts.bind,
            bind_dn=facts.bind_dn,
            vendor=vendor,
            attempts=facts.attempts,
        )
        profile = make_profile(profile_name, query.attributes)
        base = query.base or next(
            iter(dse.get("defaultNamingContext") or dse.get("namingContexts") or []), ""
        )
        flt = f"(&{query.filter}{profile.default_filter})" if query.filter else profile.default_filter
        acc = Accumulator(tuple(query.domains))
        stats = SearchStats()
        complete, err = True, ""
        bound = (query.time_limit + 2 * settings.timeout) if query.time_limit else DEFAULT_CLIENT_BOUND
        if not base:
            complete, err = False, "no --base given and the server publishes no naming context"
        else:
            try:
                for page in paged_search(
                    conn,
                    base,
                    flt,
                    profile.fetch,
                    page_size=query.page_size,
                    size_limit=query.size_limit,
                    time_limit=query.time_limit,
                    timeout=settings.timeout,
                    deadline=started + bound,
                    stats=stats,
                ):
                    if profile.name == "openldap":
                        for dn, attrs in page:
                            acc.add_plain(dn, attrs)
                    else:
                        for dn, attrs in page:
                            acc.add(entry_facts(profile, dn, attrs))
            except SearchIncomplete as exc:
                complete, err = False, exc.reason
        return DirectoryRecipients(
            target=facts.url or target,
            profile=profile_name,
            base=base,
            filter=flt,
            attributes=profile.address_attributes,
            accepted_domains=acc.accepted,
            connection=facts,
            complete=complete,
            error=err,
            entries=stats.entries,
            pages=stats.pages,
            recipients=acc.recipients,
            examples=acc.examples(),
            catch_alls=tuple(acc.catch_alls),
            out_of_domain=tuple(acc.out_of_domain),
            disabled=tuple(acc.disabled),
            duplicates=acc.duplicate_list(),
            empty_domains=acc.empty_domains() if complete else (),
            restricted_groups=tuple(acc.restricted_groups),
            external_targets=acc.external_targets,
        )
    finally:
        close_quietly(conn)
