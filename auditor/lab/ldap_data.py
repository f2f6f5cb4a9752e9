"""Directory data for the lab and the tests: an OpenLDAP-style tree, an AD-style tree, bulk users.

Each tree can carry PLANTED DEFECTS, switched on one by one, so a test proves that a check fires on
its defect and stays quiet without it. Every generator also says what the collector must find (the
exact valid-recipient set per accepted domain), so tests compare against data, not hard-coded lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# A small AD-like schema (lab.md §5). proxyAddresses and userAccountControl carry their AD OIDs;
# everything else is a lab stand-in under a private arc (names match AD so the collector's AD
# profile reads them the same way).
ADLIKE_SCHEMA_LDIF = """dn: cn=adlike,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: adlike
olcAttributeTypes: ( 1.2.840.113556.1.2.210 NAME 'proxyAddresses' DESC 'AD-like proxyAddresses'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
olcAttributeTypes: ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' DESC 'AD-like account flags'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.99999.1.2.1 NAME 'msExchRecipientTypeDetails' DESC 'lab stand-in'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.99999.1.2.2 NAME 'mailAlternateAddress' DESC 'lab stand-in'
  EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
olcAttributeTypes: ( 1.3.6.1.4.1.99999.1.2.3 NAME 'targetAddress' DESC 'lab stand-in'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.99999.1.2.4 NAME 'msExchRequireAuthToSendTo' DESC 'lab stand-in'
  EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.99999.1.1 NAME 'adlikeMailUser' DESC 'lab: aux class for AD mail attributes'
  SUP top AUXILIARY MAY ( proxyAddresses $ userAccountControl $ msExchRecipientTypeDetails $
  mailAlternateAddress $ targetAddress $ msExchRequireAuthToSendTo $ mail ) )
olcObjectClasses: ( 1.3.6.1.4.1.99999.1.3 NAME 'user' DESC 'lab stand-in for AD user'
  SUP organizationalPerson STRUCTURAL MAY ( mail $ uid ) )
olcObjectClasses: ( 1.3.6.1.4.1.99999.1.4 NAME 'contact' DESC 'lab stand-in for AD contact'
  SUP organizationalPerson STRUCTURAL MAY mail )
olcObjectClasses: ( 1.3.6.1.4.1.99999.1.5 NAME 'group' DESC 'lab stand-in for AD group'
  SUP top STRUCTURAL MUST cn MAY ( member $ mail $ description ) )
olcObjectClasses: ( 1.3.6.1.4.1.99999.1.6 NAME 'publicFolder' DESC 'lab stand-in for AD public folder'
  SUP top STRUCTURAL MUST cn MAY mail )
"""

# userAccountControl flags (AD): 0x200 NORMAL_ACCOUNT, 0x2 ACCOUNTDISABLE.
UAC_NORMAL = 512
UAC_DISABLED = 514


@dataclass(frozen=True)
class Defects:
    """Which planted defects a tree carries (all off by default: a clean directory)."""

    catch_all: bool = False  # an "@domain" address value (LDAP-ADDR-002)
    disabled: bool = False  # a disabled user mailbox that still has addresses (LDAP-ACCT-001)
    duplicate: bool = False  # one address on two entries (LDAP-DUP-001)
    foreign: bool = False  # an address in a domain that is not accepted (LDAP-DOM-001)
    empty_domain: bool = False  # an accepted domain without any entry (LDAP-DOM-002)
    restricted_group: bool = False  # a group that only accepts authenticated senders (LDAP-GRP-001)


@dataclass(frozen=True)
class Tree:
    """A generated tree and what a correct collector must report for it."""

    ldif: str
    domains: tuple[str, ...]  # the accepted domains (pass as --domain)
    expected: dict[str, frozenset[str]]  # the valid recipient addresses per accepted domain
    known_valid: str  # a primary address of an enabled mailbox
    alias: str  # a secondary address of the same mailbox
    planted: dict[str, str] = field(default_factory=dict)  # defect -> offending address / DN


def _entry(dn: str, attrs: list[tuple[str, str]]) -> str:
    # Values of one attribute must be contiguous: slapadd -q would store two instances otherwise.
    grouped: dict[str, list[str]] = {}
    for k, v in attrs:
        grouped.setdefault(k, []).append(v)
    return f"dn: {dn}\n" + "".join(f"{k}: {v}\n" for k, vs in grouped.items() for v in vs) + "\n"


def _ous(suffix: str, *names: str) -> str:
    return "".join(
        _entry(f"ou={n},{suffix}", [("objectClass", "organizationalUnit"), ("ou", n)]) for n in names
    )


def openldap_tree(suffix: str = "dc=example,dc=test", defects: Defects = Defects()) -> Tree:
    """inetOrgPerson users with mail, mailLocalAddress and mailAlternateAddress (two domains)."""
    d1, d2 = "example.test", "example.org"
    people = f"ou=people,{suffix}"
    out = [_ous(suffix, "people")]
    expected: dict[str, set[str]] = {d1: set(), d2: set()}
    planted: dict[str, str] = {}
    for name in ("alice", "bob", "carol"):
        attrs = [
            ("objectClass", "inetOrgPerson"),
            ("objectClass", "inetLocalMailRecipient"),
            ("objectClass", "adlikeMailUser"),
            ("uid", name),
            ("cn", name.title()),
            ("sn", "Test"),
            ("mail", f"{name}@{d1}"),
            ("mailLocalAddress", f"{name}.alias@{d1}"),
            ("mailAlternateAddress", f"{name}@{d2}"),
        ]
        expected[d1] |= {f"{name}@{d1}", f"{name}.alias@{d1}"}
        expected[d2].add(f"{name}@{d2}")
        if name == "bob" and defects.catch_all:
            attrs.append(("mailLocalAddress", f"@{d2}"))
            planted["catch_all"] = f"@{d2}"
        if name == "carol" and defects.duplicate:
            attrs.append(("mailAlternateAddress", f"alice.alias@{d1}"))
            planted["duplicate"] = f"alice.alias@{d1}"
        if name == "carol" and defects.foreign:
            attrs.append(("mailAlternateAddress", "carol@not-accepted.test"))
            planted["foreign"] = "carol@not-accepted.test"
        out.append(_entry(f"uid={name},{people}", attrs))
    # mixed case in the directory: the collector must normalise to lower case
    out.append(
        _entry(
            f"uid=dave,{people}",
            [
                ("objectClass", "inetOrgPerson"),
                ("uid", "dave"),
                ("cn", "Dave"),
                ("sn", "Test"),
                ("mail", f"Dave.Smith@{d1.upper()}"),
            ],
        )
    )
    expected[d1].add(f"dave.smith@{d1}")
    # an entry without any mail attribute must contribute nothing
    out.append(_entry(f"uid=nomail,{people}", [("objectClass", "inetOrgPerson"), ("uid", "nomail"),
                                                ("cn", "No Mail"), ("sn", "Test")]))  # fmt: skip
    domains: tuple[str, ...] = (d1, d2)
    if defects.empty_domain:
        domains += ("empty.test",)
        expected["empty.test"] = set()
        planted["empty_domain"] = "empty.test"
    return Tree(
        ldif="".join(out),
        domains=domains,
        expected={k: frozenset(v) for k, v in expected.items()},
        known_valid=f"alice@{d1}",
        alias=f"alice.alias@{d1}",
        planted=planted,
    )


def ad_tree(suffix: str = "dc=example,dc=test", defects: Defects = Defects()) -> Tree:
    """AD/Exchange-style objects: users, shared/room mailboxes, contacts, groups, a public folder."""
    dom = "example.test"
    users = f"ou=Users,{suffix}"
    out = [_ous(suffix, "Users", "Contacts", "Groups", "Public Folders")]
    expected: set[str] = set()
    planted: dict[str, str] = {}

    def user(cn: str, uac: int, rtd: int, proxies: list[str], extra: tuple[tuple[str, str], ...] = ()) -> str:
        attrs = [("objectClass", "user"), ("objectClass", "adlikeMailUser"), ("cn", cn), ("sn", cn),
                 ("userAccountControl", str(uac)), ("msExchRecipientTypeDetails", str(rtd))]  # fmt: skip
        attrs += [("proxyAddresses", p) for p in proxies]
        attrs += list(extra)
        return _entry(f"cn={cn},{users}", attrs)

    out.append(
        user(
            "Alice",
            UAC_NORMAL,
            1,
            [
                f"SMTP:alice@{dom}",
                f"smtp:alice.sales@{dom}",
                "X500:/o=Example/ou=Exchange/cn=Recipients/cn=alice",
                f"SIP:alice@{dom}",
                "X400:c=US;a= ;p=Example;o=Exchange;s=Alice;",
            ],
            (("mail", f"alice@{dom}"),),
        )
    )
    expected |= {f"alice@{dom}", f"alice.sales@{dom}"}
    # prefix case and address case vary in real directories
    out.append(
        user(
            "Bob",
            UAC_NORMAL,
            1,
            [f"SMTP:Bob@{dom}", "Smtp:Bob.Proxy@EXAMPLE.TEST", f"EUM:1234;phone-context={dom}"],
        )
    )
    expected |= {f"bob@{dom}", f"bob.proxy@{dom}"}
    # disabled accounts that are valid recipients: shared, room and equipment mailboxes
    out.append(user("Info", UAC_DISABLED, 4, [f"SMTP:info@{dom}"]))
    out.append(user("Room1", UAC_DISABLED, 16, [f"SMTP:room1@{dom}"]))
    out.append(user("Beamer", UAC_DISABLED, 32, [f"SMTP:beamer@{dom}"]))
    expected |= {f"info@{dom}", f"room1@{dom}", f"beamer@{dom}"}
    # a disabled account without any address is not a finding
    out.append(user("OldAdmin", UAC_DISABLED, 0, []))
    # a mail user: in-domain proxy address, forwarded off-site via targetAddress
    out.append(
        user(
            "Partner",
            UAC_NORMAL,
            128,
            [f"SMTP:partner@{dom}"],
            (("targetAddress", "SMTP:partner@elsewhere.invalid"),),
        )
    )
    expected.add(f"partner@{dom}")
    # a mail contact: external mail / targetAddress (not an out-of-domain defect), one in-domain proxy
    out.append(
        _entry(
            f"cn=Supplier,ou=Contacts,{suffix}",
            [
                ("objectClass", "contact"),
                ("objectClass", "adlikeMailUser"),
                ("cn", "Supplier"),
                ("sn", "Co"),
                ("mail", "orders@supplier.invalid"),
                ("targetAddress", "SMTP:orders@supplier.invalid"),
                ("proxyAddresses", "SMTP:orders@supplier.invalid"),
                ("proxyAddresses", f"smtp:supplier@{dom}"),
                ("msExchRecipientTypeDetails", "64"),
            ],
        )
    )
    expected.add(f"supplier@{dom}")
    group = [("objectClass", "group"), ("objectClass", "adlikeMailUser"), ("cn", "Sales"),
             ("mail", f"sales@{dom}"), ("proxyAddresses", f"SMTP:sales@{dom}"),
             ("msExchRecipientTypeDetails", "256")]  # fmt: skip
    if defects.restricted_group:
        group.append(("msExchRequireAuthToSendTo", "TRUE"))
        planted["restricted_group"] = f"cn=Sales,ou=Groups,{suffix}"
    else:
        group.append(("msExchRequireAuthToSendTo", "FALSE"))
    out.append(_entry(f"cn=Sales,ou=Groups,{suffix}", group))
    expected.add(f"sales@{dom}")
    out.append(
        _entry(
            f"cn=Support,ou=Public Folders,{suffix}",
            [
                ("objectClass", "publicFolder"),
                ("objectClass", "adlikeMailUser"),
                ("cn", "Support"),
                ("proxyAddresses", f"SMTP:pf-support@{dom}"),
                ("msExchRecipientTypeDetails", "4096"),
            ],
        )
    )
    expected.add(f"pf-support@{dom}")
    if defects.catch_all:
        out.append(user("Catchall", UAC_NORMAL, 1, [f"SMTP:catchall@{dom}", f"smtp:@{dom}"]))
        expected.add(f"catchall@{dom}")
        planted["catch_all"] = f"@{dom}"
    if defects.disabled:
        out.append(user("Leaver", UAC_DISABLED, 1, [f"SMTP:leaver@{dom}"]))
        expected.add(f"leaver@{dom}")
        planted["disabled"] = f"cn=Leaver,{users}"
    if defects.duplicate:
        out.append(user("Alice2", UAC_NORMAL, 1, [f"SMTP:alice2@{dom}", f"smtp:alice.sales@{dom}"]))
        expected.add(f"alice2@{dom}")
        planted["duplicate"] = f"alice.sales@{dom}"
    if defects.foreign:
        out.append(user("Old", UAC_NORMAL, 1, [f"SMTP:old@{dom}", "smtp:old@former-brand.test"]))
        expected.add(f"old@{dom}")
        planted["foreign"] = "old@former-brand.test"
    domains: tuple[str, ...] = (dom,)
    exp = {dom: frozenset(expected)}
    if defects.empty_domain:
        domains += ("empty.test",)
        exp["empty.test"] = frozenset()
        planted["empty_domain"] = "empty.test"
    return Tree(
        ldif="".join(out),
        domains=domains,
        expected=exp,
        known_valid=f"alice@{dom}",
        alias=f"alice.sales@{dom}",
        planted=planted,
    )


def bulk_users(
    suffix: str = "dc=example,dc=test", count: int = 250, domain: str = "example.test", *, ou: str = "bulk"
) -> Iterator[str]:
    """LDIF for ``count`` plain users ``user1..userN`` under ``ou=<ou>`` (streamed: fine for 100,000)."""
    base = f"ou={ou},{suffix}"
    yield _entry(base, [("objectClass", "organizationalUnit"), ("ou", ou)])
    for i in range(1, count + 1):
        yield (
            f"dn: uid=user{i},{base}\nobjectClass: inetOrgPerson\nuid: user{i}\ncn: User {i}\nsn: Bulk\n"
            f"mail: user{i}@{domain}\n\n"
        )
