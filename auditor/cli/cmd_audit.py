"""`audit --config site.toml`: everything the site file configures, in one report; `init` writes one."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from typing import Any

from auditor.audit import run_audit
from auditor.cli.args import check_output
from auditor.cli.common import (
    add_report_options,
    apply_report_options,
    progress_for,
    write_output,
    write_report,
)
from auditor.config import SITE_TOML_TEMPLATE, load_site_config
from auditor.model import InputError, Report, Severity
from auditor.render import RenderOptions, render
from auditor.stages import build_collectors
from auditor.suppress import check_suppression_options, load_suppressions


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="run the whole audit described by site.toml")
    p.add_argument("--config", "-c", default="site.toml", metavar="site.toml")
    p.add_argument("--output-dir", metavar="DIR", help="write the configured report formats here")
    add_report_options(p)
    p.set_defaults(func=run, fail_on=None)  # None: site.toml's report.fail_on decides
    i = sub.add_parser("init", help="write a commented site.toml to start from")
    i.add_argument("path", nargs="?", default="site.toml")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(func=run_init)


def write_report_files(report: Report, formats: tuple[str, ...], directory: str) -> list[str]:
    """Write one file per format (report.html, report.md, report.json, …) and return their paths."""
    ext = {"markdown": "md", "text": "txt", "junit": "xml"}
    try:
        os.makedirs(directory, exist_ok=True)  # the configured output directory is made on demand
    except OSError as exc:
        raise InputError(f"cannot create the report directory: {exc.strerror or exc}", directory) from None
    paths = []
    # A Markdown report cut short for size names the full one beside it.
    full = next((f"report.{ext.get(f, f)}" for f in ("html", "json") if f in formats), "")
    for fmt in formats:
        path = os.path.join(directory, f"report.{ext.get(fmt, fmt)}")
        write_output(render(report, fmt, RenderOptions(full_report=full)), path)
        paths.append(path)
    return paths


def run(args: argparse.Namespace) -> int:
    check_output(args.output)
    cfg = load_site_config(args.config)
    if not cfg.site.domains and not (
        cfg.postfix.config_dirs
        or cfg.exchange.exports
        or cfg.amavis.paths
        or cfg.exim.paths
        or cfg.ndr.paths
        or cfg.logs.postfix
    ):
        raise InputError("nothing to audit: set site.domains or a config/export to lint", args.config)
    # Read before any probe is sent: a broken suppressions file must not cost a whole audit.
    sups = load_suppressions(cfg.resolve(cfg.report.suppressions)) if cfg.report.suppressions else []
    check_suppression_options(args)
    command = f"audit --config {args.config}"
    report = run_audit(cfg, build_collectors(cfg), command=command, progress=progress_for(args))
    # --fail-on given on the command line wins over report.fail_on in site.toml.
    fail_on = Severity(args.fail_on or cfg.report.fail_on)
    report = apply_report_options(report, args, fail_on=fail_on, suppressions=sups, today=date.today())
    out_dir = args.output_dir or cfg.resolve(cfg.report.output_dir)
    for path in write_report_files(report, cfg.report.formats, out_dir):
        print(f"[audit] wrote {path}", file=sys.stderr)
    return write_report(report, args)  # --format/--output with the view options and --exit-zero


def run_init(args: argparse.Namespace) -> int:
    if os.path.exists(args.path) and not args.force:
        raise InputError("exists already (use --force to overwrite)", args.path)
    check_output(args.path, "site.toml")
    write_output(SITE_TOML_TEMPLATE, args.path)
    print(
        f"wrote {args.path}: edit site.domains, then run `backscatter-audit audit --config {args.path}`",
        file=sys.stderr,
    )
    return 0
