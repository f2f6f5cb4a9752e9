"""EX-* rules: Exchange Server and Exchange Online configuration that turns spam into backscatter.

Input: ``ExchangeCmdletOutput`` observations (collector JSON, Export-Clixml or console text, all
normalised alike) and the run's ``ExchangeRun`` (environment). A property that is missing from the
export or was truncated makes the finding ``inconclusive``: several of these settings have unsafe
defaults (``RecipientValidationEnabled`` is ``$false`` out of the box), so silence is never a pass.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.model import Evidence, Finding, Severity
from auditor.observations.exchange import ExchangeCmdletOutput
from auditor.observations.exchange_values import parse_size
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.exchange_view import (
    ExchangeView,
    Row,
    covers_everyone,
    flag,
    items,
    name,
    ports,
    why_unknown,
)

FAMILY = "exchange"
NEEDS = (ExchangeCmdletOutput,)
DOMAIN_TYPES = ("Authoritative", "ExternalRelay", "InternalRelay")
REF_RECIPIENT_FILTERING = "Exchange Server docs: Recipient filtering on Edge Transport servers"


def _q(identity: str) -> str:
    """A PowerShell double-quoted string literal ("`" escapes "`", '"' and '$')."""
    return '"' + identity.replace("`", "``").replace('"', '`"').replace("$", "`$") + '"'


def _cmdlet_failed(ex: ExchangeView, r: Rule, cmdlet: str) -> Iterator[Finding]:
    err = ex.error(cmdlet)
    if err:
        yield r.inconclusive(cmdlet, f"{cmdlet} could not be read by the collector: {err}")


# --------------------------------------------------------------------------- accepted domains


@rule(
    "EX-RELAY-001",
    title="wildcard accepted domain `*` makes Exchange an open relay",
    family=FAMILY,
    cause="relay-control",
    severity=Severity.CRITICAL,
    needs=NEEDS,
    remediation="""
        Remove-AcceptedDomain -Identity <name of the * domain>
        Let only the internal hosts that must relay do so: a dedicated receive connector limited by
        -RemoteIPRanges with the ms-Exch-SMTP-Accept-Any-Recipient permission for those hosts.
    """,
    references=(
        "Set-AcceptedDomain / New-AcceptedDomain (-DomainName, -DomainType)",
        "CSS-Exchange HealthChecker: open relay wildcard accepted domain check",
        "rules.md SMTP-RELAY-001 / PF-RELAY-001 (the same failure seen by a probe / in Postfix)",
    ),
)
def ex_relay_wildcard(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    An accepted domain whose domain name is the bare wildcard `*` (type InternalRelay or
    ExternalRelay). This id is an addition to the catalog; it mirrors SMTP-RELAY-001 (a probe
    sees the relay) and PF-RELAY-001 (the Postfix equivalent).

    ## Why it causes backscatter
    Exchange accepts mail for *every* domain on the Internet and relays it. Spammers use such a
    server as a relay; every message the next hop refuses comes back as an NDR to the forged
    sender, and the server lands on relay and backscatter block lists.

    ## Example
    `Get-AcceptedDomain` shows `DomainName : *` with `DomainType : ExternalRelay` →
    `Remove-AcceptedDomain -Identity "Relay everything"`.
    """
    ex = ExchangeView(obs.items)
    yield from _cmdlet_failed(ex, r, "Get-AcceptedDomain")
    rows = ex.rows("Get-AcceptedDomain")
    if not ex.ran("Get-AcceptedDomain"):
        return
    bad = unknown = 0
    for row in rows:
        dn = row.obj.text("DomainName")
        if dn is None:
            unknown += 1
            yield r.inconclusive(
                row.identity, why_unknown(row.obj, "DomainName"), [row.evidence("DomainName")]
            )
        elif dn.strip() == "*":
            bad += 1
            yield r.fail(
                row.identity,
                f"accepted domain {row.identity!r} is the wildcard '*' "
                f"({row.obj.text('DomainType') or 'type unknown'}): Exchange accepts and relays mail "
                "for every domain",
                [row.evidence("DomainName", "DomainType")],
                remediation=f"Remove-AcceptedDomain -Identity {_q(row.identity)}\n"
                "Give internal hosts that must relay a dedicated receive connector limited by "
                "-RemoteIPRanges with the ms-Exch-SMTP-Accept-Any-Recipient permission.",
            )
    if not bad and not unknown:
        yield r.passed(
            "accepted domains",
            f"none of the {len(rows)} accepted domains is the wildcard '*'",
            [row.evidence("DomainName") for row in rows[:20]],
        )


def _domain_type(row: Row) -> str | None:
    return name(row.obj, "DomainType", DOMAIN_TYPES)


