"""Directory profiles: which attributes hold recipient addresses, and how to read one entry.

Pure functions over already-decoded attribute values, so they are unit-tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# userAccountControl: 0x2 = ACCOUNTDISABLE (MS-ADTS 2.2.16).
UAC_ACCOUNTDISABLE = 0x2

# msExchRecipientTypeDetails of objects that are disabled user accounts by design and still valid
# recipients: linked, shared, room, equipment mailboxes and their remote (hybrid) variants.
EXEMPT_RECIPIENT_TYPES: dict[int, str] = {
    2: "linked mailbox",
    4: "shared mailbox",
    16: "room mailbox",
    32: "equipment mailbox",
    8589934592: "remote room mailbox",
    17179869184: "remote equipment mailbox",
    34359738368: "remote shared mailbox",
}

# proxyAddresses prefixes that are not SMTP addresses (X500 legacyExchangeDN, X400, SIP, EUM, …).
_SMTP_PREFIX = "smtp"

# Root DSE attributes only Active Directory (and AD LDS) publish.
AD_ROOT_DSE_MARKERS = (
    "forestfunctionality",
    "domainfunctionality",
    "domaincontrollerfunctionality",
    "isglobalcatalogready",
    "rootdomainnamingcontext",
)


@dataclass(frozen=True)
class Profile:
    """What to ask the directory for and how to read the answer."""

    name: str
    address_attributes: tuple[str, ...]
    fetch: tuple[str, ...]
    default_filter: str


def _uniq(items: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for i in items:
        seen.setdefault(i.lower(), i)
    return tuple(seen.values())


def make_profile(name: str, extra_attributes: Sequence[str] = ()) -> Profile:
    """The ``openldap`` or ``ad`` profile, with extra address attributes (``--attribute``)."""
    if name == "ad":
        addr = _uniq(["proxyAddresses", "mail", *extra_attributes])
        meta = [
            "objectClass",
            "userAccountControl",
            "msExchRecipientTypeDetails",
            "targetAddress",
            "msExchRequireAuthToSendTo",
        ]
    elif name == "openldap":
        addr = _uniq(["mail", "mailAlternateAddress", "mailLocalAddress", *extra_attributes])
        meta = []  # entry kinds (contact, group, …) only matter for AD; fewer attributes = faster
    else:
        raise ValueError(f"unknown directory profile {name!r} (openldap, ad, auto)")
    flt = "(|" + "".join(f"({a}=*)" for a in addr) + ")"
    return Profile(name, addr, _uniq([*addr, *meta]), flt)


def detect_profile(root_dse: Mapping[str, Sequence[str]]) -> str:
    """``ad`` when the root DSE carries Active Directory's functionality/GC attributes, else ``openldap``."""
    keys = {k.lower() for k, v in root_dse.items() if v}
    return "ad" if keys & set(AD_ROOT_DSE_MARKERS) else "openldap"


@dataclass
class EntryFacts:
    """What one directory entry contributes (addresses lower-cased)."""

    dn: str
    kind: str = "other"  # user | contact | group | publicfolder | person | other
    addresses: list[tuple[str, str, bool]] = field(default_factory=list)  # (address, attribute, primary)
    catch_alls: list[tuple[str, str]] = field(default_factory=list)  # (value, attribute)
    external: list[tuple[str, str]] = field(default_factory=list)  # forwarding targets (targetAddress)
    user_account_control: int | None = None
    recipient_type_details: int | None = None
    restriction: str = ""

    @property
    def disabled(self) -> bool:
        return self.user_account_control is not None and bool(self.user_account_control & UAC_ACCOUNTDISABLE)

    @property
    def exempt_reason(self) -> str:
        """Why a disabled entry is still a valid recipient ("" when it is not)."""
        rtd = self.recipient_type_details
        if rtd is not None and rtd in EXEMPT_RECIPIENT_TYPES:
            return EXEMPT_RECIPIENT_TYPES[rtd]
        if self.kind in ("contact", "group", "publicfolder"):
            return self.kind
        return ""


def _int(values: Sequence[str]) -> int | None:
    for v in values:
        try:
            return int(v.strip())
        except ValueError:
            return None
    return None


def _kind(object_classes: Sequence[str]) -> str:
    oc = {o.lower() for o in object_classes}
    if "contact" in oc:
        return "contact"
    if "group" in oc or "groupofnames" in oc or "groupofuniquenames" in oc:
        return "group"
    if "publicfolder" in oc:
        return "publicfolder"
    if "user" in oc:
        return "user"
    if "person" in oc or "inetorgperson" in oc:
        return "person"
    return "other"


def _add(facts: EntryFacts, value: str, attribute: str, primary: bool) -> None:
    addr = value.strip().lower()
    if not addr or "@" not in addr:
        return  # not an address (a bare local part or garbage): nothing a recipient check can use
    if addr.startswith("@"):
        facts.catch_alls.append((addr, attribute))
        return
    facts.addresses.append((addr, attribute, primary))


def entry_facts(profile: Profile, dn: str, attrs: Mapping[str, Sequence[str]]) -> EntryFacts:
    """Read one entry. ``attrs`` keys are attribute names in any case; values are decoded strings."""
    low = {k.lower(): v for k, v in attrs.items()}
    facts = EntryFacts(dn=dn, kind=_kind(low.get("objectclass", ())))
    if profile.name == "ad":
        facts.user_account_control = _int(low.get("useraccountcontrol", ()))
        facts.recipient_type_details = _int(low.get("msexchrecipienttypedetails", ()))
        if any(v.strip().upper() == "TRUE" for v in low.get("msexchrequireauthtosendto", ())):
            facts.restriction = "msExchRequireAuthToSendTo=TRUE"
        for v in low.get("targetaddress", ()):
            prefix, sep, rest = v.partition(":")
            target = rest if sep and prefix.lower() == _SMTP_PREFIX else ("" if sep else v)
            if target.strip():
                facts.external.append((target.strip().lower(), "targetAddress"))
    for attribute in profile.address_attributes:
        for v in low.get(attribute.lower(), ()):
            if attribute.lower() == "proxyaddresses":
                prefix, sep, rest = v.partition(":")
                if not sep or prefix.lower() != _SMTP_PREFIX:
                    continue  # X500:, X400:, SIP:, EUM:, … are not SMTP addresses
                _add(facts, rest, attribute, primary=prefix == "SMTP")
            else:
                _add(facts, v, attribute, primary=attribute.lower() == "mail")
    return facts
