"""PF-RCPT-001…009: one table per rule (fail, pass, templated, per-service vs loopback listener)."""

from __future__ import annotations

import pytest

from auditor.model import Location, Severity, Status
from auditor.observations.postfix import LookupTable, TableEntry
from tests.unit.rules_postfix.builder import (
    PC,
    TARGET,
    config,
    finding,
    lines,
    run,
    status_of,
    stock_services,
    svc,
    svc_target,
)

FAIL, PASS, INC, NA = Status.FAIL, Status.PASS, Status.INCONCLUSIVE, Status.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ({"local_recipient_maps": "", "mydestination": "$myhostname, example.com"}, FAIL),
        ({"local_recipient_maps": "", "mydestination": "example.com, localhost"}, FAIL),
        ({"local_recipient_maps": "", "mydestination": "hash:/etc/postfix/local_domains"}, FAIL),
        ({"local_recipient_maps": "", "mydestination": "localhost, localhost.localdomain"}, PASS),
        ({"local_recipient_maps": "", "mydestination": ""}, NA),
        ({"mydestination": "example.com"}, PASS),  # default passwd.byname $alias_maps
        ({"local_recipient_maps": "hash:/etc/postfix/users", "mydestination": "example.com"}, PASS),
        ({"local_recipient_maps": "", "mydestination": "{{ mail_domain }}, localhost"}, INC),
        ({"local_recipient_maps": "", "mydestination": "PH_HOSTNAME"}, INC),
        ({"local_recipient_maps": "", "mydestination": "PH_HOSTNAME, example.com"}, FAIL),
        ({"local_recipient_maps": "{{ maps }}", "mydestination": "example.com"}, INC),
    ],
)
def test_rcpt001_table(main: dict[str, str], expected: Status) -> None:
    cfg = config(main)
    f = finding("PF-RCPT-001", cfg)
    assert f.status is expected, f.message
    if expected is FAIL:
        assert f.location is not None and f.location.line == 1  # the local_recipient_maps line
        assert lines(f) == [f"{PC} -X local_recipient_maps"]
    if expected is INC:
        assert f.note and "main.cf" in f.note


def test_rcpt001_unset_myhostname_is_this_hosts_public_name() -> None:
    # the default mydestination starts with $myhostname; unset, it is the machine's FQDN
    cfg = config({"local_recipient_maps": "", "mydestination": "$myhostname, localhost", "myhostname": ""})
    f = finding("PF-RCPT-001", cfg)
    assert f.status is FAIL and "$myhostname" in f.message
    named = config({"local_recipient_maps": "", "mydestination": "localhost", "myhostname": "mx.example.com"})
    assert status_of("PF-RCPT-001", named) is PASS


def test_rcpt001_loopback_reinjection_listener_is_not_flagged() -> None:
    back = svc("127.0.0.1:10025", overrides={"local_recipient_maps": "", "content_filter": ""})
    cfg = config({"mydestination": "example.com"}, [*stock_services(), back])
    assert status_of("PF-RCPT-001", cfg) is PASS
    assert status_of("PF-RCPT-001", cfg, svc_target(back)) is PASS


def test_rcpt001_public_override_fails_with_service_remediation() -> None:
    smtp = svc("smtp", overrides={"local_recipient_maps": ""})
    cfg = config({"mydestination": "example.com"}, [smtp])
    f = finding("PF-RCPT-001", cfg, svc_target(smtp))
    assert f.status is FAIL
    assert lines(f) == [f"{PC} -PX smtp/inet/local_recipient_maps"]
    assert f.location == smtp.overrides["local_recipient_maps"].location


def test_rcpt001_non_local_transport_points_at_its_user_list() -> None:
    main = {"local_recipient_maps": "", "mydestination": "example.com", "local_transport": "virtual"}
    f = finding("PF-RCPT-001", config({**main, "virtual_mailbox_maps": "hash:/etc/postfix/vmailbox"}))
    assert f.status is FAIL
    assert lines(f) == [f"{PC} -e 'local_recipient_maps = $virtual_mailbox_maps'"]
    # no virtual mailbox list to point at: the default (passwd + aliases) is what validates at all
    f = finding("PF-RCPT-001", config(main))
    assert lines(f) == [f"{PC} -X local_recipient_maps"]


