"""Build the audit's stages from site.toml: which collectors run, with which settings.

The glue between the configuration and each collector's own API; no judgement here. Stages run in
order and may pass facts forward through a shared :class:`Context` (the directory's sample of valid
addresses becomes the probes' controls; the probes' MX addresses become the DATA probes' targets).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from auditor.audit import Stage
from auditor.config import SiteConfig
from auditor.model import InputError, Observation
from auditor.observations.postfix import PostfixConfig


@dataclass
class Context:
    controls: list[str] = field(default_factory=list)
    probe_results: list[Observation] = field(default_factory=list)
    trusted_networks: list[str] = field(default_factory=list)
    postfix_configs: list[PostfixConfig] = field(default_factory=list)
    # Where collectors report what they are doing (the audit's live line on a terminal).
    progress: Callable[[str], None] = field(default=lambda message: print(message, file=sys.stderr))


def postfix_stage(cfg: SiteConfig, ctx: Context) -> Stage | None:
    dirs = [cfg.resolve(d) for d in cfg.postfix.config_dirs]
    if not dirs:
        return None

    def run(_remaining: float) -> Sequence[Observation]:
        from auditor.collect.postfix import collect
        from auditor.collect.smtp.vantage import networks_from_mynetworks

        configs = [collect(d) for d in dirs]
        ctx.postfix_configs.extend(configs)
        for c in configs:  # the MXs trust these: probing from inside them proves nothing
            ctx.trusted_networks.extend(str(n) for n in networks_from_mynetworks(c.value("mynetworks")))
        return configs

    return Stage("postfix lint", ("postfix",), run)


def exchange_stage(cfg: SiteConfig, ctx: Context) -> Stage | None:
    files = [cfg.resolve(f) for f in cfg.exchange.exports]
    if not files:
        return None

    def run(_remaining: float) -> Sequence[Observation]:
        from auditor.collect import exchange

        return exchange.collect(files)

    return Stage("exchange lint", ("exchange",), run)


def ndr_stage(cfg: SiteConfig, ctx: Context) -> Stage | None:
    paths = [cfg.resolve(p) for p in cfg.ndr.paths]
    if not paths:
        return None

    def run(_remaining: float) -> Sequence[Observation]:
        from auditor.bounces import CapturedNdr, analyse_bytes, iter_messages

        return [CapturedNdr.from_analysis(analyse_bytes(data, path)) for path, data in iter_messages(paths)]

    return Stage("NDR analysis", ("ndr",), run)


def _ldap_password(cfg: SiteConfig) -> str | None:
    """From the password file, else BSA_LDAP_PASSWORD; never from site.toml or the command line."""
    from auditor.secrets import read_secret

    return read_secret(
        cfg.resolve(cfg.directory.password_file), "BSA_LDAP_PASSWORD", "directory.password_file"
    )


def _probe_safe(address: str) -> bool:
    from auditor.collect.smtp.engine import check_address

    try:
        check_address(address, "control")
    except InputError:
        return False
    return True


def directory_stage(cfg: SiteConfig, ctx: Context) -> Stage | None:
    d = cfg.directory
    if not d.urls:
        return None

    def run(_remaining: float) -> Sequence[Observation]:
        from auditor.collect.ldap import DirectoryQuery, LdapSettings, collect, sample_addresses
        from auditor.collect.ldap.sample import map_samples
        from auditor.collect.postfix.ldap_table import check_map, ldap_maps, parse_ldap_table

        password = _ldap_password(cfg)
        if d.bind_dn and password is None:
            raise InputError("directory.bind_dn needs directory.password_file or BSA_LDAP_PASSWORD", cfg.path)
        settings = LdapSettings(
            urls=tuple(d.urls),
            start_tls=d.start_tls,
            ca_file=cfg.resolve(d.ca_file) or None,
            verify=d.verify_tls,
            bind_dn=d.bind_dn or None,
            password=password,
        )
        query = DirectoryQuery(
            base=d.base or None,
            filter=d.filter or None,
            profile=d.profile,
            domains=tuple(d.domains or cfg.site.domains),
            attributes=tuple(d.attributes),
        )
        dir_obs = collect(settings, query)
        out: list[Observation] = [dir_obs]
        # Valid addresses from the directory become the probes' controls: every MX must accept them.
        # (An address the SMTP probe cannot send, e.g. with spaces or 8-bit, is left out, not fatal.)
        ctx.controls.extend(a for a in sample_addresses(dir_obs, d.sample) if _probe_safe(a))
        for pf in ctx.postfix_configs:
            for path, used_by in ldap_maps(pf):
                table = parse_ldap_table(path)
                out.extend(check_map(path, map_samples(dir_obs, table.domain), used_by=used_by))
        return out

    return Stage("recipient directory", ("directory",), run)


def probe_stage(cfg: SiteConfig, ctx: Context) -> Stage | None:
    if not (cfg.probe.enabled and cfg.site.domains):
        return None

    def run(remaining: float) -> Sequence[Observation]:
        from auditor.collect.smtp import probe_domains, settings_from_site

        controls = tuple(dict.fromkeys([*cfg.probe.controls, *ctx.controls]))
        trusted = tuple(dict.fromkeys([*cfg.site.trusted_networks, *ctx.trusted_networks]))
        settings = settings_from_site(
            cfg,
            controls=controls,
            trusted_networks=trusted,
            audit_timeout=max(1.0, min(cfg.probe.audit_timeout, remaining - 1)),
        )
        obs = probe_domains(cfg.site.domains, settings, ctx.progress)
        ctx.probe_results.extend(obs)
        return obs

    return Stage("DNS and SMTP probes", ("dns", "smtp"), run)


def data_probe_stage(cfg: SiteConfig, ctx: Context) -> Stage | None:
    p = cfg.probe
    if not (p.enabled and p.data_probes and cfg.site.domains):
        return None

    def run(remaining: float) -> Sequence[Observation]:
        from auditor.collect.dataprobe import bounce_source, run_data_probes
        from auditor.collect.sink import TokenStore
        from auditor.collect.smtp import settings_from_site
        from auditor.observations.smtp import ProbeResult

        # run_data_probes takes only the addresses whose unknown-recipient RCPT got an answer.
        targets = [r for r in ctx.probe_results if isinstance(r, ProbeResult) and r.answered_unknown]
        if not targets:
            return []
        settings = settings_from_site(cfg)
        wait = max(1.0, min(p.bounce_wait, remaining - 5))
        tokens = TokenStore(cfg.resolve(p.sink_token_dir) or None)
        source = bounce_source(
            p.sink_domain,
            tokens,
            sink_listen=p.sink_listen,
            sink_maildir=cfg.resolve(p.sink_maildir),
            mailbox=cfg.resolve(p.bounce_mailbox),
            imap=_imap_reader(cfg) if p.bounce_imap_host else None,
        )
        with source as (reader, poll):
            return run_data_probes(
                targets,
                sink_domain=p.sink_domain,
                settings=settings,
                register=tokens.add,
                reader=reader,
                wait=wait,
                poll=poll,
                content_mailbox=p.content_test_mailbox,
            )

    return Stage("DATA probes", ("smtp", "ndr"), run)


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


StageBuilder = Callable[[SiteConfig, Context], "Stage | None"]

# Order matters: configs first (trusted networks, ldap: maps), the directory (its valid addresses are
# the probes' controls), then the live probes, then DATA probes.
BUILDERS: tuple[StageBuilder, ...] = (
    postfix_stage,
    exchange_stage,
    ndr_stage,
    directory_stage,
    probe_stage,
    data_probe_stage,
)


def build_stages(cfg: SiteConfig, progress: Callable[[str], None] | None = None) -> list[Stage]:
    from auditor.collect.smtp.engine import stderr_progress

    ctx = Context(progress=progress or stderr_progress)
    return [s for s in (b(cfg, ctx) for b in BUILDERS) if s is not None]
