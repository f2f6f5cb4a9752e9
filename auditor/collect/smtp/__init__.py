"""Live SMTP probes of a site's MX hosts (DESIGN.md "Live probing: safe by construction").

``probe_domains(domains, settings)`` is the Python API the ``probe``, ``audit`` and ``demo``
commands call: DNS first (:mod:`auditor.collect.dns`), then one RCPT-only conversation per MX
address (:mod:`.engine`), never DATA. It returns the DNS observations and one
:class:`~auditor.observations.smtp.ProbeResult` per (domain, MX host, address): the replies, no
verdict (:mod:`auditor.rules.smtp_verdicts` judges them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from auditor.collect import dns as dns_collect
from auditor.collect.smtp import identity
from auditor.collect.smtp.engine import Engine, Plan, Progress, check_settings, describe, make_plan
from auditor.collect.smtp.scenarios import load as load_scenarios
from auditor.model import Observation
from auditor.observations.smtp import ProbeResult, ProbeSettings


def plan_probes(domains: Sequence[str], settings: ProbeSettings) -> tuple[list[dns_collect.DnsMx], Plan]:
    """DNS lookups and the session plan, without opening any SMTP connection."""
    settings = identity.resolve(settings)
    check_settings(settings)
    domains = [dns_collect.normalize_domain(d) for d in domains]
    mx = dns_collect.collect(
        domains,
        settings.nameservers,
        settings.dns_timeout,
        settings.non_mail_domains,
        overrides=dict(settings.mx_overrides),
    )
    plan = make_plan(mx, settings, load_scenarios(settings.scenarios_dir), domains)
    return mx, plan


async def probe_domains_async(
    domains: Sequence[str], settings: ProbeSettings, progress: Progress | None = None
) -> list[Observation]:
    mx, plan = await asyncio.to_thread(plan_probes, domains, settings)
    results = await Engine(settings, progress).run(plan)
    return [*mx, *results]


def probe_domains(
    domains: Sequence[str], settings: ProbeSettings, progress: Progress | None = None
) -> list[Observation]:
    """DNS observations + probe results for the given domains (blocking; runs its own event loop)."""
    return asyncio.run(probe_domains_async(domains, settings, progress))


__all__ = [
    "ProbeResult",
    "ProbeSettings",
    "describe",
    "plan_probes",
    "probe_domains",
    "probe_domains_async",
]
