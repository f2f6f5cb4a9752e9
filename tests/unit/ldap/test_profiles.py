"""Profiles and accumulation: how entries become recipient sets and facts (no server)."""

from __future__ import annotations

import pytest

from auditor.collect.ldap.accumulate import accumulate
from auditor.collect.ldap.profiles import detect_profile, entry_facts, make_profile
from auditor.collect.ldap.sample import sample_addresses
from auditor.observations.directory import DirectoryRecipients

AD = make_profile("ad")
OL = make_profile("openldap", ["mailRoutingAddress"])


def test_ad_proxy_addresses_prefixes() -> None:
    f = entry_facts(
        AD,
        "cn=a",
        {
            "proxyAddresses": [
                "SMTP:Alice@Example.TEST",
                "smtp:a2@example.test",
                "X500:/o=x/cn=a",
                "SIP:a@example.test",
                "EUM:1;phone",
                "Smtp:a3@example.test",
                "nocolon@x.test",
            ],
            "mail": ["alice@example.test"],
        },
    )
    assert [(a, p) for a, _, p in f.addresses] == [
        ("alice@example.test", True),
        ("a2@example.test", False),
        ("a3@example.test", False),
        ("alice@example.test", True),
    ]


def test_ad_disabled_and_exempt() -> None:
    shared = entry_facts(AD, "cn=s", {"userAccountControl": ["514"], "msExchRecipientTypeDetails": ["4"]})
    leaver = entry_facts(AD, "cn=l", {"userAccountControl": ["514"], "msExchRecipientTypeDetails": ["1"]})
    normal = entry_facts(AD, "cn=n", {"userAccountControl": ["512"]})
    assert shared.disabled and shared.exempt_reason == "shared mailbox"
    assert leaver.disabled and leaver.exempt_reason == ""
    assert not normal.disabled
    assert entry_facts(AD, "cn=x", {"userAccountControl": ["garbage"]}).user_account_control is None


def test_catch_all_and_bare_values() -> None:
    f = entry_facts(OL, "uid=b", {"mailLocalAddress": ["@Example.Org", "localpartonly", ""]})
    assert f.catch_alls == [("@example.org", "mailLocalAddress")]
    assert f.addresses == []


def test_extra_attribute_and_filter() -> None:
    assert "mailRoutingAddress" in OL.address_attributes
    assert (
        OL.default_filter == "(|(mail=*)(mailAlternateAddress=*)(mailLocalAddress=*)(mailRoutingAddress=*))"
    )
    with pytest.raises(ValueError):
        make_profile("exchange")


@pytest.mark.parametrize(
    ("dse", "expected"),
    [
        ({"forestFunctionality": ["7"], "namingContexts": ["dc=x"]}, "ad"),
        ({"isGlobalCatalogReady": ["TRUE"]}, "ad"),
        ({"namingContexts": ["dc=x"], "vendorName": ["OpenLDAP"]}, "openldap"),
        ({"forestFunctionality": []}, "openldap"),
        ({}, "openldap"),
    ],
)
def test_detect_profile(dse: dict[str, list[str]], expected: str) -> None:
    assert detect_profile(dse) == expected


