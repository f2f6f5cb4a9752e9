"""DNS collector against a real (tiny) DNS server on 127.0.0.1: every answer kind is its own fact."""

from __future__ import annotations

import time

import pytest

from auditor.collect.dns import collect, parse_nameserver
from auditor.model import InputError
from tests.unit.dns.fakedns import serve

pytestmark = pytest.mark.timeout(60)

ZONE = {
    ("example.test", "MX"): ["10 mx1.example.test.", "20 mx2.example.test.", "30 backup.provider.example."],
    ("mx1.example.test", "A"): ["198.18.0.11"],
    ("mx1.example.test", "AAAA"): ["2001:db8::11"],
    ("mx2.example.test", "A"): ["198.18.0.12", "198.18.0.13"],
    ("backup.provider.example", "A"): ["192.0.2.7"],
    ("implicit.test", "A"): ["198.18.0.40"],
    ("parked.test", "MX"): ["0 ."],
    ("badnull.test", "MX"): ["0 .", "10 mx1.example.test."],
    ("alias.test", "MX"): ["10 mail.alias.test."],
    ("mail.alias.test", "CNAME"): ["real.alias.test."],
    ("real.alias.test", "A"): ["198.18.0.50"],
    ("literal.test", "MX"): ["10 198.18.0.60."],
    ("nothing.test", "TXT"): ['"v=spf1 -all"'],
    ("dangling.test", "MX"): ["10 gone.dangling.test."],
    ("hosted.test", "MX"): ["10 mx.hosted.test."],
    ("mx.hosted.test", "CNAME"): ["inbound.provider.example."],
    ("inbound.provider.example", "A"): ["192.0.2.8"],
}


def by_target(**kw: object) -> dict[str, object]:
    with serve(ZONE, servfail={"broken.test"}, drop={"slow.test"}) as ns:
        domains = kw.pop("domains", None) or ["example.test"]
        return {o.target: o for o in collect(domains, nameservers=[ns], timeout=1.0, **kw)}  # type: ignore[arg-type]


def test_every_mx_and_every_address() -> None:
    mx = by_target()["example.test"]
    assert mx.status == "ok" and not mx.implicit and not mx.null_mx
    hosts = {h.name: h for h in mx.hosts}
    assert [h.preference for h in mx.hosts] == [10, 20, 30]
    assert hosts["mx1.example.test"].addresses == ("198.18.0.11", "2001:db8::11")
    assert hosts["mx2.example.test"].addresses == ("198.18.0.12", "198.18.0.13")
    assert hosts["backup.provider.example"].external
    assert not hosts["mx1.example.test"].external


def test_implicit_null_cname_literal_and_failures() -> None:
    domains = [
        "implicit.test",
        "parked.test",
        "badnull.test",
        "alias.test",
        "literal.test",
        "nope.test",
        "nothing.test",
        "broken.test",
        "dangling.test",
    ]
    got = by_target(domains=domains)
    assert got["implicit.test"].implicit and got["implicit.test"].hosts[0].addresses == ("198.18.0.40",)
    assert got["parked.test"].null_mx and not got["parked.test"].hosts
    assert got["badnull.test"].malformed_null_mx and not got["badnull.test"].null_mx
    assert got["alias.test"].hosts[0].cname == "real.alias.test"
    assert got["alias.test"].hosts[0].addresses == ("198.18.0.50",)
    assert got["literal.test"].hosts[0].ip_literal
    assert got["nope.test"].status == "nxdomain"
    assert got["nothing.test"].status == "nodata" and not got["nothing.test"].hosts
    assert got["broken.test"].status == "servfail" and got["broken.test"].failed
    assert got["dangling.test"].hosts[0].status == "nxdomain" and not got["dangling.test"].hosts[0].addresses


def test_timeout_is_not_no_mx() -> None:
    t0 = time.monotonic()
    got = by_target(domains=["slow.test"])
    assert time.monotonic() - t0 < 10
    assert got["slow.test"].status == "timeout"
    assert got["slow.test"].failed and not got["slow.test"].implicit


def test_non_mail_domains_are_marked() -> None:
    got = by_target(domains=["example.test"], non_mail_domains=["parked.test"])
    assert got["parked.test"].non_mail and not got["example.test"].non_mail


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:53", ("::1", 53)),
        ("::1", ("::1", 53)),
    ],
)
def test_parse_nameserver(spec: str, want: tuple[str, int]) -> None:
    assert parse_nameserver(spec) == want


@pytest.mark.parametrize("spec", ["ns.example", "127.0.0.1:0", "127.0.0.1:x", "[::1", "1.2.3.4:99999"])
def test_bad_nameserver_is_input_error(spec: str) -> None:
    with pytest.raises(InputError):
        parse_nameserver(spec)


