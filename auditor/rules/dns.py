"""DNS rules (rules.md §2): the inbound paths of each domain and null MX for non-mail domains."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.model import Evidence, Finding, Severity
from auditor.observations.dns import NXDOMAIN, DnsMx, MxHost
from auditor.observations.smtp import ProbeResult
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.smtp_verdicts import Verdict, classify


def _paths(mx: DnsMx) -> str:
    if not mx.hosts:
        return "(none)"
    parts = []
    for h in mx.hosts:
        addrs = ", ".join(h.addresses) or f"no address: {h.status}"
        flags = [
            f
            for f, on in (("external", h.external), ("CNAME", bool(h.cname)), ("IP literal", h.ip_literal))
            if on
        ]
        extra = f" [{', '.join(flags)}]" if flags else ""
        parts.append(f"{h.preference} {h.name} ({addrs}){extra}")
    return "; ".join(parts)


def _evidence(mx: DnsMx, summary: str = "") -> Evidence:
    lines = tuple(
        f"{mx.target}. MX {h.preference} {h.name}. -> {', '.join(h.addresses) or h.status}" for h in mx.hosts
    )
    return Evidence(
        summary=summary or f"MX of {mx.target}: {_paths(mx)}",
        transcript=lines,
        data={
            "status": mx.status,
            "implicit": mx.implicit,
            "null_mx": mx.null_mx,
            "nameservers": list(mx.nameservers),
        },
    )


def _validates(host: MxHost, domain: str, probes: list[ProbeResult]) -> bool:
    """Every address of an external host was probed and rejects unknown recipients."""
    mine = [p for p in probes if p.domain == domain and p.mx_host == host.name]
    addrs = {p.address for p in mine if classify(p).verdict is Verdict.REJECTS_UNKNOWN}
    return bool(host.addresses) and set(host.addresses) <= addrs


def _external(host: MxHost, domain: str, probes: list[ProbeResult]) -> str:
    """One external host: what it is and, when it was not probed, how to probe it."""
    name = f"{host.name} (CNAME to {host.cname})" if host.cname else host.name
    if not any(p.domain == domain and p.mx_host == host.name and p.address for p in probes):
        return (
            f"{name}: not probed (third-party host; with the provider's consent, probe it with "
            "--allow-external-mx or probe.allow_external_mx = true)"
        )
    return name


@rule(
    "DNS-MX-001",
    title="Every inbound path (MX and implicit MX) enumerated",
    family="dns",
    severity=Severity.INFO,
    needs=(DnsMx,),
    remediation="""
        Make every host in the MX RRset validate recipients like the primary: give a third-party
        backup MX service your recipient list, or remove the backup MX record. MX targets must be
        host names with A/AAAA records, never CNAMEs or IP literals.
    """,
    references=("RFC 5321 §5.1", "RFC 2181 §10.3", "rules.md DNS-MX-001"),
)
def mx_paths(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    Lists, for each domain in scope, every inbound path: each MX host with its preference and
    each of its A/AAAA addresses, or the implicit MX (no MX record → the domain's own A/AAAA).
    It fails (medium) when an MX host lies outside the domains in scope (a third-party backup
    MX service) and no probe showed that every one of its addresses rejects unknown recipients,
    and (low) when an MX target is a CNAME or an IP literal or has no address at all.

    A lookup that timed out or got SERVFAIL is inconclusive, never "no MX". A domain in scope that
    does not exist (NXDOMAIN) or has neither MX nor address fails at high severity: nothing could be
    probed, and a typo in the domain list must not end in a green report (declare a domain that
    must not receive mail in ``non_mail_domains`` to have DNS-NULLMX-001 check its null MX).
    An MX target whose CNAME points outside the scope counts as external: the probes would reach
    the alias's canonical host.

    ## Why it matters
    The live probes are only as good as the host list. Backup MX services run by third parties
    are the classic accept-all hosts: they queue mail for any local part and bounce it later
    to the forged sender.

    ## Example
    ``example.com. MX 10 mx1.example.com.`` and ``MX 20 backup.mx-provider.net.``: the second host is
    external; probe it with ``--allow-external-mx`` (with the provider's consent) to clear it.
    """
    probes = obs.of(ProbeResult)
    for mx in obs.of(DnsMx):
        if mx.non_mail:
            continue
        if mx.failed:
            # High, not info: the domain's inbound paths, and so every live check, are unknown.
            yield r.inconclusive(
                mx.target,
                f"DNS lookup failed ({mx.status}): {mx.detail or 'no answer'}",
                [_evidence(mx)],
                severity=Severity.HIGH,
            )
            continue
        if mx.status == NXDOMAIN:
            yield r.fail(
                mx.target,
                "the domain does not exist (NXDOMAIN): nothing was probed; check the domain list for a typo",
                [_evidence(mx)],
                severity=Severity.HIGH,
            )
            continue
        if mx.null_mx:
            yield r.passed(mx.target, "null MX (RFC 7505): the domain receives no mail", [_evidence(mx)])
            continue
        if not mx.hosts:
            why = (
                "mx_override names no host"
                if mx.overridden
                else "no MX and no A/AAAA record: the domain cannot receive mail"
            )
            yield r.fail(
                mx.target,
                f"{why}; nothing was probed (declare a domain that must not receive mail as a "
                "non-mail domain and publish a null MX)",
                [_evidence(mx)],
                severity=Severity.HIGH,
            )
            continue
        external = [h for h in mx.hosts if h.external and not _validates(h, mx.target, probes)]
        if external:
            yield r.fail(
                mx.target,
                "MX host(s) outside the domains in scope not shown to validate recipients: "
                + "; ".join(_external(h, mx.target, probes) for h in external),
                [_evidence(mx)],
                severity=Severity.MEDIUM,
            )
            continue
        bad = [h for h in mx.hosts if h.cname or h.ip_literal or not h.addresses]
        if bad:
            why = "; ".join(
                f"{h.name}: "
                + ("CNAME to " + h.cname if h.cname else "IP literal" if h.ip_literal else "no address")
                for h in bad
            )
            yield r.fail(mx.target, f"broken MX target(s): {why}", [_evidence(mx)], severity=Severity.LOW)
            continue
        kind = (
            "implicit MX (no MX record; the domain's own address receives mail)"
            if mx.implicit
            else "inbound paths"
        )
        if mx.overridden:
            kind += " (from mx_override, not DNS)"
        yield r.passed(mx.target, f"{kind}: {_paths(mx)}", [_evidence(mx)])