@pytest.mark.parametrize(
    ("main", "overrides", "expected"),
    [
        ({"smtpd_reject_unlisted_recipient": "no"}, {}, FAIL),
        ({"smtpd_reject_unlisted_recipient": "yes"}, {}, PASS),
        ({}, {}, PASS),
        (
            {
                "smtpd_reject_unlisted_recipient": "no",
                "smtpd_recipient_restrictions": "reject_unlisted_recipient, reject_unauth_destination",
            },
            {},
            PASS,
        ),
        (
            {
                "smtpd_reject_unlisted_recipient": "no",
                "smtpd_recipient_restrictions": "warn_if_reject reject_unlisted_recipient",
            },
            {},
            FAIL,
        ),
        ({"smtpd_reject_unlisted_recipient": "{{ REJECT }}"}, {}, INC),
        # the Jinja default (variable unset) renders "no": judged as the default install gets it
        ({"smtpd_reject_unlisted_recipient": "{% if R %}{{ R }}{% else %}no{% endif %}"}, {}, FAIL),
        ({"smtpd_reject_unlisted_recipient": "{% if R %}{{ R }}{% else %}yes{% endif %}"}, {}, INC),
    ],
)
def test_rcpt002_main_cf(main: dict[str, str], overrides: dict[str, str], expected: Status) -> None:
    f = finding("PF-RCPT-002", config(main))
    assert f.status is expected, f.message
    if expected is FAIL:
        assert f.severity is Severity.CRITICAL
        if "{%" in main["smtpd_reject_unlisted_recipient"]:  # postconf -e would overwrite the template
            assert not f.remediation.commands and "main.cf:1 is a template line" in f.remediation.text
        else:
            assert lines(f) == [f"{PC} -e 'smtpd_reject_unlisted_recipient = yes'"]


def test_rcpt002_per_service_port25_fails_submission_and_loopback_pass() -> None:
    port25 = svc("smtp", overrides={"smtpd_reject_unlisted_recipient": "no"})
    sub = svc(
        "submission",
        overrides={
            "smtpd_reject_unlisted_recipient": "no",
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
        },
    )
    open_sub = svc(
        "587", overrides={"smtpd_reject_unlisted_recipient": "no", "smtpd_sasl_auth_enable": "yes"}
    )
    back = svc("127.0.0.1:10025", overrides={"smtpd_reject_unlisted_recipient": "no"})
    cfg = config({}, [port25, sub, open_sub, back])
    f25 = finding("PF-RCPT-002", cfg, svc_target(port25))
    assert f25.status is FAIL
    assert lines(f25) == [f"{PC} -PX smtp/inet/smtpd_reject_unlisted_recipient"]
    assert f25.location == port25.overrides["smtpd_reject_unlisted_recipient"].location
    assert status_of("PF-RCPT-002", cfg, svc_target(sub)) is PASS
    # a "submission" port that admits anonymous clients is MX traffic
    assert status_of("PF-RCPT-002", cfg, svc_target(open_sub)) is FAIL
    assert status_of("PF-RCPT-002", cfg, svc_target(back)) is PASS


def test_rcpt002_postscreen_pass_service_is_mx() -> None:
    ps = svc("smtp", command="postscreen")
    handoff = svc("smtpd", "pass", overrides={"smtpd_reject_unlisted_recipient": "no"})
    assert status_of("PF-RCPT-002", config({}, [ps, handoff]), svc_target(handoff)) is FAIL
    # without a public postscreen nothing reaches the pass service
    assert status_of("PF-RCPT-002", config({}, [svc("smtp"), handoff]), svc_target(handoff)) is PASS


def test_rcpt002_reinjection_with_templated_address_but_mynetworks_only_is_internal() -> None:
    back = svc(
        "PH_LOCAL_ADDRESS:PH_PORT",
        overrides={
            "smtpd_reject_unlisted_recipient": "no",
            "smtpd_recipient_restrictions": "permit_mynetworks,reject",
        },
    )
    assert status_of("PF-RCPT-002", config({}, [svc("smtp"), back]), svc_target(back)) is PASS


@pytest.mark.parametrize(
    ("main", "compat", "expected"),
    [
        ({"relay_domains": "example.com"}, "3.6", FAIL),
        ({"relay_domains": "hash:/etc/pmg/domains"}, "3.11", FAIL),
        ({"relay_domains": "example.com", "relay_recipient_maps": "hash:/etc/postfix/rr"}, "3.6", PASS),
        (
            {
                "relay_domains": "example.com",
                "smtpd_recipient_restrictions": "reject_unauth_destination, reject_unverified_recipient",
            },
            "3.6",
            PASS,
        ),
        ({"relay_domains": ""}, "3.6", NA),
        ({}, "3.6", NA),
        ({"mydestination": "$myhostname, example.com"}, None, FAIL),  # implicit $mydestination
        ({"mydestination": "localhost"}, None, NA),
        ({"relay_domains": "{{ relay }}"}, "3.6", INC),
        ({"relay_domains": "proxy:%{db}:/etc/postfix/relay.cf"}, "3.6", FAIL),  # certainly non-empty
    ],
)
def test_rcpt003_table(main: dict[str, str], compat: str | None, expected: Status) -> None:
    f = finding("PF-RCPT-003", config(main, compat=compat))
    assert f.status is expected, f.message
    g = finding("PF-VERIFY-002", config(main, compat=compat))
    if expected is FAIL:
        assert g.status is FAIL  # reported together
        assert "relay_recipient_maps" in f.remediation.as_text()


