"""What every detector gets (the message's texts) and returns (recipients with status/diagnostic)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message

from auditor.bounces import status as st
from auditor.bounces.caseless import Caseless, fast
from auditor.observations.ndr import NdrRecipient

# An e-mail address. Each repetition is separated by a literal "." so matching is linear.
ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}){0,15}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})){0,10}"
)
# Local parts of the mail system itself: these are never the failed recipient of a bounce.
# A delay notice rather than a failure (subject or opening lines of the report).
DELAY = Caseless(
    r"delayed mail|\bdelayed\b|\(delay\)|delivery delay|still being retried|will (?:continue|keep) "
    r"(?:trying|to try)|will be retried|not yet been delivered|has not been delivered yet|"
    r"^warning:|could not send message for past|temporar(?:y|ily) (?:failure|problem|unable)",
    re.M,
)
SYSTEM_LOCALS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon", "daemon")


# An address-type prefix glued to an address: ``rfc822;a@b``, ``smtp=a@b`` (``=`` is legal in a
# local part, so the address pattern alone would keep it), ``SMTP:a@b`` (Exchange), ``X400:``.
_TYPE_PREFIX = re.compile(r"^(?:rfc822|smtp|utf-8|x400|x-[a-z0-9-]+|unknown)\s*[;:=]\s*", re.I)


def strip_address_type(value: str) -> str:
    """``rfc822; a@b`` / ``smtp=a@b`` / ``SMTP:a@b`` → ``a@b`` (other text unchanged)."""
    return _TYPE_PREFIX.sub("", value.strip(), count=1)


def addresses(text: str) -> list[str]:
    """Addresses in the text, in order, lowercased, without duplicates, address types stripped."""
    out: list[str] = []
    if "@" not in text:  # most lines: no regex scan needed
        return out
    for m in ADDRESS.finditer(text):
        a = strip_address_type(m.group(0).strip(".")).lower()
        if "@" in a and "." in a.split("@", 1)[1] and a not in out:
            out.append(a)
    return out


def first_address(text: str) -> str:
    """The first address in the text (as ``addresses(text)[0]``), or ""."""
    if "@" not in text:
        return ""
    for m in ADDRESS.finditer(text):
        a = m.group(0).strip(".").lower()
        if "@" in a and "." in a.split("@", 1)[1]:
            return a
    return ""


@dataclass
class Context:
    """One message, prepared for the detectors."""

    msg: Message
    subject: str
    from_: str  # header From, decoded
    to: str
    # Human-readable report text (text parts outside the returned original), before any copy marker.
    report: str
    # The whole text body (including an inline copy of the original).
    body: str
    dsn_texts: list[str] = field(default_factory=list)  # message/delivery-status parts
    headers: dict[str, str] = field(default_factory=dict)  # lowercased name → first value
    # Texts whose addresses are not failed recipients (the NDR's and the original's senders…).
    exclude_sources: tuple[str, ...] = ()
    original_to: str = ""  # To of the returned original, when one came back

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @functools.cached_property
    def exclude(self) -> set[str]:
        """Addresses that are not failed recipients (found when a detector first asks)."""
        return {a for text in self.exclude_sources for a in addresses(text)}

    @functools.cached_property
    def marker_text(self) -> str:
        """What vendor layout markers are searched in (built once for all layouts)."""
        return f"{self.subject}\n{self.from_}\n{self.report[:20000]}"

    @functools.cached_property
    def delay_text(self) -> str:
        """What delay-notice markers are searched in."""
        return f"{self.subject}\n{self.report[:5000]}"

    @property
    def from_local(self) -> str:
        a = first_address(self.from_)
        return a.split("@", 1)[0] if a else self.from_.lower()


@dataclass
class Detection:
    """A detector's answer: the format family, recipients and, when the format says so, the kind."""

    family: str
    recipients: list[NdrRecipient]
    kind: str | None = None  # failure | delay | success | feedback; None: decide from actions/statuses
    reporting_mta: str = ""
    envelope_id: str = ""


def recipient(
    address: str, diagnostic: str, *, permanent: bool | None = True, action: str = ""
) -> NdrRecipient:
    """A recipient with its status derived from the diagnostic text."""
    diag = re.sub(r"\s+", " ", diagnostic).strip()[:1000]
    status = st.derive(diag, permanent=permanent)
    if not action and status:
        action = {"5": "failed", "4": "delayed", "2": "delivered"}.get(status[0], "")
    return NdrRecipient(address=address.lower(), status=status, action=action, diagnostic=diag)


def block_after(
    text: str, start: re.Pattern[str], end: re.Pattern[str] | None = None, limit: int = 20000
) -> str:
    """The text after the first match of ``start`` up to ``end`` (or ``limit`` characters)."""
    m = fast(start).search(text)
    if not m:
        return ""
    rest = text[m.end() : m.end() + limit]
    if end is not None:
        e = fast(end).search(rest)
        if e:
            rest = rest[: e.start()]
    return rest


def per_address_blocks(text: str, candidates: Iterable[str], max_lines: int = 8) -> list[tuple[str, str]]:
    """Split a block into (address, the lines about it): each address line opens a new entry."""
    wanted = {c.lower() for c in candidates}
    out: list[tuple[str, str]] = []
    current: str | None = None
    lines: list[str] = []
    for line in text.splitlines()[:2000]:
        found = [
            a for a in addresses(line[:2000]) if a in wanted and all(a != o[0] for o in out) and a != current
        ]
        if found:
            if current is not None:
                out.append((current, "\n".join(lines)))
            current = found[0]
            lines = [line]
            continue
        if current is not None and len(lines) < max_lines:
            lines.append(line)
    if current is not None:
        out.append((current, "\n".join(lines)))
    return out


@dataclass(frozen=True)
class TextLayout:
    """A vendor's plain-text bounce layout: how to recognise it and where its recipient block is.

    ``marker`` is searched in "Subject\\nFrom\\nreport text"; the recipient block runs from ``start``
    to ``end`` in the report text (the whole report when ``start`` is None).
    """

    family: str
    marker: re.Pattern[str]
    start: re.Pattern[str] | None = None
    end: re.Pattern[str] | None = None
    delay: re.Pattern[str] | None = None  # the layout's delay-notice variant

    def matches(self, ctx: Context) -> bool:
        return fast(self.marker).search(ctx.marker_text) is not None

    def block(self, ctx: Context) -> str:
        if self.start is None:
            return ctx.report
        return block_after(ctx.report, self.start, self.end) or ctx.report

    def is_delay(self, ctx: Context) -> bool:
        return self.delay is not None and fast(self.delay).search(ctx.delay_text) is not None
