"""PF-RCPT-004 on an ldap: recipient map queried against a REAL private slapd on 127.0.0.1.

The config directory holds main.cf and the map file (as an admin hands over a copy); the collector
finds the map file in the directory, the directory engineer's ``check_map`` queries it, and
PF-RCPT-004 must agree with LDAP-SYNC-001. Skips without slapd (fails under CI=true).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.collect.ldap.sample import map_samples
from auditor.collect.postfix import collect
from auditor.collect.postfix.ldap_table import check_map, ldap_maps
from auditor.judge import evaluate
from auditor.lab.ldap_data import Defects, openldap_tree
from auditor.lab.slapd import Slapd
from auditor.model import Status
from tests.conftest import need_tool

SUFFIX = "dc=example,dc=test"
PASSWORD = "pw-H11-never-print"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=[False, True], ids=["clean", "catch-all"])
def slapd_tree(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Slapd, bool]]:
    need_tool("slapd")
    need_tool("slapadd")
    need_tool("openssl")
    catch_all = bool(request.param)
    s = Slapd(tmp_path / "slapd", SUFFIX, port=_port(), tls_port=_port(), password=PASSWORD)
    try:
        s.load(openldap_tree(SUFFIX, Defects(catch_all=catch_all)).ldif)
        s.start(timeout=15)
        yield s, catch_all
    finally:
        s.cleanup()


def test_rcpt004_judges_the_ldap_map_from_real_lookups(
    slapd_tree: tuple[Slapd, bool], tmp_path: Path
) -> None:
    s, catch_all = slapd_tree
    d = tmp_path / "postfix"
    d.mkdir()
    (d / "ldap-mailboxes.cf").write_text(
        f"server_host = {s.url}\nversion = 3\nsearch_base = {SUFFIX}\n"
        "query_filter = (|(mail=%s)(mailLocalAddress=%s))\n"
        f"result_attribute = mail\nbind_dn = {s.root_dn}\nbind_pw = {PASSWORD}\n"
    )
    (d / "main.cf").write_text(
        "compatibility_level = 3.6\nvirtual_mailbox_domains = example.test, example.org\n"
        "virtual_mailbox_maps = proxy:ldap:/etc/postfix/ldap-mailboxes.cf\n"
    )
    cfg = collect(str(d), use_postconf=False)
    maps = ldap_maps(cfg)
    assert maps == [(str(d / "ldap-mailboxes.cf"), ("virtual_mailbox_maps",))]  # found in DIR
    path, used_by = maps[0]
    # the planted catch-all is "@example.org" (ldap_data): sample that domain
    checks = check_map(path, map_samples(None, ("example.org",)), used_by=used_by, use_postmap=False)
    assert not [c for c in checks if c.error]
    findings = evaluate([cfg, *checks])
    table = [f for f in findings if f.rule_id == "PF-RCPT-004" and f.target.endswith("ldap-mailboxes.cf")]
    assert len(table) == 1
    assert table[0].status is (Status.FAIL if catch_all else Status.PASS), table[0].message
    sync = {f.status for f in findings if f.rule_id == "LDAP-SYNC-001" and f.status is Status.FAIL}
    assert bool(sync) is catch_all  # the two rules agree
    assert PASSWORD not in repr(findings)