@rule(
    "EX-DOM-001",
    title="accepted domain not Authoritative (no recipient lookup)",
    family=FAMILY,
    cause="exchange-recipient-filter",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=NEEDS,
    remediation="Set-AcceptedDomain -Identity <domain> -DomainType Authoritative "
    "(first create mail users/contacts for every address of a shared namespace)",
    references=(
        "Set-AcceptedDomain -DomainType (who generates NDRs for unresolved recipients)",
        REF_RECIPIENT_FILTERING + ", 'Multiple namespaces'",
    ),
)
def ex_dom_not_authoritative(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    On-premises accepted domains of type `InternalRelay` or `ExternalRelay` (the wildcard `*` is
    EX-RELAY-001's). Exchange Online is EX-DOM-002's.

    ## Why it causes backscatter
    Recipient Lookup (the Recipient Filter agent's `RecipientValidationEnabled`) only checks
    recipients in **authoritative** domains. For a relay domain Exchange accepts any local part
    during the SMTP session and hands the message on; when the downstream system does not know
    the address, it — or Exchange, when the downstream refuses — sends an NDR to the (forged)
    sender. An Edge server can be fully "on" and still accept every local part of these domains.
    """
    ex = ExchangeView(obs.items)
    if ex.online or not ex.ran("Get-AcceptedDomain"):
        yield from ([] if ex.online else _cmdlet_failed(ex, r, "Get-AcceptedDomain"))
        return
    for row in ex.rows("Get-AcceptedDomain"):
        if (row.obj.text("DomainName") or "").strip() == "*":
            continue
        dtype = _domain_type(row)
        ev = [row.evidence("DomainType", "DomainName")]
        if dtype is None:
            yield r.inconclusive(row.identity, why_unknown(row.obj, "DomainType"), ev)
        elif dtype == "Authoritative":
            yield r.passed(row.identity, f"accepted domain {row.identity!r} is Authoritative", ev)
        else:
            yield r.fail(
                row.identity,
                f"accepted domain {row.identity!r} ({row.obj.text('DomainName') or '?'}) is {dtype}: "
                "recipient lookup is skipped, unknown local parts are accepted and NDR'd later",
                ev,
                remediation=f"Set-AcceptedDomain -Identity {_q(row.identity)} -DomainType Authoritative\n"
                "Before switching, create mail users/contacts for every address of the domain that lives "
                "on another system (shared namespace), or those addresses will be rejected.",
            )


@rule(
    "EX-DOM-002",
    title="Exchange Online: Directory-Based Edge Blocking off for an accepted domain",
    family=FAMILY,
    cause="exchange-recipient-filter",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=NEEDS,
    remediation="Synchronise every recipient to the directory, then Set-AcceptedDomain -Identity <domain> "
    "-DomainType Authoritative",
    references=(
        "EOP docs: Use Directory Based Edge Blocking to reject messages sent to invalid recipients",
        "Set-AcceptedDomain -DomainType",
    ),
)
def ex_dom_dbeb(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    In Exchange Online / EOP, an accepted domain of type `InternalRelay` (Directory-Based Edge
    Blocking does not reject unknown recipients of such a domain).

    ## Why it causes backscatter
    With DBEB, EOP answers `550 5.4.1 Recipient address rejected: Access denied` during the SMTP
    session. Without it the service accepts any local part and relays it on-premises (or to the
    other mail system), which then NDRs the forged sender.
    """
    ex = ExchangeView(obs.items)
    if not ex.online:
        return
    yield from _cmdlet_failed(ex, r, "Get-AcceptedDomain")
    for row in ex.rows("Get-AcceptedDomain"):
        if (row.obj.text("DomainName") or "").strip() == "*":
            continue
        dtype = _domain_type(row)
        ev = [row.evidence("DomainType", "DomainName")]
        if dtype is None:
            yield r.inconclusive(row.identity, why_unknown(row.obj, "DomainType"), ev)
        elif dtype == "Authoritative":
            yield r.passed(
                row.identity, f"{row.identity!r} is Authoritative: DBEB rejects unknown recipients", ev
            )
        else:
            yield r.fail(
                row.identity,
                f"{row.identity!r} is {dtype}: EOP accepts unknown recipients and relays them",
                ev,
                remediation="Synchronise every recipient of the domain to the directory, then "
                f"Set-AcceptedDomain -Identity {_q(row.identity)} -DomainType Authoritative",
            )


# --------------------------------------------------------------------------- recipient filtering


@rule(
    "EX-RCPT-001",
    title="Recipient Lookup disabled (RecipientValidationEnabled False)",
    family=FAMILY,
    cause="exchange-recipient-filter",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=NEEDS,
    remediation="""
        Set-RecipientFilterConfig -Enabled $true -ExternalMailEnabled $true -RecipientValidationEnabled $true
        (on the Internet-facing Edge; expected reply afterwards: 550 5.1.1 User unknown). On Mailbox
        servers without an Edge, the agent then rejects the whole message when one recipient of
        several is invalid — see EX-RCPT-003 for that trade-off.
    """,
    references=("Set-RecipientFilterConfig (parameter defaults)", REF_RECIPIENT_FILTERING),
)
def ex_rcpt_lookup(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `Get-RecipientFilterConfig` with `RecipientValidationEnabled : False` — or without that
    property at all (it defaults to `$false`, so a missing value is inconclusive, never a pass).

    ## Why it causes backscatter
    Without Recipient Lookup, unknown recipients of authoritative domains get `250 2.1.5
    Recipient OK`; categorisation later finds no mailbox and Exchange NDRs the forged sender.
    With it, the Edge answers `550 5.1.1 User unknown` during the session.
    """
    ex = ExchangeView(obs.items)
    if ex.online:
        return  # EXO has no recipient filter agent: DBEB (EX-DOM-002) is its recipient check
    yield from _cmdlet_failed(ex, r, "Get-RecipientFilterConfig")
    for row in ex.rows("Get-RecipientFilterConfig"):
        on = flag(row.obj, "RecipientValidationEnabled")
        ev = [row.evidence("RecipientValidationEnabled", "Enabled")]
        if on is None:
            yield r.inconclusive(
                row.identity,
                why_unknown(row.obj, "RecipientValidationEnabled") + " (its default is $false)",
                ev,
            )
        elif on:
            yield r.passed(row.identity, "RecipientValidationEnabled is True", ev)
        else:
            yield r.fail(
                row.identity,
                "RecipientValidationEnabled is False: unknown recipients are accepted, then NDR'd",
                ev,
            )


@rule(
    "EX-RCPT-002",
    title="Recipient Filter agent disabled or absent",
    family=FAMILY,
    cause="exchange-recipient-filter",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=NEEDS,
    remediation='Enable-TransportAgent -Identity "Recipient Filter Agent"; '
    "Set-RecipientFilterConfig -Enabled $true -ExternalMailEnabled $true, then restart "
    "MSExchangeTransport. On Mailbox servers the agent exists only after Install-AntiSpamAgents.ps1, "
    "and Microsoft advises against recipient filtering there (EX-RCPT-003 explains the trade-off).",
    references=("Set-RecipientFilterConfig", "Enable-TransportAgent", REF_RECIPIENT_FILTERING),
)
def ex_rcpt_agent(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `Get-TransportAgent` without an enabled "Recipient Filter Agent", and `Get-RecipientFilterConfig`
    with `Enabled : False` or `ExternalMailEnabled : False`.

    ## Why it causes backscatter
    `RecipientValidationEnabled` does nothing when the agent is not running or not applied to
    external mail: unknown recipients are accepted and NDR'd after the fact.
    """
    ex = ExchangeView(obs.items)
    if ex.online:
        return
    yield from _cmdlet_failed(ex, r, "Get-TransportAgent")
    if not ex.ran("Get-TransportAgent") and ex.rows("Get-RecipientFilterConfig"):
        # The filter config alone cannot show the agent that applies it is installed and enabled.
        yield r.inconclusive(
            "Recipient Filter Agent",
            "Get-TransportAgent is not in the exports: whether the Recipient Filter Agent runs is unknown",
            [],
        )
    if ex.ran("Get-TransportAgent"):
        all_agents = ex.rows("Get-TransportAgent")
        agents = [a for a in all_agents if a.identity.lower() == "recipient filter agent"]
        if not agents:
            out = next(o for o in ex.outputs if o.cmdlet == "Get-TransportAgent" and not o.error)
            listed = ", ".join(a.identity for a in all_agents) or "(none)"
            yield r.fail(
                "Recipient Filter Agent",
                "the Recipient Filter Agent is not installed on this server: "
                "no recipient is checked in-session",
                [Evidence(f"Get-TransportAgent lists: {listed}", out.location())],
                severity=Severity.HIGH,
                remediation="On an Edge Transport server the agent is built in; check the server role. On "
                "Mailbox servers: & $env:ExchangeInstallPath\\Scripts\\Install-AntiSpamAgents.ps1, "
                "restart MSExchangeTransport — but see EX-RCPT-003 (whole-message rejects).",
                note="severity high: whether this server is the first hop from the Internet is not known",
            )
        for a in agents:
            on = flag(a.obj, "Enabled")
            ev = [a.evidence("Enabled")]
            if on is None:
                yield r.inconclusive(a.identity, why_unknown(a.obj, "Enabled"), ev)
            elif on:
                yield r.passed(a.identity, "the Recipient Filter Agent is enabled", ev)
            else:
                yield r.fail(
                    a.identity,
                    "the Recipient Filter Agent is disabled",
                    ev,
                    remediation=f"Enable-TransportAgent -Identity {_q(a.identity)}; "
                    "Restart-Service MSExchangeTransport",
                )
    yield from _cmdlet_failed(ex, r, "Get-RecipientFilterConfig")
    for row in ex.rows("Get-RecipientFilterConfig"):
        values = {p: flag(row.obj, p) for p in ("Enabled", "ExternalMailEnabled")}
        ev = [row.evidence("Enabled", "ExternalMailEnabled")]
        off = [p for p, v in values.items() if v is False]
        unknown = [p for p, v in values.items() if v is None]
        if off:
            yield r.fail(
                row.identity,
                " and ".join(off) + " False: recipient filtering does not run on Internet mail",
                ev,
                remediation="Set-RecipientFilterConfig " + " ".join(f"-{p} $true" for p in off),
            )
        elif unknown:
            yield r.inconclusive(row.identity, "; ".join(why_unknown(row.obj, p) for p in unknown), ev)
        else:
            yield r.passed(row.identity, "recipient filtering is enabled for external mail", ev)


def _validation_on(ex: ExchangeView) -> bool | None:
    """Whether the org validates recipients in-session on its Exchange servers (None: unknown)."""
    cfg = ex.rows("Get-RecipientFilterConfig")
    if not cfg:
        return None
    states: list[bool | None] = []
    for c in cfg:
        vals = [flag(c.obj, p) for p in ("RecipientValidationEnabled", "Enabled", "ExternalMailEnabled")]
        states.append(False if False in vals else (None if None in vals else True))
    if ex.ran("Get-TransportAgent"):
        agent = [a for a in ex.rows("Get-TransportAgent") if a.identity.lower() == "recipient filter agent"]
        enabled = [flag(a.obj, "Enabled") for a in agent]
        if not agent or False in enabled:
            states.append(False)
        else:
            states.append(None if None in enabled else True)
    if any(s is False for s in states):
        return False
    if any(s is None for s in states):
        return None
    return True


def _has_edge(ex: ExchangeView) -> bool | None:
    """An Edge Transport server is part of the organisation (None: the data cannot tell)."""
    if ex.rows("Get-EdgeSubscription"):
        return True
    servers = ex.rows("Get-ExchangeServer")
    if any("edge" in (s.obj.text("ServerRole") or "").lower() for s in servers):
        return True
    if ex.ran("Get-EdgeSubscription") or servers:
        return False
    return None


def _anonymous_smtp(row: Row) -> bool | None:
    """An enabled receive connector on port 25 that accepts anonymous senders (None: unknown)."""
    if flag(row.obj, "Enabled") is False:
        return False
    groups = items(row.obj, "PermissionGroups")
    binds = items(row.obj, "Bindings")
    if groups is None or binds is None:
        return None
    return any(g.lower() == "anonymoususers" for g in groups) and 25 in ports(binds)


@rule(
    "EX-RCPT-003",
    title="Internet-facing Mailbox servers without edge recipient validation",
    family=FAMILY,
    cause="exchange-recipient-filter",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=NEEDS,
    remediation="(a) preferred: put an Edge Transport server, EOP or a recipient-validating gateway in "
    "front; (b) or enable recipient validation on the Mailbox servers knowingly "
    "(Install-AntiSpamAgents.ps1, Set-RecipientFilterConfig -RecipientValidationEnabled $true)",
    references=(
        REF_RECIPIENT_FILTERING + " (note on Mailbox servers)",
        "Enable antispam functionality on Mailbox servers (Install-AntiSpamAgents.ps1)",
    ),
)
def ex_rcpt_mailbox_facing(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A receive connector on port 25 that accepts anonymous mail from any address
    (`PermissionGroups` with `AnonymousUsers`, `RemoteIPRanges` covering everything) in an
    organisation with no Edge Transport server (no `Get-EdgeSubscription`, no Edge role in
    `Get-ExchangeServer`) and without recipient validation on its servers.

    ## Why it causes backscatter
    Exchange 2013+ Mailbox/Front End Transport accepts every recipient and NDRs the unknown ones
    after categorisation (`RESOLVER.ADR.RecipNotFound`): each spam to a random local part becomes
    a bounce to a forged sender. Whether a third-party gateway or EOP fronts the organisation is
    not visible in cmdlet output: a live probe (SMTP-RCPT-001) settles it.
    """
    ex = ExchangeView(obs.items)
    if ex.online or not ex.ran("Get-ReceiveConnector"):
        return
    edge = _has_edge(ex)
    validating = _validation_on(ex)
    for row in ex.rows("Get-ReceiveConnector"):
        anon = _anonymous_smtp(row)
        ev = [row.evidence("PermissionGroups", "Bindings", "RemoteIPRanges")]
        if anon is False:
            continue
        if anon is None:
            yield r.inconclusive(
                row.identity,
                "; ".join(
                    why_unknown(row.obj, p)
                    for p in ("PermissionGroups", "Bindings")
                    if items(row.obj, p) is None
                ),
                ev,
            )
            continue
        ranges = items(row.obj, "RemoteIPRanges")
        if ranges is None:
            yield r.inconclusive(row.identity, why_unknown(row.obj, "RemoteIPRanges"), ev)
            continue
        if not covers_everyone(ranges):
            yield r.not_applicable(
                row.identity,
                "anonymous mail only from " + ", ".join(ranges[:5]) + ": the upstream gateway must validate "
                "recipients (check it with a live probe, SMTP-RCPT-001)",
                ev,
            )
            continue
        if validating:
            yield r.passed(
                row.identity,
                "accepts anonymous Internet mail and recipient validation is on (whole-message rejects "
                "on one bad recipient are the accepted trade-off)",
                ev,
            )
        elif edge:
            yield r.passed(
                row.identity,
                "an Edge Transport server is subscribed: Internet mail is expected to arrive there "
                "(confirm that MX records point at the Edge with a live probe)",
                ev,
            )
        elif edge is None or validating is None:
            yield r.inconclusive(
                row.identity,
                "accepts anonymous Internet mail, but the data does not say whether an Edge server "
                "exists or recipient validation is on (collect Get-EdgeSubscription, "
                "Get-RecipientFilterConfig, Get-TransportAgent)",
                ev,
            )
        else:
            yield r.fail(
                row.identity,
                "accepts anonymous mail from any address on port 25, with no Edge server and no "
                "recipient validation: unknown recipients are accepted and NDR'd",
                ev,
            )


@rule(
    "EX-EDGE-001",
    title="EdgeSync missing or stale",
    family=FAMILY,
    cause="exchange-recipient-filter",
    severity=Severity.HIGH,
    needs=NEEDS,
    remediation="New-EdgeSubscription (re-subscribe the Edge), Start-EdgeSynchronization, then "
    "Test-EdgeSynchronization; monitor it",
    references=(REF_RECIPIENT_FILTERING + " (Recipient Lookup needs EdgeSync data)", "New-EdgeSubscription"),
)
def ex_edge_sync(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `Test-EdgeSynchronization` reporting a `SyncStatus` other than `Normal`; or an Edge Transport
    server (in `Get-ExchangeServer`) with no `Get-EdgeSubscription`.

    ## Why it causes backscatter
    Recipient Lookup on the Edge reads the AD LDS copy that EdgeSync maintains. With a stale copy,
    deleted users are still accepted (then NDR'd) and new users are rejected.
    """
    ex = ExchangeView(obs.items)
    if ex.online:
        return
    yield from _cmdlet_failed(ex, r, "Test-EdgeSynchronization")
    tests = ex.rows("Test-EdgeSynchronization")
    statuses = ("Normal", "Warning", "Failed", "FailedUrgent", "Inconclusive", "NoSyncConfigured")
    for row in tests:
        status = name(row.obj, "SyncStatus", statuses)
        ev = [row.evidence("SyncStatus", "LastSynchronizedUtc")]
        if status is None:
            yield r.inconclusive(row.identity, why_unknown(row.obj, "SyncStatus"), ev)
        elif status == "Normal":
            yield r.passed(row.identity, "EdgeSync status is Normal", ev)
        elif status == "Inconclusive":
            yield r.inconclusive(row.identity, "Test-EdgeSynchronization itself was inconclusive", ev)
        else:
            yield r.fail(row.identity, f"EdgeSync status is {status}: the Edge's recipient data is stale", ev)
    if tests:
        return
    subs = ex.rows("Get-EdgeSubscription")
    if subs:
        for s in subs:
            yield r.inconclusive(
                s.identity,
                "Edge subscription exists but its synchronisation was not tested "
                "(collect Test-EdgeSynchronization)",
                [s.evidence("Name")],
            )
        return
    edges = [s for s in ex.rows("Get-ExchangeServer") if "edge" in (s.obj.text("ServerRole") or "").lower()]
    if edges and ex.ran("Get-EdgeSubscription"):
        for e in edges:
            yield r.fail(
                e.identity,
                "Edge Transport server without an Edge subscription: Recipient Lookup has no directory data",
                [e.evidence("ServerRole")],
                remediation="On the Edge: New-EdgeSubscription -FileName C:\\EdgeSub.xml; on a Mailbox "
                "server: New-EdgeSubscription -FileData ([System.IO.File]::ReadAllBytes('C:\\EdgeSub.xml')) "
                "-Site <AD site>; then Start-EdgeSynchronization",
            )
    elif edges:
        for e in edges:
            yield r.inconclusive(e.identity, "Edge server present; Get-EdgeSubscription was not collected")


# --------------------------------------------------------------------------- content filtering


@rule(
    "EX-CF-001",
    title="SCL reject on a hop behind a gateway",
    family=FAMILY,
    cause="in-session-filtering",
    severity=Severity.HIGH,
    needs=NEEDS,
    remediation="Set-ContentFilterConfig -SCLRejectEnabled $false -SCLQuarantineEnabled $true "
    "-QuarantineMailbox spamq@<domain> (and/or -SCLDeleteEnabled $true; Exchange enforces the order "
    "Reject < Delete < Quarantine between enabled thresholds), or filter on the gateway",
    references=("Set-ContentFilterConfig (SCL* parameters, RejectionResponse)",),
)
def ex_cf_scl_reject(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `Get-ContentFilterConfig` with `SCLRejectEnabled : True` where Internet mail reaches Exchange
    through a gateway: an anonymous port-25 receive connector restricted by `RemoteIPRanges`.

    ## Why it causes backscatter
    At the perimeter the content filter's reject is a 5xx inside the SMTP session: the real
    client gets it, nothing is bounced. Behind a gateway, the gateway has already accepted the
    message; Exchange's 5xx makes the *gateway* send an NDR to the forged sender.
    """
    ex = ExchangeView(obs.items)
    yield from _cmdlet_failed(ex, r, "Get-ContentFilterConfig")
    connectors = ex.rows("Get-ReceiveConnector")
    for row in ex.rows("Get-ContentFilterConfig"):
        reject = flag(row.obj, "SCLRejectEnabled")
        ev = [row.evidence("SCLRejectEnabled", "Enabled")]
        if flag(row.obj, "Enabled") is False:
            yield r.passed(row.identity, "the content filter is disabled: it rejects nothing", ev)
            continue
        if reject is None:
            yield r.inconclusive(row.identity, why_unknown(row.obj, "SCLRejectEnabled"), ev)
            continue
        if not reject:
            yield r.passed(row.identity, "SCLRejectEnabled is False", ev)
            continue
        gateway: list[Row] = []
        unknown: list[Row] = []
        open_: list[Row] = []
        for c in connectors:
            anon = _anonymous_smtp(c)
            ranges = items(c.obj, "RemoteIPRanges")
            if anon is None or (anon and ranges is None):
                unknown.append(c)
            elif anon and ranges is not None:
                (open_ if covers_everyone(ranges) else gateway).append(c)
        if gateway:
            yield r.fail(
                row.identity,
                "SCLRejectEnabled is True while Internet mail arrives through a gateway ("
                + ", ".join(repr(g.identity) for g in gateway[:3])
                + " accept anonymous mail only from specific addresses): "
                "the gateway will NDR the forged sender",
                ev + [g.evidence("RemoteIPRanges") for g in gateway[:3]],
            )
        elif unknown or not ex.ran("Get-ReceiveConnector"):
            yield r.inconclusive(
                row.identity,
                "SCLRejectEnabled is True; whether this hop is the perimeter is unknown "
                "(collect Get-ReceiveConnector with PermissionGroups, Bindings, RemoteIPRanges)",
                ev,
            )
        elif open_:
            yield r.passed(
                row.identity,
                "SCLRejectEnabled is True on the perimeter: rejects happen inside the SMTP session",
                ev,
                note="info: safe only while no gateway sits in front of this server",
            )
        else:
            yield r.inconclusive(
                row.identity, "SCLRejectEnabled is True; no anonymous Internet receive connector found", ev
            )


@rule(
    "EX-CF-002",
    title="transport rules that reject with an NDR",
    family=FAMILY,
    cause="in-session-filtering",
    controls=("OPERATOR-NO-BACKSCATTER",),
    severity=Severity.HIGH,
    needs=NEEDS,
    remediation="Set-TransportRule -Identity <rule> -DeleteMessage $true (silent drop, no NDR), or "
    "quarantine/redirect; reject only at the perimeter",
    references=(
        "New-TransportRule -RejectMessageReasonText (runs on Mailbox servers, sends an NDR)",
        "New-TransportRule -DeleteMessage (silently drops without an NDR)",
    ),
)
def ex_cf_transport_reject(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    Enabled, enforced transport (mail flow) rules with a `RejectMessageReasonText` or
    `RejectMessageEnhancedStatusCode` action. Rules scoped to senders inside the organisation
    (`FromScope InOrganization`) are reported at low severity.

    ## Why it causes backscatter
    On-premises, this action runs in the transport pipeline on Mailbox servers, after the message
    was accepted: the "reject" is an NDR to the envelope sender. For spam, phishing or malware
    conditions that sender is forged.
    """
    ex = ExchangeView(obs.items)
    yield from _cmdlet_failed(ex, r, "Get-TransportRule")
    if not ex.ran("Get-TransportRule"):
        return
    rows = ex.rows("Get-TransportRule")
    rejecting = unknown = 0
    for row in rows:
        o = row.obj
        actions = [o.get("RejectMessageReasonText"), o.get("RejectMessageEnhancedStatusCode")]
        present = [a for a in actions if a is not None]
        ev = [
            row.evidence(
                "RejectMessageReasonText", "RejectMessageEnhancedStatusCode", "State", "Mode", "FromScope"
            )
        ]
        if any(a.truncated for a in present) or not present:
            unknown += 1
            yield r.inconclusive(
                row.identity, "the reject action properties are missing or truncated in the export", ev
            )
            continue
        if not any(a.value or a.items for a in present):
            continue
        state = name(o, "State", ("Enabled", "Disabled"))
        mode = name(o, "Mode", ("Enforce", "Audit", "AuditAndNotify"))
        if state == "Disabled":
            yield r.passed(row.identity, "rejecting rule is disabled", ev)
            continue
        if mode in ("Audit", "AuditAndNotify"):
            yield r.passed(row.identity, f"rejecting rule runs in {mode} mode (its action is not taken)", ev)
            continue
        if state is None or mode is None:
            unknown += 1
            prop = "State" if state is None else "Mode"
            yield r.inconclusive(row.identity, "rule rejects with an NDR; " + why_unknown(o, prop), ev)
            continue
        rejecting += 1
        internal = name(o, "FromScope", ("InOrganization", "NotInOrganization")) == "InOrganization"
        yield r.fail(
            row.identity,
            f"transport rule {row.identity!r} rejects with an NDR after acceptance"
            + (" (senders inside the organisation only)" if internal else " (external senders can match)"),
            ev,
            severity=Severity.LOW if internal else Severity.HIGH,
            remediation=f"Set-TransportRule -Identity {_q(row.identity)} -DeleteMessage $true "
            "-RejectMessageReasonText $null -RejectMessageEnhancedStatusCode $null "
            "(silent drop; or quarantine/redirect instead; reject only on the perimeter)",
        )
    if not rejecting and not unknown:
        yield r.passed("transport rules", f"none of the {len(rows)} transport rules rejects with an NDR")


@rule(
    "EX-CF-003",
    title="malware notifications / NDRs to external senders",
    family=FAMILY,
    cause="in-session-filtering",
    controls=("OPERATOR-NO-BACKSCATTER",),
    severity=Severity.HIGH,
    needs=NEEDS,
    remediation="Set-MalwareFilterPolicy -Identity Default -EnableExternalSenderNotifications $false",
    references=("Set-MalwareFilterPolicy (-EnableExternalSenderNotifications, -FileTypeAction)",),
)
def ex_cf_malware_notify(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `Get-MalwareFilterPolicy` with `EnableExternalSenderNotifications : True` (on-premises; default
    `$false`), or — in Exchange Online — the common attachments filter on with
    `FileTypeAction : Reject` (the default there), which rejects in an NDR to the sender.

    ## Why it causes backscatter
    Malware almost always carries a forged sender: every detection notifies an innocent third
    party, often with the attachment's name — classic backscatter.
    """
    ex = ExchangeView(obs.items)
    yield from _cmdlet_failed(ex, r, "Get-MalwareFilterPolicy")
    for row in ex.rows("Get-MalwareFilterPolicy"):
        o = row.obj
        problems: list[str] = []
        fixes: list[str] = []
        unknown: list[str] = []
        notify = flag(o, "EnableExternalSenderNotifications")
        if notify:
            problems.append("EnableExternalSenderNotifications is True")
            fixes.append("-EnableExternalSenderNotifications $false")
        elif notify is None and not ex.online:
            # On-premises only (the cloud has no such setting; the collector writes $null there).
            unknown.append(why_unknown(o, "EnableExternalSenderNotifications"))
        if ex.online or o.text("FileTypeAction") is not None:  # a cloud-only setting
            filt = flag(o, "EnableFileFilter")
            action = name(o, "FileTypeAction", ("Reject", "Quarantine"))
            if filt and action == "Reject":
                problems.append("the common attachments filter rejects (FileTypeAction Reject) with an NDR")
                fixes.append("-FileTypeAction Quarantine")
            elif filt is None or (filt and action is None):
                unknown.append(why_unknown(o, "EnableFileFilter" if filt is None else "FileTypeAction"))
        ev = [row.evidence("EnableExternalSenderNotifications", "EnableFileFilter", "FileTypeAction")]
        if problems:
            yield r.fail(
                row.identity,
                "; ".join(problems) + ": forged senders of malware get notifications",
                ev,
                remediation=f"Set-MalwareFilterPolicy -Identity {_q(row.identity)} " + " ".join(fixes),
            )
        elif unknown:
            yield r.inconclusive(row.identity, "; ".join(unknown), ev)
        else:
            yield r.passed(row.identity, "no malware notification goes to external senders", ev)


@rule(
    "EX-NULL-001",
    title="blank (null) senders blocked",
    family=FAMILY,
    cause="null-sender-postmaster",
    controls=("RFC1123-5.2.9",),
    severity=Severity.HIGH,
    needs=NEEDS,
    remediation="Set-SenderFilterConfig -BlankSenderBlockingEnabled $false",
    references=("Set-SenderFilterConfig -BlankSenderBlockingEnabled", "RFC 1123 §5.2.9"),
)
def ex_null_sender(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `Get-SenderFilterConfig` with `BlankSenderBlockingEnabled : True` (default `$false`) while the
    sender filter is enabled.

    ## Why it matters
    Bounces and DSNs travel with the null reverse-path `MAIL FROM:<>` (RFC 5321/3464; RFC 1123
    §5.2.9 requires accepting it). Refusing it breaks other sites' bounces to you and breaks
    sender-verification callouts, so other sites' backscatter defences fail against this domain
    (the probe-side twin is SMTP-NULL-001).
    """
    ex = ExchangeView(obs.items)
    yield from _cmdlet_failed(ex, r, "Get-SenderFilterConfig")
    for row in ex.rows("Get-SenderFilterConfig"):
        blocked = flag(row.obj, "BlankSenderBlockingEnabled")
        ev = [row.evidence("BlankSenderBlockingEnabled", "Enabled")]
        if blocked is None:
            yield r.inconclusive(row.identity, why_unknown(row.obj, "BlankSenderBlockingEnabled"), ev)
        elif not blocked:
            yield r.passed(row.identity, "blank senders are accepted", ev)
        elif flag(row.obj, "Enabled") is False:
            yield r.passed(
                row.identity, "BlankSenderBlockingEnabled is True but the sender filter is off", ev
            )
        else:
            yield r.fail(row.identity, "BlankSenderBlockingEnabled is True: MAIL FROM:<> is refused", ev)


@rule(
    "EX-DSN-001",
    title="external NDRs attach the original message (up to 10 MB)",
    family=FAMILY,
    cause="ndr-payload",
    controls=("RFC3464",),
    severity=Severity.MEDIUM,
    needs=NEEDS,
    remediation="""
        Set-TransportConfig -ExternalDsnMaxMessageAttachSize 0
        (NDRs then carry only the original headers). Do not switch NDRs off instead
        (Set-RemoteDomain Default -NDREnabled $false breaks legitimate senders): that is a last-resort
        brake during an incident, not a fix.
    """,
    references=("Set-TransportConfig -ExternalDsnMaxMessageAttachSize", "Set-RemoteDomain -NDREnabled"),
)
def ex_dsn_attach(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    `Get-TransportConfig` with `ExternalDsnMaxMessageAttachSize` above 0 (default 10 MB).

    ## Why it causes backscatter
    Every NDR to an external sender carries the original message up to that size: backscatter
    then delivers the full spam or malware payload to the forged sender. With 0, NDRs carry only
    the original headers.
    """
    ex = ExchangeView(obs.items)
    yield from _cmdlet_failed(ex, r, "Get-TransportConfig")
    for row in ex.rows("Get-TransportConfig"):
        raw = row.obj.text("ExternalDsnMaxMessageAttachSize")
        size = parse_size(raw)
        ev = [row.evidence("ExternalDsnMaxMessageAttachSize")]
        if size is None:
            yield r.inconclusive(row.identity, why_unknown(row.obj, "ExternalDsnMaxMessageAttachSize"), ev)
        elif size == 0:
            yield r.passed(row.identity, "external NDRs attach only the original headers", ev)
        else:
            yield r.fail(
                row.identity,
                f"external NDRs attach the original message up to {raw} (spam payload returned to "
                "forged senders)",
                ev,
            )


# --------------------------------------------------------------------------- auto-replies


@rule(
    "EX-AR-001",
    title="out-of-office replies to any external sender",
    family=FAMILY,
    cause="auto-replies",
    controls=("RFC3834",),
    severity=Severity.MEDIUM,
    needs=NEEDS,
    remediation="Set-MailboxAutoReplyConfiguration -Identity <mailbox> -ExternalAudience Known; or "
    "org-wide Set-RemoteDomain -Identity Default -AllowedOOFType None where policy allows",
    references=(
        "Set-MailboxAutoReplyConfiguration -ExternalAudience (None/Known/All; All is the default)",
        "Set-RemoteDomain -AllowedOOFType (External is the default)",
    ),
)
def ex_ar_oof(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    Mailboxes with automatic replies `Enabled`/`Scheduled` and `ExternalAudience : All` (the
    default), when the default remote domain (`*`) lets OOF out (`AllowedOOFType` `External` or
    `ExternalLegacy`, the default). Without mailbox data (the collector's opt-in
    `-IncludeAutoReplies`), the remote-domain setting alone is reported.

    ## Why it causes backscatter
    Every forged message to an absent user yields an auto-reply to the forger's victim.
    """
    ex = ExchangeView(obs.items)
    yield from _cmdlet_failed(ex, r, "Get-RemoteDomain")
    defaults = [d for d in ex.rows("Get-RemoteDomain") if (d.obj.text("DomainName") or "").strip() == "*"]
    oof_types = ("External", "ExternalLegacy", "InternalLegacy", "None")
    org_blocks: bool | None = None
    for d in defaults:
        t = name(d.obj, "AllowedOOFType", oof_types)
        org_blocks = None if t is None else t in ("InternalLegacy", "None")
        if org_blocks:
            yield r.passed(
                d.identity,
                f"AllowedOOFType {t}: no OOF goes to external senders",
                [d.evidence("AllowedOOFType")],
            )
            return
    mailbox_data = ex.ran("Get-MailboxAutoReplyConfiguration")
    if mailbox_data:
        active = 0
        for m in ex.rows("Get-MailboxAutoReplyConfiguration"):
            state = name(m.obj, "AutoReplyState", ("Disabled", "Enabled", "Scheduled"))
            ev = [m.evidence("AutoReplyState", "ExternalAudience")]
            if state == "Disabled":
                continue
            if state is None:
                yield r.inconclusive(m.identity, why_unknown(m.obj, "AutoReplyState"), ev)
                continue
            active += 1
            audience = name(m.obj, "ExternalAudience", ("None", "Known", "All"))
            if audience is None:
                yield r.inconclusive(
                    m.identity, why_unknown(m.obj, "ExternalAudience") + " (default All)", ev
                )
            elif audience == "All":
                yield r.fail(
                    m.identity,
                    f"automatic replies {state} for every external sender",
                    ev,
                    remediation="Set-MailboxAutoReplyConfiguration "
                    f"-Identity {_q(m.identity)} -ExternalAudience Known",
                )
            else:
                yield r.passed(m.identity, f"automatic replies {state}, external audience {audience}", ev)
        if not active:
            target = defaults[0].identity if defaults else "auto-replies"
            yield r.passed(target, "no mailbox has automatic replies switched on")
        return
    for d in defaults:
        t = name(d.obj, "AllowedOOFType", oof_types)
        ev = [d.evidence("AllowedOOFType")]
        if t is None:
            yield r.inconclusive(d.identity, why_unknown(d.obj, "AllowedOOFType") + " (default External)", ev)
        else:
            yield r.fail(
                d.identity,
                f"AllowedOOFType {t}: any mailbox's OOF (ExternalAudience defaults to All) answers forged "
                "external senders; mailbox auto-reply settings were not collected",
                ev,
                remediation=f"Set-RemoteDomain -Identity {_q(d.identity)} -AllowedOOFType None "
                "(no external OOF at all), or per mailbox "
                "Set-MailboxAutoReplyConfiguration -ExternalAudience Known",
            )
