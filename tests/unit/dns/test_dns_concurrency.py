"""One run's DNS: questions concurrent but bounded, each asked once, answers (negative too) cached
for the run, a server that never answers costs its timeout once and is a failure, not a hang.
Counted at a real (tiny) DNS server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from auditor.collect.dns import collect, lookup_domain, make_resolver, scope_names
from tests.unit.dns.fakedns import serve

pytestmark = pytest.mark.timeout(60)


def test_a_shared_mx_host_is_asked_once_however_many_domains_ask_at_once() -> None:
    n = 40
    zone = {(f"d{i}.test", "MX"): ["10 mx.provider.test.", "20 mx2.provider.test."] for i in range(n)}
    zone[("mx.provider.test", "A")] = ["198.18.0.70"]
    zone[("mx2.provider.test", "A")] = ["198.18.0.71"]
    asked: list[tuple[str, str]] = []
    with serve(zone, log=asked) as ns:
        out = collect([f"d{i}.test" for i in range(n)], nameservers=[ns], timeout=2.0)
    assert [[h.addresses for h in o.hosts] for o in out] == [[("198.18.0.70",), ("198.18.0.71",)]] * n
    assert [o.target for o in out] == [f"d{i}.test" for i in range(n)]  # input order kept
    for host in ("mx.provider.test.", "mx2.provider.test."):
        assert asked.count((host, "A")) == 1 and asked.count((host, "AAAA")) == 1
    assert sum(1 for _n, t in asked if t == "MX") == n
    assert len(asked) == n + 4


def test_negative_and_failed_answers_are_cached_for_the_run() -> None:
    zone = {(f"d{i}.test", "MX"): ["10 gone.test.", "20 sf.test."] for i in range(6)}
    zone[("d6.test", "MX")] = ["10 nomx.test."]
    zone[("nomx.test", "TXT")] = ['"v=spf1 -all"']  # exists, no MX, no address: NODATA
    asked: list[tuple[str, str]] = []
    with serve(zone, servfail={"sf.test"}, log=asked) as ns:
        got = {o.target: o for o in collect([*(f"d{i}.test" for i in range(7)), "nomx.test"], [ns], 2.0)}
    for i in range(6):
        gone, sf = got[f"d{i}.test"].hosts
        assert (gone.status, sf.status) == ("nxdomain", "servfail") and not gone.addresses
    assert got["d6.test"].hosts[0].status == "nodata"
    assert got["nomx.test"].status == "nodata" and not got["nomx.test"].implicit
    # NXDOMAIN, SERVFAIL and NODATA each asked once; nomx.test's A is shared by its implicit-MX
    # lookup and d6's MX target.
    for name in ("gone.test.", "sf.test.", "nomx.test."):
        assert asked.count((name, "A")) == 1 and asked.count((name, "AAAA")) == 1, name


def test_questions_in_flight_are_bounded_and_concurrent() -> None:
    zone: dict[tuple[str, str], list[str]] = {}
    for i in range(30):
        zone[(f"d{i}.test", "MX")] = [f"10 mx.d{i}.test."]
        zone[(f"mx.d{i}.test", "A")] = ["198.18.0.80"]
    stats: dict[str, int] = {}
    # The server holds every answer until no query has come for 0.3 s: the client's questions in
    # flight pile up there, and the pile can never exceed what the client allows.
    with serve(zone, hold=0.3, stats=stats) as ns:
        out = collect([f"d{i}.test" for i in range(30)], nameservers=[ns], timeout=5.0, concurrency=8)
    assert all(o.status == "ok" and o.hosts[0].addresses == ("198.18.0.80",) for o in out)
    assert stats["max_pending"] == 8


def test_a_server_that_never_answers_costs_its_timeout_once_per_question_not_in_turn() -> None:
    zone = {("ok.test", "MX"): ["10 mx.ok.test."], ("mx.ok.test", "A"): ["198.18.0.90"]}
    silent = [f"slow{i}.test" for i in range(20)]
    asked: list[tuple[str, str]] = []
    with serve(zone, drop=set(silent), log=asked) as ns:
        t0 = time.monotonic()
        got = {o.target: o for o in collect([*silent, "ok.test"], nameservers=[ns], timeout=1.0)}
        took = time.monotonic() - t0
    assert got["ok.test"].status == "ok"
    for name in silent:
        assert got[name].status == "timeout" and got[name].failed and not got[name].implicit
        assert "timeout after 1 s" in got[name].detail
        assert asked.count((f"{name}.", "MX")) == 1  # lifetime 1 s = one attempt (timeout min(1, 2) s)
    # One after the other the 20 timeouts would take 20 s; concurrently about one timeout.
    assert took < 10


def test_an_unreachable_server_is_servfail_not_a_timeout() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: ICMP port unreachable, as dnspython's stub sees it
    [mx] = collect(["example.test"], nameservers=[f"127.0.0.1:{port}"], timeout=3.0)
    assert mx.status == "servfail" and "no server answered" in mx.detail


def test_collect_called_from_running_event_loop() -> None:
    zone = {("example.test", "MX"): ["10 mx.example.test."], ("mx.example.test", "A"): ["198.18.0.11"]}
    with serve(zone) as ns:

        async def inside() -> str:
            [mx] = collect(["example.test"], nameservers=[ns], timeout=2.0)
            return mx.hosts[0].addresses[0]

        assert asyncio.run(inside()) == "198.18.0.11"


def test_lookup_domain_keeps_its_synchronous_signature_and_shares_a_memo() -> None:
    zone = {(f"d{i}.test", "MX"): ["10 mx.provider.test."] for i in range(3)}
    zone[("mx.provider.test", "A")] = ["198.18.0.70"]
    asked: list[tuple[str, str]] = []
    memo: dict = {}  # type: ignore[type-arg]
    with serve(zone, log=asked) as ns:
        res = make_resolver([ns], 2.0)
        scope = scope_names(["d0.test", "d1.test", "d2.test"])
        out = [lookup_domain(res, f"d{i}.test", scope, memo=memo) for i in range(3)]
    assert [o.hosts[0].addresses for o in out] == [("198.18.0.70",)] * 3
    assert asked.count(("mx.provider.test.", "A")) == 1