def test_rcpt003_template_that_may_add_verification_still_fails() -> None:
    rcpt = "permit_mynetworks reject_unauth_destination[% IF verify %] reject_unverified_recipient[% END %]"
    cfg = config({"relay_domains": "hash:/etc/pmg/domains", "smtpd_recipient_restrictions": rcpt})
    f = finding("PF-RCPT-003", cfg)
    assert f.status is FAIL
    assert "options unset" in f.note


def test_rcpt003_reinjection_listener_with_empty_relay_recipient_maps_passes() -> None:
    back = svc("127.0.0.1:10025", overrides={"relay_recipient_maps": ""})
    cfg = config({"relay_domains": "example.com", "relay_recipient_maps": "hash:/x"}, [svc("smtp"), back])
    assert status_of("PF-RCPT-003", cfg) is PASS
    assert status_of("PF-RCPT-003", cfg, svc_target(back)) is PASS


def _table(spec: str, **kw: object) -> LookupTable:
    type_, name = spec.split(":", 1)
    return LookupTable(spec=spec, type=type_, name=name, used_by=("virtual_alias_maps",), **kw)  # type: ignore[arg-type]


def test_rcpt004_wildcards_and_offsite_catch_all() -> None:
    loc = Location(f"{TARGET}/virtual", 3)
    local = _table(
        "hash:/etc/postfix/virtual",
        readable=True,
        entries=5,
        wildcard_entries=(TableEntry("@example.com", "catchall@example.com", loc),),
    )
    main = {"virtual_alias_domains": "example.com", "virtual_alias_maps": "hash:/etc/postfix/virtual"}
    f = finding("PF-RCPT-004", config(main, tables=[local]), f"{TARGET} table hash:/etc/postfix/virtual")
    assert f.status is FAIL and f.severity is Severity.HIGH and f.location == loc
    offsite = _table(
        "hash:/etc/postfix/virtual",
        readable=True,
        entries=5,
        wildcard_entries=(TableEntry("@example.com", "someone@gmail.com", loc),),
    )
    f = finding("PF-RCPT-004", config(main, tables=[offsite]), f"{TARGET} table hash:/etc/postfix/virtual")
    assert f.status is FAIL and f.severity is Severity.CRITICAL


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (_table("hash:/etc/postfix/virtual", readable=True, entries=3), PASS),
        (_table("hash:/etc/postfix/virtual", readable=False, error="not found"), INC),
        (_table("hash:/etc/postfix/virtual", readable=True, entries=3, random_lookup="x@example.com"), FAIL),
        (_table("hash:/etc/postfix/virtual", readable=True, entries=3, random_lookup=None), PASS),
        (None, INC),  # named in main.cf but not collected
    ],
)
def test_rcpt004_table(table: LookupTable | None, expected: Status) -> None:
    cfg = config({"virtual_alias_maps": "hash:/etc/postfix/virtual"}, tables=[table] if table else [])
    assert status_of("PF-RCPT-004", cfg, f"{TARGET} table hash:/etc/postfix/virtual") is expected


def test_rcpt004_static_map_and_no_tables() -> None:
    static = LookupTable(
        spec="static:OK", type="static", name="OK", used_by=("relay_recipient_maps",), readable=True
    )
    cfg = config({"relay_recipient_maps": "static:OK"}, tables=[static])
    assert status_of("PF-RCPT-004", cfg, f"{TARGET} table static:OK") is FAIL
    assert status_of("PF-RCPT-004", config({})) is NA


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ({"luser_relay": "catchall@example.com"}, FAIL),
        ({"luser_relay": ""}, PASS),
        ({}, PASS),
        ({"luser_relay": "{{ catchall }}"}, INC),
    ],
)
def test_rcpt005_table(main: dict[str, str], expected: Status) -> None:
    assert status_of("PF-RCPT-005", config(main)) is expected


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ({"unknown_local_recipient_reject_code": "450"}, FAIL),
        ({"unknown_virtual_mailbox_reject_code": "450"}, FAIL),
        ({"unknown_local_recipient_reject_code": "550", "unknown_relay_recipient_reject_code": "554"}, PASS),
        ({}, PASS),
        ({"unknown_local_recipient_reject_code": "PH_CODE"}, INC),
    ],
)
def test_rcpt006_table(main: dict[str, str], expected: Status) -> None:
    f = finding("PF-RCPT-006", config(main))
    assert f.status is expected
    if expected is FAIL:
        name = next(iter(main))
        assert f"{PC} -e '{name} = 550'" in lines(f) and f.location and f.location.line == 1


