"""EXIM-RCPT-001 / EXIM-RCPT-002 / EXIM-CF-001 on hand-written configs, one row per semantic trap."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.collect.exim import collect
from auditor.model import Finding, Status
from auditor.rules import load_all
from auditor.rules.base import Observations

HEAD = "primary_hostname = mx.example.org\nacl_smtp_rcpt = acl_check_rcpt\n"
ROUTERS = """
begin routers
dnslookup:
  driver = dnslookup
  domains = ! +local_domains
  transport = remote_smtp
  no_more
system_aliases:
  driver = redirect
  data = ${lookup{$local_part}lsearch{/etc/aliases}}
localuser:
  driver = accept
  check_local_user
  transport = local_delivery
begin transports
remote_smtp:
  driver = smtp
local_delivery:
  driver = appendfile
  file = /var/mail/$local_part
"""
LISTS = "domainlist local_domains = example.org\ndomainlist relay_to_domains = backup.example.net\n"


def _acl(body: str, lists: str = LISTS, routers: str = ROUTERS, head: str = HEAD) -> str:
    return (
        head + lists + "hostlist relay_from_hosts = 127.0.0.1\nbegin acl\nacl_check_rcpt:\n" + body + routers
    )


def run_rule(tmp_path: Path, rule_id: str, text: str, files: dict[str, str] | None = None) -> list[Finding]:
    conf = tmp_path / "exim.conf"
    conf.write_text(text)
    for name, content in (files or {}).items():
        (tmp_path / name).write_text(content)
    cfg = collect(str(conf), use_exim=False)
    r = load_all()[rule_id]
    return list(r.check(Observations([cfg]), r))


def statuses(findings: list[Finding]) -> dict[str, Status]:
    return {Path(f.target.rsplit(" ", 1)[-1]).name: f.status for f in findings}


SAFE = (
    "  accept hosts = :\n  require verify = recipient\n"
    "  accept domains = +local_domains : +relay_to_domains\n"
)
CASES = [
    # (id, rule, ACL body or whole config, expected per domain)
    (
        "no-verify-relay",
        "EXIM-RCPT-001",
        _acl("  accept domains = +relay_to_domains\n  deny\n"),
        {"backup.example.net": Status.FAIL},
    ),
    (
        "routability-only",
        "EXIM-RCPT-001",
        _acl("  accept domains = +relay_to_domains\n         verify = recipient\n"),
        {"backup.example.net": Status.FAIL},
    ),
    (
        "callout",
        "EXIM-RCPT-001",
        _acl("  accept domains = +relay_to_domains\n         verify = recipient/callout=30s\n"),
        {"backup.example.net": Status.PASS},
    ),
    (
        "callout-defer-ok",
        "EXIM-RCPT-001",
        _acl("  accept domains = +relay_to_domains\n         verify = recipient/callout=30s,defer_ok\n"),
        {"backup.example.net": Status.FAIL},
    ),
    (
        "deny-not-callout",
        "EXIM-RCPT-001",
        _acl(
            "  deny domains = +relay_to_domains\n       !verify = recipient/callout=10s\n"
            "  accept domains = +relay_to_domains\n"
        ),
        {"backup.example.net": Status.PASS},
    ),
    (
        "relay-hosts-first",
        "EXIM-RCPT-001",
        _acl(
            "  accept hosts = +relay_from_hosts\n  accept domains = +relay_to_domains\n"
            "         verify = recipient/callout\n"
        ),
        {"backup.example.net": Status.PASS},
    ),
    ("local-ok", "EXIM-RCPT-002", _acl(SAFE), {"example.org": Status.PASS}),
    (
        "accept-before-verify",
        "EXIM-RCPT-002",
        _acl("  accept domains = +local_domains\n  require verify = recipient\n"),
        {"example.org": Status.FAIL},
    ),
    (
        "postmaster-only-accept",
        "EXIM-RCPT-002",
        _acl("  accept local_parts = postmaster\n         domains = +local_domains\n" + SAFE),
        {"example.org": Status.PASS},
    ),
    (
        "macro-hides-verify",
        "EXIM-RCPT-002",
        "CHECK = verify = recipient\n" + _acl("  accept domains = +local_domains\n         CHECK\n"),
        {"example.org": Status.PASS},
    ),
    (
        "macro-removes-verify",
        "EXIM-RCPT-002",
        "CHECK = condition = yes\n" + _acl("  accept domains = +local_domains\n         CHECK\n"),
        {"example.org": Status.FAIL},
    ),
    (
        "ifdef-off-branch",
        "EXIM-RCPT-002",
        _acl(".ifdef STRICT\n  require verify = recipient\n.endif\n  accept domains = +local_domains\n"),
        {"example.org": Status.FAIL},
    ),
    (
        "ifdef-on-branch",
        "EXIM-RCPT-002",
        "STRICT = 1\n"
        + _acl(".ifdef STRICT\n  require verify = recipient\n.endif\n  accept domains = +local_domains\n"),
        {"example.org": Status.PASS},
    ),
    (
        "nested-acl",
        "EXIM-RCPT-002",
        _acl("  deny !acl = known\n  accept domains = +local_domains\nknown:\n  accept verify = recipient\n"),
        {"example.org": Status.PASS},
    ),
    (
        "unknown-condition-decides",
        "EXIM-RCPT-002",
        _acl(
            "  accept condition = ${lookup ldap{ldap:///o=x?mail?sub?(mail=$local_part)}{yes}{no}}\n  deny\n"
        ),
        {"example.org": Status.INCONCLUSIVE},
    ),
    (
        "unknown-condition-irrelevant",
        "EXIM-RCPT-002",
        _acl("  warn condition = ${lookup ldap{ldap:///o=x}{yes}{no}}\n       add_header = X: y\n" + SAFE),
        {"example.org": Status.PASS},
    ),
    (
        "rcpt-count-expression",
        "EXIM-RCPT-002",
        _acl(
            "  deny condition = ${if and {{>{$rcpt_count}{10}}"
            "{<{$recipients_count}{${eval:$rcpt_count/2}}}}}\n" + "  accept domains = +local_domains\n"
        ),
        {"example.org": Status.FAIL},
    ),
    (
        "catch-all-alias-file",
        "EXIM-RCPT-002",
        _acl(SAFE, routers=ROUTERS.replace("lsearch{/etc/aliases}", "lsearch*{/etc/exim/aliases}")),
        {"example.org": Status.INCONCLUSIVE},
    ),
    ("no-acl-rcpt", "EXIM-RCPT-002", LISTS + ROUTERS, {"exim.conf": Status.PASS}),
    (
        "loopback-only",
        "EXIM-RCPT-002",
        "local_interfaces = <; 127.0.0.1 ; ::1\n" + _acl("  accept domains = +local_domains\n"),
        {"exim.conf": Status.NOT_APPLICABLE},
    ),
]


@pytest.mark.parametrize(("case", "rule_id", "text", "want"), CASES, ids=[c[0] for c in CASES])
def test_rcpt_table(tmp_path: Path, case: str, rule_id: str, text: str, want: dict[str, Status]) -> None:
    findings = run_rule(tmp_path, rule_id, text)
    assert statuses(findings) == want, [(f.target, f.status, f.message) for f in findings]
    for f in findings:
        if f.status is Status.FAIL:
            assert f.location is not None and f.location.line  # file:line evidence
            assert f.remediation.commands, "a fix in Exim's language"
        if f.status is Status.INCONCLUSIVE:
            assert any(e.location and e.location.line for e in f.evidence), (
                "names the line it could not evaluate"
            )


def test_catch_all_in_given_alias_file(tmp_path: Path) -> None:
    """The alias file is in the linted directory: its `*:` entry decides (catch-all → FAIL)."""
    text = _acl(SAFE, routers=ROUTERS.replace("lsearch{/etc/aliases}", "lsearch*{/etc/exim/aliases}"))
    findings = run_rule(
        tmp_path, "EXIM-RCPT-002", text, {"aliases": "postmaster: root\n*: catchall@example.org\n"}
    )
    assert statuses(findings) == {"example.org": Status.FAIL}
    assert "catch-all" in findings[0].message


def test_fix_names_the_statement_to_precede(tmp_path: Path) -> None:
    text = _acl("  accept domains = +relay_to_domains\n         verify = recipient\n")
    (f,) = run_rule(tmp_path, "EXIM-RCPT-001", text)
    lines = [c.line.strip() for c in f.remediation.commands]
    assert lines == ["deny    domains = +relay_to_domains", "!verify = recipient/callout=30s"]
    assert f"{tmp_path}/exim.conf:" in f.remediation.commands[0].changes
    assert f.location is not None and f.location.line == 8  # the accept statement


def test_include_of_the_acl(tmp_path: Path) -> None:
    (tmp_path / "rcpt.acl").write_text("  accept domains = +relay_to_domains\n")
    findings = run_rule(tmp_path, "EXIM-RCPT-001", _acl(".include rcpt.acl\n"))
    assert statuses(findings) == {"backup.example.net": Status.FAIL}
    assert findings[0].location is not None and findings[0].location.path.endswith("rcpt.acl")


def test_placeholder_noted(tmp_path: Path) -> None:
    text = _acl(SAFE, lists="domainlist local_domains = {{ mail_domain }}\ndomainlist relay_to_domains =\n")
    cfg_findings = run_rule(tmp_path, "EXIM-RCPT-002", text)
    assert any("{{ mail_domain }}" in f.note for f in cfg_findings)


CF_CASES = [
    (
        "acl-deny",
        "acl_smtp_data = data\nav_scanner = clamd:/run/clamd.ctl\n",
        "data:\n  deny malware = *\n  accept\n",
        "",
        Status.PASS,
    ),
    (
        "router-fail",
        "",
        "",
        "spam_bounce:\n  driver = redirect\n  condition = ${if def:h_X-Spam-Flag: {yes}{no}}\n  allow_fail\n"
        "  data = :fail: looks like spam\n",
        Status.FAIL,
    ),
    ("nothing", "", "", "", Status.NOT_APPLICABLE),
    ("filter-not-given", "system_filter = /srv/filters/system.filter\n", "", "", Status.INCONCLUSIVE),
]


@pytest.mark.parametrize(("case", "main", "acls", "routers", "want"), CF_CASES, ids=[c[0] for c in CF_CASES])
def test_content_after_acceptance(
    tmp_path: Path, case: str, main: str, acls: str, routers: str, want: Status
) -> None:
    text = (
        main
        + "acl_smtp_rcpt = r\nbegin acl\nr:\n  accept\n"
        + acls
        + "begin routers\n"
        + routers
        + "d:\n  driver = dnslookup\n  transport = t\nbegin transports\nt:\n  driver = smtp\n"
    )
    (f,) = run_rule(tmp_path, "EXIM-CF-001", text)
    assert f.status is want, f.message
    if want is Status.FAIL:
        assert f.location is not None and f.location.line


def test_system_filter_in_given_directory(tmp_path: Path) -> None:
    text = "system_filter = /etc/exim4/system.filter\nacl_smtp_rcpt = r\nbegin acl\nr:\n  accept\n"
    findings = run_rule(
        tmp_path,
        "EXIM-CF-001",
        text,
        {"system.filter": '# Exim filter\nif $h_X-Spam-Flag: is "YES" then\n  fail text "spam"\nendif\n'},
    )
    assert [f.status for f in findings] == [Status.FAIL]
    assert findings[0].location is not None and findings[0].location.line == 3
