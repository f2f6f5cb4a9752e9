"""`directory`: read the recipient directory (LDAP/AD), check it, and test Postfix ldap: maps against it.

The bind password comes from --password-file or the BSA_LDAP_PASSWORD environment variable, never
from the command line (it would show in `ps` and shell history).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from auditor.cli.common import add_report_options, emit
from auditor.judge import build_report, now_iso
from auditor.model import InputError, Observation
from auditor.secrets import read_secret

PASSWORD_ENV = "BSA_LDAP_PASSWORD"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "directory",
        help="check the recipient directory (LDAP / Active Directory) and Postfix ldap: maps",
        description="Read every recipient address from LDAP/AD (paged), check it for catch-alls, disabled "
        "accounts, duplicates and domain drift, and test Postfix ldap: maps with sample addresses.",
    )
    c = p.add_argument_group("connection")
    c.add_argument(
        "--ldap-url",
        action="append",
        default=[],
        metavar="URL",
        help="ldap://, ldaps:// or ldapi:// URL; repeat for fail-over (tried in order)",
    )
    c.add_argument("--start-tls", action="store_true", help="StartTLS on ldap:// URLs")
    c.add_argument("--ca-file", metavar="FILE", help="CA certificates to verify the server with")
    c.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        help="do NOT verify the server certificate (testing only)",
    )
    c.add_argument("--bind-dn", metavar="DN", help="bind DN (anonymous bind without it)")
    c.add_argument(
        "--password-file", metavar="FILE", help=f"file holding the bind password (or set {PASSWORD_ENV})"
    )
    c.add_argument("--timeout", type=float, default=10.0, metavar="S", help="connect/receive timeout (10 s)")
    c.add_argument("--follow-referrals", action="store_true", help="follow referrals (off by default)")
    q = p.add_argument_group("search")
    q.add_argument("--base", metavar="DN", help="search base (default: the server's naming context)")
    q.add_argument("--filter", metavar="FILTER", help="extra LDAP filter ANDed with the profile's filter")
    q.add_argument("--profile", choices=("auto", "openldap", "ad"), default="auto")
    q.add_argument("--domain", action="append", default=[], metavar="D", help="accepted domain (repeatable)")
    q.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="ATTR",
        help="extra address attribute (repeatable)",
    )
    q.add_argument("--size-limit", type=int, default=0, metavar="N", help="entry limit (0 = the server's)")
    q.add_argument(
        "--time-limit", type=int, default=0, metavar="S", help="search time limit (0 = the server's)"
    )
    q.add_argument("--page-size", type=int, default=500, metavar="N", help="paged-results page size (500)")
    m = p.add_argument_group("postfix ldap: maps")
    m.add_argument(
        "--postfix-map", action="append", default=[], metavar="FILE", help="ldap_table(5) file to test"
    )
    m.add_argument("--postfix-dir", metavar="DIR", help="Postfix config directory: test its ldap: maps")
    m.add_argument("--no-postmap", action="store_true", help="do not compare with `postmap -q`")
    lp = p.add_argument_group("live sample (--probe)")
    lp.add_argument(
        "--probe",
        action="store_true",
        help="RCPT-probe every MX of the --domain domains: N valid directory addresses must be accepted, "
        "random ones rejected (no DATA)",
    )
    lp.add_argument("--sample", type=int, default=5, metavar="N", help="valid addresses to probe (5)")
    lp.add_argument("--nameserver", action="append", default=[], metavar="ADDR[:PORT]", help="resolver")
    lp.add_argument("--ehlo", default="", metavar="NAME", help="EHLO name of the probes")
    lp.add_argument("--mail-from", default="", metavar="ADDR", help="envelope sender of the probes")
    lp.add_argument("--probe-timeout", type=float, default=30.0, metavar="S", help="per SMTP stage")
    add_report_options(p)
    p.set_defaults(func=run)


def read_password(args: argparse.Namespace) -> str | None:
    """The bind password from --password-file (first line) or the environment; never an argument."""
    return read_secret(args.password_file, PASSWORD_ENV, "password")


def run(args: argparse.Namespace) -> int:
    from auditor.collect.ldap import DirectoryQuery, LdapSettings, collect
    from auditor.collect.ldap.sample import map_samples
    from auditor.collect.postfix.ldap_table import check_map, ldap_maps, parse_ldap_table

    if not args.ldap_url and not args.postfix_map and not args.postfix_dir:
        raise InputError("give --ldap-url (and/or --postfix-map / --postfix-dir)")
    started = now_iso()
    observations: list[Observation] = []
    inputs: list[str] = list(args.ldap_url)
    dir_obs = None
    if args.ldap_url:
        password = read_password(args)
        if args.bind_dn and password is None:
            raise InputError(f"--bind-dn needs --password-file or the {PASSWORD_ENV} environment variable")
        settings = LdapSettings(
            urls=tuple(args.ldap_url),
            start_tls=args.start_tls,
            ca_file=args.ca_file,
            verify=not args.insecure_skip_verify,
            bind_dn=args.bind_dn,
            password=password,
            timeout=args.timeout,
            referrals=args.follow_referrals,
        )
        del password
        query = DirectoryQuery(
            base=args.base,
            filter=args.filter,
            profile=args.profile,
            domains=tuple(args.domain),
            attributes=tuple(args.attribute),
            page_size=args.page_size,
            size_limit=args.size_limit,
            time_limit=args.time_limit,
        )
        dir_obs = collect(settings, query)
        observations.append(dir_obs)
    maps: list[tuple[str, tuple[str, ...]]] = [(f, ()) for f in args.postfix_map]
    if args.postfix_dir:
        from auditor.collect.postfix import collect as collect_postfix

        cfg = collect_postfix(args.postfix_dir)
        observations.append(cfg)
        maps += ldap_maps(cfg)
        inputs.append(args.postfix_dir)
    for path, used_by in maps:
        table = parse_ldap_table(path)
        samples = map_samples(dir_obs, table.domain)
        observations.extend(
            check_map(path, samples, used_by=used_by, use_postmap=False if args.no_postmap else None)
        )
        inputs.append(path)
    if args.probe:
        observations.extend(_live_sample(args, dir_obs))
    command = "directory " + " ".join(shlex.quote(x) for x in inputs)
    report = build_report(observations, command=command, started=started, scope=args.domain, inputs=inputs)
    return emit(report, args)


def _live_sample(args: argparse.Namespace, dir_obs: Any) -> list[Observation]:
    """Probe the domains' MXs with directory addresses as controls (LDAP-SYNC-001 judges them)."""
    from auditor.collect.ldap import sample_addresses
    from auditor.collect.smtp import ProbeSettings, probe_domains
    from auditor.collect.smtp.engine import check_address, stderr_progress

    if dir_obs is None or not args.domain:
        raise InputError("--probe needs --ldap-url and at least one --domain")
    controls = []
    for a in sample_addresses(dir_obs, args.sample):
        try:
            check_address(a, "directory address")
        except InputError:
            continue  # an address SMTP cannot carry (8-bit, spaces): not a probe control
        controls.append(a)
    kw: dict[str, Any] = {
        "controls": tuple(controls),
        "nameservers": tuple(args.nameserver),
        "timeout": args.probe_timeout,
    }
    if args.ehlo:
        kw["ehlo"] = args.ehlo
    if args.mail_from:
        kw["mail_from"] = args.mail_from
    return probe_domains(list(args.domain), ProbeSettings(**kw), stderr_progress)
