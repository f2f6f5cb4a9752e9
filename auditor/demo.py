"""The demo: a full audit of the built-in lab site (real Postfix, slapd and DNS in namespaces).

``run_demo`` brings the lab up, writes the site.toml an administrator would write for that site
(so the demo doubles as a worked example), runs the same audit as ``backscatter-audit audit``, writes
the reports, and tears the lab down.
"""

from __future__ import annotations

import os

from auditor.audit import run_audit
from auditor.config import load_site_config
from auditor.lab.info import LabInfo
from auditor.model import Report
from auditor.progress import Progress
from auditor.stages import build_collectors


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def lab_site_toml(info: LabInfo, data_probes: bool = True) -> str:
    """The site.toml of the lab site: what its administrator would write to audit it."""
    ldap = info.ldap
    controls = [ldap.known_valid] if ldap else []
    lines = [
        "# Site description of the built-in demo lab (written by `backscatter-audit demo`).",
        "[site]",
        'name = "Backscatter Auditor demo lab"',
        f"domains = {_toml_list(list(info.scope()))}",
        "",
        "[dns]",
        f'nameservers = ["{info.nameserver.host}:{info.nameserver.port}"]',
        "timeout = 3.0",
        "",
        "[probe]",
        'ehlo = "prober.lab.test"',
        f'mail_from = "probe@{info.sink_domain}"',
        f"controls = {_toml_list(controls)}",
        "timeout = 10.0",
        "audit_timeout = 240.0",
        "session_delay = 0.1",
        f"retry_after = {info.greylist_delay_s + 1}.0",
        f"data_probes = {'true' if data_probes else 'false'}",
        f'sink_domain = "{info.sink_domain}"',
        f'bounce_mailbox = "{info.bounce_maildir}"',
        f'sink_token_dir = "{info.sink_token_dir}"',
        "bounce_wait = 20.0",
        "",
        "[postfix]",
        f"config_dirs = {_toml_list([p.config_dir for p in info.postfix])}",
        "",
    ]
    if ldap:
        lines += [
            "[directory]",
            f'urls = ["{ldap.url}"]',
            f'bind_dn = "{ldap.bind_dn}"',
            f'password_file = "{ldap.secret_file}"',
            f'base = "{ldap.suffix}"',
            f'domains = ["{ldap.domain}"]',
            "sample = 3",
            "",
        ]
    lines += [
        "[report]",
        'output_dir = "."  # this file is written into the output directory',
        'formats = ["html", "markdown", "json"]',
        "",
    ]
    return "\n".join(lines)


def audit_lab(
    info: LabInfo, output_dir: str, *, data_probes: bool = True, progress: Progress | None = None
) -> Report:
    """Audit a running lab as its administrator would: write its site.toml, run the audit, write reports."""
    from auditor.cli.cmd_audit import write_report_files

    progress = progress or Progress()
    os.makedirs(output_dir, exist_ok=True)
    site = os.path.join(output_dir, "site.toml")
    with open(site, "w", encoding="utf-8") as fh:
        fh.write(lab_site_toml(info, data_probes))
    cfg = load_site_config(site)
    report = run_audit(cfg, build_collectors(cfg), command="demo", progress=progress)
    write_report_files(report, cfg.report.formats, output_dir)
    return report


def run_demo(output_dir: str, *, data_probes: bool = True, progress: Progress | None = None) -> Report:
    """Lab up → audit → lab down; the lab is held for the whole run so no test can tear it down."""
    from auditor.lab import Lab
    from auditor.lab.orchestrator import session

    progress = progress or Progress()
    with session(timeout=600), Lab() as info:
        progress(f"lab up in {info.bringup_seconds:.1f} s: {', '.join(info.scope())}")
        return audit_lab(info, output_dir, data_probes=data_probes, progress=progress)
