"""Fold entries, one at a time, into the recipient sets and the facts the rules need.

Only the addresses (and one DN per address) are kept, never the raw entries, so a page can be
dropped as soon as it is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from auditor.collect.ldap.profiles import EntryFacts
from auditor.observations.directory import AddressRef, DisabledEntry, DuplicateAddress, RestrictedGroup

_MAX_EXAMPLES = 5


@dataclass
class Accumulator:
    """Recipient sets per domain plus catch-alls, disabled owners, duplicates, foreign addresses.

    ``recipients`` holds the addresses mail can be delivered to: a disabled account's addresses are
    not in it (unless another, enabled entry owns them too), shared mailboxes' are.
    """

    accepted: tuple[str, ...] = ()
    recipients: dict[str, dict[str, str]] = field(default_factory=dict)
    catch_alls: list[AddressRef] = field(default_factory=list)
    out_of_domain: list[AddressRef] = field(default_factory=list)
    disabled: list[DisabledEntry] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    restricted_groups: list[RestrictedGroup] = field(default_factory=list)
    primary_examples: list[AddressRef] = field(default_factory=list)
    secondary_examples: list[AddressRef] = field(default_factory=list)
    external_targets: int = 0
    entries: int = 0
    _examples_full: bool = False
    _held: dict[str, str] = field(default_factory=dict)  # addresses of disabled accounts -> DN

    def __post_init__(self) -> None:
        self.accepted = tuple(d.strip().lower().rstrip(".") for d in self.accepted if d.strip())
        for d in self.accepted:
            self.recipients.setdefault(d, {})

    def add(self, facts: EntryFacts) -> None:
        self.entries += 1
        dn = facts.dn
        mine: list[str] = []
        # A disabled account (not a shared/room/equipment mailbox) receives nothing: its addresses are
        # kept on its DisabledEntry for LDAP-ACCT-001, never in the valid-recipient set.
        held = facts.disabled and not facts.exempt_reason
        for value, attribute in facts.catch_alls:
            self.catch_alls.append(AddressRef(value, dn, attribute))
        for _addr, _attr in facts.external:
            if not self._accepted(_addr):
                self.external_targets += 1
        for addr, attribute, primary in facts.addresses:
            domain = addr.rpartition("@")[2]
            if not self._accepted(addr):
                if facts.kind == "contact":
                    self.external_targets += 1  # a contact's own address is external by design
                elif domain:
                    self.out_of_domain.append(AddressRef(addr, dn, attribute))
                continue
            book = self.recipients.setdefault(domain, {})
            first = book.get(addr) or self._held.get(addr)
            if held:
                self._held.setdefault(addr, dn)
            else:
                book.setdefault(addr, dn)
            if first is not None and first != dn:
                dns = self.duplicates.setdefault(addr, [first])
                if dn not in dns:
                    dns.append(dn)
            if addr not in mine:
                mine.append(addr)
                self._example(AddressRef(addr, dn, attribute), primary)
        if facts.disabled and (mine or facts.catch_alls):
            self.disabled.append(
                DisabledEntry(
                    dn=dn,
                    user_account_control=facts.user_account_control or 0,
                    addresses=tuple(mine),
                    recipient_type_details=facts.recipient_type_details,
                    exempt=facts.exempt_reason,
                )
            )
        if facts.restriction and mine:
            self.restricted_groups.append(RestrictedGroup(dn, tuple(mine), facts.restriction))

    def add_plain(self, dn: str, attrs: dict[str, list[str]]) -> None:
        """The same as ``add(entry_facts(openldap_profile, dn, attrs))``, without the intermediate
        objects: every value of every given attribute is an address (the openldap profile, where
        there are no account flags or entry kinds). This is the hot loop of a large directory.
        """
        self.entries += 1
        accepted = self.accepted
        recipients = self.recipients
        for attribute, values in attrs.items():
            primary = attribute.lower() == "mail"
            for v in values:
                addr = v.strip().lower()
                at = addr.rfind("@")
                if at < 0:
                    continue
                if at == 0:
                    self.catch_alls.append(AddressRef(addr, dn, attribute))
                    continue
                domain = addr[at + 1 :]
                if accepted and domain not in accepted:
                    if domain:
                        self.out_of_domain.append(AddressRef(addr, dn, attribute))
                    continue
                book = recipients.get(domain)
                if book is None:
                    book = recipients[domain] = {}
                owner = book.setdefault(addr, dn)
                if owner != dn:
                    dns = self.duplicates.setdefault(addr, [owner])
                    if dn not in dns:
                        dns.append(dn)
                if not self._examples_full:
                    self._example_once(AddressRef(addr, dn, attribute), primary)

    def _example_once(self, ref: AddressRef, primary: bool) -> None:
        bucket = self.primary_examples if primary else self.secondary_examples
        if len(bucket) < _MAX_EXAMPLES and all(r.address != ref.address for r in bucket):
            bucket.append(ref)
        # Stop looking once both buckets are full, or the primaries are and 1,000 entries had no alias.
        self._examples_full = len(self.primary_examples) >= _MAX_EXAMPLES and (
            len(self.secondary_examples) >= _MAX_EXAMPLES or self.entries > 1000
        )

    def _accepted(self, addr: str) -> bool:
        return not self.accepted or addr.rpartition("@")[2] in self.accepted

    def _example(self, ref: AddressRef, primary: bool) -> None:
        bucket = self.primary_examples if primary else self.secondary_examples
        if len(bucket) < _MAX_EXAMPLES:
            bucket.append(ref)

    def empty_domains(self) -> tuple[str, ...]:
        return tuple(d for d in self.accepted if not self.recipients.get(d))

    def duplicate_list(self) -> tuple[DuplicateAddress, ...]:
        return tuple(DuplicateAddress(a, tuple(d)) for a, d in sorted(self.duplicates.items()))

    def examples(self) -> tuple[AddressRef, ...]:
        # Examples for sample controls must be unambiguous: not disabled, not duplicated.
        bad = {a for e in self.disabled if not e.exempt for a in e.addresses} | set(self.duplicates)
        return tuple(r for r in (*self.primary_examples, *self.secondary_examples) if r.address not in bad)


def accumulate(entries: Sequence[EntryFacts], accepted: Sequence[str] = ()) -> Accumulator:
    """Convenience for tests and small inputs."""
    acc = Accumulator(tuple(accepted))
    for e in entries:
        acc.add(e)
    return acc
