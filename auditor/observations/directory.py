"""What the directory collector observes: the valid recipients per accepted domain, and facts.

Facts only (an address is a catch-all value, an account is disabled, two entries share an address);
the rules in ``auditor/rules/directory.py`` judge them. Every address is lower-cased.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.model import Observation


@dataclass(frozen=True)
class AddressRef:
    """One address value and where it came from."""

    address: str
    dn: str
    attribute: str


@dataclass(frozen=True)
class DisabledEntry:
    """An entry with userAccountControl bit 0x2 (ACCOUNTDISABLE) that owns addresses.

    ``exempt`` names why the entry is a valid recipient anyway (shared/room/equipment/linked
    mailbox by msExchRecipientTypeDetails), "" when it is not.
    """

    dn: str
    user_account_control: int
    addresses: tuple[str, ...]
    recipient_type_details: int | None = None
    exempt: str = ""


@dataclass(frozen=True)
class DuplicateAddress:
    address: str
    dns: tuple[str, ...]


@dataclass(frozen=True)
class RestrictedGroup:
    """A group that only takes mail from authenticated/listed senders (enforced after acceptance)."""

    dn: str
    addresses: tuple[str, ...]
    restriction: str


@dataclass(frozen=True)
class UrlAttempt:
    url: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class DirectoryConnection:
    """How the directory was reached. The bind password is never recorded."""

    url: str = ""
    tls: str = "none"  # none | ldaps | starttls | ldapi
    verified: bool = False  # server certificate checked against the CA and the host name
    bind: str = "anonymous"  # anonymous | simple
    bind_dn: str = ""
    vendor: str = ""
    attempts: tuple[UrlAttempt, ...] = ()


@dataclass(frozen=True)
class DirectoryRecipients(Observation):
    """The directory's recipient addresses, per accepted domain, with the DN of each.

    ``complete`` is False when the search did not run to the end (server down, bind refused, size or
    time limit, a stalled page): then ``error`` says why, and the sets are partial.
    ``accepted_domains`` is empty when the user named none (domain cross-checks cannot run).
    """

    kind = "directory.recipients"

    profile: str = ""
    base: str = ""
    filter: str = ""
    attributes: tuple[str, ...] = ()
    accepted_domains: tuple[str, ...] = ()
    connection: DirectoryConnection = field(default_factory=DirectoryConnection)
    complete: bool = False
    error: str = ""
    entries: int = 0
    pages: int = 0
    # domain -> address -> DN: the addresses mail is delivered to. A disabled account's addresses are
    # in ``disabled`` only; shared, room and equipment mailboxes (disabled by design) are here.
    recipients: dict[str, dict[str, str]] = field(default_factory=dict)
    examples: tuple[AddressRef, ...] = ()  # a few primary and secondary addresses (sample controls)
    catch_alls: tuple[AddressRef, ...] = ()
    out_of_domain: tuple[AddressRef, ...] = ()
    disabled: tuple[DisabledEntry, ...] = ()
    duplicates: tuple[DuplicateAddress, ...] = ()
    empty_domains: tuple[str, ...] = ()
    restricted_groups: tuple[RestrictedGroup, ...] = ()
    external_targets: int = 0  # contact/targetAddress values outside the accepted domains (normal)

    @property
    def address_count(self) -> int:
        return sum(len(v) for v in self.recipients.values())

    def all_addresses(self) -> set[str]:
        return {a for v in self.recipients.values() for a in v}
