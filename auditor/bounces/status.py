"""Status codes: read RFC 3463 codes from diagnostics, or derive them from SMTP replies and texts."""

from __future__ import annotations

import re

from auditor.bounces.caseless import Caseless

# An RFC 3463 enhanced status code (class.subject.detail), not part of a version or IP address.
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
# An SMTP reply code at the start of a line or after "said:"/"returned"/quote, not in a number.
_REPLY = re.compile(r"(?<![\d.#\w])([245])([0-5])(\d)(?=[ \-:]|$)", re.M)

# Well-known failure texts → RFC 3463 status. Order matters: the first match wins.
_TEXT_MAP: tuple[tuple[Caseless, str], ...] = tuple(
    (Caseless(p), s)
    for p, s in (
        (
            r"mailbox (is )?(full|over ?quota)|over ?quota|quota exceeded|exceeded (the |its |their )?"
            r"(storage |mailbox )?(quota|allocation)|insufficient (disk )?space|mailbox size limit",
            "5.2.2",
        ),
        (
            r"user (is )?unknown|unknown (user|recipient|local[- ]part|mailbox|address)|"
            r"no such (user|mailbox|recipient|address|account)|"
            r"(recipient|user|mailbox|address|account) (does not|doesn'?t) exist|"
            r"(mailbox|account|user|recipient) (is )?(unavailable|not found)|not listed in|"
            r"invalid (recipient|mailbox|address)|recipient not found|recipnotfound|"
            r"mailbox (name )?not allowed|addressee unknown|no mailbox here|is not a valid mailbox|"
            r"recipient name is not recognized|unknown address|bad destination mailbox",
            "5.1.1",
        ),
        (
            r"host (or domain name )?not found|domain (name )?not found|no such domain|unrouteable (mail )?"
            r"domain|unrouteable address|domain does not exist|name or service not known|hostunknown|"
            r"host unknown|bad destination system",
            "5.1.2",
        ),
        (
            r"(account|mailbox|user) (has been |is )?(disabled|suspended|deactivated|inactive|expired|"
            r"locked)|not active",
            "5.2.1",
        ),
        (
            r"message (size )?(is )?too (large|big)|exceeds (the )?(maximum|size)|message size exceeds|"
            r"size limit",
            "5.3.4",
        ),
        (
            r"relay(ing)? (access )?(denied|not permitted|prohibited)|not permitted to relay|"
            r"we do not relay|no relaying",
            "5.7.1",
        ),
        (
            r"spam|blocked|blacklist|blocklist|denied|rejected|policy|not authorized|unauthenticated|"
            r"dmarc|spf",
            "5.7.1",
        ),
        (r"too many hops|mail loop|loop detected|routing loop", "5.4.6"),
        (r"connection (timed out|refused)|timed out|could not connect|no route to host", "4.4.1"),
    )
)


def enhanced_code(text: str) -> str:
    """The first RFC 3463 code in the text, or ""."""
    m = _ENHANCED.search(text)
    return ".".join(m.groups()) if m else ""


def reply_code(text: str) -> str:
    """The first SMTP reply code (e.g. 550) in the text, or ""."""
    m = _REPLY.search(text)
    return "".join(m.groups()) if m else ""


def from_text(text: str) -> str:
    """A status for a well-known failure text (user unknown → 5.1.1, mailbox full → 5.2.2, …), or ""."""
    for pattern, status in _TEXT_MAP:
        if pattern.search(text):
            return status
    return ""


def derive(diagnostic: str, given: str = "", permanent: bool | None = None) -> str:
    """The best status for a recipient: the given Status field, else the diagnostic's code or text.

    ``permanent`` (when known from the NDR) fixes the class of a text-derived code: a well-known text
    in a delay notice is 4.x.x, in a failure 5.x.x.
    """
    code = enhanced_code(given) if given else ""
    if code and not code.endswith(".0.0"):
        return code
    if code:
        # X.0.0 says only "failed" or "delayed": a specific code in the diagnostic says more.
        better = enhanced_code(diagnostic)
        return better if better and better[0] == code[0] else code
    code = enhanced_code(diagnostic)
    reply = reply_code(diagnostic)
    if code and (not reply or reply[0] == code[0]):
        return code
    mapped = from_text(diagnostic)
    klass = ""
    if reply:
        klass = reply[0]
    elif permanent is not None:
        klass = "5" if permanent else "4"
    if mapped:
        return (klass or mapped[0]) + mapped[1:]
    if code:
        return code
    if klass:
        return f"{klass}.0.0"
    return ""
