"""PF-FILTER-001, PF-FILTER-004, PF-PIPE-001, PF-QUOTA-001, PF-DSN-001."""

from __future__ import annotations

import pytest

from auditor.model import Severity, Status
from tests.unit.rules_postfix.builder import (
    TARGET,
    config,
    finding,
    run,
    status_of,
    stock_services,
    svc,
    svc_target,
)

FAIL, PASS, INC, NA = Status.FAIL, Status.PASS, Status.INCONCLUSIVE, Status.NOT_APPLICABLE
GATE = "reject_unauth_destination"

AMAVIS = svc("smtp-amavis", "unix", "smtp")
REINJECT = svc(
    "127.0.0.1:10025",
    overrides={
        "content_filter": "",
        "receive_override_options": "no_header_body_checks,no_unknown_recipient_checks",
        "smtpd_recipient_restrictions": "permit_mynetworks,reject",
    },
)


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ({"content_filter": "smtp-amavis:[127.0.0.1]:10024"}, FAIL),
        ({"content_filter": ""}, PASS),
        ({}, PASS),
        ({"content_filter": "PH_AMAVISD_CONTENT_FILTER"}, INC),
    ],
)
def test_filter001_main_cf(main: dict[str, str], expected: Status) -> None:
    cfg = config(main, [svc("smtp"), AMAVIS, REINJECT])
    f = finding("PF-FILTER-001", cfg)
    assert f.status is expected
    if expected is FAIL:
        assert f.severity is Severity.HIGH
        assert "smtp(8) service" in f.message and "127.0.0.1:10025/inet" in f.message
        assert "postconf -X content_filter" in f.remediation


def test_filter001_reports_missing_reinjection_listener_and_submission_is_fine() -> None:
    smtp = svc("smtp", overrides={"content_filter": "amavis:[127.0.0.1]:10024"})
    sub = svc(
        "submission",
        overrides={
            "content_filter": "amavis:[127.0.0.1]:10026",
            "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
        },
    )
    cfg = config({}, [smtp, sub])
    f = finding("PF-FILTER-001", cfg, svc_target(smtp))
    assert f.status is FAIL and "no loopback re-injection listener" in f.message
    assert status_of("PF-FILTER-001", cfg, svc_target(sub)) is PASS


def test_filter004_reinjection_without_override_fails_medium() -> None:
    back = svc("127.0.0.1:10025", overrides={"content_filter": ""})
    pickup = svc("pickup", "unix", "pickup", overrides={"receive_override_options": "no_header_body_checks"})
    cfg = config({"header_checks": "regexp:/etc/postfix/header_checks"}, [svc("smtp"), back, pickup])
    f = finding("PF-FILTER-004", cfg, svc_target(back))
    assert f.status is FAIL and f.severity is Severity.MEDIUM
    assert (
        f.remediation == "postconf -P '127.0.0.1:10025/inet/receive_override_options=no_header_body_checks'"
    )
    assert status_of("PF-FILTER-004", cfg, svc_target(pickup)) is PASS


def test_filter004_pickup_is_low_and_no_checks_is_not_applicable() -> None:
    pickup = svc("pickup", "unix", "pickup")
    cfg = config({"body_checks": "pcre:/etc/postfix/body_checks"}, [svc("smtp"), pickup, REINJECT])
    f = finding("PF-FILTER-004", cfg, svc_target(pickup))
    assert f.status is FAIL and f.severity is Severity.LOW
    assert status_of("PF-FILTER-004", cfg, svc_target(REINJECT)) is PASS
    assert status_of("PF-FILTER-004", config({}, [svc("smtp"), pickup])) is NA


