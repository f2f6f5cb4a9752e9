"""What a running lab offers its users (tests, the demo, the prober): addresses and expected verdicts.

Plain frozen dataclasses, JSON round-trippable with :mod:`auditor.serialize`; written to
``<state>/lab.json`` by ``lab up`` so another process (``lab status``, the demo) can read it.
Contains no secret: the LDAP bind password lives in a 0600 file whose *path* is given here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from auditor.lab.topology import MxExpectation, Scenario
from auditor.serialize import from_jsonable, to_jsonable


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class LdapInfo:
    url: str
    ldaps_url: str
    suffix: str
    bind_dn: str
    secret_file: str  # 0600 file holding the bind password of bind_dn
    ca_file: str  # the test CA that signed the ldaps certificate
    netns: str
    domain: str  # the domain whose recipients the directory holds
    valid_recipients: tuple[str, ...]  # every address the directory makes valid there
    known_valid: str
    alias: str


@dataclass(frozen=True)
class PostfixInfo:
    name: str
    netns: str
    config_dir: str  # usable as `backscatter-audit lint postfix DIR`
    queue_dir: str
    maillog: str
    addresses: tuple[str, ...]
    scenarios: tuple[str, ...]


@dataclass(frozen=True)
class LabInfo:
    state_dir: str
    nameserver: Endpoint
    prober_address: str  # the root-namespace address the lab's hosts see as the client
    sink_domain: str
    probe_prefix: str  # MAIL FROM local parts the sink accepts NDRs for: <prefix><tag>@sink_domain
    sink_bounces: Endpoint
    sink_inbox: Endpoint
    bounce_maildir: str
    inbox_maildir: str
    greylist_delay_s: int
    domains: tuple[Scenario, ...]
    postfix: tuple[PostfixInfo, ...]
    ldap: LdapInfo | None
    bringup_seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # bring-up step -> seconds since start
    # Live probe tokens the sink's bounce listener accepts (auditor.collect.sink.TokenStore dir).
    sink_token_dir: str = ""
    # The hardened MX (auditor.lab.hardened): kept apart from ``postfix``, which is the demo site's.
    hardened: PostfixInfo | None = None

    def scope(self) -> tuple[str, ...]:
        """The domains an audit of the lab site covers (everything but the sink's own domain)."""
        return tuple(d.domain for d in self.domains if d.in_scope)

    def domain(self, name: str) -> Scenario:
        for d in self.domains:
            if d.domain == name:
                return d
        raise KeyError(name)

    def expected(self, domain: str, address: str) -> MxExpectation:
        """The expected verdict for a random unknown recipient of ``domain`` at MX ``address``."""
        for mx in self.domain(domain).mx:
            if mx.address == address:
                return mx
        raise KeyError(f"{domain} has no MX at {address}")

    def mx_addresses(self, domain: str) -> tuple[str, ...]:
        return tuple(mx.address for mx in sorted(self.domain(domain).mx, key=lambda m: m.preference))

    def to_json(self) -> str:
        return json.dumps(to_jsonable(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabInfo:
        info = from_jsonable(cls, json.loads(text))
        assert isinstance(info, LabInfo)
        return info

    @classmethod
    def load(cls, path: Path) -> LabInfo:
        return cls.from_json(path.read_text())
