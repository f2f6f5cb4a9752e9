"""Directory (LDAP / Active Directory) collector: the authoritative set of valid recipients.

``collect(settings, query)`` returns one :class:`DirectoryRecipients` observation;
``sample_addresses(obs, n)`` gives known-valid control addresses for live probes.
"""

from __future__ import annotations

from auditor.collect.ldap.collect import DirectoryQuery, collect
from auditor.collect.ldap.connect import LdapSettings
from auditor.collect.ldap.sample import sample_addresses
from auditor.observations.directory import DirectoryRecipients

__all__ = ["DirectoryQuery", "DirectoryRecipients", "LdapSettings", "collect", "sample_addresses"]
