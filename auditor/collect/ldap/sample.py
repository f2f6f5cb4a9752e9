"""Known-valid control addresses for live probes, drawn from the directory."""

from __future__ import annotations

from auditor.observations.directory import DirectoryRecipients

_MAX_CATCHALL_DOMAINS = 10


def sample_addresses(dir_obs: DirectoryRecipients, n: int) -> list[str]:
    """Up to ``n`` addresses that must be accepted at RCPT by every MX (probe ``--control``).

    Only unambiguous addresses qualify: not owned by a disabled (non-exempt) account, not claimed by
    two entries. The pick is deterministic (sorted, spread over the accepted domains round-robin) so
    two runs probe the same controls. An incomplete directory read still yields its addresses: each
    one was seen in the directory.
    """
    if n <= 0:
        return []
    bad = {a for e in dir_obs.disabled if not e.exempt for a in e.addresses}
    bad |= {d.address for d in dir_obs.duplicates}
    preferred = [r.address for r in dir_obs.examples if r.address not in bad]
    pools = [sorted(a for a in book if a not in bad) for _, book in sorted(dir_obs.recipients.items())]
    out: list[str] = []
    for a in preferred:
        if a not in out and len(out) < n:
            out.append(a)
    i = 0
    while len(out) < n and any(i < len(p) for p in pools):
        for p in pools:
            if i < len(p) and p[i] not in out and len(out) < n:
                out.append(p[i])
        i += 1
    return out


def map_samples(dir_obs: DirectoryRecipients | None, domains: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(kind, address) samples for a recipient map: known, alias, random, catchall, metachar.

    ``domains`` is the map's own ``domain =`` list: the random samples use its first domain so the
    map really queries them. Known and alias samples need a directory read.
    """
    from auditor.collect.postfix.ldap_table import metachar_address, random_address

    out: list[tuple[str, str]] = []
    bad: set[str] = set()
    if dir_obs is not None:
        bad = {a for e in dir_obs.disabled if not e.exempt for a in e.addresses}
        bad |= {d.address for d in dir_obs.duplicates}
        examples = [r for r in dir_obs.examples if r.address not in bad]
        known = next((r for r in examples if r.attribute.lower() in ("mail", "proxyaddresses")), None)
        if known is not None:
            out.append(("known", known.address))
            alias = next((r for r in examples if r.dn == known.dn and r.address != known.address), None)
            alias = alias or next((r for r in examples if r.address != known.address), None)
            if alias is not None:
                out.append(("alias", alias.address))
    domain = next(
        (d for d in domains if ":" not in d),
        out[0][1].rpartition("@")[2]
        if out
        else (dir_obs.accepted_domains[0] if dir_obs and dir_obs.accepted_domains else "example.invalid"),
    )
    out.append(("random", random_address(domain)))
    # Postfix's last lookup for an address is the @domain key: try it for every domain (bounded).
    every = (
        [d for d in domains if ":" not in d] or list(dir_obs.accepted_domains if dir_obs else ()) or [domain]
    )
    out.extend(("catchall", f"@{d}") for d in every[:_MAX_CATCHALL_DOMAINS])
    out.append(("metachar", metachar_address(domain)))
    return out
