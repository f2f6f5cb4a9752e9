"""The directory collector, rules and ldap: map checks against a REAL private slapd on loopback.

Each test starts its own slapd (cn=config via slapadd, ~0.15 s) on 127.0.0.1 with free high ports
and a throw-away CA; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.collect.ldap import DirectoryQuery, DirectoryRecipients, LdapSettings, collect
from auditor.collect.ldap.sample import map_samples, sample_addresses
from auditor.collect.postfix.ldap_table import check_map
from auditor.judge import evaluate
from auditor.lab.ldap_data import Defects, Tree, ad_tree, bulk_users, openldap_tree
from auditor.lab.slapd import Slapd
from auditor.model import Finding, Status
from auditor.observations.postfix import LdapMapCheck
from tests.conftest import need_tool

pytestmark = pytest.mark.integration

PASSWORD = "pw-Zx9-never-print"
SUFFIX = "dc=example,dc=test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def make_slapd(tmp_path: Path) -> Iterator[Callable[..., Slapd]]:
    need_tool("slapd")
    need_tool("slapadd")
    need_tool("openssl")
    started: list[Slapd] = []

    def make(ldif: str, **kw: Any) -> Slapd:
        s = Slapd(
            tmp_path / f"slapd{len(started)}",
            SUFFIX,
            port=free_port(),
            tls_port=free_port(),
            password=PASSWORD,
            **kw,
        )
        started.append(s)
        s.load(ldif)
        s.start(timeout=15)
        return s

    yield make
    for s in started:
        s.cleanup()


def settings(s: Slapd, url: str | None = None, **kw: Any) -> LdapSettings:
    base: dict[str, Any] = {
        "ca_file": str(s.ca_file),
        "bind_dn": s.root_dn,
        "password": PASSWORD,
        "timeout": 5.0,
    }
    base.update(kw)
    return LdapSettings(urls=(url or s.ldaps_url,), **base)


def by_rule(findings: list[Finding]) -> dict[str, set[Status]]:
    out: dict[str, set[Status]] = {}
    for f in findings:
        out.setdefault(f.rule_id, set()).add(f.status)
    return out


def as_sets(obs: DirectoryRecipients) -> dict[str, frozenset[str]]:
    return {d: frozenset(book) for d, book in obs.recipients.items()}


# --- exact recipient sets, both TLS modes -----------------------------------------------------------


def test_openldap_tree_exact_over_starttls(make_slapd: Callable[..., Slapd]) -> None:
    tree = openldap_tree(SUFFIX)
    s = make_slapd(tree.ldif)
    obs = collect(settings(s, s.url, start_tls=True), DirectoryQuery(domains=tree.domains))
    assert obs.complete, obs.error
    assert obs.connection.tls == "starttls" and obs.connection.verified
    assert obs.profile == "openldap"  # auto: slapd's root DSE has no AD markers
    assert as_sets(obs) == tree.expected
    found = by_rule(evaluate([obs]))
    assert found["LDAP-ADDR-002"] == found["LDAP-DUP-001"] == found["LDAP-DOM-001"] == {Status.PASS}
    assert found["LDAP-ACCT-001"] == {Status.NOT_APPLICABLE}


def test_ad_tree_exact_over_ldaps(make_slapd: Callable[..., Slapd]) -> None:
    tree = ad_tree(SUFFIX)
    s = make_slapd(tree.ldif)
    obs = collect(settings(s), DirectoryQuery(profile="ad", domains=tree.domains))
    assert obs.complete, obs.error
    assert obs.connection.tls == "ldaps" and obs.connection.verified
    assert as_sets(obs) == tree.expected
    # shared/room/equipment mailboxes are disabled accounts, and exempt
    assert {e.exempt for e in obs.disabled} == {"shared mailbox", "room mailbox", "equipment mailbox"}
    assert obs.external_targets >= 2  # contact + mail user targetAddress: not out-of-domain defects
    found = by_rule(evaluate([obs]))
    for rid in (
        "LDAP-ADDR-001",
        "LDAP-ADDR-002",
        "LDAP-ACCT-001",
        "LDAP-DUP-001",
        "LDAP-DOM-001",
        "LDAP-GRP-001",
    ):
        assert found[rid] == {Status.PASS}, rid
    controls = sample_addresses(obs, 3)
    assert len(controls) == 3 and set(controls) <= tree.expected["example.test"]


# --- each planted defect fires its rule, and only with the defect ----------------------------------

CASES = [
    ("openldap", "catch_all", "LDAP-ADDR-002"),
    ("openldap", "duplicate", "LDAP-DUP-001"),
    ("openldap", "foreign", "LDAP-DOM-001"),
    ("openldap", "empty_domain", "LDAP-DOM-002"),
    ("ad", "catch_all", "LDAP-ADDR-002"),
    ("ad", "disabled", "LDAP-ACCT-001"),
    ("ad", "duplicate", "LDAP-DUP-001"),
    ("ad", "foreign", "LDAP-DOM-001"),
    ("ad", "empty_domain", "LDAP-DOM-002"),
    ("ad", "restricted_group", "LDAP-GRP-001"),
]


def _tree(profile: str, defects: Defects) -> Tree:
    return (ad_tree if profile == "ad" else openldap_tree)(SUFFIX, defects)


@pytest.mark.parametrize(("profile", "defect", "rule_id"), CASES)
def test_planted_defect(make_slapd: Callable[..., Slapd], profile: str, defect: str, rule_id: str) -> None:
    for on in (True, False):
        tree = _tree(profile, Defects(**{defect: on}))
        s = make_slapd(tree.ldif)
        obs = collect(settings(s), DirectoryQuery(profile=profile, domains=tree.domains))
        s.cleanup()
        assert obs.complete, obs.error
        expected = tree.expected
        if defect == "disabled" and on:
            # the leaver's account is disabled: its address is reported (LDAP-ACCT-001) but is no valid
            # recipient, and never a probe control; the shared/room/equipment mailboxes stay valid
            leaver = "leaver@example.test"
            assert leaver in tree.expected["example.test"]  # the lab lists every address it planted
            expected = {**tree.expected, "example.test": tree.expected["example.test"] - {leaver}}
            assert {"info@example.test", "room1@example.test"} <= obs.all_addresses()
            assert [e.addresses for e in obs.disabled if not e.exempt] == [(leaver,)]
            assert leaver not in sample_addresses(obs, 100)
        assert as_sets(obs) == expected
        found = [f for f in evaluate([obs]) if f.rule_id == rule_id]
        statuses = {f.status for f in found}
        if on:
            assert statuses == {Status.FAIL}, (defect, found)
            offender = tree.planted[defect]
            assert any(offender in f.target or offender in f.message for f in found), found
        else:
            assert statuses == {Status.PASS}, (defect, found)


def test_paged_search_streams_pages(make_slapd: Callable[..., Slapd]) -> None:
    s = make_slapd("".join(bulk_users(SUFFIX, 250)))
    obs = collect(settings(s), DirectoryQuery(profile="openldap", page_size=100, domains=("example.test",)))
    assert obs.complete, obs.error
    assert obs.entries == 250 and obs.pages == 3
    assert as_sets(obs) == {"example.test": frozenset(f"user{i}@example.test" for i in range(1, 251))}


# --- faults: never a pass, never a traceback ---------------------------------------------------------


def _inconclusive(obs: DirectoryRecipients, fragment: str) -> None:
    assert not obs.complete
    assert fragment in obs.error, obs.error
    found = evaluate([obs])
    assert found and Status.PASS not in {f.status for f in found}
    head = [f for f in found if f.rule_id == "LDAP-ADDR-001"]
    assert head[0].status is Status.INCONCLUSIVE and fragment in head[0].message


def test_server_down() -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    obs = collect(LdapSettings((dead,), timeout=3), DirectoryQuery(domains=("example.test",)))
    _inconclusive(obs, "connection refused")


def test_failover_to_second_url(make_slapd: Callable[..., Slapd]) -> None:
    tree = openldap_tree(SUFFIX)
    s = make_slapd(tree.ldif)
    dead = f"ldap://127.0.0.1:{free_port()}"
    st = LdapSettings((dead, s.ldaps_url), ca_file=str(s.ca_file), bind_dn=s.root_dn, password=PASSWORD)
    obs = collect(st, DirectoryQuery(domains=tree.domains))
    assert obs.complete and obs.connection.url == s.ldaps_url
    assert [a.ok for a in obs.connection.attempts] == [False, True]
    assert as_sets(obs) == tree.expected


def test_wrong_password(make_slapd: Callable[..., Slapd]) -> None:
    s = make_slapd(openldap_tree(SUFFIX).ldif)
    obs = collect(settings(s, password="wrong"), DirectoryQuery())
    _inconclusive(obs, "invalidCredentials")


def test_tls_name_mismatch(make_slapd: Callable[..., Slapd]) -> None:
    s = make_slapd(openldap_tree(SUFFIX).ldif, cert_names=("ldap.other.test",))
    _inconclusive(collect(settings(s), DirectoryQuery()), "does not match the host name")
    _inconclusive(
        collect(settings(s, s.url, start_tls=True), DirectoryQuery()), "does not match the host name"
    )
    # the same server with verification explicitly off is readable
    assert collect(settings(s, verify=False), DirectoryQuery()).complete


def test_unknown_ca(make_slapd: Callable[..., Slapd]) -> None:
    s = make_slapd(openldap_tree(SUFFIX).ldif)
    _inconclusive(collect(settings(s, ca_file=None), DirectoryQuery()), "certificate verify failed")


def test_size_limit_hit(make_slapd: Callable[..., Slapd]) -> None:
    s = make_slapd(
        "".join(bulk_users(SUFFIX, 250)), size_limit="size.soft=100 size.hard=100 size.prtotal=100"
    )
    # the root DN is exempt from limits; an ordinary account is not
    obs = collect(settings(s, bind_dn=s.reader_dn, password="reader-secret"), DirectoryQuery(page_size=50))
    _inconclusive(obs, "size limit exceeded")
    assert obs.entries == 100
    # and a client-side --size-limit below the directory size
    obs = collect(settings(s), DirectoryQuery(page_size=50, size_limit=120))
    _inconclusive(obs, "size limit exceeded")


class StallProxy:
    """A TCP proxy on 127.0.0.1 that forwards the server's first ``stall_after`` bytes, then stops
    forwarding (connection left open): a server that stops answering mid-page."""

    def __init__(self, upstream_port: int, stall_after: int) -> None:
        self.upstream_port = upstream_port
        self.stall_after = stall_after
        self.port = 0
        self.forwarded = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._writers: list[asyncio.StreamWriter] = []

    def __enter__(self) -> StallProxy:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        for w in self._writers:
            w.close()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [cwriter, uwriter]

        async def up() -> None:
            while data := await creader.read(65536):
                uwriter.write(data)
                await uwriter.drain()

        async def down() -> None:
            while self.forwarded < self.stall_after and (data := await ureader.read(1024)):
                data = data[: self.stall_after - self.forwarded]
                self.forwarded += len(data)
                cwriter.write(data)
                await cwriter.drain()
            await asyncio.sleep(3600)  # stalled: bounded by the test's proxy lifetime

        with contextlib.suppress(Exception):
            await asyncio.gather(up(), down())


def test_server_stops_answering_mid_page(make_slapd: Callable[..., Slapd]) -> None:
    s = make_slapd("".join(bulk_users(SUFFIX, 250)))
    with StallProxy(s.port, stall_after=12000) as proxy:
        t0 = time.monotonic()
        obs = collect(
            settings(s, f"ldap://127.0.0.1:{proxy.port}", timeout=2.0), DirectoryQuery(page_size=50)
        )
        elapsed = time.monotonic() - t0
    assert proxy.forwarded == 12000
    _inconclusive(obs, "server stopped answering")
    assert 0 < obs.entries < 250
    assert elapsed < 15


# --- Postfix ldap: map vs real postmap ------------------------------------------------------------


def _map_file(tmp_path: Path, s: Slapd, extra: str = "") -> str:
    p = tmp_path / "ldap-relay.cf"
    p.write_text(
        f"server_host = {s.url}\nversion = 3\nsearch_base = {SUFFIX}\n"
        "query_filter = (|(mail=%s)(mailLocalAddress=%s)(mailAlternateAddress=%s)(proxyAddresses=smtp:%s))\n"
        f"result_attribute = mail\nbind_dn = {s.root_dn}\nbind_pw = {PASSWORD}\n{extra}"
    )
    return str(p)


@pytest.mark.parametrize("catch_all", [False, True])
@pytest.mark.parametrize("restricted", [False, True])
def test_ldap_map_agrees_with_postmap(
    make_slapd: Callable[..., Slapd], tmp_path: Path, catch_all: bool, restricted: bool
) -> None:
    need_tool("postmap")
    tree = openldap_tree(SUFFIX, Defects(catch_all=catch_all))
    s = make_slapd(tree.ldif)
    obs = collect(settings(s), DirectoryQuery(domains=tree.domains))
    path = _map_file(tmp_path, s, "domain = example.test, example.org\n" if restricted else "")
    checks = check_map(path, map_samples(obs, ("example.org",) if restricted else ()), use_postmap=True)
    if not restricted:  # without `domain =`, one @domain sample per accepted domain
        assert [c.address for c in checks if c.sample == "catchall"] == ["@example.test", "@example.org"]
    kinds = {c.sample: c for c in checks if c.address != "@example.test"}
    assert set(kinds) == {"known", "alias", "random", "catchall", "metachar"}
    assert kinds["catchall"].address == "@example.org"  # the planted wildcard's domain
    for c in checks:
        assert not c.error and not c.postmap_error, c
        assert c.agrees is True, (c.sample, c.result, c.postmap_result)
    assert kinds["known"].found and kinds["alias"].found and not kinds["random"].found
    assert not kinds["metachar"].found
    # the @domain key only matches the planted wildcard when the map queries it (no `domain =`)
    assert kinds["catchall"].found is (catch_all and not restricted)
    assert kinds["catchall"].queried is (not restricted)
    sync = {f.status for f in evaluate(checks) if f.rule_id == "LDAP-SYNC-001"}
    assert sync == ({Status.FAIL} if catch_all and not restricted else {Status.PASS})
    # the bind password is in the map file, never in what we report
    assert PASSWORD not in json.dumps([repr(c) for c in checks])


def test_ldap_map_server_down_is_inconclusive(tmp_path: Path) -> None:
    p = tmp_path / "down.cf"
    p.write_text(
        f"server_host = ldap://127.0.0.1:{free_port()}\nversion = 3\nsearch_base = {SUFFIX}\ntimeout = 2\n"
    )
    checks: list[LdapMapCheck] = check_map(
        str(p), [("known", "a@example.test"), ("random", "zz@example.test")]
    )
    assert all(c.error for c in checks)
    assert {f.status for f in evaluate(checks) if f.rule_id == "LDAP-SYNC-001"} == {Status.INCONCLUSIVE}


# --- the CLI, end to end ------------------------------------------------------------------------------


def test_cli_end_to_end(
    make_slapd: Callable[..., Slapd],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = ad_tree(SUFFIX, Defects(disabled=True))
    s = make_slapd(tree.ldif)
    monkeypatch.setenv("BSA_LDAP_PASSWORD", PASSWORD)
    args = ["directory", "--ldap-url", s.ldaps_url, "--ca-file", str(s.ca_file), "--bind-dn", s.root_dn]
    args += ["--profile", "ad", "--domain", "example.test", "--format", "json"]
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == 1  # the disabled account fails LDAP-ACCT-001
    assert PASSWORD not in out and PASSWORD not in err
    doc = json.loads(out)
    fails = {f["rule_id"] for f in doc["findings"] if f["status"] == "fail"}
    assert fails == {"LDAP-ACCT-001"}
    # a dead server: exit 3 (could not measure), a clear message, no traceback
    rc = main(["directory", "--ldap-url", f"ldap://127.0.0.1:{free_port()}", "--timeout", "2", "-f", "json"])
    out, err = capsys.readouterr()
    assert rc == 3 and "Traceback" not in err
    head = [f for f in json.loads(out)["findings"] if f["rule_id"] == "LDAP-ADDR-001"]
    assert head[0]["status"] == "inconclusive" and "connection refused" in head[0]["message"]
    # --bind-dn without a password source is an input error (exit 2)
    monkeypatch.delenv("BSA_LDAP_PASSWORD")
    assert main(["directory", "--ldap-url", s.url, "--bind-dn", s.root_dn]) == 2


def test_paged_reader_matches_ldap3(make_slapd: Callable[..., Slapd]) -> None:
    """The BER paged reader returns exactly what ldap3's own (slower) paged search decodes."""
    from auditor.collect.ldap.connect import close_quietly, open_connection
    from auditor.collect.ldap.profiles import make_profile
    from auditor.collect.ldap.wire import paged_search

    s = make_slapd(
        ad_tree(SUFFIX, Defects(catch_all=True, duplicate=True)).ldif + "".join(bulk_users(SUFFIX, 120))
    )
    profile = make_profile("ad")

    def text(v: bytes | str) -> str:
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

    conn, _, err = open_connection(settings(s))
    assert conn is not None, err
    try:
        pages = list(paged_search(conn, SUFFIX, profile.default_filter, profile.fetch, page_size=40))
        reference = {
            e["dn"]: {k.lower(): sorted(text(v) for v in vals) for k, vals in e["raw_attributes"].items()}
            for e in conn.extend.standard.paged_search(
                SUFFIX, profile.default_filter, attributes=list(profile.fetch), paged_size=40, generator=True
            )
            if e.get("type") == "searchResEntry"
        }
    finally:
        close_quietly(conn)
    assert len(pages) == 4  # 13 + 120 entries in pages of 40
    got = {dn: {k.lower(): sorted(v) for k, v in a.items()} for page in pages for dn, a in page}
    assert got == reference and len(got) > 120


