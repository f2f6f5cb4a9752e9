"""PF-FILTER-001, PF-FILTER-004, PF-PIPE-001, PF-QUOTA-001, PF-DSN-001."""

from __future__ import annotations

from dataclasses import replace

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
        # whether the filter rejects is in its own settings (amavisd.conf), not in this folder
        ({"content_filter": "smtp-amavis:[127.0.0.1]:10024"}, INC),
        ({"content_filter": ""}, PASS),
        ({}, PASS),
        ({"content_filter": "PH_AMAVISD_CONTENT_FILTER"}, INC),
    ],
)
def test_filter001_main_cf(main: dict[str, str], expected: Status) -> None:
    cfg = config(main, [svc("smtp"), AMAVIS, REINJECT])
    f = finding("PF-FILTER-001", cfg)
    assert f.status is expected
    if expected is INC and "amavis" in main["content_filter"]:
        assert f.severity is Severity.HIGH
        assert "smtp(8) service" in f.message and "127.0.0.1:10025/inet" in f.message
        assert "smtp-amavis filter's settings" in f.note
        # never "remove the filter": that switches virus scanning off
        assert not f.remediation.commands and "D_DISCARD" in f.remediation.text
        assert "Keep content_filter" in f.remediation.text


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
    assert f.status is INC and "no loopback re-injection listener" in f.message
    assert status_of("PF-FILTER-001", cfg, svc_target(sub)) is PASS


HC = "regexp:/etc/postfix/header_checks"


def _checks_table(*entries: tuple[str, str], spec: str = HC, used_by: str = "header_checks") -> LookupTable:
    type_, name = spec.split(":", 1)
    rows = tuple(TableEntry(k, v, Location(name, i + 1)) for i, (k, v) in enumerate(entries))
    return LookupTable(
        spec=spec, type=type_, name=name, used_by=(used_by,), entries=len(rows), readable=True, contents=rows
    )


REJECTING = _checks_table(("/^X-Virus: yes/", "HOLD"), ("/^Subject: .*free money/", "REJECT no spam here"))


def test_filter004_reject_on_reinjection_without_override_fails_medium() -> None:
    back = svc("127.0.0.1:10025", overrides={"content_filter": ""})
    pickup = svc("pickup", "unix", "pickup", overrides={"receive_override_options": "no_header_body_checks"})
    cfg = config({"header_checks": HC}, [svc("smtp"), back, pickup], tables=[REJECTING])
    f = finding("PF-FILTER-004", cfg, svc_target(back))
    assert f.status is FAIL and f.severity is Severity.MEDIUM
    assert lines(f) == [f"{PC} -P 127.0.0.1:10025/inet/receive_override_options=no_header_body_checks"]
    assert "1 REJECT rule" in f.message
    # the evidence is the REJECT line itself, not the HOLD line above it
    assert f.location == Location("/etc/postfix/header_checks", 2)
    assert status_of("PF-FILTER-004", cfg, svc_target(pickup)) is PASS


def test_filter004_discard_and_hold_only_pass() -> None:
    back = svc("127.0.0.1:10025", overrides={"content_filter": ""})
    table = _checks_table(("/^X-Virus: yes/", "DISCARD"), ("/^Subject: spam/", "hold"), ("/^Foo/", "WARN"))
    cfg = config({"header_checks": HC}, [svc("smtp"), back], tables=[table])
    f = finding("PF-FILTER-004", cfg, svc_target(back))
    assert f.status is PASS and "DISCARD, HOLD, WARN" in f.message


def test_filter004_unread_or_templated_tables_are_inconclusive() -> None:
    back = svc("127.0.0.1:10025", overrides={"content_filter": ""})
    missing = config({"header_checks": HC}, [svc("smtp"), back])  # the table was not collected
    f = finding("PF-FILTER-004", missing, svc_target(back))
    assert f.status is INC and "not collected" in f.note
    unreadable = replace(REJECTING, readable=False, contents=(), error="table source not found in /x")
    g = finding("PF-FILTER-004", config({"header_checks": HC}, [back], tables=[unreadable]), svc_target(back))
    assert g.status is INC and "table source not found" in g.note
    templ = config({"body_checks": "pcre:{{ BODY_CHECKS }}"}, [back])
    assert status_of("PF-FILTER-004", templ, svc_target(back)) is INC


