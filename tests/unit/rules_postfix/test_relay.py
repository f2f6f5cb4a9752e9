"""PF-RELAY-001, PF-COMPAT-001, PF-VERIFY-001/002/003."""

from __future__ import annotations

import pytest

from auditor.model import Severity, Status
from auditor.rules.postfix_common import parse_restrictions
from auditor.rules.postfix_relay import relay_gate
from tests.unit.rules_postfix.builder import PC, config, finding, lines, status_of, svc, svc_target

FAIL, PASS, INC, NA = Status.FAIL, Status.PASS, Status.INCONCLUSIVE, Status.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("restrictions", "state"),
    [
        ("permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination", "gated"),
        ("permit_mynetworks permit_sasl_authenticated defer_unauth_destination", "gated"),
        ("permit_mynetworks, permit", "open"),
        ("permit_dnswl_client list.dnswl.org, reject_unauth_destination", "open"),
        ("check_client_access hash:/etc/postfix/ok, reject_unauth_destination", "gated"),
        ("permit_sasl_authenticated, reject", "gated"),
        ("warn_if_reject reject_unauth_destination, permit", "open"),
        ("reject_non_fqdn_recipient", "ungated"),
        ("", "ungated"),
    ],
)
def test_relay_gate(restrictions: str, state: str) -> None:
    assert relay_gate(parse_restrictions(restrictions))[0] == state


@pytest.mark.parametrize(
    ("main", "compat", "expected"),
    [
        ({}, "3.6", PASS),  # default relay restrictions end in defer_unauth_destination
        ({"mynetworks": "127.0.0.0/8"}, None, FAIL),  # level 0: no relay restrictions, none in recipient list
        (
            {
                "mynetworks": "127.0.0.0/8",
                "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
            },
            None,
            PASS,
        ),
        ({"smtpd_relay_restrictions": "permit_mynetworks, permit", "mynetworks": "127.0.0.0/8"}, "3.6", FAIL),
        ({"smtpd_relay_restrictions": "", "smtpd_recipient_restrictions": "permit_mynetworks"}, "3.6", FAIL),
        ({"mynetworks": "0.0.0.0/0"}, "3.6", FAIL),
        ({"mynetworks": "127.0.0.0/8 [::/0]"}, "3.6", FAIL),
        ({"mynetworks": "127.0.0.0/8 100.0.0.0/6"}, "3.6", FAIL),
        ({"mynetworks": "127.0.0.0/8 10.1.0.0/16 192.168.0.0/16 [2001:db8::]/48"}, "3.6", PASS),
        ({"mynetworks": "127.0.0.0/8 10.0.0.0/8"}, "3.6", FAIL),  # a whole private /8
        ({"mynetworks": "127.0.0.0/8, 172.16.0.0/12"}, "3.6", FAIL),
        ({"mynetworks": "127.0.0.0/8 {{ friendly }}"}, "3.6", INC),
        ({"mynetworks_style": "subnet"}, "3.6", INC),
        ({"mynetworks_style": "class"}, "3.6", FAIL),
        (
            {"smtpd_relay_restrictions": "{{ relay }}", "smtpd_recipient_restrictions": "{{ rcpt }}"},
            "3.6",
            INC,
        ),
    ],
)
def test_relay001_table(main: dict[str, str], compat: str | None, expected: Status) -> None:
    f = finding("PF-RELAY-001", config(main, compat=compat))
    assert f.status is expected, f.message
    if expected is FAIL:
        private = any(n in main.get("mynetworks", "") for n in ("10.0.0.0/8", "172.16.0.0/12"))
        assert f.severity is (Severity.HIGH if private else Severity.CRITICAL)
        assert lines(f) and all(line.startswith(PC) for line in lines(f))
        assert "reject_unauth_destination" in " ".join(lines(f)) or "mynetworks" in " ".join(lines(f))


def test_relay001_submission_listener_is_closed_and_public_override_is_judged() -> None:
    sub = svc("submission", overrides={"smtpd_relay_restrictions": "permit_sasl_authenticated,reject"})
    bad = svc("smtp", overrides={"smtpd_relay_restrictions": "permit", "smtpd_recipient_restrictions": ""})
    cfg = config({}, [bad, sub])
    assert status_of("PF-RELAY-001", cfg, svc_target(bad)) is FAIL
    assert status_of("PF-RELAY-001", cfg, svc_target(sub)) is PASS


@pytest.mark.parametrize(
    ("main", "compat", "expected", "severity"),
    [
        ({"mydestination": "$myhostname, example.com"}, None, FAIL, Severity.HIGH),
        ({"mydestination": "example.com"}, "1", FAIL, Severity.HIGH),
        ({"mydestination": "example.com", "relay_domains": ""}, "1", PASS, None),
        ({"mydestination": "localhost"}, "1", PASS, None),
        ({"mydestination": "example.com"}, "2", PASS, None),
        ({"mydestination": "example.com"}, "3.6", PASS, None),
        (
            {
                "mydestination": "localhost",
                "relay_domains": "",
                "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
            },
            None,
            FAIL,
            Severity.LOW,
        ),
        ({"mydestination": "localhost", "relay_domains": ""}, None, FAIL, Severity.HIGH),
        ({}, "{{ level }}", INC, None),
        ({}, "banana", INC, None),
    ],
)
def test_compat001_table(
    main: dict[str, str], compat: str | None, expected: Status, severity: Severity | None
) -> None:
    f = finding("PF-COMPAT-001", config(main, compat=compat))
    assert f.status is expected, f.message
    if severity is not None:
        assert f.severity is severity
    if expected is FAIL:
        assert "compatibility_level" in f.remediation.text  # raised by hand, after reading the maillog
        assert lines(f) and all(line.startswith(f"{PC} -e ") for line in lines(f))


