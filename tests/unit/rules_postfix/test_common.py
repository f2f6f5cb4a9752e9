"""The shared reading of a Postfix config: list splitting, restrictions, templates, listener roles."""

from __future__ import annotations

from dataclasses import replace

import pytest

from auditor.model import Status
from auditor.rules import load_all
from auditor.rules.postfix_common import (
    Role,
    classify,
    default_rendering,
    internet_domains,
    parse_restrictions,
    restriction_rendering,
    smtpd_listeners,
    split_list,
    strip_templates,
)
from tests.unit.rules_postfix.builder import config, svc

PF_RULES = [
    *(f"PF-RCPT-00{i}" for i in range(1, 10)),
    "PF-COMPAT-001",
    "PF-RELAY-001",
    "PF-VERIFY-001",
    "PF-VERIFY-002",
    "PF-VERIFY-003",
    "PF-FILTER-001",
    "PF-FILTER-004",
    "PF-PIPE-001",
    "PF-DSN-001",
    "PF-QUOTA-001",
]


def test_catalog_ids_are_registered_with_pages() -> None:
    rules = load_all()
    for rid in PF_RULES:
        r = rules[rid]
        assert r.family == "postfix" and r.references and r.remediation
        for section in ("## What it flags", "## Why it"):
            assert section in r.doc, (rid, section)
        assert "## How to fix" not in r.doc, rid  # the fix is the decorator's remediation=
    assert rules["PF-LOG-001"].family == "logs"  # judged from logs: auditor/rules/logs.py


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("a, b c\n\td", ["a", "b", "c", "d"]),
        (
            "check_policy_service { inet:127.0.0.1:1, timeout=10s }, reject",
            ["check_policy_service", "{ inet:127.0.0.1:1, timeout=10s }", "reject"],
        ),
        ("{{ fqdn }}, localhost", ["{{ fqdn }}", "localhost"]),
        ("", []),
    ],
)
def test_split_list(text: str, items: list[str]) -> None:
    assert split_list(text) == items


def test_parse_restrictions_consumes_table_arguments() -> None:
    rs = parse_restrictions(
        "permit_mynetworks check_sender_access hash:/a reject_rbl_client zen.example hash:/b reject"
    )
    assert [(r.name, r.arg) for r in rs] == [
        ("permit_mynetworks", ""),
        ("check_sender_access", "hash:/a"),
        ("reject_rbl_client", "zen.example"),
        ("hash:/b", ""),
        ("reject", ""),
    ]
    assert rs[3].is_access_lookup


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("{% if X %}{{ X }}{% else %}no{% endif %}", "no"),
        ("{% if not X %}yes{% endif %}", "yes"),
        ("a[% IF opt %] b[% END %] c", "a c"),
        ("[% IF ! utf8 %]no[% END %]", "no"),
        ("{{ DOMAIN }}", None),
        ("plain", "plain"),
    ],
)
def test_default_rendering(text: str, rendered: str | None) -> None:
    assert default_rendering(text) == rendered


def test_restriction_rendering_tolerates_tokens_in_table_arguments() -> None:
    out, changed = restriction_rendering("permit_mynetworks, check_policy_service inet:127.0.0.1:PH_PORT")
    assert out is not None and not changed
    assert restriction_rendering("{{ checks }}, reject")[0] is None
    assert strip_templates("proxy:%{db}:/etc/x.cf").strip() == "proxy::/etc/x.cf"


def test_internet_domains() -> None:
    facing, local, templ = internet_domains("$myhostname, example.com, localhost, localhost.{{ d }}, {{ d }}")
    assert facing == ["example.com"]
    assert local == ["localhost", "localhost.{{ d }}"]
    assert templ == ["$myhostname", "{{ d }}"]


@pytest.mark.parametrize(
    ("service", "role"),
    [
        (svc("smtp"), Role.MX),
        (svc("127.0.0.1:10025"), Role.INTERNAL),
        (svc("[::1]:10025"), Role.INTERNAL),
        (
            svc("submission", overrides={"smtpd_client_restrictions": "permit_sasl_authenticated,reject"}),
            Role.SUBMISSION,
        ),
        (
            svc("465", overrides={"smtpd_relay_restrictions": "permit_sasl_authenticated, reject"}),
            Role.SUBMISSION,
        ),
        (svc("submission", overrides={"smtpd_sasl_auth_enable": "yes"}), Role.MX),
        (svc("590", overrides={"smtpd_client_restrictions": "permit_mynetworks,reject"}), Role.INTERNAL),
        (svc("smtpd", "pass"), Role.INTERNAL),  # no postscreen in front
        (
            svc("PH_ADDR:PH_PORT", overrides={"smtpd_recipient_restrictions": "permit_mynetworks,reject"}),
            Role.INTERNAL,
        ),
    ],
)
def test_classify(service: object, role: Role) -> None:
    cfg = config({}, [service])  # type: ignore[list-item]
    assert classify(cfg, service).role is role  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("interfaces", "role"),
    [
        ("loopback-only", Role.INTERNAL),
        ("127.0.0.1, [::1]", Role.INTERNAL),
        ("localhost", Role.INTERNAL),
        ("all", Role.MX),
        ("127.0.0.1, 192.0.2.25", Role.MX),
        ("{{ listen }}", Role.MX),  # a template may render any address
    ],
)
def test_inet_interfaces_decide_where_an_addressless_listener_listens(interfaces: str, role: Role) -> None:
    # "smtp inet ... smtpd" has no address in its name: it listens on inet_interfaces. A null client
    # (inet_interfaces = loopback-only) takes no Internet mail; an explicit address wins.
    plain, bound = svc("smtp"), svc("192.0.2.25:smtp")
    cfg = config({"inet_interfaces": interfaces}, [plain, bound])
    listener = classify(cfg, plain)
    assert listener.role is role
    if role is Role.INTERNAL:
        assert f"loopback only (inet_interfaces = {interfaces})" in listener.reason
    assert classify(cfg, bound).role is Role.MX
    nomaster = replace(config({"inet_interfaces": interfaces}, []), master_cf=None)
    assert [lst.role for lst in smtpd_listeners(nomaster)] == [role]


def test_null_client_is_judged_as_internal_by_listener_rules() -> None:
    from tests.unit.rules_postfix.builder import finding

    cfg = config({"inet_interfaces": "loopback-only", "smtpd_reject_unlisted_recipient": "no"})
    f = finding("PF-RCPT-002", cfg)
    assert f.status is Status.PASS and "no anonymous Internet mail" in f.message


def test_master_cf_fragment_implies_the_stock_smtp_service() -> None:
    # a master.cf without qmgr/cleanup is a fragment: the stock "smtp inet" (main.cf values) still exists
    sub = svc("submission", overrides={"smtpd_client_restrictions": "permit_sasl_authenticated,reject"})
    cfg = config({"smtpd_reject_unlisted_recipient": "no"}, [sub])
    from tests.unit.rules_postfix.builder import status_of

    assert status_of("PF-RCPT-002", cfg) is Status.FAIL
