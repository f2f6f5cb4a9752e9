<#
.SYNOPSIS
    Read-only collector for Backscatter Auditor: writes the Exchange settings that decide whether
    the organisation bounces spam to forged senders into ONE JSON file.

.DESCRIPTION
    Run it in the Exchange Management Shell (Exchange Server 2013-SE, on a Mailbox or an Edge
    server) or in a PowerShell session connected to Exchange Online (Connect-ExchangeOnline).
    It only calls Get-* and Test-* cmdlets and changes nothing. Every cmdlet runs in its own
    try/catch: a cmdlet that does not exist here (Get-RecipientFilterConfig in Exchange Online,
    Get-HostedContentFilterPolicy on-premises) is recorded in the manifest with its error and the
    collection goes on.

    Properties are selected explicitly and turned into plain strings, numbers or booleans before
    ConvertTo-Json, so enums, sizes (ByteQuantifiedSize) and time spans arrive as the text the
    console shows and nothing is lost to the -Depth limit.

    Then, on any machine:  backscatter-audit lint exchange backscatter-exchange.json

.PARAMETER OutFile
    Where to write the JSON (default: .\backscatter-exchange.json).

.PARAMETER IncludeAutoReplies
    Also read mailbox automatic-reply settings (Get-MailboxAutoReplyConfiguration). Opt-in: it
    reads every mailbox up to -MaxMailboxes and is slow in large organisations.

.PARAMETER MaxMailboxes
    Upper bound on mailboxes read with -IncludeAutoReplies (default 1000).

.PARAMETER Environment
    OnPremises or ExchangeOnline; detected from the available cmdlets when omitted.

.EXAMPLE
    .\Collect-BackscatterAudit.ps1 -OutFile C:\temp\bsa.json -IncludeAutoReplies -MaxMailboxes 5000
