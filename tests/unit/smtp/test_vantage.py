"""Vantage: the kernel's source address toward an MX, and whether the site trusts it."""

from __future__ import annotations

import ipaddress
import sys

import pytest

from auditor.collect.smtp import vantage
from auditor.model import InputError


def test_source_address_with_and_without_pyroute2(monkeypatch: pytest.MonkeyPatch) -> None:
    assert vantage.source_address("127.0.0.1") == "127.0.0.1"
    monkeypatch.setitem(sys.modules, "pyroute2", None)  # import now fails: the optional extra is absent
    assert vantage._route_source("127.0.0.1") == ""
    assert vantage.source_address("127.0.0.1") == "127.0.0.1"  # via the UDP-connect fallback
    assert vantage.source_address("127.0.0.1", configured="198.18.0.1") == "198.18.0.1"


def test_trusted_networks() -> None:
    nets = vantage.parse_networks(["10.0.0.0/8", "2001:db8::/32"])
    assert vantage.trusted("10.1.2.3", nets) == ipaddress.ip_network("10.0.0.0/8")
    assert vantage.trusted("2001:db8::5", nets) == ipaddress.ip_network("2001:db8::/32")
    assert vantage.trusted("192.0.2.1", nets) is None
    assert vantage.trusted("", nets) is None
    with pytest.raises(InputError):
        vantage.parse_networks(["10.0.0.0/33"])


def test_mynetworks_value() -> None:
    got = vantage.networks_from_mynetworks("127.0.0.0/8, [::1]/128 hash:/etc/postfix/net 192.168.1.7 $foo")
    assert [str(n) for n in got] == ["127.0.0.0/8", "::1/128", "192.168.1.7/32"]