@pytest.mark.parametrize(
    ("main", "overrides", "target_is_service", "expected"),
    [
        ({"soft_bounce": "yes"}, {}, False, FAIL),
        ({"soft_bounce": "no"}, {}, False, PASS),
        ({}, {"soft_bounce": "yes"}, True, FAIL),
        ({"soft_bounce": "{{ sb }}"}, {}, False, INC),
    ],
)
def test_rcpt007_table(
    main: dict[str, str], overrides: dict[str, str], target_is_service: bool, expected: Status
) -> None:
    smtp = svc("smtp", overrides=overrides)
    cfg = config(main, [smtp])
    target = svc_target(smtp) if target_is_service else TARGET
    assert status_of("PF-RCPT-007", cfg, target) is expected


@pytest.mark.parametrize(
    ("main", "smtp_ov", "expected_main", "expected_smtp"),
    [
        ({"receive_override_options": "no_unknown_recipient_checks"}, None, FAIL, None),
        ({"receive_override_options": "no_address_mappings"}, None, PASS, None),
        ({}, {"receive_override_options": "no_unknown_recipient_checks,no_header_body_checks"}, None, FAIL),
        ({}, {"receive_override_options": "no_address_mappings"}, None, PASS),
    ],
)
def test_rcpt008_table(
    main: dict[str, str],
    smtp_ov: dict[str, str] | None,
    expected_main: Status | None,
    expected_smtp: Status | None,
) -> None:
    smtp = svc("smtp", overrides=smtp_ov or {})
    back = svc("127.0.0.1:10025", overrides={"receive_override_options": "no_unknown_recipient_checks"})
    cfg = config(main, [smtp, back])
    if expected_main is not None:
        assert status_of("PF-RCPT-008", cfg) is expected_main
    if expected_smtp is not None:
        f = finding("PF-RCPT-008", cfg, svc_target(smtp))
        assert f.status is expected_smtp
        if expected_smtp is FAIL:  # keeps the other option, drops the dangerous one
            assert lines(f) == [f"{PC} -P smtp/inet/receive_override_options=no_header_body_checks"]
    assert status_of("PF-RCPT-008", cfg, svc_target(back)) is PASS  # correct on re-injection


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        (
            {"smtpd_recipient_restrictions": "permit_mynetworks permit_mx_backup reject_unauth_destination"},
            FAIL,
        ),
        (
            {
                "smtpd_relay_restrictions": "permit_mx_backup, reject_unauth_destination",
                "permit_mx_backup_networks": "192.0.2.0/24",
            },
            PASS,
        ),
        ({"smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination"}, NA),
        (
            {
                "smtpd_recipient_restrictions": "permit_mx_backup, reject_unauth_destination",
                "permit_mx_backup_networks": "{{ n }}",
            },
            INC,
        ),
    ],
)
def test_rcpt009_table(main: dict[str, str], expected: Status) -> None:
    assert status_of("PF-RCPT-009", config(main)) is expected


def test_every_finding_has_evidence_or_is_not_applicable() -> None:
    cfg = config({"local_recipient_maps": "", "mydestination": "example.com", "soft_bounce": "yes"})
    for rid in ("PF-RCPT-001", "PF-RCPT-002", "PF-RCPT-005", "PF-RCPT-006", "PF-RCPT-007", "PF-RCPT-008"):
        for f in run(rid, cfg):
            assert f.status is NA or f.evidence, (rid, f)


@pytest.mark.parametrize("kind", ["mysql", "pgsql", "ldap"])
def test_rcpt004_sql_and_ldap_maps_read_but_not_queried_say_so(kind: str) -> None:
    # The collector finds the map's definition file but never queries the server: that is what the
    # finding says, with the command to run there, not that the table "could not be read".
    spec = f"{kind}:/etc/postfix/virtual.cf"
    t = LookupTable(
        spec=spec,
        type=kind,
        name="/etc/postfix/virtual.cf",
        used_by=("virtual_alias_maps",),
        resolved_path="/srv/copy/virtual.cf",
    )
    f = finding("PF-RCPT-004", config({"virtual_alias_maps": spec}, tables=[t]), f"{TARGET} table {spec}")
    text = f"{f.message} {f.note}"
    assert f.status is INC and "could not be read" not in text
    assert f"the {spec} map was read (/srv/copy/virtual.cf) but not queried" in text
    assert f"run `postmap -q <address> {spec}` on the server" in text
    # without its definition file in the linted directory, it was not even read
    missing = LookupTable(spec=spec, type=kind, name=t.name, used_by=t.used_by)
    g = finding(
        "PF-RCPT-004", config({"virtual_alias_maps": spec}, tables=[missing]), f"{TARGET} table {spec}"
    )
    assert (
        "was read" not in g.message
        and "not queried" in g.message
        and "not in the linted directory" in g.message
    )
