"""`probe DOMAIN...`: live RCPT probes of every MX address of the given domains; DATA only with --data."""

from __future__ import annotations

import argparse
from typing import Any

from auditor.cli.common import add_report_options, emit
from auditor.collect.dataprobe import BounceReader, SinkUnavailable, bounce_source, run_data_probes
from auditor.collect.sink import TokenStore
from auditor.engine import build_report, now_iso
from auditor.model import InputError


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or value != value or value == float("inf"):  # negative, NaN, infinite
            raise argparse.ArgumentTypeError(f"must be a finite number, not negative: {text!r}")
        return value

    return parse


def _wait(text: str) -> float:
    value = float(_positive(float)(text))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


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
        type=_positive(float),
        default=0.0,
        metavar="S",
        help="re-ask 4xx answers after S seconds to tell greylisting from a persistent 4xx",
    )
    p.add_argument("--timeout", type=_positive(float), default=30.0, metavar="S", help="per SMTP stage")
    p.add_argument("--audit-timeout", type=_positive(float), default=900.0, metavar="S", help="whole run")
    p.add_argument(
        "--session-delay",
        type=_positive(float),
        default=1.0,
        metavar="S",
        help="pause between sessions to the same host",
    )
    p.add_argument("--concurrency", type=_positive(int), default=4, metavar="N", help="hosts probed at once")
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
    p.add_argument("--port", type=_positive(int), default=25, help=argparse.SUPPRESS)  # test labs only
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
    d.add_argument("--bounce-wait", type=_wait, default=120.0, metavar="S", help="watch for bounces")
    d.add_argument(
        "--content-test-mailbox",
        default="",
        metavar="ADDRESS",
        help="a test mailbox of yours: also send it a GTUBE and an EICAR test message (CF-PROBE-001/002)",
    )
    add_report_options(p)
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    from auditor.collect.smtp.vantage import networks_from_mynetworks, parse_networks
    from auditor.observations.smtp import ProbeSettings

    trusted = [str(n) for n in parse_networks(args.trusted_network)]
    if args.mynetworks_from:
        from auditor.collect.postfix import collect as postfix_collect

        cfg = postfix_collect(args.mynetworks_from)
        trusted.extend(str(n) for n in networks_from_mynetworks(cfg.value("mynetworks")))
    overrides: list[tuple[str, tuple[str, ...]]] = []
    for spec in args.mx_override:
        domain, eq, hosts = spec.partition("=")
        names = tuple(h.strip() for h in hosts.split(",") if h.strip())
        if not eq or not domain.strip() or not names:
            raise InputError(f"--mx-override {spec!r}: expected DOMAIN=HOST[,HOST...]")
        overrides.append((domain.strip().lower().rstrip("."), names))
    if args.concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    kw: dict[str, Any] = {
        "controls": tuple(args.control),
        "nameservers": tuple(args.nameserver),
        "non_mail_domains": tuple(args.non_mail_domain),
        "timeout": args.timeout or 30.0,
        "audit_timeout": args.audit_timeout or 900.0,
        "session_delay": args.session_delay,
        "concurrency": args.concurrency,
        "retry_after": args.retry_after,
        "allow_external_mx": args.allow_external_mx,
        "source_address": args.source_address,
        "trusted_networks": tuple(trusted),
        "relay_test_domain": args.relay_test_domain,
        "subdomain_probe": not args.no_subdomain_probe,
        "port": args.port,
        "mx_overrides": tuple(overrides),
        "scenarios_dir": args.scenarios,
    }
    if args.ehlo:
        kw["ehlo"] = args.ehlo
    if args.mail_from:
        if "@" not in args.mail_from or any(c in args.mail_from for c in "<> \r\n"):
            raise InputError(f"--mail-from {args.mail_from!r}: not a plain address")
        kw["mail_from"] = args.mail_from
    return ProbeSettings(**kw)


def run(args: argparse.Namespace) -> int:
    from auditor.collect.dns import normalize_domain
    from auditor.collect.smtp import describe, plan_probes, probe_domains
    from auditor.collect.smtp.engine import stderr_progress

    settings = settings_from_args(args)
    domains = [normalize_domain(d) for d in args.domains]
    for c in settings.controls:
        if c.rpartition("@")[2].lower() not in domains:
            raise InputError(f"--control {c!r}: must be an address in one of the domains probed")
    command = "probe " + " ".join(domains)
    if args.dry_run:
        mx, plan = plan_probes(domains, settings)
        for rec in mx:
            shape = "null MX" if rec.null_mx else "implicit MX" if rec.implicit else rec.status
            hosts = ", ".join(f"{h.preference} {h.name}" for h in rec.hosts) or "-"
            print(f"dns {rec.target}: {shape}; hosts: {hosts}" + (f" ({rec.detail})" if rec.detail else ""))
        for line in describe(plan, settings):
            print(line)
        return 0
    if args.data and not args.sink_domain:
        raise InputError("--data needs --sink-domain (DATA probes are refused without a bounce sink)")
    if args.data and not (args.sink_listen or args.bounce_mailbox):
        raise InputError("--data needs --sink-listen ADDR:PORT or --bounce-mailbox PATH to receive bounces")
    if args.content_test_mailbox and not args.data:
        raise InputError("--content-test-mailbox needs --data (the content tests are DATA probes)")
    if args.content_test_mailbox and args.content_test_mailbox.rpartition("@")[2].lower() not in domains:
        raise InputError("--content-test-mailbox must be an address in one of the domains probed")
    started = now_iso()
    if not args.data:
        observations = probe_domains(domains, settings, progress=stderr_progress)
    else:
        # The bounce source first: a sink that cannot listen is an error before any probe is sent.
        tokens = TokenStore(args.token_dir or None)
        source = bounce_source(
            args.sink_domain,
            tokens,
            sink_listen=args.sink_listen,
            sink_maildir=args.sink_maildir,
            mailbox=args.bounce_mailbox,
        )
        try:
            with source as (reader, poll):
                observations = probe_domains(domains, settings, progress=stderr_progress)
                observations += _data_probes(args, settings, observations, tokens, reader, poll)
        except SinkUnavailable as exc:
            raise InputError(str(exc)) from None
    report = build_report(observations, command=command, started=started, scope=domains)
    return emit(report, args)


def _data_probes(
    args: argparse.Namespace,
    settings: Any,
    observations: list[Any],
    tokens: TokenStore,
    reader: BounceReader,
    poll: float,
) -> list[Any]:
    from auditor.observations.smtp import ProbeResult

    targets = [o for o in observations if isinstance(o, ProbeResult) and o.answered_unknown]
    return run_data_probes(
        targets,
        sink_domain=args.sink_domain,
        settings=settings,
        register=tokens.add,
        reader=reader,
        wait=args.bounce_wait,
        poll=poll,
        content_mailbox=args.content_test_mailbox,
    )