def test_filter004_a_reject_past_a_truncated_table_still_fails() -> None:
    back = svc("127.0.0.1:10025", overrides={"content_filter": ""})
    late = TableEntry("/late/", "REJECT", Location("/etc/postfix/header_checks", 9001))
    big = replace(
        _checks_table(("/a/", "DISCARD")),
        entries=9001,
        contents_truncated=True,
        result_kinds=(_checks_table(("/a/", "DISCARD")).contents[0], late),
    )
    f = finding("PF-FILTER-004", config({"header_checks": HC}, [back], tables=[big]), svc_target(back))
    assert f.status is FAIL and "at least 1 REJECT" in f.message and f.location == late.location
    only_discard = replace(big, result_kinds=big.contents)
    g = finding(
        "PF-FILTER-004", config({"header_checks": HC}, [back], tables=[only_discard]), svc_target(back)
    )
    assert g.status is PASS


def test_filter004_pickup_is_low_and_no_checks_is_not_applicable() -> None:
    pickup = svc("pickup", "unix", "pickup")
    body = _checks_table(("/viagra/", "REJECT"), spec="pcre:/etc/postfix/body_checks", used_by="body_checks")
    cfg = config(
        {"body_checks": "pcre:/etc/postfix/body_checks"}, [svc("smtp"), pickup, REINJECT], tables=[body]
    )
    f = finding("PF-FILTER-004", cfg, svc_target(pickup))
    assert f.status is FAIL and f.severity is Severity.LOW
    assert status_of("PF-FILTER-004", cfg, svc_target(REINJECT)) is PASS
    assert status_of("PF-FILTER-004", config({}, [svc("smtp"), pickup])) is NA


def test_filter004_checks_belong_to_the_cleanup_service() -> None:
    # "-o header_checks=" on an smtpd line does nothing: cleanup(8) applies the checks.
    ignored = svc("127.0.0.1:10025", overrides={"content_filter": "", "header_checks": ""})
    cfg = config({"header_checks": HC}, [svc("smtp"), ignored], tables=[REJECTING])
    f = finding("PF-FILTER-004", cfg, svc_target(ignored))
    assert f.status is FAIL and "has no effect" in f.note
    # the FILTER_README way: the re-injection path uses a cleanup service without header checks
    own = svc("127.0.0.1:10026", overrides={"content_filter": "", "cleanup_service_name": "pre-cleanup"})
    pre = svc("pre-cleanup", "unix", "cleanup", overrides={"header_checks": ""})
    cfg2 = config(
        {"header_checks": HC}, [svc("smtp"), own, pre, svc("cleanup", "unix", "cleanup")], [REJECTING]
    )
    g = finding("PF-FILTER-004", cfg2, svc_target(own))
    assert g.status is PASS and "pre-cleanup/unix" in g.message
    # and a cleanup service that adds its own rejecting table fails the path that uses it
    extra = svc("pre-cleanup", "unix", "cleanup", overrides={"header_checks": "pcre:/etc/postfix/strict"})
    strict = _checks_table(
        ("/^From:/", "REJECT"), spec="pcre:/etc/postfix/strict", used_by="pre-cleanup/unix/header_checks"
    )
    cfg3 = config({}, [svc("smtp"), own, extra], [strict])
    h = finding("PF-FILTER-004", cfg3, svc_target(own))
    assert h.status is FAIL and "pcre:/etc/postfix/strict" in h.message


AUTOREPLY = svc(
    "autoreply", "unix", "pipe", args=("flags=F", "user=nobody", "argv=/usr/local/bin/reply", "${sender}")
)
LDA = svc(
    "dovecot",
    "unix",
    "pipe",
    args=("flags=DRhu", "user=vmail", "argv=/usr/lib/dovecot/dovecot-lda", "-d", "${user}"),
)
UUCP = svc("uucp", "unix", "pipe", args=("flags=Fqhu", "user=uucp", "argv=uux", "-r"))
SALEARN = svc("sa-learn", "unix", "pipe", args=("user=spamd", "argv=/usr/bin/sa-learn", "--spam"))
LOCAL = svc("local", "unix", "local")


