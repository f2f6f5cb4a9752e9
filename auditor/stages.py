"""The collectors of one run, built from the site's settings: which run, with which settings.

``audit`` builds them from site.toml; ``probe``, ``lint``, ``directory`` and ``ndr`` build the
same :class:`~auditor.config.SiteConfig` from their arguments and pick the collectors they run.
The glue between the settings and each collector's own API; no judgement here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import weakref
from collections.abc import Callable, Collection, Sequence
from typing import Any

from auditor.collect.base import Collector, Context
from auditor.config import SiteConfig
from auditor.model import InputError, Observation
from auditor.observations.smtp import ProbeSettings


class PostfixCollector(Collector):
    name, families = "postfix lint", ("postfix",)

    def __init__(self, cfg: SiteConfig) -> None:
        self.dirs = [cfg.resolve(d) for d in cfg.postfix.config_dirs]
        self.use_postconf = None if cfg.postfix.postconf else False

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        from auditor.collect.postfix import collect
        from auditor.collect.smtp.vantage import networks_from_mynetworks

        configs = [collect(d, use_postconf=self.use_postconf) for d in self.dirs]
        ctx.postfix_configs.extend(configs)
        for c in configs:  # the MXs trust these: probing from inside them proves nothing
            ctx.trusted_networks.extend(str(n) for n in networks_from_mynetworks(c.value("mynetworks")))
        return configs


class AmavisCollector(Collector):
    name, families = "amavis lint", ("amavis",)

    def __init__(self, cfg: SiteConfig) -> None:
        self.paths = [cfg.resolve(p) for p in cfg.amavis.paths]

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        from auditor.collect.amavis import collect

        return [collect(self.paths)]


class EximCollector(Collector):
    name, families = "exim lint", ("exim",)

    def __init__(self, cfg: SiteConfig) -> None:
        self.paths = [cfg.resolve(p) for p in cfg.exim.paths]
        self.use_exim = None if cfg.exim.use_exim else False

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        from auditor.collect.exim import collect

        return [collect(p, use_exim=self.use_exim) for p in self.paths]


class LogsCollector(Collector):
    """Postfix logs and queues: runs after the Postfix collector, whose mynetworks it may use."""

    name, families = "postfix logs", ("logs",)

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        res = cfg.resolve
        self.paths = [p if p == "-" else res(p) for p in cfg.logs.postfix]
        self.queues = [p if p == "-" else res(p) for p in cfg.logs.queue]
        self.live = [res(d) for d in cfg.logs.queue_live]
        self.mynetworks_from = [res(d) for d in cfg.logs.mynetworks_from]

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        from auditor.collect.logs import (
            collect_postfix_logs,
            collect_postfix_queue,
            networks_from_postfix,
            parse_networks,
        )

        nets: list[Any] = []
        notes: list[str] = []
        source = ""
        if self.cfg.site.trusted_networks:
            nets = parse_networks(",".join(self.cfg.site.trusted_networks), "site.trusted_networks")
            source = "site.trusted_networks"
        elif self.mynetworks_from:
            for d in self.mynetworks_from:
                n, more = networks_from_postfix(d)
                nets += n
                notes += more
            source = "mynetworks of " + ", ".join(self.mynetworks_from)
        elif ctx.trusted_networks:
            nets = parse_networks(",".join(ctx.trusted_networks), "mynetworks")
            source = "mynetworks of the [postfix] config_dirs"
        out: list[Observation] = []
        if self.paths:
            out.append(
                collect_postfix_logs(
                    self.paths,
                    trusted_networks=nets,
                    trusted_source=source,
                    year=self.cfg.logs.year or None,
                    notes=notes,
                )
            )
        out += [collect_postfix_queue(q) for q in self.queues]
        out += [collect_postfix_queue(live_dir=d) for d in self.live]
        return out


class ExchangeCollector(Collector):
    name, families = "exchange lint", ("exchange",)

    def __init__(self, cfg: SiteConfig) -> None:
        self.files = [cfg.resolve(f) for f in cfg.exchange.exports]

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        from auditor.collect import exchange

        return exchange.collect(self.files)


class NdrCollector(Collector):
    name, families = "NDR analysis", ("ndr",)

    def __init__(self, cfg: SiteConfig) -> None:
        self.paths = [cfg.resolve(p) for p in cfg.ndr.paths]

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        import os

        from auditor.bounces import CapturedNdr, analyse_bytes, iter_messages

        # The file name is the finding's target (the full path is in the evidence location).
        return [
            CapturedNdr.from_analysis(a, target=os.path.basename(a.path) or a.path)
            for a in (analyse_bytes(data, path) for path, data in iter_messages(self.paths))
        ]


def _probe_safe(address: str) -> bool:
    from auditor.collect.smtp.engine import check_address

    try:
        check_address(address, "control")
    except InputError:
        return False
    return True


class DirectoryCollector(Collector):
    """The recipient directory, and Postfix ldap: maps tested against it.

    Its valid addresses become the probes' controls: every MX must accept them. (An address the
    SMTP probe cannot send, e.g. with spaces or 8-bit, is left out, not fatal.)
    """

    name, families = "recipient directory", ("directory",)

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg

    def _password(self) -> str | None:
        """From the password file, else BSA_LDAP_PASSWORD; never from site.toml or the command line."""
        from auditor.secrets import read_secret

        cfg = self.cfg
        return read_secret(
            cfg.resolve(cfg.directory.password_file), "BSA_LDAP_PASSWORD", "directory.password_file"
        )

    def prepare(self, ctx: Context) -> None:
        from auditor.collect.ldap.collect import check_filter

        d = self.cfg.directory
        if d.urls and d.bind_dn and self._password() is None:
            raise InputError(
                "directory.bind_dn needs directory.password_file or BSA_LDAP_PASSWORD", self.cfg.path or None
            )
        if d.filter:
            check_filter(d.filter)

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        from auditor.collect.ldap import DirectoryQuery, LdapSettings, collect, sample_addresses
        from auditor.collect.ldap.sample import map_samples
        from auditor.collect.postfix.ldap_table import check_map, ldap_maps, parse_ldap_table

        cfg, d = self.cfg, self.cfg.directory
        out: list[Observation] = []
        dir_obs = None
        if d.urls:
            settings = LdapSettings(
                urls=tuple(d.urls),
                start_tls=d.start_tls,
                ca_file=cfg.resolve(d.ca_file) or None,
                verify=d.verify_tls,
                bind_dn=d.bind_dn or None,
                password=self._password(),
                timeout=d.timeout,
                referrals=d.follow_referrals,
            )
            query = DirectoryQuery(
                base=d.base or None,
                filter=d.filter or None,
                profile=d.profile,
                domains=tuple(d.domains or cfg.site.domains),
                attributes=tuple(d.attributes),
                page_size=d.page_size,
                size_limit=d.size_limit,
                time_limit=d.time_limit,
            )
            dir_obs = collect(settings, query)
            del settings
            out.append(dir_obs)
            ctx.controls.extend(a for a in sample_addresses(dir_obs, d.sample) if _probe_safe(a))
        maps: list[tuple[str, tuple[str, ...]]] = [(cfg.resolve(f), ()) for f in d.postfix_maps]
        for pf in ctx.postfix_configs:
            maps += ldap_maps(pf)
        for path, used_by in maps:
            table = parse_ldap_table(path)
            samples = map_samples(dir_obs, table.domain)
            out.extend(check_map(path, samples, used_by=used_by, use_postmap=None if d.postmap else False))
        return out


def probe_settings(cfg: SiteConfig, **overrides: Any) -> ProbeSettings:
    """The one place ProbeSettings are made, from site.toml or the same settings from arguments."""
    p, site, d = cfg.probe, cfg.site, cfg.dns
    kw: dict[str, Any] = {
        "controls": tuple(p.controls),
        "nameservers": tuple(d.nameservers),
        "dns_timeout": float(d.timeout),
        "non_mail_domains": tuple(site.non_mail_domains),
        "timeout": float(p.timeout),
        "audit_timeout": float(p.audit_timeout),
        "session_delay": float(p.session_delay),
        "concurrency": int(p.concurrency),
        "retry_after": float(p.retry_after),
        "allow_external_mx": bool(p.allow_external_mx),
        "source_address": p.source_address,
        "trusted_networks": tuple(site.trusted_networks),
        "relay_test_domain": p.relay_test_domain,
        "subdomain_probe": p.subdomain_probe,
        "port": p.port,
        "mx_overrides": tuple((o.domain, tuple(o.hosts)) for o in cfg.mx_override),
        "scenarios_dir": cfg.resolve(p.scenarios),
    }
    if p.ehlo:
        kw["ehlo"] = p.ehlo
    if p.mail_from:
        kw["mail_from"] = p.mail_from
    kw.update(overrides)
    return ProbeSettings(**kw)


class _TrackingLoop(asyncio.SelectorEventLoop):
    """An event loop that remembers every connection it opened, so a hard deadline can drop them.

    When the probe engine's own time bound fires, a cancelled session still says QUIT politely
    and waits up to one stage timeout for the reply; against a tarpit that turns a 1 s bound into
    30 s. Aborting the transports makes that wait end at once, and the engine still returns every
    answer it recorded.
    """

    def __init__(self) -> None:
        super().__init__()
        self.transports: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        transport, protocol = await super().create_connection(*args, **kwargs)
        self.transports.add(transport)
        return transport, protocol


# Seconds the engine gets after its own time bound to close sessions before they are dropped.
CLOSE_GRACE = 0.5


def run_bounded(
    domains: Sequence[str], settings: ProbeSettings, progress: Callable[[str], None], budget: float
) -> list[Observation]:
    """DNS, then the probe engine, all within ``budget`` seconds: past it, sessions are aborted, not QUIT."""
    from auditor.collect.smtp import plan_probes
    from auditor.collect.smtp.engine import Engine

    end = time.monotonic() + budget
    loop = _TrackingLoop()

    async def main() -> list[Observation]:
        mx, plan = await asyncio.to_thread(plan_probes, domains, settings)
        bound = max(0.1, min(settings.audit_timeout, end - time.monotonic() - 2 * CLOSE_GRACE))
        task = asyncio.ensure_future(
            Engine(dataclasses.replace(settings, audit_timeout=bound), progress).run(plan)
        )
        done, _ = await asyncio.wait({task}, timeout=bound + CLOSE_GRACE)
        if not done:
            for transport in list(loop.transports):
                transport.abort()
            done, _ = await asyncio.wait({task}, timeout=CLOSE_GRACE)
            if not done:
                task.cancel()
        return [*mx, *await task]

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(main())


class ProbeCollector(Collector):
    name, families = "DNS and SMTP probes", ("dns", "smtp")

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg

    def _trusted(self, ctx: Context) -> tuple[str, ...]:
        from auditor.collect.postfix import collect as postfix_collect
        from auditor.collect.smtp.vantage import networks_from_mynetworks

        found: list[str] = []
        for d in self.cfg.probe.mynetworks_from:
            pf = postfix_collect(self.cfg.resolve(d))
            found.extend(str(n) for n in networks_from_mynetworks(pf.value("mynetworks")))
        return tuple(dict.fromkeys([*self.cfg.site.trusted_networks, *found, *ctx.trusted_networks]))

    def settings(self, ctx: Context) -> ProbeSettings:
        controls = tuple(dict.fromkeys([*self.cfg.probe.controls, *ctx.controls]))
        return probe_settings(self.cfg, controls=controls, trusted_networks=self._trusted(ctx))

    def prepare(self, ctx: Context) -> None:
        from auditor.collect.smtp.engine import check_settings

        check_settings(probe_settings(self.cfg))

    def plan(self, ctx: Context) -> tuple[list[Any], list[str]]:
        """The DNS answers and the sessions that would be opened (``probe --dry-run``): no SMTP."""
        from auditor.collect.smtp import describe, plan_probes

        settings = self.settings(ctx)
        mx, plan = plan_probes(self.cfg.site.domains, settings)
        return list(mx), describe(plan, settings)

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        # Finish a little before the run's bound, so what was measured is returned, not lost as a gap.
        budget = min(self.cfg.probe.audit_timeout, remaining - CLOSE_GRACE)
        obs = run_bounded(self.cfg.site.domains, self.settings(ctx), ctx.progress, budget)
        ctx.probe_results.extend(obs)
        return obs


class DataProbeCollector(Collector):
    name, families = "DATA probes", ("smtp", "ndr")

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self._source: Any = None
        self._tokens: Any = None

    def prepare(self, ctx: Context) -> None:
        """Open the bounce source first: a sink that cannot listen is an error before any probe."""
        from auditor.collect.dataprobe import SinkUnavailable, bounce_source
        from auditor.collect.sink import TokenStore

        cfg, p = self.cfg, self.cfg.probe
        self._tokens = TokenStore(cfg.resolve(p.sink_token_dir) or None)
        source = bounce_source(
            p.sink_domain,
            self._tokens,
            sink_listen=p.sink_listen,
            sink_maildir=cfg.resolve(p.sink_maildir),
            mailbox=cfg.resolve(p.bounce_mailbox),
            imap=_imap_reader(cfg) if p.bounce_imap_host else None,
        )
        try:
            self._source = ctx.resources.enter_context(source)
        except SinkUnavailable as exc:
            raise InputError(str(exc)) from None

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        from auditor.collect.dataprobe import run_data_probes
        from auditor.observations.smtp import ProbeResult

        # Only the addresses whose unknown-recipient RCPT got an answer get a DATA probe.
        targets = [r for r in ctx.probe_results if isinstance(r, ProbeResult) and r.answered_unknown]
        if not targets:
            return []
        p = self.cfg.probe
        reader, poll = self._source
        return run_data_probes(
            targets,
            sink_domain=p.sink_domain,
            settings=probe_settings(self.cfg),
            register=self._tokens.add,
            reader=reader,
            wait=max(1.0, min(p.bounce_wait, remaining - 5)),
            poll=poll,
            content_mailbox=p.content_test_mailbox,
        )


def _imap_reader(cfg: SiteConfig) -> Callable[[set[str]], list[tuple[str, bytes]]]:
    from auditor.collect.imap_source import ImapSettings, fetch_messages

    p = cfg.probe
    settings = ImapSettings(
        host=p.bounce_imap_host,
        user=p.bounce_imap_user,
        port=p.bounce_imap_port,
        folder=p.bounce_imap_folder,
        password_file=cfg.resolve(p.bounce_imap_password_file),
    )
    last_uid = [0]

    def read(seen: set[str]) -> list[tuple[str, bytes]]:
        out = []
        for path, data in fetch_messages(settings, since_uid=last_uid[0]):
            uid = int(path.rsplit("=", 1)[1])
            last_uid[0] = max(last_uid[0], uid)
            if path not in seen:
                seen.add(path)
                out.append((path, data))
        return out

    return read


# key -> (collector class, "configured in site.toml"). Order matters: configs first (trusted
# networks, ldap: maps), the directory (its valid addresses are the probes' controls), then the
# live probes, then DATA probes.
COLLECTORS: dict[str, tuple[type[Collector], Callable[[SiteConfig], bool]]] = {
    "postfix": (PostfixCollector, lambda c: bool(c.postfix.config_dirs)),
    "logs": (
        LogsCollector,
        lambda c: bool(c.logs.postfix or c.logs.queue or c.logs.queue_live),
    ),
    "exchange": (ExchangeCollector, lambda c: bool(c.exchange.exports)),
    "amavis": (AmavisCollector, lambda c: bool(c.amavis.paths)),
    "exim": (EximCollector, lambda c: bool(c.exim.paths)),
    "ndr": (NdrCollector, lambda c: bool(c.ndr.paths)),
    "directory": (DirectoryCollector, lambda c: bool(c.directory.urls or c.directory.postfix_maps)),
    "probe": (ProbeCollector, lambda c: bool(c.probe.enabled and c.site.domains)),
    "data": (
        DataProbeCollector,
        lambda c: bool(c.probe.enabled and c.probe.data_probes and c.site.domains),
    ),
}


def build_collectors(cfg: SiteConfig, only: Collection[str] | None = None) -> list[Collector]:
    """The collectors site.toml configures, or exactly those named in ``only`` (a single-source command)."""
    unknown = set(only or ()) - set(COLLECTORS)
    if unknown:
        raise ValueError(f"unknown collectors: {sorted(unknown)}")
    out: list[Collector] = []
    for key, (cls, configured) in COLLECTORS.items():
        if (key in only) if only is not None else configured(cfg):
            out.append(cls(cfg))  # type: ignore[call-arg]
    return out
