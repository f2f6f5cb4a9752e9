"""`probe DOMAIN...`: live RCPT probes of every MX address of the given domains; DATA only with --data."""

from __future__ import annotations

import argparse
from typing import Any

from auditor.audit import run_audit
from auditor.cli.args import check_output, limited
from auditor.cli.common import add_report_options, emit, progress_for
from auditor.collect.base import Context
from auditor.config import DnsSection, MxOverride, ProbeSection, SiteConfig, SiteSection, check_site_config
from auditor.model import InputError
from auditor.stages import ProbeCollector, build_collectors
from auditor.suppress import check_suppression_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "probe",
        help="probe the MX hosts of DOMAINs live (RCPT only; DATA probes only with --data)",
        description="Resolve every MX address of each DOMAIN and ask it, without DATA, about a random "
        "unknown recipient, postmaster@ and your control addresses. Only the named domains are probed. "
        "With --data (opt-in, needs a bounce sink), also send one labelled test message per MX address "
        "to a random unknown recipient and catch the bounce.",
    )
    p.add_argument("domains", metavar="DOMAIN", nargs="+", help="a domain you run mail for")
    p.add_argument("--nameserver", action="append", default=[], metavar="ADDR[:PORT]", help="resolver to ask")
    p.add_argument(
        "--control", action="append", default=[], metavar="ADDRESS", help="a known-valid recipient"
    )
    p.add_argument(
        "--non-mail-domain",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="a domain you own that must not receive mail (checked for a null MX, not probed)",
    )
    p.add_argument(
        "--retry-after",
        type=limited("probe", "retry_after"),
        default=0.0,
        metavar="S",
        help="re-ask 4xx answers after S seconds to tell greylisting from a persistent 4xx",
    )
    p.add_argument(
        "--timeout", type=limited("probe", "timeout"), default=30.0, metavar="S", help="per SMTP stage"
    )
    p.add_argument(
        "--audit-timeout",
        type=limited("probe", "audit_timeout"),
        default=900.0,
        metavar="S",
        help="whole run",
    )
    p.add_argument(
        "--session-delay",
        type=limited("probe", "session_delay"),
        default=1.0,
        metavar="S",
        help="pause between sessions to the same host",
    )
    p.add_argument(
        "--concurrency",
        type=limited("probe", "concurrency", int),
        default=4,
        metavar="N",
        help="hosts probed at once",
    )
    p.add_argument(
        "--allow-external-mx",
        action="store_true",
        help="also probe MX hosts outside the given domains (third-party backup MX; ask them first)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the sessions that would be opened, and exit")
    p.add_argument("--ehlo", default="", metavar="NAME", help="EHLO name (use your prober's FQDN)")
    p.add_argument("--mail-from", default="", metavar="ADDR", help="probe envelope sender (your own domain)")
    p.add_argument("--source-address", default="", metavar="ADDR", help="bind probes to this local address")
    p.add_argument(
        "--trusted-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="networks the MXs trust (mynetworks): probing from inside them is inconclusive",
    )
    p.add_argument("--mynetworks-from", metavar="DIR", help="read trusted networks from a Postfix config dir")
    p.add_argument(
        "--relay-test-domain",
        default="",
        metavar="DOMAIN",
        help="a domain YOU own that this site does not serve: enables the open-relay probe",
    )
    p.add_argument(
        "--mx-override",
        action="append",
        default=[],
        metavar="DOMAIN=HOST[,HOST…]",
        help="probe these hosts (names or addresses, in preference order) for DOMAIN instead of its MX",
    )
    p.add_argument("--no-subdomain-probe", action="store_true", help="skip the random-subdomain probe")
    p.add_argument(
        "--scenarios",
        default="",
        metavar="DIR",
        help="folder of probe scenario TOML files (default: the project's probes/ folder)",
    )
    p.add_argument(
        "--port", type=limited("probe", "port", int), default=25, help=argparse.SUPPRESS
    )  # test labs only
    d = p.add_argument_group(
        "DATA probes (opt-in: one labelled test message per MX address to a random unknown recipient)"
    )
    d.add_argument("--data", action="store_true", help="also send DATA probes and wait for their bounces")
    d.add_argument(
        "--sink-domain", default="", metavar="DOMAIN", help="bounces come back to bsa-<token>@DOMAIN"
    )
    d.add_argument(
        "--sink-listen",
        default="",
        metavar="ADDR:PORT",
        help="run the bounce sink here (DOMAIN's MX = this host)",
    )
    d.add_argument("--sink-maildir", default="bounces", metavar="DIR", help="where the sink writes bounces")
    d.add_argument(
        "--bounce-mailbox", default="", metavar="PATH", help="or read bounces from this Maildir/mbox instead"
    )
    d.add_argument(
        "--token-dir", default="", metavar="DIR", help="write live tokens here for a separately run sink"
    )
    d.add_argument(
        "--bounce-wait",
        type=limited("probe", "bounce_wait"),
        default=120.0,
        metavar="S",
        help="watch for bounces",
    )
    d.add_argument(
        "--content-test-mailbox",
        default="",
        metavar="ADDRESS",
        help="a test mailbox of yours: also send it a GTUBE and an EICAR test message (CF-PROBE-001/002)",
    )
    add_report_options(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SiteConfig:
    """The settings site.toml would give for the same run."""
    overrides: list[MxOverride] = []
    for spec in args.mx_override:
        domain, eq, hosts = spec.partition("=")
        names = tuple(h.strip() for h in hosts.split(",") if h.strip())
        if not eq or not domain.strip() or not names:
            raise InputError(f"--mx-override {spec!r}: expected DOMAIN=HOST[,HOST...]")
        overrides.append(MxOverride(domain.strip(), names))
    if args.data and not args.sink_domain:
        raise InputError("--data needs --sink-domain (DATA probes are refused without a bounce sink)")
    if args.data and not (args.sink_listen or args.bounce_mailbox):
        raise InputError("--data needs --sink-listen ADDR:PORT or --bounce-mailbox PATH to receive bounces")
    if args.content_test_mailbox and not args.data:
        raise InputError("--content-test-mailbox needs --data (the content tests are DATA probes)")
    probe = ProbeSection(
        ehlo=args.ehlo,
        mail_from=args.mail_from,
        controls=tuple(args.control),
        timeout=args.timeout,
        audit_timeout=args.audit_timeout,
        session_delay=args.session_delay,
        concurrency=args.concurrency,
        retry_after=args.retry_after,
        allow_external_mx=args.allow_external_mx,
        source_address=args.source_address,
        relay_test_domain=args.relay_test_domain,
        data_probes=args.data,
        sink_domain=args.sink_domain,
        bounce_wait=args.bounce_wait,
        sink_listen=args.sink_listen,
        sink_maildir=args.sink_maildir,
        sink_token_dir=args.token_dir,
        bounce_mailbox=args.bounce_mailbox,
        content_test_mailbox=args.content_test_mailbox,
        mynetworks_from=(args.mynetworks_from,) if args.mynetworks_from else (),
        subdomain_probe=not args.no_subdomain_probe,
        scenarios=args.scenarios,
        port=args.port,
    )
    site = SiteSection(
        domains=tuple(args.domains),
        non_mail_domains=tuple(args.non_mail_domain),
        trusted_networks=tuple(args.trusted_network),
    )
    dns = DnsSection(nameservers=tuple(args.nameserver))
    return check_site_config(SiteConfig(site=site, dns=dns, mx_override=tuple(overrides), probe=probe))


def run(args: argparse.Namespace) -> int:
    check_output(args.output)
    check_suppression_options(args)  # a bad suppressions file stops the command before any probe
    cfg = config_from_args(args)
    command = "probe " + " ".join(cfg.site.domains)
    collectors = build_collectors(cfg, ("probe", "data") if args.data else ("probe",))
    if args.dry_run:
        probe = next(c for c in collectors if isinstance(c, ProbeCollector))
        probe.prepare(Context())
        mx, lines = probe.plan(Context())
        for rec in mx:
            shape = "null MX" if rec.null_mx else "implicit MX" if rec.implicit else rec.status
            hosts = ", ".join(f"{h.preference} {h.name}" for h in rec.hosts) or "-"
            print(f"dns {rec.target}: {shape}; hosts: {hosts}" + (f" ({rec.detail})" if rec.detail else ""))
        for line in lines:
            print(line)
        return 0
    report = run_audit(
        cfg, collectors, command=command, progress=progress_for(args, label=""), announce=False, inputs=()
    )
    return emit(report, args)
