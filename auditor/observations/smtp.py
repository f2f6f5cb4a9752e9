"""What the SMTP probe observes, and the settings that bound it.

:class:`ProbeResult` (kind ``smtp.probe``) is one (domain, MX host, MX address) triple: every reply
the probe got for that domain on that address (banner, EHLO, each MAIL and RCPT with its retry),
why the measurement stopped if it did, and the transcript. It holds no verdict: the rules
(:mod:`auditor.rules.smtp_verdicts`) decide what the replies mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from auditor.model import Observation


class Role(StrEnum):
    """What a probe recipient stands for; the rules read the answer by role and by ``feeds``."""

    NULL_POSTMASTER = "null-postmaster"  # postmaster@ after MAIL FROM:<>
    POSTMASTER = "postmaster"
    CONTROL = "control"  # an address the user says exists (--control, directory)
    UNKNOWN = "unknown"  # a random local part that cannot exist
    SUBDOMAIN = "subdomain"
    RELAY = "relay"


class Expect(StrEnum):
    """What a safe site answers to a probe recipient."""

    ACCEPT = "2xx"
    REFUSE = "5xx"


class Outcome(StrEnum):
    """What became of one probe recipient (on one attempt)."""

    ANSWERED = "answered"  # the RCPT got a reply
    MAIL_REFUSED = "mail-refused"  # the MAIL FROM of its transaction was refused: RCPT never asked
    NOT_ASKED = "not-asked"  # the session ended before (see ``error``)


class Reason(StrEnum):
    """Why a measurement stopped or never started. Stable strings: reports and rules match on them."""

    TIMEOUT = "timeout"
    R421 = "421"
    TLS = "tls-failure"
    REFUSED = "connection-refused"
    CONNECT = "connect-failed"
    BANNER_554 = "banner-554"
    BANNER = "banner-refused"
    PROTOCOL = "protocol-error"
    EARLY_TALK = "server-talked-first"  # input waiting before we sent a command: replies would desync
    TOO_LONG = "reply-too-long"
    TOO_MANY = "reply-too-many-lines"
    GARBAGE = "garbage-reply"
    CLOSED = "connection-closed"
    MAIL_REJECTED = "mail-from-rejected"
    EHLO_REFUSED = "ehlo-refused"
    AUDIT_TIMEOUT = "audit-timeout"
    TRUSTED = "trusted-vantage"
    EXTERNAL = "external-mx"
    NO_ADDRESS = "no-address"
    ERROR_BUDGET = "error-budget"


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: the code and the text of each line (without the code)."""

    code: int
    lines: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def klass(self) -> int:
        """2, 3, 4 or 5."""
        return self.code // 100

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass(frozen=True)
class RcptOutcome:
    """The answers for one probe recipient: its transaction's MAIL, its RCPT, and the retry of both.

    ``reply`` is None unless ``outcome`` is ANSWERED; ``mail_reply`` is the MAIL FROM answer of the
    transaction that carried (or would have carried) this RCPT. ``expect`` and ``feeds`` come from
    the probe scenario (probes/*.toml): what a safe site answers, and which rules judge it.
    """

    role: Role
    address: str
    scenario: str = ""
    expect: Expect = Expect.REFUSE
    feeds: tuple[str, ...] = ()
    outcome: Outcome = Outcome.NOT_ASKED
    reply: Reply | None = None
    error: Reason | None = None
    elapsed: float = 0.0
    mail_reply: Reply | None = None
    # The same RCPT asked again after --retry-after (greylisting vs persistent 4xx).
    retried: bool = False
    retry_outcome: Outcome = Outcome.NOT_ASKED
    retry: Reply | None = None
    retry_error: Reason | None = None
    retry_mail_reply: Reply | None = None


@dataclass(frozen=True)
class TlsInfo:
    offered: bool = False
    attempted: bool = False
    ok: bool = False
    version: str = ""
    cipher: str = ""
    error: str = ""


@dataclass(frozen=True)
class Identity:
    """What DNS said about the probe's own identity before probing (``None``: not looked up).

    Hardened MXs refuse a sender whose domain does not resolve (Postfix reject_unknown_sender_domain)
    and an EHLO name that does not resolve, or not to the client's address (reject_unknown_helo_hostname,
    FCrDNS checks): the rules use this to name the setting to change.
    """

    ehlo: str = ""
    mail_from: str = ""
    sender_domain_resolves: bool | None = None
    ehlo_addresses: tuple[str, ...] = ()
    ehlo_resolves: bool | None = None
    ehlo_matches_source: bool | None = None  # the source address is among the EHLO name's addresses
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeResult(Observation):
    """Everything probed for one domain on one MX address (``target``: ``domain host[address]``).

    ``failure`` says why the measurement stopped (or, with no session at all, why it never started:
    external MX, no address, trusted vantage); ``None`` when every planned recipient was asked.
    """

    kind = "smtp.probe"

    domain: str = ""
    mx_host: str = ""
    address: str = ""
    port: int = 25
    preference: int = 0
    primary: bool = False  # the MX host with the best (lowest) preference for this domain
    failure: Reason | None = None
    detail: str = ""
    # The failure happened in the greylisting retry pass (the first pass is complete).
    failure_in_retry: bool = False
    source_address: str = ""
    identity: Identity = field(default_factory=Identity)
    banner: Reply | None = None
    ehlo: Reply | None = None
    extensions: tuple[str, ...] = ()
    tls: TlsInfo = field(default_factory=TlsInfo)
    outcomes: tuple[RcptOutcome, ...] = ()
    null_sender_tested: bool = False
    sessions: int = 0
    # Sessions that began again at once because a postscreen-style after-220 test deferred us.
    reconnects: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    transcript: tuple[str, ...] = ()

    def outcome(self, role: Role | str) -> RcptOutcome | None:
        """The first recipient of ``role`` (most roles have exactly one)."""
        return next((o for o in self.outcomes if o.role == role), None)

    def roles(self, role: Role | str) -> list[RcptOutcome]:
        return [o for o in self.outcomes if o.role == role]

    def fed(self, rule_id: str) -> list[RcptOutcome]:
        """Every recipient whose scenario feeds ``rule_id``."""
        return [o for o in self.outcomes if rule_id in o.feeds]

    @property
    def answered_unknown(self) -> bool:
        """The random unknown recipient got an answer: the address was measured (DATA-probe target)."""
        return any(o.role == Role.UNKNOWN and o.reply is not None for o in self.outcomes)


