"""The probe's own identity: the EHLO name and the sender, and whether a hardened MX will accept them.

Hardened MXs refuse a sender whose domain does not resolve (Postfix ``reject_unknown_sender_domain``:
``450 4.1.8``), an EHLO name that is not a resolvable FQDN (``reject_unknown_helo_hostname``), and
clients whose name does not lead back to their address. A probe refused for its identity measures
nothing about recipients, so the identity defaults to what passes those checks: the EHLO name is the
machine's FQDN and the sender is ``backscatter-probe@`` that name (README "Live probes"). Before
probing, :func:`check` looks both up and says what to change.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterable

from auditor.collect.dns import OK, _lookup, is_under, make_resolver
from auditor.observations.dns import FAILED
from auditor.observations.smtp import Identity, ProbeSettings

SENDER_LOCAL_PART = "backscatter-probe"


def machine_fqdn() -> str:
    """This machine's fully qualified name (``socket.getfqdn``), or its bare host name."""
    name = socket.getfqdn().rstrip(".")
    if "." not in name or name.startswith("localhost"):
        name = socket.gethostname().rstrip(".") or name
    return name.lower()


def resolve(settings: ProbeSettings) -> ProbeSettings:
    """Fill in the defaults: EHLO = the machine's FQDN, sender = backscatter-probe@<EHLO name>."""
    if settings.ehlo and settings.mail_from:
        return settings
    ehlo = settings.ehlo or machine_fqdn()
    mail_from = settings.mail_from or f"{SENDER_LOCAL_PART}@{ehlo}"
    return dataclasses.replace(settings, ehlo=ehlo, mail_from=mail_from)


def check(settings: ProbeSettings, source: str, scope: Iterable[str] = ()) -> Identity:
    """Look up the sender domain and the EHLO name (with the run's resolver); warn with the fix."""
    settings = resolve(settings)
    res = make_resolver(settings.nameservers, settings.dns_timeout)
    sender_domain = settings.mail_from.rpartition("@")[2].lower()
    warnings: list[str] = []

    statuses = [_lookup(res, sender_domain, t)[0] for t in ("MX", "A", "AAAA")]
    sender_ok: bool | None
    if OK in statuses:
        sender_ok = True
    elif all(s in FAILED for s in statuses):
        sender_ok = None
        warnings.append(f"could not look up the sender domain {sender_domain} (DNS failed)")
    else:
        sender_ok = False
        warnings.append(
            f"the sender domain {sender_domain} has no MX, A or AAAA record: MXs that check senders "
            "(Postfix reject_unknown_sender_domain) refuse it with 450 4.1.8 — set --mail-from "
            "(probe.mail_from) to an address in a domain that resolves"
        )
    if is_under(sender_domain, scope):
        warnings.append(
            f"the sender {settings.mail_from} is in a domain being audited: many edges refuse outside "
            "mail claiming their own domain — use an address in another domain you control (--mail-from)"
        )

    addresses: list[str] = []
    ehlo_status: list[str] = []
    for rdtype in ("A", "AAAA"):
        status, _detail, ans = _lookup(res, settings.ehlo, rdtype)
        ehlo_status.append(status)
        if ans is not None:
            addresses.extend(r.to_text() for r in ans)
    ehlo_ok: bool | None = bool(addresses) or (None if all(s in FAILED for s in ehlo_status) else False)
    matches: bool | None = None
    if "." not in settings.ehlo:
        warnings.append(
            f"the EHLO name {settings.ehlo!r} is not a fully qualified domain name: MXs with "
            "reject_non_fqdn_helo_hostname refuse it — set --ehlo (probe.ehlo) to this machine's FQDN"
        )
    elif ehlo_ok is False:
        warnings.append(
            f"the EHLO name {settings.ehlo} does not resolve: MXs with reject_unknown_helo_hostname "
            "refuse it — set --ehlo (probe.ehlo) to a name whose A/AAAA is our address"
        )
    if addresses and source:
        matches = source in addresses
        if not matches:
            warnings.append(
                f"the EHLO name {settings.ehlo} resolves to {', '.join(sorted(addresses))}, not to our "
                f"source address {source}: set --ehlo to the name of {source} (with matching reverse DNS)"
            )
    return Identity(
        ehlo=settings.ehlo,
        mail_from=settings.mail_from,
        sender_domain_resolves=sender_ok,
        ehlo_addresses=tuple(sorted(set(addresses))),
        ehlo_resolves=ehlo_ok,
        ehlo_matches_source=matches,
        warnings=tuple(warnings),
    )