def test_pipe001_referenced_script_fails_unused_passes_or_inconclusive() -> None:
    autoreply = svc(
        "autoreply", "unix", "pipe", args=("flags=F", "user=nobody", "argv=/usr/local/bin/reply", "${sender}")
    )
    lda = svc(
        "dovecot",
        "unix",
        "pipe",
        args=("flags=DRhu", "user=vmail", "argv=/usr/lib/dovecot/dovecot-lda", "-d", "${user}"),
    )
    uucp = svc("uucp", "unix", "pipe", args=("flags=Fqhu", "user=uucp", "argv=uux", "-r"))
    services = [*stock_services(), autoreply, lda, uucp]
    cfg = config({"virtual_transport": "dovecot", "content_filter": "autoreply:dummy"}, services)
    f = finding("PF-PIPE-001", cfg, svc_target(autoreply))
    assert (
        f.status is FAIL and f.severity is Severity.MEDIUM and "/usr/local/bin/reply ${sender}" in f.message
    )
    assert f.location == autoreply.location
    g = finding("PF-PIPE-001", cfg, svc_target(lda))
    assert g.status is FAIL and g.severity is Severity.LOW and "PF-QUOTA-001" in g.message
    assert status_of("PF-PIPE-001", cfg) is PASS  # uucp: defined, nothing routes to it
    with_maps = config({"transport_maps": "hash:/etc/postfix/transport"}, services)
    h = finding("PF-PIPE-001", with_maps)
    assert h.status is INC and h.severity is Severity.LOW and "uucp/unix" in h.message


def test_pipe001_mailbox_command_and_nothing() -> None:
    cfg = config({"mailbox_command": "/usr/bin/procmail -a $EXTENSION"})
    assert status_of("PF-PIPE-001", cfg, f"{TARGET} mailbox_command") is FAIL
    assert status_of("PF-PIPE-001", config({})) is NA


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ({"virtual_transport": "lmtp:unix:private/dovecot-lmtp"}, FAIL),
        (
            {
                "virtual_transport": "lmtp:unix:private/dovecot-lmtp",
                "smtpd_recipient_restrictions": f"{GATE}, check_policy_service inet:127.0.0.1:12340",
            },
            PASS,
        ),
        (
            {
                "mailbox_transport": "lmtp:inet:127.0.0.1:24",
                "smtpd_recipient_restrictions": f"{GATE}, check_policy_service inet:127.0.0.1:PH_QUOTA_PORT",
            },
            PASS,
        ),
        (
            {
                "virtual_transport": "lmtp:unix:private/dovecot-lmtp",
                "smtpd_recipient_restrictions": f"{GATE}, check_policy_service inet:127.0.0.1:9999",
            },
            INC,
        ),
        ({"virtual_transport": "lmtp:inet:{{ FRONT }}:2525"}, FAIL),  # templated host, still LMTP
        ({"virtual_transport": "virtual"}, NA),
        ({}, NA),
    ],
)
def test_quota001_table(main: dict[str, str], expected: Status) -> None:
    f = finding("PF-QUOTA-001", config(main))
    assert f.status is expected, f.message


@pytest.mark.parametrize(
    ("main", "expected", "severity"),
    [
        ({"bounce_size_limit": "8192"}, PASS, None),
        ({}, FAIL, Severity.LOW),  # default 50000, nothing else makes NDRs
        ({"bounce_size_limit": "100000", "relay_domains": "example.com"}, FAIL, Severity.MEDIUM),
        ({"bounce_size_limit": "{{ limit }}"}, INC, None),
        ({"bounce_size_limit": "lots"}, INC, None),
    ],
)
def test_dsn001_table(main: dict[str, str], expected: Status, severity: Severity | None) -> None:
    f = finding("PF-DSN-001", config(main))
    assert f.status is expected
    if severity is not None:
        assert f.severity is severity
    if severity is Severity.MEDIUM:
        assert "PF-RCPT-003" in f.message
        assert f.remediation == "postconf -e 'bounce_size_limit = 8192'"


def test_rule_findings_never_leak_targets_outside_the_config() -> None:
    cfg = config(
        {"content_filter": "amavis:[127.0.0.1]:10024", "header_checks": "regexp:/x"}, [svc("smtp"), REINJECT]
    )
    for rid in ("PF-FILTER-001", "PF-FILTER-004", "PF-PIPE-001", "PF-QUOTA-001", "PF-DSN-001"):
        for f in run(rid, cfg):
            assert f.target.startswith(TARGET)
