"""What the SMTP probe observes, and the settings that bound it.

:class:`ProbeResult` (kind ``smtp.probe``) is one (domain, MX host, MX address) triple: every reply
the probe got for that domain on that address, the verdict (:mod:`.verdicts`) and the transcript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from auditor.model import Observation


class Verdict(str, Enum):
    """How one MX address treats a random unknown recipient of one domain."""

    REJECTS_UNKNOWN = "rejects-unknown"
    ACCEPTS_UNKNOWN = "accepts-unknown"
    DEFERS_UNKNOWN = "defers-unknown"
    INCONCLUSIVE = "inconclusive"
    NOT_PROBED = "not-probed"  # out of scope by policy (external MX without consent, null MX)


# Why a verdict is inconclusive / not probed. Stable strings: reports and rules match on them.
R_TIMEOUT = "timeout"
R_421 = "421"
R_TLS = "tls-failure"
R_REFUSED = "connection-refused"
R_CONNECT = "connect-failed"
R_CONTROL = "control-rejected"
R_BANNER_554 = "banner-554"
R_BANNER = "banner-refused"
R_PROTOCOL = "protocol-error"
R_TOO_LONG = "reply-too-long"
R_TOO_MANY = "reply-too-many-lines"
R_GARBAGE = "garbage-reply"
R_CLOSED = "connection-closed"
R_MAIL_REJECTED = "mail-from-rejected"
R_AUDIT_TIMEOUT = "audit-timeout"
R_TRUSTED = "trusted-vantage"
R_EXTERNAL = "external-mx"
R_NO_ADDRESS = "no-address"
R_ERROR_BUDGET = "error-budget"


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
    """The answer to one probe recipient (``reply`` is None when no answer came: see ``error``)."""

    role: str  # postmaster | control | unknown | subdomain | relay | null-postmaster
    address: str
    scenario: str = ""
    reply: Reply | None = None
    error: str = ""
    elapsed: float = 0.0
    # The same RCPT asked again after --retry-after (greylisting vs persistent 4xx).
    retry: Reply | None = None
    retry_error: str = ""
    mail_reply: Reply | None = None  # the MAIL FROM answer of the transaction carrying this RCPT


@dataclass(frozen=True)
class TlsInfo:
    offered: bool = False
    attempted: bool = False
    ok: bool = False
    version: str = ""
    cipher: str = ""
    error: str = ""


@dataclass(frozen=True)
class ProbeResult(Observation):
    """Everything probed for one domain on one MX address (``target``: ``domain@address``)."""

    kind = "smtp.probe"

    domain: str = ""
    mx_host: str = ""
    address: str = ""
    preference: int = 0
    primary: bool = False  # the MX host with the best (lowest) preference for this domain
    verdict: Verdict = Verdict.INCONCLUSIVE
    reason: str = ""
    detail: str = ""
    source_address: str = ""
    banner: Reply | None = None
    ehlo: Reply | None = None
    extensions: tuple[str, ...] = ()
    tls: TlsInfo = field(default_factory=TlsInfo)
    outcomes: tuple[RcptOutcome, ...] = ()
    null_sender_tested: bool = False
    sessions: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    transcript: tuple[str, ...] = ()

    def outcome(self, role: str) -> RcptOutcome | None:
        return next((o for o in self.outcomes if o.role == role), None)

    def roles(self, role: str) -> list[RcptOutcome]:
        return [o for o in self.outcomes if o.role == role]


@dataclass(frozen=True)
class ProbeSettings:
    """Every knob of a probe run; defaults are polite to real servers."""

    ehlo: str = "probe.backscatter-audit.invalid"
    mail_from: str = "probe@backscatter-audit.invalid"
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
    allow_external_mx: bool = False
    source_address: str = ""
    trusted_networks: tuple[str, ...] = ()
    relay_test_domain: str = ""
    subdomain_probe: bool = True
    port: int = 25
    # Null-sender transactions cost one MAIL transaction each (Postfix in_flow_delay): test at
    # most this many domains per address; the rest are reported as not tested.
    null_sender_per_address: int = 20
    max_rejections_per_session: int = 9  # Postfix smtpd_soft_error_limit is 10
    max_rcpts_per_transaction: int = 100
    max_reply_lines: int = 100
    max_line_length: int = 4096
    random_prefix: str = "bsaxq"
    scenarios_dir: str = ""  # empty: the probes/ folder shipped with the project


# Where a DATA probe's SMTP conversation ended (rules.md §11.6).
REJECTED_AT_RCPT = "rejected-at-rcpt"
REJECTED_AT_DATA = "rejected-at-data"
REJECTED_AFTER_DATA = "rejected-after-data"
ACCEPTED = "accepted"
DEFERRED = "deferred"  # a 4xx at RCPT, DATA or end of DATA: greylisting, a lookup failure — not measured
ERROR = "error"


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
    outcome: str = ERROR
    reply: Reply | None = None  # the reply that decided the outcome
    error: str = ""
    accepted_at: float = 0.0  # epoch seconds of the end-of-DATA 250
    waited: float = 0.0  # seconds we watched for a bounce
    bounce_path: str = ""
    bounce_seconds: float | None = None  # end of DATA → NDR received
    bounce_kind: str = ""  # failure | delay | autoreply | …
    bounce_to_header_from: bool = False
    transcript: tuple[str, ...] = ()