#>
[CmdletBinding()]
param(
    [string]$OutFile = (Join-Path (Get-Location) 'backscatter-exchange.json'),
    [switch]$IncludeAutoReplies,
    [ValidateRange(1, 1000000)][int]$MaxMailboxes = 1000,
    [ValidateSet('', 'OnPremises', 'ExchangeOnline')][string]$Environment = ''
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

$Schema = 'backscatter-audit-exchange/1'
$Manifest = [ordered]@{
    collected        = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
    server           = $env:COMPUTERNAME
    exchange_version = $null
    environment      = $null
    cmdlets          = New-Object System.Collections.ArrayList
}
$Data = [ordered]@{}

function ConvertTo-BsaValue {
    # One property value -> JSON-safe: $null, bool, number, string, or an array of strings.
    param($Value)
    if ($null -eq $Value) { return $null }
    if ($Value -is [bool] -or $Value -is [int] -or $Value -is [long] -or $Value -is [double]) { return $Value }
    if ($Value -is [string]) { return $Value }
    if ($Value -is [enum]) { return $Value.ToString() }
    if ($Value -is [System.Collections.IEnumerable]) {
        return , @($Value | ForEach-Object { if ($null -eq $_) { $null } else { $_.ToString() } })
    }
    # ByteQuantifiedSize, Unlimited<T>, TimeSpan, SmtpDomain, ADObjectId, deserialised objects...
    return $Value.ToString()
}

function ConvertTo-BsaRow {
    param($Object, [string[]]$Properties)
    $row = [ordered]@{}
    foreach ($p in $Properties) {
        $prop = $Object.PSObject.Properties[$p]
        $row[$p] = if ($null -eq $prop) { $null } else { ConvertTo-BsaValue $prop.Value }
    }
    return $row
}

function Invoke-Collect {
    # Runs one read-only query; records its outcome in the manifest; never throws.
    param([string]$Name, [scriptblock]$Query)
    $entry = [ordered]@{ name = $Name; when = (Get-Date).ToUniversalTime().ToString('o'); count = 0; error = $null }
    try {
        $rows = New-Object System.Collections.ArrayList
        foreach ($item in @(& $Query)) {
            if ($null -ne $item) {
                $props = @($item.PSObject.Properties | ForEach-Object { $_.Name })
                [void]$rows.Add((ConvertTo-BsaRow -Object $item -Properties $props))
            }
        }
        $Data[$Name] = $rows.ToArray()
        $entry.count = $rows.Count
    }
    catch {
        $entry.error = ($_.Exception.Message -replace '\s+', ' ').Trim()
    }
    [void]$Manifest.cmdlets.Add($entry)
}

function Test-Cmdlet([string]$Name) { return [bool](Get-Command $Name -ErrorAction SilentlyContinue) }

if (-not $Environment) {
    $Environment = if ((Test-Cmdlet 'Get-HostedContentFilterPolicy') -and -not (Test-Cmdlet 'Get-ExchangeServer')) {
        'ExchangeOnline'
    } else { 'OnPremises' }
}
$Manifest.environment = $Environment
$Online = $Environment -eq 'ExchangeOnline'

if ($Online) {
    $Manifest.exchange_version = 'ExchangeOnline'
} else {
    try {
        $self = Get-ExchangeServer -Identity $env:COMPUTERNAME -ErrorAction Stop
        $Manifest.exchange_version = $self.AdminDisplayVersion.ToString()
    } catch { $Manifest.exchange_version = $null }
}

# --- Both environments ------------------------------------------------------------------------
Invoke-Collect 'Get-AcceptedDomain' { Get-AcceptedDomain | Select-Object -Property Identity, Name, DomainName, DomainType, Default, AddressBookEnabled, MatchSubDomains }
Invoke-Collect 'Get-RemoteDomain' { Get-RemoteDomain | Select-Object -Property Identity, Name, DomainName, AllowedOOFType, AutoReplyEnabled, AutoForwardEnabled, NDREnabled, NDRDiagnosticInfoEnabled, DeliveryReportEnabled }
Invoke-Collect 'Get-TransportConfig' { Get-TransportConfig | Select-Object -Property Identity, ExternalDsnMaxMessageAttachSize, InternalDsnMaxMessageAttachSize, ExternalDelayDsnEnabled, ExternalPostmasterAddress, ExternalDsnReportingAuthority, MaxRecipientEnvelopeLimit }
Invoke-Collect 'Get-TransportRule' { Get-TransportRule | Select-Object -Property Identity, Name, State, Mode, Priority, FromScope, SentToScope, RejectMessageReasonText, RejectMessageEnhancedStatusCode, DeleteMessage, Quarantine, RedirectMessageTo, Description }
Invoke-Collect 'Get-MalwareFilterPolicy' { Get-MalwareFilterPolicy | Select-Object -Property Identity, Name, IsDefault, EnableExternalSenderNotifications, EnableInternalSenderNotifications, EnableExternalSenderAdminNotifications, EnableFileFilter, FileTypeAction, Action }
Invoke-Collect 'Get-OrganizationConfig' { Get-OrganizationConfig | Select-Object -Property Identity, Name, IsDehydrated, MicrosoftExchangeRecipientPrimarySmtpAddress }

if ($Online) {
    # --- Exchange Online / EOP ----------------------------------------------------------------
    Invoke-Collect 'Get-HostedContentFilterPolicy' { Get-HostedContentFilterPolicy | Select-Object -Property Identity, Name, IsDefault, SpamAction, HighConfidenceSpamAction, PhishSpamAction, BulkSpamAction, BulkThreshold }
    Invoke-Collect 'Get-InboundConnector' { Get-InboundConnector | Select-Object -Property Identity, Name, Enabled, ConnectorType, SenderIPAddresses, SenderDomains, RestrictDomainsToIPAddresses, EFSkipIPs }
} else {
    # --- Exchange Server (Mailbox or Edge) ------------------------------------------------------
    Invoke-Collect 'Get-ExchangeServer' { Get-ExchangeServer | Select-Object -Property Identity, Name, ServerRole, AdminDisplayVersion, Site }
    Invoke-Collect 'Get-RecipientFilterConfig' { Get-RecipientFilterConfig | Select-Object -Property Identity, Name, Enabled, ExternalMailEnabled, InternalMailEnabled, RecipientValidationEnabled, BlockListEnabled }
    Invoke-Collect 'Get-TransportAgent' { Get-TransportAgent | Select-Object -Property Identity, Enabled, Priority }
    Invoke-Collect 'Get-EdgeSubscription' { Get-EdgeSubscription | Select-Object -Property Identity, Name, Site, Domain }
    Invoke-Collect 'Test-EdgeSynchronization' {
        if (@(Get-EdgeSubscription).Count -gt 0) {
            Test-EdgeSynchronization | Select-Object -Property Name, SyncStatus, LeaseHolder, LeaseType, FailureDetail, LastSynchronizedUtc, RecipientStatus
        }
    }
    Invoke-Collect 'Get-ContentFilterConfig' { Get-ContentFilterConfig | Select-Object -Property Identity, Name, Enabled, ExternalMailEnabled, SCLRejectEnabled, SCLRejectThreshold, SCLDeleteEnabled, SCLDeleteThreshold, SCLQuarantineEnabled, SCLQuarantineThreshold, QuarantineMailbox, RejectionResponse }
    Invoke-Collect 'Get-SenderFilterConfig' { Get-SenderFilterConfig | Select-Object -Property Identity, Name, Enabled, ExternalMailEnabled, BlankSenderBlockingEnabled }
    Invoke-Collect 'Get-ReceiveConnector' { Get-ReceiveConnector | Select-Object -Property Identity, Name, Server, Enabled, TransportRole, Bindings, RemoteIPRanges, PermissionGroups, AuthMechanism, TarpitInterval }
}

if ($IncludeAutoReplies) {
    # Bounded by -MaxMailboxes; only mailboxes with automatic replies on are written.
    Invoke-Collect 'Get-MailboxAutoReplyConfiguration' {
        Get-Mailbox -ResultSize $MaxMailboxes | Get-MailboxAutoReplyConfiguration |
            Where-Object { $_.AutoReplyState.ToString() -ne 'Disabled' } |
            Select-Object -Property Identity, AutoReplyState, ExternalAudience, StartTime, EndTime
    }
}

$doc = [ordered]@{ schema = $Schema; manifest = $Manifest; data = $Data }
$json = ConvertTo-Json -InputObject $doc -Depth 6
# UTF-8; backscatter-audit also reads UTF-16 and a BOM.
[System.IO.File]::WriteAllText($OutFile, $json, (New-Object System.Text.UTF8Encoding($false)))
$failed = @($Manifest.cmdlets | Where-Object { $_.error })
Write-Host ("Wrote {0}: {1} cmdlets read, {2} not available here." -f $OutFile, ($Manifest.cmdlets.Count - $failed.Count), $failed.Count)
foreach ($f in $failed) { Write-Host ("  {0}: {1}" -f $f.name, $f.error) }
