"""Content-check and transport tables (every entry with its action), template tokens with their
parameter, and the per-service view of ``-o`` values compared with the real postconf."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.collect.postfix import LookupTable, PostfixConfig, collect
from auditor.observations.postfix import MAX_CONTENTS
from tests.conftest import need_tool
from tests.unit.postfix.helpers import write_config

MAIN = """\
myhostname = mx.example.org
mydestination = localhost
header_checks = regexp:/etc/postfix/header_checks
body_checks = pcre:/etc/postfix/body_checks
transport_maps = hash:/etc/postfix/transport
virtual_mailbox_maps = ldap:/etc/postfix/ldap-mailboxes.cf
"""
MASTER = """\
smtp      inet  n       -       y       -       -       smtpd
127.0.0.1:10025 inet n  -       n       -       -       smtpd
  -o content_filter=
  -o cleanup_service_name=pre-cleanup
pre-cleanup unix n      -       n       -       0       cleanup
  -o header_checks=regexp:/etc/postfix/reinject_checks
  -o mime_header_checks=
cleanup   unix  n       -       n       -       0       cleanup
"""
HEADER = "# viruses\n/^X-Virus: yes/ DISCARD\nif /^Subject:/\n/free money/ REJECT no spam\nendif\n"
BODY = "/viagra/   hold\n"
REINJECT = "/^Received: from localhost/ IGNORE\n"
TRANSPORT = "example.org   smtp:[10.0.0.5]\nhelp@example.com ticket:\n"
LDAP = "server_host = ldap://127.0.0.1\nsearch_base = dc=example,dc=com\nquery_filter = (mail=%s)\n"


def _collect(tmp_path: Path, main: str = MAIN, **extra: str) -> PostfixConfig:
    files = {
        "header_checks": HEADER,
        "body_checks": BODY,
        "reinject_checks": REINJECT,
        "transport": TRANSPORT,
        "ldap-mailboxes.cf": LDAP,
        **extra,
    }
    d = write_config(tmp_path, main, MASTER, **files)
    return collect(str(d), use_postconf=False)


def _by_spec(cfg: PostfixConfig) -> dict[str, LookupTable]:
    return {t.spec: t for t in cfg.tables}


def test_content_check_entries_keep_their_actions_and_lines(tmp_path: Path) -> None:
    t = _by_spec(_collect(tmp_path))
    hc = t["regexp:/etc/postfix/header_checks"]
    # mime_header_checks and nested_header_checks default to $header_checks
    assert hc.readable and hc.used_by == ("header_checks", "mime_header_checks", "nested_header_checks")
    assert [(e.key, e.value, e.location.line if e.location else None) for e in hc.contents] == [
        ("/^X-Virus: yes/", "DISCARD", 2),
        ("/free money/", "REJECT no spam", 4),
    ]
    assert hc.random_lookup == "" and not hc.match_all_entries  # never looked up with addresses
    body = t["pcre:/etc/postfix/body_checks"]
    assert [e.value for e in body.contents] == ["hold"]
    # the -o on the cleanup service is collected with its service/type/parameter user
    own = t["regexp:/etc/postfix/reinject_checks"]
    assert own.used_by == ("pre-cleanup/unix/header_checks",) and own.used_for("header_checks")
    assert [e.value for e in own.contents] == ["IGNORE"]


def test_transport_maps_entries_are_kept(tmp_path: Path) -> None:
    tm = _by_spec(_collect(tmp_path))["hash:/etc/postfix/transport"]
    assert tm.readable and tm.entries == 2
    assert [(e.key, e.value) for e in tm.contents] == [
        ("example.org", "smtp:[10.0.0.5]"),
        ("help@example.com", "ticket:"),
    ]
    assert tm.contents[1].location is not None and tm.contents[1].location.line == 2
    assert [e.value for e in tm.result_kinds] == ["smtp:[10.0.0.5]", "ticket:"]


def test_recipient_tables_do_not_carry_their_contents(tmp_path: Path) -> None:
    main = MAIN + "relay_domains = example.net\nrelay_recipient_maps = hash:/etc/postfix/relay\n"
    t = _by_spec(_collect(tmp_path, main, relay="a@example.net OK\n"))
    relay = t["hash:/etc/postfix/relay"]
    assert relay.entries == 1 and relay.contents == ()


def test_ldap_map_file_is_found_in_the_directory(tmp_path: Path) -> None:
    t = _by_spec(_collect(tmp_path))["ldap:/etc/postfix/ldap-mailboxes.cf"]
    assert not t.readable and t.resolved_path == str(tmp_path / "ldap-mailboxes.cf")


def test_missing_and_huge_tables(tmp_path: Path) -> None:
    main = MAIN.replace("body_checks = pcre:/etc/postfix/body_checks", "body_checks = pcre:/nowhere/body")
    huge = "".join(f"/x{i}/ DISCARD\n" for i in range(MAX_CONTENTS + 2)) + "/last/ reject late\n"
    cfg = _collect(tmp_path, main, header_checks=huge)
    t = _by_spec(cfg)
    assert t["pcre:/nowhere/body"].error.startswith("table source not found")
    hc = t["regexp:/etc/postfix/header_checks"]
    assert hc.entries == MAX_CONTENTS + 3 and len(hc.contents) == MAX_CONTENTS and hc.contents_truncated
    assert any("entries kept" in n for n in cfg.notes)
    # the first entry of each action, over the whole table: the REJECT past the cut is still seen
    kinds = [(e.value, e.location.line if e.location else None) for e in hc.result_kinds]
    assert kinds == [("DISCARD", 1), ("reject late", MAX_CONTENTS + 3)]


# --- template tokens and the parameter they belong to ------------------------------------------

PMG_LIKE = """\
relay_domains = hash:/etc/pmg/domains
smtpd_recipient_restrictions =
        permit_mynetworks
        reject_unauth_destination