@dataclass(frozen=True)
class ProbeSettings:
    """Every knob of a probe run; defaults are polite to real servers.

    ``ehlo`` empty: the machine's FQDN. ``mail_from`` empty: ``backscatter-probe@`` that FQDN
    (resolved by :func:`auditor.collect.smtp.identity.resolve`; README "Live probes").
    """

    ehlo: str = ""
    mail_from: str = ""
    controls: tuple[str, ...] = ()
    nameservers: tuple[str, ...] = ()
    dns_timeout: float = 5.0
    non_mail_domains: tuple[str, ...] = ()
    # (domain, hosts) pairs that replace the MX lookup (site.toml mx_override): the user's own list.
    mx_overrides: tuple[tuple[str, tuple[str, ...]], ...] = ()
    timeout: float = 30.0  # per SMTP stage (connect, each reply, TLS handshake)
    audit_timeout: float = 900.0  # the whole probe run
    session_delay: float = 1.0  # between two sessions to the same address
    concurrency: int = 4  # addresses probed at once
    per_host_concurrency: int = 1
    retry_after: float = 0.0  # 0 = no retry of 4xx answers
    backoff_421: float = 60.0  # wait after a 421 before the single retry of that address
    # After a postscreen-style "450 4.3.2 … Service currently unavailable" to every recipient of the
    # first session (the after-220 tests passed, the client must reconnect): reconnect once after this.
    reconnect_pause: float = 2.0
    allow_external_mx: bool = False
    source_address: str = ""
    trusted_networks: tuple[str, ...] = ()
    relay_test_domain: str = ""
    subdomain_probe: bool = True
    port: int = 25
    check_identity: bool = True  # look up the sender domain and EHLO name before probing
    # Null-sender transactions cost one MAIL transaction each (Postfix in_flow_delay): test at
    # most this many domains per address; the rest are reported as not tested.
    null_sender_per_address: int = 20
    max_rejections_per_session: int = 9  # Postfix smtpd_soft_error_limit is 10
    max_rcpts_per_transaction: int = 100
    max_reply_lines: int = 100
    max_line_length: int = 4096
    random_prefix: str = "bsaxq"
    scenarios_dir: str = ""  # empty: the probes/ folder shipped with the project


class DataOutcome(StrEnum):
    """Where a DATA probe's SMTP conversation ended (rules.md §11.6). Only a 5xx is a refusal."""

    REJECTED_AT_RCPT = "rejected-at-rcpt"  # 5xx to RCPT
    REJECTED_AT_DATA = "rejected-at-data"  # 5xx to DATA
    REJECTED_AFTER_DATA = "rejected-after-data"  # 5xx after the final dot
    ACCEPTED = "accepted"  # 2xx after the final dot
    DEFERRED = "deferred"  # a 4xx at RCPT, DATA or end of DATA: greylisting, a lookup failure
    PROTOCOL_ERROR = "protocol-error"  # an answer no SMTP server may give there (250 to DATA, 3xx to RCPT)
    ERROR = "error"  # no answer: timeout, closed, refused before RCPT (see ``error``)


@dataclass(frozen=True)
class DataProbeResult(Observation):
    """One DATA probe of one domain on one MX address, and what came back (``target``: domain@address)."""

    kind = "smtp.dataprobe"

    domain: str = ""
    mx_host: str = ""
    address: str = ""
    primary: bool = False
    # What was sent: "unknown-recipient" (the backscatter probe), or a content-filter test to the
    # mailbox the user named: "gtube" (spam test string) or "eicar" (anti-virus test file).
    probe: str = "unknown-recipient"
    token: str = ""
    envelope_from: str = ""
    header_from: str = ""
    recipient: str = ""
    outcome: DataOutcome = DataOutcome.ERROR
    reply: Reply | None = None  # the reply that decided the outcome
    error: str = ""
    accepted_at: float = 0.0  # epoch seconds of the end-of-DATA 250
    waited: float = 0.0  # seconds we watched for a bounce
    bounce_path: str = ""
    bounce_seconds: float | None = None  # end of DATA → NDR received
    bounce_kind: str = ""  # failure | delay | autoreply | …
    bounce_to_header_from: bool = False
    transcript: tuple[str, ...] = ()