def test_pipe001_reachable_scripts_are_inconclusive_naming_the_exit_codes() -> None:
    # A pipe that Internet mail reaches bounces or not by its exit codes, which live in the script,
    # outside the Postfix folder: inconclusive, saying what to check (it used to be a fail).
    services = [*stock_services(), AUTOREPLY, LDA, UUCP]
    main = {
        "virtual_transport": "dovecot",
        "virtual_mailbox_domains": "example.com",
        "content_filter": "autoreply:dummy",
    }
    cfg = config(main, services)
    f = finding("PF-PIPE-001", cfg, svc_target(AUTOREPLY))
    assert f.status is INC and f.severity is Severity.MEDIUM
    assert "/usr/local/bin/reply ${sender}" in f.message and "anonymous Internet clients" in f.message
    assert "content_filter = autoreply:dummy on smtp/inet" in f.message
    assert "75 (EX_TEMPFAIL)" in f.note and "67 (EX_NOUSER)" in f.note and "69 (EX_UNAVAILABLE)" in f.note
    assert f.location == AUTOREPLY.location
    g = finding("PF-PIPE-001", cfg, svc_target(LDA))
    assert g.status is INC and g.severity is Severity.LOW and "PF-QUOTA-001" in g.note
    assert "virtual_mailbox_domains (example.com)" in g.message
    assert status_of("PF-PIPE-001", cfg) is PASS  # uucp: defined, nothing routes to it
    with_maps = config({"transport_maps": "hash:/etc/postfix/transport"}, services)
    h = finding("PF-PIPE-001", with_maps)
    assert h.status is INC and h.severity is Severity.LOW and "uucp/unix" in h.message
    # reachable pipes leave the NDR size undecided, no longer failed
    dsn = finding("PF-DSN-001", cfg)
    assert dsn.status is INC and "PF-PIPE-001" in dsn.message


def test_pipe001_virtual_transport_without_virtual_domains_is_unreachable() -> None:
    cfg = config({"virtual_transport": "dovecot"}, [*stock_services(), LDA])
    f = finding("PF-PIPE-001", cfg, svc_target(LDA))
    assert f.status is PASS and "virtual_mailbox_domains is empty" in f.message


def test_pipe001_loopback_only_null_client_reaches_no_pipe() -> None:
    # inet_interfaces = loopback-only: the stock "smtp inet" listens on 127.0.0.1 only, so nothing
    # from outside reaches the pipes, and the NDR size rule finds no NDR source.
    main = {
        "inet_interfaces": "loopback-only",
        "content_filter": "autoreply:dummy",
        "mailbox_command": "/usr/bin/procmail -a $EXTENSION",
    }
    cfg = config(main, [*stock_services(), LOCAL, AUTOREPLY])
    f = finding("PF-PIPE-001", cfg, svc_target(AUTOREPLY))
    assert f.status is PASS and "loopback only (inet_interfaces = loopback-only)" in f.message
    assert any(e.location == Location(f"{TARGET}/main.cf", 2) for e in f.evidence)  # inet_interfaces
    m = finding("PF-PIPE-001", cfg, f"{TARGET} mailbox_command")
    assert m.status is PASS and "local(8)" in m.message
    dsn = finding("PF-DSN-001", cfg)
    assert dsn.status is PASS and "no rule found" in dsn.message
    # an explicit public address on the listener wins over inet_interfaces
    public = config(main, [svc("192.0.2.25:smtp"), LOCAL, AUTOREPLY])
    assert status_of("PF-PIPE-001", public, svc_target(AUTOREPLY)) is INC
    for loop in ("127.0.0.1, [::1]", "localhost"):
        closed = config({**main, "inet_interfaces": loop}, [*stock_services(), LOCAL, AUTOREPLY])
        assert status_of("PF-PIPE-001", closed, svc_target(AUTOREPLY)) is PASS, loop
    # a templated interface list decides nothing
    templ = config({**main, "inet_interfaces": "{{ listen }}"}, [*stock_services(), LOCAL, AUTOREPLY])
    assert status_of("PF-PIPE-001", templ, svc_target(AUTOREPLY)) is INC