@rule(
    "DNS-NULLMX-001",
    title="Non-mail domains lack a null MX",
    family="dns",
    cause="dns-hygiene",
    controls=("RFC7505",),
    severity=Severity.LOW,
    needs=(DnsMx,),
    remediation="""
        Publish a null MX and a strict SPF record for every domain that must not receive mail:
        example.org. IN MX 0 .   and   example.org. IN TXT "v=spf1 -all"
    """,
    references=("RFC 7505 §3, §4", "postconf(5) reject_unknown_sender_domain", "rules.md DNS-NULLMX-001"),
)
def null_mx(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    A domain the site declares as non-mail (``site.non_mail_domains`` in site.toml, or
    ``--non-mail-domain``) that does not publish a valid null MX (exactly one MX record,
    preference 0, target ".").

    Only declared domains are judged: a mail domain without an MX is not a null-MX problem (its
    inbound paths are reported by DNS-MX-001), and the tool cannot guess which of your domains are
    parked or web-only.

    ## Why it causes backscatter
    Spammers forge sender addresses in parked and brand domains. Without a null MX, receivers
    cannot reject those senders cheaply, and the bounces and auto-replies flow to the domain's
    A record host. A null MX lets receivers refuse such mail at MAIL FROM (550 5.7.27) and tells
    senders not to try delivery (556 5.1.10).
    """
    for mx in obs.of(DnsMx):
        if not mx.non_mail:
            continue
        ev = [_evidence(mx)]
        if mx.failed:
            yield r.inconclusive(mx.target, f"DNS lookup failed: {mx.detail or mx.status}", ev)
        elif mx.null_mx:
            yield r.passed(mx.target, "publishes a null MX (MX 0 .)", ev)
        elif mx.malformed_null_mx:
            yield r.fail(mx.target, "null MX is malformed: '.' mixed with other MX or preference ≠ 0", ev)
        elif mx.status == NXDOMAIN:
            yield r.fail(mx.target, "the domain does not exist in DNS (NXDOMAIN), so it has no null MX", ev)
        elif mx.implicit:
            yield r.fail(mx.target, f"no MX and an address record (implicit MX): {_paths(mx)}", ev)
        elif mx.hosts:
            yield r.fail(mx.target, f"declared non-mail but has real MX records: {_paths(mx)}", ev)
        else:
            yield r.fail(mx.target, "no MX record and no null MX", ev)


@rule(
    "DNS-NULLMX-002",
    title="Malformed null MX",
    family="dns",
    cause="dns-hygiene",
    controls=("RFC7505",),
    severity=Severity.LOW,
    needs=(DnsMx,),
    remediation="Publish the null MX alone and with preference 0: example.org. IN MX 0 .",
    references=("RFC 7505 §3",),
    tier="ext",
)
def malformed_null_mx(obs: Observations, r: Rule) -> Iterator[Finding]:
    """
    ## What it flags
    An MX RRset with a "." target that is not a valid null MX: "." together with other MX
    records, or "." with a preference other than 0.

    ## Why it matters
    RFC 7505 §3 defines the null MX as the only record of the RRset. Mixed records leave senders
    to guess, and some will deliver (and bounce) anyway.
    """
    for mx in obs.of(DnsMx):
        if mx.malformed_null_mx:
            yield r.fail(
                mx.target, "'.' MX target mixed with other MX or with preference ≠ 0", [_evidence(mx)]
            )
        elif mx.null_mx:
            yield r.passed(mx.target, "null MX is well-formed", [_evidence(mx)])