def test_mx_override_replaces_the_mx_lookup() -> None:
    with serve(ZONE) as ns:
        [mx] = collect(
            ["example.test"],
            nameservers=[ns],
            timeout=1.0,
            overrides={"example.test": ["mx2.example.test", "192.0.2.9"]},
        )
    assert mx.overridden
    assert [(h.name, h.preference, h.addresses) for h in mx.hosts] == [
        ("mx2.example.test", 10, ("198.18.0.12", "198.18.0.13")),
        ("192.0.2.9", 20, ("192.0.2.9",)),
    ]


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("Example.TEST.", "example.test"),
        ("bücher.test", "xn--bcher-kva.test"),
        ("_dmarc.example.test", "_dmarc.example.test"),
        ("Bücher.TEST", "xn--bcher-kva.test"),
        ("xn--fa-hia.test", "xn--fa-hia.test"),  # the A-label of faß.test, written out
    ],
)
def test_normalize_domain(name: str, want: str) -> None:
    from auditor.collect.dns import normalize_domain

    assert normalize_domain(name) == want


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a..b",
        "a b.test",
        "x@y.test",
        "-a.test",
        "a" * 64 + ".test",
        "a.test\r\nRCPT.test",
        # IDNA 2003 (Python's codec) and 2008 disagree: fass.test / xn--fa-hia.test are two domains.
        "faß.test",
        "ς.test",  # 2003 maps final sigma to σ
        "ex\u200dample.test",  # 2003 drops the zero-width joiner: example.test
        "xn--zz.test",  # not a valid A-label
    ],
)
def test_bad_domain_is_input_error(name: str) -> None:
    from auditor.collect.dns import normalize_domain

    with pytest.raises(InputError):
        normalize_domain(name)


def test_a_shared_mx_host_is_resolved_once_per_collect() -> None:
    zone = {(f"d{i}.test", "MX"): ["10 mx.provider.test."] for i in range(5)}
    zone[("mx.provider.test", "A")] = ["198.18.0.70"]
    asked: list[tuple[str, str]] = []
    with serve(zone, log=asked) as ns:
        out = collect([f"d{i}.test" for i in range(5)], nameservers=[ns], timeout=1.0)
    assert [o.hosts[0].addresses for o in out] == [("198.18.0.70",)] * 5
    assert all(o.hosts[0].external for o in out)  # provider.test is not in the scope
    assert asked.count(("mx.provider.test.", "A")) == 1
    assert asked.count(("mx.provider.test.", "AAAA")) == 1
    assert sum(1 for _n, t in asked if t == "MX") == 5
    # A second collect (a second audit) asks again: nothing is cached across runs.
    with serve(zone, log=asked) as ns:
        collect(["d0.test"], nameservers=[ns], timeout=1.0)
    assert asked.count(("mx.provider.test.", "A")) == 2


@pytest.mark.parametrize(
    ("name", "scope", "under"),
    [
        ("mx.example.test", ["example.test"], True),
        ("MX.Example.TEST.", ["example.test."], True),
        ("example.test", ["EXAMPLE.test"], True),
        ("notexample.test", ["example.test"], False),
        ("example.test", ["mx.example.test"], False),
        ("a.b.c.example.test", ["other.test", "c.example.test"], True),
        ("mx.example.test", [], False),
        ("198.18.0.60", ["example.test"], False),
        (".", ["example.test"], False),
        ("mx.example.test", frozenset({"example.test"}), True),
    ],
)
def test_is_under(name: str, scope: list[str], under: bool) -> None:
    from auditor.collect.dns import is_under, scope_names

    assert is_under(name, scope) is under
    assert is_under(name, scope_names(scope)) is under


def test_cname_mx_to_a_third_party_is_external() -> None:
    """The scope check follows the alias: mx.hosted.test is the provider's host under another name."""
    (host,) = by_target(domains=["hosted.test"])["hosted.test"].hosts  # type: ignore[attr-defined]
    assert host.cname == "inbound.provider.example" and host.external
    # an alias inside the scope stays in scope
    (inside,) = by_target(domains=["alias.test"])["alias.test"].hosts  # type: ignore[attr-defined]
    assert inside.cname == "real.alias.test" and not inside.external


def test_idna_refusal_names_both_forms() -> None:
    from auditor.collect.dns import normalize_domain

    with pytest.raises(InputError) as err:
        normalize_domain("faß.test")
    assert "xn--fa-hia.test" in str(err.value) and "fass.test" in str(err.value)