def test_pipe001_filter_on_a_submission_listener_only_is_unreachable() -> None:
    sub = svc(
        "submission",
        overrides={
            "smtpd_recipient_restrictions": "permit_sasl_authenticated,reject",
            "content_filter": "autoreply:",
        },
    )
    cfg = config({}, [*stock_services(), sub, AUTOREPLY])
    f = finding("PF-PIPE-001", cfg, svc_target(AUTOREPLY))
    assert f.status is PASS and "submission/inet" in f.message and "admits only authenticated" in f.message


TM = "hash:/etc/postfix/transport"


def _transport(*entries: tuple[str, str], spec: str = TM) -> LookupTable:
    return _checks_table(*entries, spec=spec, used_by="transport_maps")


@pytest.mark.parametrize(
    ("entry", "main", "expected", "words"),
    [
        # a pseudo-domain in no accepted class: only trusted/authenticated clients relay to it
        (
            ("spamtrain.invalid", "sa-learn:"),
            {"mydestination": "mail.example.com, localhost", "virtual_mailbox_domains": "example.com"},
            PASS,
            "spamtrain.invalid is in no accepted domain class",
        ),
        # whether it is in the virtual domain table is not known
        (
            ("spamtrain.invalid", "sa-learn:"),
            {"mydestination": "localhost", "virtual_mailbox_domains": "hash:/etc/postfix/vdomains"},
            INC,
            "hash:/etc/postfix/vdomains",
        ),
        # a hosted domain is addressable by anyone
        (
            ("learn@example.com", "sa-learn:"),
            {"mydestination": "localhost", "virtual_mailbox_domains": "example.com"},
            INC,
            "example.com is in virtual_mailbox_domains",
        ),
        (("sub.example.net", "sa-learn:"), {"relay_domains": "example.net"}, INC, "in relay_domains"),
        (("*", "sa-learn:"), {"mydestination": "localhost"}, INC, "every recipient"),
        (
            ("/^spam@learn\\.invalid$/", "sa-learn:"),
            {"mydestination": "localhost", "virtual_mailbox_domains": "example.com"},
            PASS,
            "matches no accepted domain",
        ),
        (
            ("/@example\\.COM$/", "sa-learn:"),
            {"mydestination": "localhost", "virtual_mailbox_domains": "example.com"},
            INC,
            "postmaster@example.com",
        ),
    ],
)
def test_pipe001_transport_map_entries_reachable_by_domain(
    entry: tuple[str, str], main: dict[str, str], expected: Status, words: str
) -> None:
    spec = "pcre:/etc/postfix/transport" if entry[0].startswith("/") else TM
    cfg = config(
        {"transport_maps": spec, **main}, [*stock_services(), SALEARN], [_transport(entry, spec=spec)]
    )
    f = finding("PF-PIPE-001", cfg, svc_target(SALEARN))
    assert f.status is expected and words in f.message, f.message
    assert any(e.location == Location("/etc/postfix/transport", 1) for e in f.evidence)


def test_pipe001_reads_transport_maps_entries() -> None:
    ticket = svc(
        "ticket", "unix", "pipe", args=("user=rt", "argv=/usr/bin/rt-mailgate", "--queue", "general")
    )
    services = [*stock_services(), UUCP, ticket]
    table = _transport(("example.org", "smtp:[10.0.0.5]"), ("help@example.com", "ticket:"))
    cfg = config({"transport_maps": TM, "virtual_mailbox_domains": "example.com"}, services, tables=[table])
    f = finding("PF-PIPE-001", cfg, svc_target(ticket))
    assert f.status is INC and f.severity is Severity.MEDIUM and "rt-mailgate" in f.message
    assert any(e.location == Location("/etc/postfix/transport", 2) for e in f.evidence)
    # uucp: the table was read and no entry names it
    g = finding("PF-PIPE-001", cfg)
    assert g.status is PASS and "uucp/unix" in g.message and "ticket" not in g.message
    # an LDAP transport table that was read but not queried: the unused pipe stays a low inconclusive
    ldap = LookupTable(
        spec="ldap:/etc/postfix/transport.cf",
        type="ldap",
        name="/etc/postfix/transport.cf",
        used_by=("transport_maps",),
        resolved_path="/etc/postfix/transport.cf",
    )
    h = finding("PF-PIPE-001", config({"transport_maps": ldap.spec}, services, tables=[ldap]))
    assert h.status is INC and h.severity is Severity.LOW
    assert (
        "the ldap:/etc/postfix/transport.cf map was read (/etc/postfix/transport.cf) but not queried"
        in h.note
    )
    assert (
        "postmap -q <domain> ldap:/etc/postfix/transport.cf" in h.note and "could not be read" not in h.note
    )