def test_cli_postfix_dir_with_ldap_map(
    make_slapd: Callable[..., Slapd],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = openldap_tree(SUFFIX)
    s = make_slapd(tree.ldif)
    cfgdir = tmp_path / "postfix"
    cfgdir.mkdir()
    mapfile = _map_file(cfgdir, s)
    (cfgdir / "main.cf").write_text(
        "compatibility_level = 3.6\nrelay_domains = example.test\n"
        f"relay_recipient_maps = ldap:{mapfile}, static:OK\n"
    )
    monkeypatch.setenv("BSA_LDAP_PASSWORD", PASSWORD)
    args = [
        "directory",
        "--ldap-url",
        s.url,
        "--bind-dn",
        s.root_dn,
        "--postfix-dir",
        str(cfgdir),
        "--no-postmap",
    ]
    rc = main([*args, "--domain", "example.test", "--domain", "example.org", "-f", "json"])
    out, err = capsys.readouterr()
    assert rc == 1 and "Traceback" not in err
    assert PASSWORD not in out and PASSWORD not in err  # neither the bind password nor the map's bind_pw
    found = {(f["rule_id"], f["status"]) for f in json.loads(out)["findings"]}
    assert ("LDAP-QUERY-001", "fail") in found  # ldap map followed by static:OK
    assert ("LDAP-SYNC-001", "pass") in found  # the map itself answers as the directory says
