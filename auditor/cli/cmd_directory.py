"""`directory`: read the recipient directory (LDAP/AD), check it, and test Postfix ldap: maps against it.

The bind password comes from --password-file or the BSA_LDAP_PASSWORD environment variable, never
from the command line (it would show in `ps` and shell history).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from auditor.audit import run_audit
from auditor.cli.args import check_output, limited
from auditor.cli.common import add_report_options, emit, progress_for
from auditor.config import (
    DirectorySection,
    DnsSection,
    PostfixSection,
    ProbeSection,
    SiteConfig,
    SiteSection,
    check_site_config,
)
from auditor.model import InputError
from auditor.secrets import read_secret
from auditor.stages import build_collectors

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
    c.add_argument(
        "--timeout",
        type=limited("directory", "timeout"),
        default=10.0,
        metavar="S",
        help="connect/receive timeout (10 s)",
    )
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
    q.add_argument(
        "--size-limit",
        type=limited("directory", "size_limit", int),
        default=0,
        metavar="N",
        help="entry limit (0 = the server's)",
    )
    q.add_argument(
        "--time-limit",
        type=limited("directory", "time_limit", int),
        default=0,
        metavar="S",
        help="search time limit (0 = the server's)",
    )
    q.add_argument(
        "--page-size",
        type=limited("directory", "page_size", int),
        default=500,
        metavar="N",
        help="paged-results page size (500)",
    )
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
    lp.add_argument(
        "--sample",
        type=limited("directory", "sample", int),
        default=5,
        metavar="N",
        help="valid addresses to probe (5)",
    )
    lp.add_argument("--nameserver", action="append", default=[], metavar="ADDR[:PORT]", help="resolver")
    lp.add_argument("--ehlo", default="", metavar="NAME", help="EHLO name of the probes")
    lp.add_argument("--mail-from", default="", metavar="ADDR", help="envelope sender of the probes")
    lp.add_argument(
        "--probe-timeout", type=limited("probe", "timeout"), default=30.0, metavar="S", help="per SMTP stage"
    )
    add_report_options(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SiteConfig:
    """The settings site.toml would give for the same run (the password stays in its file)."""
    directory = DirectorySection(
        urls=tuple(args.ldap_url),
        bind_dn=args.bind_dn or "",
        password_file=args.password_file or "",
        base=args.base or "",
        filter=args.filter or "",
        profile=args.profile,
        start_tls=args.start_tls,
        ca_file=args.ca_file or "",
        verify_tls=not args.insecure_skip_verify,
        domains=tuple(args.domain),
        attributes=tuple(args.attribute),
        sample=args.sample,
        timeout=args.timeout,
        follow_referrals=args.follow_referrals,
        page_size=args.page_size,
        size_limit=args.size_limit,
        time_limit=args.time_limit,
        postfix_maps=tuple(args.postfix_map),
        postmap=not args.no_postmap,
    )
    probe = ProbeSection(
        ehlo=args.ehlo, mail_from=args.mail_from, timeout=args.probe_timeout, enabled=args.probe
    )
    cfg = SiteConfig(
        site=SiteSection(domains=tuple(args.domain) if args.probe else ()),
        dns=DnsSection(nameservers=tuple(args.nameserver)),
        directory=directory,
        probe=probe,
        postfix=PostfixSection(config_dirs=(args.postfix_dir,) if args.postfix_dir else ()),
    )
    return check_site_config(cfg)


def run(args: argparse.Namespace) -> int:
    check_output(args.output)
    if not args.ldap_url and not args.postfix_map and not args.postfix_dir:
        raise InputError("give --ldap-url (and/or --postfix-map / --postfix-dir)")
    if args.probe and (not args.ldap_url or not args.domain):
        raise InputError("--probe needs --ldap-url and at least one --domain")
    if args.bind_dn and args.ldap_url and read_secret(args.password_file, PASSWORD_ENV, "password") is None:
        raise InputError(f"--bind-dn needs --password-file or the {PASSWORD_ENV} environment variable")
    cfg = config_from_args(args)
    only = ["directory"]
    if args.postfix_dir:
        only.append("postfix")
    if args.probe:
        only.append("probe")
    inputs = [*args.ldap_url, *([args.postfix_dir] if args.postfix_dir else []), *args.postfix_map]
    command = "directory " + " ".join(shlex.quote(x) for x in inputs)
    report = run_audit(
        cfg,
        build_collectors(cfg, only),
        command=command,
        progress=progress_for(args, label=""),
        announce=False,
        scope=args.domain,
        inputs=inputs,
    )
    return emit(report, args)