[%- IF pmg.mail.verifyreceivers %] reject_unverified_recipient[% END %]

[% IF pmg.mail.tls %]
smtpd_tls_security_level = may
[% END %]
smtpd_client_restrictions =
    permit_mynetworks,
    {%- if blocklists %}
    reject_rbl_client zen.spamhaus.org,
    {%- endif %}
    permit
"""


def test_skipped_template_lines_name_their_parameter(tmp_path: Path) -> None:
    d = write_config(tmp_path, PMG_LIKE)
    cfg = collect(str(d), use_postconf=False)
    by_line = {
        t.location.line: t for t in cfg.templates if t.token.lstrip("[{%- ").lower()[:2] in ("if", "en")
    }
    assert by_line[5].parameter == "smtpd_recipient_restrictions"
    assert by_line[5].skipped_text == "reject_unverified_recipient"
    assert by_line[7].parameter is None and by_line[9].parameter is None  # around a whole assignment
    assert by_line[12].parameter == by_line[14].parameter == "smtpd_client_restrictions"
    # the skipped line is not part of the value
    assert "reject_unverified_recipient" not in cfg.value("smtpd_recipient_restrictions")


def test_prefix_flag_lines_keep_value_placeholders(tmp_path: Path) -> None:
    main = "virtual_alias_maps =\n%{dovecot_enabled}        proxy:%{db_driver}:/etc/postfix/sql-aliases.cf\n"
    cfg = collect(str(write_config(tmp_path, main)), use_postconf=False)
    toks = [t for t in cfg.templates if t.location.line == 2]
    assert toks and all(t.parameter == "virtual_alias_maps" for t in toks)
    assert toks[0].skipped_text == "proxy:%{db_driver}:/etc/postfix/sql-aliases.cf"


# --- per-service view: what postconf -P -x shows ----------------------------------------------

SERVICE_MAIN = (
    "compatibility_level = 3.6\nfoo = mainfoo\nbar = $foo\n"
    "smtpd_recipient_restrictions = check_recipient_access hash:/etc/postfix/$foo\n"
)
SERVICE_MASTER = (
    "smtp inet n - n - - smtpd\n  -o foo=svcfoo\n  -o baz=$bar\n"
    "  -o smtpd_helo_restrictions=$smtpd_recipient_restrictions\n"
)


@pytest.mark.parametrize("use_postconf", [False, True])
def test_override_values_are_expanded_with_the_service_overrides(tmp_path: Path, use_postconf: bool) -> None:
    # An -o value that refers to a main.cf value which refers to an overridden name is expanded
    # with the override (postconf -P -x prints "smtp/inet/baz = svcfoo"). A main.cf value the
    # service does not override is not shown per service by postconf, and neither is it here.
    if use_postconf:
        need_tool("postconf")
    d = write_config(tmp_path, SERVICE_MAIN, SERVICE_MASTER)
    cfg = collect(str(d), use_postconf=use_postconf)
    ov = {k: v.value for k, v in cfg.services[0].overrides.items()}
    assert ov["baz"] == "svcfoo"
    assert ov["smtpd_helo_restrictions"] == "check_recipient_access hash:/etc/postfix/svcfoo"
    assert cfg.value("smtpd_recipient_restrictions") == "check_recipient_access hash:/etc/postfix/mainfoo"


def test_new_fields_survive_the_json_round_trip(tmp_path: Path) -> None:
    import json

    from auditor.serialize import from_jsonable, to_jsonable

    rcpt = "smtpd_recipient_restrictions =\n  permit_mynetworks\n"
    main = MAIN + rcpt + "[% IF v %] reject_unverified_recipient[% END %]\n"
    cfg = _collect(tmp_path, main)
    back = from_jsonable(PostfixConfig, json.loads(json.dumps(to_jsonable(cfg))))
    assert back == cfg
    assert any(t.contents for t in back.tables) and any(t.skipped_text for t in back.templates)
