"""Knowledge about the cmdlets we read: which properties the rules need, how to recognise output.

Pasted console output and single-cmdlet exports do not say which cmdlet produced them, so the
cmdlet is inferred: from a CLIXML type name, from a ``PS> Get-...`` prompt line, or from property
names that only one cmdlet's objects carry. Property and enum names follow the Exchange cmdlet
reference (MicrosoftDocs/office-docs-powershell, ExchangePowerShell/*.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Every property some rule in auditor/rules/exchange.py reads, per cmdlet. The collector script
# must select each of these (tests/unit/exchange/test_script.py keeps the two in step).
RULE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Get-AcceptedDomain": ("Identity", "DomainName", "DomainType"),
    "Get-RecipientFilterConfig": ("Identity", "Enabled", "ExternalMailEnabled", "RecipientValidationEnabled"),
    "Get-TransportAgent": ("Identity", "Enabled"),
    "Get-EdgeSubscription": ("Name",),
    "Test-EdgeSynchronization": ("Name", "SyncStatus"),
    "Get-ExchangeServer": ("Name", "ServerRole"),
    "Get-ContentFilterConfig": ("Identity", "Enabled", "SCLRejectEnabled"),
    "Get-SenderFilterConfig": ("Identity", "Enabled", "BlankSenderBlockingEnabled"),
    "Get-TransportConfig": ("Identity", "ExternalDsnMaxMessageAttachSize"),
    "Get-RemoteDomain": ("Identity", "DomainName", "AllowedOOFType"),
    "Get-TransportRule": (
        "Identity",
        "State",
        "Mode",
        "FromScope",
        "RejectMessageReasonText",
        "RejectMessageEnhancedStatusCode",
    ),
    "Get-MalwareFilterPolicy": (
        "Identity",
        "EnableExternalSenderNotifications",
        "EnableFileFilter",
        "FileTypeAction",
    ),
    "Get-ReceiveConnector": ("Identity", "Enabled", "Bindings", "PermissionGroups", "RemoteIPRanges"),
    "Get-MailboxAutoReplyConfiguration": ("Identity", "AutoReplyState", "ExternalAudience"),
}

# Cmdlets that exist only on-premises / only in Exchange Online (EOP): seeing their output tells the
# environment when no collector manifest says it.
ONPREM_ONLY = frozenset(
    {
        "Get-RecipientFilterConfig",
        "Get-TransportAgent",
        "Get-EdgeSubscription",
        "Test-EdgeSynchronization",
        "Get-ExchangeServer",
        "Get-ContentFilterConfig",
        "Get-SenderFilterConfig",
        "Get-ReceiveConnector",
    }
)
ONLINE_ONLY = frozenset({"Get-HostedContentFilterPolicy", "Get-InboundConnector"})

# Properties that only one cmdlet's objects carry (best score wins; ties are not guessed).
SIGNATURES: dict[str, frozenset[str]] = {
    "Get-AcceptedDomain": frozenset(
        {"DomainType", "AddressBookEnabled", "MatchSubDomains", "CatchAllRecipientID"}
    ),
    "Get-RecipientFilterConfig": frozenset(
        {"RecipientValidationEnabled", "BlockListEnabled", "BlockedRecipients"}
    ),
    "Get-TransportAgent": frozenset({"TransportAgentFactory", "AssemblyPath"}),
    "Get-EdgeSubscription": frozenset({"Site", "Domain"}),
    "Test-EdgeSynchronization": frozenset(
        {"SyncStatus", "LeaseHolder", "LeaseType", "LastSynchronizedUtc", "RecipientStatus", "FailureDetail"}
    ),
    "Get-ExchangeServer": frozenset({"ServerRole", "AdminDisplayVersion", "IsEdgeServer", "IsMailboxServer"}),
    "Get-ContentFilterConfig": frozenset(
        {
            "SCLRejectEnabled",
            "SCLRejectThreshold",
            "SCLDeleteEnabled",
            "SCLQuarantineEnabled",
            "QuarantineMailbox",
        }
    ),
    "Get-SenderFilterConfig": frozenset({"BlankSenderBlockingEnabled", "BlockedSenders", "BlockedDomains"}),
    "Get-TransportConfig": frozenset(
        {"ExternalDsnMaxMessageAttachSize", "ExternalPostmasterAddress", "ExternalDelayDsnEnabled"}
    ),
    "Get-RemoteDomain": frozenset({"AllowedOOFType", "NDREnabled", "AutoReplyEnabled", "AutoForwardEnabled"}),
    "Get-TransportRule": frozenset(
        {
            "RejectMessageReasonText",
            "RejectMessageEnhancedStatusCode",
            "FromScope",
            "SentToScope",
            "RuleVersion",
        }
    ),
    "Get-MalwareFilterPolicy": frozenset(
        {
            "EnableExternalSenderNotifications",
            "EnableInternalSenderNotifications",
            "EnableFileFilter",
            "FileTypeAction",
        }
    ),
    "Get-ReceiveConnector": frozenset({"Bindings", "PermissionGroups", "RemoteIPRanges", "AuthMechanism"}),
    "Get-MailboxAutoReplyConfiguration": frozenset(
        {"AutoReplyState", "ExternalAudience", "ExternalMessage", "InternalMessage"}
    ),
    "Get-OrganizationConfig": frozenset(
        {
            "MicrosoftExchangeRecipientEmailAddresses",
            "MicrosoftExchangeRecipientPrimarySmtpAddress",
            "IsDehydrated",
        }
    ),
    "Get-HostedContentFilterPolicy": frozenset({"SpamAction", "HighConfidenceSpamAction", "BulkThreshold"}),
    "Get-InboundConnector": frozenset({"ConnectorType", "SenderIPAddresses", "RestrictDomainsToIPAddresses"}),
    "Get-SendConnector": frozenset({"AddressSpaces", "DNSRoutingEnabled", "SmartHosts"}),
}

# CLIXML type names (last dotted part of the first <T>, "Deserialized." stripped) → cmdlet.
TYPE_NAMES: dict[str, str] = {
    "AcceptedDomain": "Get-AcceptedDomain",
    "RecipientFilterConfig": "Get-RecipientFilterConfig",
    "TransportAgent": "Get-TransportAgent",
    "EdgeSubscription": "Get-EdgeSubscription",
    "EdgeSubscriptionStatus": "Test-EdgeSynchronization",
    "ExchangeServer": "Get-ExchangeServer",
    "ContentFilterConfig": "Get-ContentFilterConfig",
    "SenderFilterConfig": "Get-SenderFilterConfig",
    "TransportConfigContainer": "Get-TransportConfig",
    "DomainContentConfig": "Get-RemoteDomain",
    "TransportRule": "Get-TransportRule",
    "MalwareFilterPolicy": "Get-MalwareFilterPolicy",
    "ReceiveConnector": "Get-ReceiveConnector",
    "MailboxAutoReplyConfiguration": "Get-MailboxAutoReplyConfiguration",
    "OrganizationConfig": "Get-OrganizationConfig",
    "HostedContentFilterPolicy": "Get-HostedContentFilterPolicy",
    "TenantInboundConnector": "Get-InboundConnector",
    "SmtpSendConnectorConfig": "Get-SendConnector",
}

KNOWN_CMDLETS: frozenset[str] = frozenset(SIGNATURES) | frozenset(RULE_PROPERTIES)

# Enums that plain ConvertTo-Json writes as numbers. Only mappings we could verify are listed:
# AcceptedDomainType from the CLIXML captures in corpus/exchange (<ToString>InternalRelay</ToString>
# next to <I32>2</I32>). Any other number stays a number, and the rules call it unknown.
ENUM_NUMBERS: dict[str, dict[int, str]] = {
    "DomainType": {0: "Authoritative", 1: "ExternalRelay", 2: "InternalRelay"},
}

# A value that is only a .NET type name, or a hashtable's display form, is what ConvertTo-Json or
# Export-Clixml writes when the object was deeper than -Depth: the real value is lost.
_TYPE_NAME = re.compile(r"^(?:Deserialized\.)?(?:System|Microsoft)\.[\w.+]+(?:`\d+(?:\[.*\])?)?$")
_HASHTABLE = re.compile(r"^@\{.*\}$", re.S)


def is_truncation_marker(text: str) -> bool:
    return bool(_TYPE_NAME.match(text.strip()) or _HASHTABLE.match(text.strip()))


def infer_cmdlet(props: Iterable[str]) -> str | None:
    """The cmdlet whose signature properties best match these names; None if none or a tie."""
    names = {p.lower() for p in props}
    scored = []
    for cmdlet, sig in SIGNATURES.items():
        score = sum(1 for s in sig if s.lower() in names)
        if score:
            scored.append((score, cmdlet))
    if not scored:
        return None
    scored.sort(reverse=True)
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        return None
    return scored[0][1]


_CMDLET_IN_TEXT = re.compile(r"\b((?:Get|Test)-[A-Za-z]+)\b")


def cmdlet_in(text: str) -> str | None:
    """The cmdlet whose output a command line shows: the last known Get-/Test- cmdlet of the
    pipeline (``Get-Mailbox | Get-MailboxAutoReplyConfiguration | fl`` → the latter)."""
    found = [m.group(1) for m in _CMDLET_IN_TEXT.finditer(text)]
    lowered = {k.lower(): k for k in KNOWN_CMDLETS}
    known = [lowered[f.lower()] for f in found if f.lower() in lowered]
    if known:
        return known[-1]
    return found[-1] if found else None


def cmdlet_for_noun(text: str) -> str | None:
    """A known cmdlet whose noun appears in ``text`` (a file name such as ``EdgeSubscription.xml``)."""
    low = text.lower().replace("_", "").replace("-", "")
    best: str | None = None
    for known in sorted(KNOWN_CMDLETS):
        noun = known.split("-", 1)[1].lower()
        if noun in low and (best is None or len(noun) > len(best.split("-", 1)[1])):
            best = known
    return best