def test_accumulate_facts() -> None:
    raw: list[tuple[str, dict[str, list[str]]]] = [
        ("cn=a", {"objectClass": ["user"], "proxyAddresses": ["SMTP:a@x.test", "smtp:dup@x.test"]}),
        (
            "cn=b",
            {
                "objectClass": ["user"],
                "proxyAddresses": ["SMTP:b@x.test", "smtp:DUP@x.test", "smtp:b@old.test"],
            },
        ),
        (
            "cn=c",
            {
                "objectClass": ["contact"],
                "mail": ["ext@partner.test"],
                "targetAddress": ["SMTP:ext@partner.test"],
                "proxyAddresses": ["smtp:c@x.test"],
            },
        ),
        ("cn=l", {"objectClass": ["user"], "userAccountControl": ["2"], "proxyAddresses": ["SMTP:l@x.test"]}),
        ("cn=g", {"objectClass": ["group"], "mail": ["g@x.test"], "msExchRequireAuthToSendTo": ["TRUE"]}),
    ]
    entries = [entry_facts(AD, dn, attrs) for dn, attrs in raw]
    acc = accumulate(entries, ["X.test.", "empty.test"])
    assert acc.recipients["x.test"] == {
        "a@x.test": "cn=a",
        "dup@x.test": "cn=a",
        "b@x.test": "cn=b",
        "c@x.test": "cn=c",
        "g@x.test": "cn=g",
    }  # l@x.test belongs to a disabled account: not a valid recipient
    assert [(d.address, d.dns) for d in acc.duplicate_list()] == [("dup@x.test", ("cn=a", "cn=b"))]
    assert [r.address for r in acc.out_of_domain] == ["b@old.test"]  # the contact's address is not one
    assert acc.external_targets == 2  # contact mail + targetAddress
    assert [(e.dn, e.exempt) for e in acc.disabled] == [("cn=l", "")]
    assert [g.dn for g in acc.restricted_groups] == ["cn=g"]
    assert acc.empty_domains() == ("empty.test",)
    examples = {r.address for r in acc.examples()}
    assert "dup@x.test" not in examples and "l@x.test" not in examples and "a@x.test" in examples


def test_same_address_twice_on_one_entry_is_not_a_duplicate() -> None:
    e = entry_facts(AD, "cn=a", {"mail": ["a@x.test"], "proxyAddresses": ["SMTP:a@x.test"]})
    acc = accumulate([e], ["x.test"])
    assert acc.duplicate_list() == ()
    assert acc.recipients == {"x.test": {"a@x.test": "cn=a"}}


def test_no_accepted_domains_keys_by_seen_domain() -> None:
    e = entry_facts(OL, "uid=a", {"mail": ["a@one.test"], "mailAlternateAddress": ["a@two.test"]})
    acc = accumulate([e])
    assert set(acc.recipients) == {"one.test", "two.test"}
    assert acc.out_of_domain == [] and acc.empty_domains() == ()


def test_disabled_accounts_are_not_valid_recipients_but_shared_mailboxes_are() -> None:
    raw: list[tuple[str, dict[str, list[str]]]] = [
        (
            "cn=leaver",
            {"objectClass": ["user"], "userAccountControl": ["514"], "proxyAddresses": ["SMTP:l@x.test"]},
        ),
        (
            "cn=info",
            {
                "objectClass": ["user"],
                "userAccountControl": ["514"],
                "msExchRecipientTypeDetails": ["4"],
                "proxyAddresses": ["SMTP:info@x.test"],
            },
        ),
        # the leaver's address moved to an enabled successor: valid, and on two entries
        (
            "cn=succ",
            {"objectClass": ["user"], "userAccountControl": ["512"], "proxyAddresses": ["SMTP:l@x.test"]},
        ),
        ("cn=gone", {"objectClass": ["user"], "userAccountControl": ["2"], "mail": ["gone@only.test"]}),
    ]
    acc = accumulate([entry_facts(AD, dn, attrs) for dn, attrs in raw], ["x.test", "only.test"])
    assert acc.recipients["x.test"] == {"info@x.test": "cn=info", "l@x.test": "cn=succ"}
    assert acc.recipients["only.test"] == {}
    assert acc.empty_domains() == ("only.test",)  # its only address belongs to a disabled account
    assert [(d.address, d.dns) for d in acc.duplicate_list()] == [("l@x.test", ("cn=leaver", "cn=succ"))]
    assert {e.dn: e.addresses for e in acc.disabled} == {
        "cn=leaver": ("l@x.test",),
        "cn=info": ("info@x.test",),
        "cn=gone": ("gone@only.test",),
    }
    obs = DirectoryRecipients(
        target="ldap",
        complete=True,
        recipients=acc.recipients,
        examples=acc.examples(),
        disabled=tuple(acc.disabled),
        duplicates=acc.duplicate_list(),
        accepted_domains=("x.test", "only.test"),
    )
    # the probe's known-valid controls come from the valid set: never a disabled account's address
    assert sample_addresses(obs, 5) == ["info@x.test"]
    assert "gone@only.test" not in obs.all_addresses() and obs.address_count == 2
