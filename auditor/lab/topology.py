"""The lab's layout as data: hosts, addresses, DNS zones, Postfix listeners and expected verdicts.

Tests, the demo and the prober's integration tests read the expectations from here (through
:class:`auditor.lab.info.LabInfo`), so a scenario is changed in one place. Everything lives in
198.18.0.0/24 (RFC 2544 benchmarking range) on a private bridge; namespaces have no default route.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "bsa-"  # every namespace, link and /etc/netns entry of the lab starts with this
BRIDGE = "bsa-br0"
NET = "198.18.0"
PREFIXLEN = 24
PROBER_IP = f"{NET}.1"  # the bridge address: tests and the demo talk from the root namespace
DNS_IP = f"{NET}.10"
DNS_PORT = 53
SINK_IP = f"{NET}.20"
SINK_BOUNCE_PORT = 25  # NDRs to bsa-<tag>@sink.test arrive here
SINK_INBOX_PORT = 2526  # mail the lab's MXs accept and deliver ends here, never in a real mailbox
LDAP_IP = f"{NET}.30"
LDAP_PORT = 389
SINK_DOMAIN = "sink.test"
PROBE_LOCAL_PREFIX = "bsa-"  # the sink's bounce listener accepts only <prefix>*@sink.test
GREYLIST_DELAY_S = 3  # a greylisted triple is accepted this many seconds after its first attempt

# Verdicts (DESIGN.md "Live probing") expected for a random unknown recipient at one MX address.
REJECTS_UNKNOWN = "rejects-unknown"
ACCEPTS_UNKNOWN = "accepts-unknown"
DEFERS_UNKNOWN = "defers-unknown"

CATCH_ALL = "catch-all"  # the scenario served through virtual_alias_maps instead of relay_domains


@dataclass(frozen=True)
class Host:
    """One network namespace; the first address is the primary one, the others are aliases on eth0."""

    name: str  # short name; the namespace is PREFIX + name
    addresses: tuple[str, ...]
    hostname: str

    @property
    def netns(self) -> str:
        return PREFIX + self.name


HOSTS: tuple[Host, ...] = (
    Host("dns", (DNS_IP,), "ns.lab.test"),
    # The strict Postfix instance answers on several addresses, one per scenario, each with its own
    # smtpd listener and overrides: one instance (one start, one queue) instead of four.
    Host("mx1", (f"{NET}.11", f"{NET}.13", f"{NET}.14", f"{NET}.15"), "mx1.example.test"),
    Host("mx2", (f"{NET}.12",), "mx2.example.test"),
    Host("sink", (SINK_IP,), "mx.sink.test"),
    Host("ldap", (LDAP_IP,), "ldap.example.test"),
    # The hardened MX (below): postscreen on the first address, a tarpit smtpd on the second.
    Host("mx3", (f"{NET}.40", f"{NET}.41"), "mx.hardened.test"),
)


@dataclass(frozen=True)
class Listener:
    """One smtpd listener of a lab Postfix instance and the scenario it implements."""

    address: str
    scenario: str
    overrides: tuple[tuple[str, str], ...] = ()  # master.cf -o name=value


@dataclass(frozen=True)
class PostfixInstance:
    name: str
    host: str  # Host.name
    myhostname: str
    listeners: tuple[Listener, ...]
    strict: bool  # validates recipients (relay_recipient_maps) vs accepts anything for relay_domains


POSTFIX_INSTANCES: tuple[PostfixInstance, ...] = (
    PostfixInstance(
        "strict",
        "mx1",
        "mx1.example.test",
        (
            Listener(f"{NET}.11", "strict"),
            Listener(f"{NET}.13", "soft-bounce", (("soft_bounce", "yes"),)),
            Listener(f"{NET}.14", "tempfail", (("unknown_relay_recipient_reject_code", "450"),)),
            Listener(
                f"{NET}.15",
                "greylist",
                (("smtpd_recipient_restrictions", "$bsa_greylist_restrictions"),),
            ),
        ),
        strict=True,
    ),
    PostfixInstance("sloppy", "mx2", "mx2.example.test", (Listener(f"{NET}.12", "sloppy-backup"),), False),
)


@dataclass(frozen=True)
class MxExpectation:
    """What a correct prober must conclude for one (domain, MX host, address)."""

    host: str  # MX host name ("" for an implicit MX: the domain's own A record)
    preference: int
    address: str
    scenario: str
    verdict: str  # for a random unknown recipient, after any greylisting retry
    first_reply: str = ""  # "4xx" when the first attempt of a triple is deferred (greylisting)
    backscatter: bool = False  # DATA to an unknown recipient produces an NDR to the sender


@dataclass(frozen=True)
class Scenario:
    """One lab domain: its DNS shape, its recipients and what each MX must be judged as."""

    domain: str
    description: str
    mx: tuple[MxExpectation, ...]
    valid_recipients: tuple[str, ...] = ()  # control addresses a correct MX accepts
    dns_kind: str = "mx"  # mx | null-mx | implicit-mx
    in_scope: bool = True  # False: not part of the demo site (the sink's own domain, the hardened MX's)


def _valid(domain: str) -> tuple[str, ...]:
    return (f"alice@{domain}", f"postmaster@{domain}")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "example.test",
        "strict primary (LDAP recipient map) + sloppy backup that accepts everything and bounces later",
        (
            MxExpectation("mx1.example.test", 10, f"{NET}.11", "strict", REJECTS_UNKNOWN),
            MxExpectation("mx2.example.test", 20, f"{NET}.12", "sloppy-backup", ACCEPTS_UNKNOWN, "", True),
        ),
        _valid("example.test"),
    ),
    Scenario(
        "catchall.test",
        "virtual_alias_maps @domain catch-all: every address is accepted and delivered",
        (MxExpectation("mx.catchall.test", 10, f"{NET}.11", CATCH_ALL, ACCEPTS_UNKNOWN),),
        _valid("catchall.test"),
    ),
    Scenario(
        "softbounce.test",
        "soft_bounce = yes: the unknown-recipient 550 becomes a persistent 450",
        (MxExpectation("mx.softbounce.test", 10, f"{NET}.13", "soft-bounce", DEFERS_UNKNOWN),),
        _valid("softbounce.test"),
    ),
    Scenario(
        "tempfail.test",
        "unknown_relay_recipient_reject_code = 450: persistent 4xx for unknown recipients",
        (MxExpectation("mx.tempfail.test", 10, f"{NET}.14", "tempfail", DEFERS_UNKNOWN),),
        _valid("tempfail.test"),
    ),
    Scenario(
        "grey.test",
        f"greylisting: a triple's first attempt gets 450 4.2.0, accepted {GREYLIST_DELAY_S} s later",
        (MxExpectation("mx.grey.test", 10, f"{NET}.15", "greylist", REJECTS_UNKNOWN, "4xx"),),
        _valid("grey.test"),
    ),
    Scenario(
        "implicit.test",
        "no MX record, an A record only: the domain itself is the (implicit) MX, a strict one",
        (MxExpectation("", 0, f"{NET}.11", "strict", REJECTS_UNKNOWN),),
        _valid("implicit.test"),
        dns_kind="implicit-mx",
    ),
    Scenario(
        "nullmx.test",
        "null MX (RFC 7505, MX 0 .): the domain accepts no mail at all",
        (),
        dns_kind="null-mx",
    ),
    Scenario(
        SINK_DOMAIN,
        "the lab's bounce sink: accepts only bsa-* probe senders' NDRs",
        (MxExpectation("mx.sink.test", 10, SINK_IP, "sink", REJECTS_UNKNOWN),),
        in_scope=False,
    ),
)


# --- The hardened MX (issue 12 §2) ------------------------------------------------------------
# A Postfix MX locked down the way real ones are: postscreen with its after-220 ("deep protocol")
# tests, HELO and sender checks, a DNSBL, anvil rate limits, and a tarpit listener. Its domains are
# outside the demo site (``in_scope=False``), so the demo and its committed report do not change;
# tests/integration/test_hardened_lab.py probes it from the vantage addresses below.
HARDENED_IP = f"{NET}.40"  # postscreen in front of smtpd
TARPIT_IP = f"{NET}.41"  # plain smtpd that sleeps before every reply once a client has erred
HARDENED_DOMAIN = "hardened.test"
TARPIT_DOMAIN = "tarpit.test"
DNSBL_ZONE = "lists.lab.test"
DNSBL_ANSWER = "127.0.0.2"
DNSBL_TEXT = "listed in the lab blocklist"
HARDENED_CONNECTION_RATE = (
    3  # smtpd connections per client per ANVIL_TIME_UNIT_S (postscreen's own not counted)
)
ANVIL_TIME_UNIT_S = 60
POSTSCREEN_GREET_WAIT_S = 2  # Postfix's own "under stress" value; the normal 6 s would slow the tests
TARPIT_SLEEP_S = 2  # smtpd_error_sleep_time of the tarpit listener (its smtpd_soft_error_limit is 1)


@dataclass(frozen=True)
class Vantage:
    """A prober address on the lab bridge (an alias next to PROBER_IP) with forward and reverse DNS.

    One per hardened-MX test: postscreen's allowlist and anvil's counters are per client address,
    so each test starts as a client the MX has never seen.
    """

    name: str
    address: str
    hostname: str
    listed: bool = False  # on the lab DNSBL (DNSBL_ZONE answers DNSBL_ANSWER for it)


VANTAGES: tuple[Vantage, ...] = (
    Vantage("good", f"{NET}.2", "good.vantage.test"),
    Vantage("listed", f"{NET}.3", "listed.vantage.test", listed=True),
    Vantage("helo", f"{NET}.4", "helo.vantage.test"),
    Vantage("sender", f"{NET}.5", "sender.vantage.test"),
    Vantage("default", f"{NET}.6", "default.vantage.test"),
    Vantage("rate", f"{NET}.7", "rate.vantage.test"),
    Vantage("tarpit", f"{NET}.8", "tarpit.vantage.test"),
    Vantage("unresolved", f"{NET}.9", "unresolved.vantage.test"),
)

HARDENED_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        HARDENED_DOMAIN,
        "hardened Postfix: postscreen after-220 tests, HELO/sender checks, DNSBL, anvil rate limits",
        (MxExpectation("mx.hardened.test", 10, HARDENED_IP, "hardened", REJECTS_UNKNOWN),),
        _valid(HARDENED_DOMAIN),
        in_scope=False,
    ),
    Scenario(
        TARPIT_DOMAIN,
        f"the hardened MX's tarpit listener: {TARPIT_SLEEP_S} s before every reply after the first error",
        (MxExpectation("mx.tarpit.test", 10, TARPIT_IP, "tarpit", REJECTS_UNKNOWN),),
        _valid(TARPIT_DOMAIN),
        in_scope=False,
    ),
)
SCENARIOS = SCENARIOS + HARDENED_SCENARIOS


def vantage(name: str) -> Vantage:
    for v in VANTAGES:
        if v.name == name:
            return v
    raise KeyError(name)


def dnsbl_name(address: str) -> str:
    """The DNSBL query name for an IPv4 address: reversed octets under the zone."""
    return ".".join(reversed(address.split("."))) + "." + DNSBL_ZONE


def served_domains(inst: PostfixInstance, catch_all: bool = False) -> tuple[str, ...]:
    """The scenario domains with an MX on one of ``inst``'s listeners: its relay domains, or with
    ``catch_all`` its catch-all (virtual alias) domains. Derived, so a new scenario is one entry."""
    addrs = {lst.address for lst in inst.listeners}
    return tuple(
        s.domain
        for s in SCENARIOS
        if s.in_scope and any(m.address in addrs and (m.scenario == CATCH_ALL) == catch_all for m in s.mx)
    )


def scenario(domain: str) -> Scenario:
    for s in SCENARIOS:
        if s.domain == domain:
            return s
    raise KeyError(domain)


def host(name: str) -> Host:
    for h in HOSTS:
        if h.name == name:
            return h
    raise KeyError(name)
