"""The shape of computed Postfix fixes: the site's own lists, its map type, -o overrides, quoting."""

from __future__ import annotations

import shlex
from dataclasses import replace

from auditor.model import Status
from auditor.rules.postfix_common import config_dir, map_type
from tests.unit.rules_postfix.builder import PC, TARGET, config, finding, lines, svc, svc_target


def test_the_gate_goes_into_the_sites_own_list_before_what_could_admit_anyone() -> None:
    # (b): replacing the list with a generic one would drop SASL, the HELO table and the policy service
    cfg = config(
        {
            "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, "
            "check_helo_access hash:/etc/postfix/helo, check_policy_service inet:127.0.0.1:10023, permit",
        }
    )
    f = finding("PF-RELAY-001", cfg)
    assert f.status is Status.FAIL
    assert lines(f) == [
        f"{PC} -e 'smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
        "reject_unauth_destination, check_helo_access hash:/etc/postfix/helo, "
        "check_policy_service inet:127.0.0.1:10023, permit'"
    ]


def test_verification_goes_after_the_gate_and_before_the_policy_service() -> None:
    cfg = config(
        {
            "relay_domains": "example.com",
            "smtpd_recipient_restrictions": "permit_mynetworks, check_policy_service inet:127.0.0.1:10023, "
            "reject_unauth_destination, permit",
        }
    )
    f = finding("PF-VERIFY-002", cfg)
    assert lines(f) == [
        f"{PC} -e 'smtpd_recipient_restrictions = permit_mynetworks, check_policy_service "
        "inet:127.0.0.1:10023, reject_unauth_destination, reject_unverified_recipient, permit'"
    ]


def test_a_dollar_list_is_edited_where_it_is_defined() -> None:
    # the lab's greylist listener: -o smtpd_recipient_restrictions=$bsa_greylist_restrictions
    grey = svc("192.0.2.15:smtp", overrides={"smtpd_recipient_restrictions": "$bsa_greylist_restrictions"})
    cfg = config(
        {
            "relay_domains": "example.com",
            "bsa_greylist_restrictions": "reject_unauth_destination, check_policy_service unix:/run/g",
        },
        [svc("smtp"), grey],
    )
    f = finding("PF-VERIFY-002", cfg, svc_target(grey))
    assert lines(f) == [
        f"{PC} -e 'bsa_greylist_restrictions = reject_unauth_destination, reject_unverified_recipient, "
        "check_policy_service unix:/run/g'"
    ]


def test_a_listener_override_is_fixed_on_that_listener() -> None:
    tempfail = svc("192.0.2.14:smtp", overrides={"unknown_relay_recipient_reject_code": "450"})
    cfg = config({}, [svc("smtp"), tempfail])
    f = finding("PF-RCPT-006", cfg, svc_target(tempfail))
    assert lines(f) == [f"{PC} -PX 192.0.2.14:smtp/inet/unknown_relay_recipient_reject_code"]
    # a list copied onto a listener that inherits main.cf: -P takes no whitespace, so commas
    sub = svc(
        "2525", overrides={"smtpd_recipient_restrictions": "permit_mynetworks reject_unauth_destination"}
    )
    f = finding(
        "PF-VERIFY-002", config({"relay_domains": "example.com"}, [svc("smtp"), sub]), svc_target(sub)
    )
    assert lines(f) == [
        f"{PC} -P 2525/inet/smtpd_recipient_restrictions="
        "permit_mynetworks,reject_unauth_destination,reject_unverified_recipient"
    ]


def test_a_new_table_uses_the_sites_map_type_and_names_its_placeholder() -> None:
    site = config({"relay_domains": "example.com", "transport_maps": "cdb:/etc/postfix/transport"})
    f = finding("PF-RCPT-003", site)
    ph = "<your relay recipient table>"
    assert lines(f) == [
        f"postmap -c {TARGET} 'cdb:{ph}'",
        f"{PC} -e 'relay_recipient_maps = cdb:{ph}'",
    ]
    assert all(
        not c.safe and c.placeholders == (ph,) and c.directory == TARGET for c in f.remediation.commands
    )
    assert map_type(config({"default_database_type": "btree"})) == "btree"  # no tables: the site's default
    assert map_type(config({})) == "hash"


def test_live_etc_postfix_read_through_postconf_needs_no_dash_c() -> None:
    cfg = config({"soft_bounce": "yes"})
    assert config_dir(cfg) == TARGET  # the file parser's view: name it
    live = replace(cfg, source="postconf")
    assert config_dir(live) == ""
    assert lines(finding("PF-RCPT-007", live)) == ["postconf -e 'soft_bounce = no'"]


def test_values_survive_the_shell() -> None:
    cfg = config(
        {
            "local_recipient_maps": "",
            "mydestination": "example.com",
            "local_transport": "lmtp:unix:private/dovecot-lmtp",
            "virtual_mailbox_maps": "hash:/etc/postfix/vmailbox",
        }
    )
    f = finding("PF-RCPT-001", cfg)
    (line,) = lines(f)
    assert shlex.split(line)[-1] == "local_recipient_maps = $virtual_mailbox_maps"


def test_a_filter_is_never_switched_off_to_stop_a_bounce() -> None:
    f = finding("PF-FILTER-001", config({"content_filter": "amavis:[127.0.0.1]:10024"}))
    assert f.status is Status.INCONCLUSIVE
    assert not f.remediation.commands and "content_filter" not in " ".join(lines(f))
    assert "final_virus_destiny" in f.remediation.text