@pytest.mark.parametrize(
    ("main", "expected", "severity"),
    [
        (
            {
                "unverified_recipient_defer_code": "250",
                "smtpd_recipient_restrictions": "reject_unauth_destination, reject_unverified_recipient",
            },
            FAIL,
            Severity.CRITICAL,
        ),
        ({"unverified_sender_reject_code": "250"}, FAIL, Severity.LOW),  # latent: no verification in use
        ({"unverified_recipient_defer_code": "450", "unverified_recipient_reject_code": "550"}, PASS, None),
        ({}, PASS, None),
        ({"unverified_recipient_reject_code": "[% code %]"}, INC, None),
    ],
)
def test_verify001_table(main: dict[str, str], expected: Status, severity: Severity | None) -> None:
    f = finding("PF-VERIFY-001", config(main))
    assert f.status is expected
    if severity is not None:
        assert f.severity is severity


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ({"relay_domains": "example.com"}, FAIL),
        (
            {
                "relay_domains": "example.com",
                "smtpd_recipient_restrictions": "reject_unauth_destination reject_unverified_recipient",
            },
            PASS,
        ),
        ({"relay_domains": "example.com", "relay_recipient_maps": "hash:/x"}, NA),
        ({}, NA),
        ({"relay_domains": "{{ domains }}"}, INC),
    ],
)
def test_verify002_table(main: dict[str, str], expected: Status) -> None:
    assert status_of("PF-VERIFY-002", config(main)) is expected


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ({"smtpd_sender_restrictions": "reject_unverified_sender"}, FAIL),
        (
            {
                "smtpd_restriction_classes": "verify_senders",
                "verify_senders": "reject_unverified_sender",
                "smtpd_sender_restrictions": "check_sender_access hash:/etc/postfix/forged_domains",
            },
            PASS,
        ),
        (
            {
                "smtpd_recipient_restrictions": "reject_unauth_destination, reject_unverified_recipient",
                "address_verify_sender": "<>",
            },
            FAIL,
        ),
        ({"smtpd_recipient_restrictions": "reject_unauth_destination, reject_unverified_recipient"}, PASS),
        ({}, NA),
        ({"smtpd_sender_restrictions": "{{ sender_checks }}"}, INC),
    ],
)
def test_verify003_table(main: dict[str, str], expected: Status) -> None:
    f = finding("PF-VERIFY-003", config(main))
    assert f.status is expected, f.message
    if expected is FAIL and "smtpd_sender_restrictions" in main:
        assert "address_verify_sender_ttl" in f.message  # ttl 0 named with broad callouts


def test_verify003_only_submission_listener_is_not_mx() -> None:
    sub = svc(
        "submission",
        overrides={
            "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
            "smtpd_sender_restrictions": "reject_unverified_sender",
        },
    )
    assert status_of("PF-VERIFY-003", config({}, [svc("smtp"), sub]), svc_target(sub)) is PASS


def test_relay001_match_all_ok_in_access_table_before_the_gate_is_open() -> None:
    from auditor.model import Location
    from auditor.observations.postfix import LookupTable, TableEntry

    loc = Location("/etc/postfix/rcpt_access", 1)
    spec = "regexp:/etc/postfix/rcpt_access"

    def table(value: str) -> LookupTable:
        return LookupTable(
            spec=spec,
            type="regexp",
            name="/etc/postfix/rcpt_access",
            used_by=("smtpd_recipient_restrictions",),
            readable=True,
            entries=1,
            match_all_entries=(TableEntry("/./", value, loc),),
        )

    main = {
        "smtpd_relay_restrictions": "",
        "smtpd_recipient_restrictions": f"check_recipient_access {spec}, reject_unauth_destination",
    }
    f = finding("PF-RELAY-001", config(main, tables=[table("OK")]))
    assert f.status is FAIL and spec in f.message
    assert status_of("PF-RELAY-001", config(main, tables=[table("REJECT go away")])) is PASS


def test_relay001_whole_private_range_is_high_and_the_fix_keeps_the_rest() -> None:
    f = finding("PF-RELAY-001", config({"mynetworks": "127.0.0.0/8, 10.0.0.0/8, 192.168.1.0/24"}))
    assert f.status is FAIL and f.severity is Severity.HIGH and "10.0.0.0/8" in f.message
    assert lines(f) == [f"{PC} -e 'mynetworks = 127.0.0.0/8 192.168.1.0/24'"]