def test_pipe001_mailbox_command_and_nothing() -> None:
    cmd = {"mailbox_command": "/usr/bin/procmail -a $EXTENSION"}
    cfg = config(cmd, [*stock_services(), LOCAL])
    f = finding("PF-PIPE-001", cfg, f"{TARGET} mailbox_command")
    # local(8) gets mail for user@[IP] literals of the listening addresses, whatever mydestination is
    assert f.status is INC and "local domain class" in f.message and "procmail" in f.message
    # local delivery switched off: mailbox_command is never run
    off = config({**cmd, "local_transport": "error:local delivery is disabled"}, [*stock_services(), LOCAL])
    g = finding("PF-PIPE-001", off, f"{TARGET} mailbox_command")
    assert g.status is PASS and "no transport setting routes mail to local(8)" in g.message
    assert status_of("PF-PIPE-001", config({})) is NA


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        # whether Dovecot enforces quota is outside the Postfix folder
        ({"virtual_transport": "lmtp:unix:private/dovecot-lmtp"}, INC),
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
        ({"virtual_transport": "lmtp:inet:{{ FRONT }}:2525"}, INC),  # templated host, still LMTP
        ({"virtual_transport": "virtual"}, NA),
        ({}, NA),
    ],
)
def test_quota001_table(main: dict[str, str], expected: Status) -> None:
    f = finding("PF-QUOTA-001", config(main))
    assert f.status is expected, f.message
    if expected is INC and "check_policy_service" not in main.get("smtpd_recipient_restrictions", ""):
        assert "quota plugin" in f.note
        (cmd,) = f.remediation.commands  # the quota service goes into the site's own list
        assert cmd.line == (
            f"{PC} -e 'smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, "
            "check_policy_service <your quota-status service>'"
        )
        assert not cmd.safe and cmd.placeholders == ("<your quota-status service>",)


def test_quota001_submission_listener_is_not_judged() -> None:
    sub = svc("submission", overrides={"smtpd_recipient_restrictions": "permit_sasl_authenticated,reject"})
    cfg = config({"virtual_transport": "lmtp:unix:private/dovecot-lmtp"}, [*stock_services(), sub])
    found = {f.target: f.status for f in run("PF-QUOTA-001", cfg)}
    assert found == {TARGET: INC}  # port 25 is asked about; the SASL-only listener is not


@pytest.mark.parametrize(
    ("main", "expected", "severity"),
    [
        ({"bounce_size_limit": "8192"}, PASS, None),
        ({}, PASS, None),  # default 50000, but nothing bounces mail of outside senders
        ({"bounce_size_limit": "100000", "relay_domains": "example.com"}, FAIL, Severity.MEDIUM),
        # the only NDR source is undecided (does Dovecot enforce quota?): so is this
        ({"virtual_transport": "lmtp:unix:private/dovecot-lmtp"}, INC, Severity.LOW),
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
        assert lines(f) == [f"{PC} -e 'bounce_size_limit = 8192'"]


def test_rule_findings_never_leak_targets_outside_the_config() -> None:
    cfg = config(
        {"content_filter": "amavis:[127.0.0.1]:10024", "header_checks": "regexp:/x"}, [svc("smtp"), REINJECT]
    )
    for rid in ("PF-FILTER-001", "PF-FILTER-004", "PF-PIPE-001", "PF-QUOTA-001", "PF-DSN-001"):
        for f in run(rid, cfg):
            assert f.target.startswith(TARGET)
