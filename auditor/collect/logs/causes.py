"""What a failed or delayed delivery line says caused it: one of ``observations.logs.CAUSES``.

This reads the delivery agent's own words (transport, relay, enhanced status code, reply text); it
measures, it does not judge. Which configuration rules answer each cause is the rule's business.
"""

from __future__ import annotations

import re

_QUOTA = re.compile(
    rb"quota|mailbox (?:is )?full|mailbox size limit|file too large|insufficient (?:system )?storage|"
    rb"over ?quota|exceeded storage",
    re.I,
)
_RELAY = re.compile(rb"relay access denied|relaying denied|relay not permitted|unable to relay", re.I)
_CONTENT = re.compile(
    rb"spam|virus|malware|infected|banned|blocked|content|\bscore\b|dkim|dmarc|milter|"
    rb"message rejected|policy violation|gtube|eicar|amavis",
    re.I,
)
_UNKNOWN = re.compile(
    rb"user unknown|unknown user|no such (?:user|mailbox|recipient)|does not exist|doesn't exist|"
    rb"recipient address rejected|mailbox unavailable|invalid recipient|unknown recipient|"
    rb"address rejected|recipient not found|unrouteable|undeliverable address|not a valid (?:mailbox|user)",
    re.I,
)
_PIPE = re.compile(rb"command died|command output|exit status|Command time limit", re.I)
_UNREACHABLE = re.compile(
    rb"connection refused|timed out|no route to host|network is unreachable|connect to |"
    rb"lost connection|host not found|name service error|temporary failure|conversation with",
    re.I,
)
_QUOTA_CODES = frozenset((b"5.2.2", b"4.2.2"))
_UNKNOWN_CODES = frozenset((b"5.1.1", b"5.1.0", b"5.1.6", b"4.1.1"))  # not 5.1.10 (null MX)
_OWN_AGENTS = frozenset((b"local", b"virtual", b"error", b"discard", b"retry"))
_FILTER_PORTS = re.compile(rb"\]:100(?:2[4-9]|[3-9]\d)\b")  # amavis/spamassassin conventions: 10024…


def classify(agent: bytes, relay: bytes, dsn: bytes, status: bytes, text: bytes) -> str:
    """The cause id of one delivery line (status bounced, deferred or expired)."""
    if status == b"expired":
        return "expiry"
    if dsn in _QUOTA_CODES or _QUOTA.search(text):
        return "quota"
    if _RELAY.search(text):
        return "relay-access"
    loopback_relay = relay.startswith((b"127.", b"localhost", b"[::1]", b"::1")) or b"[127." in relay
    if agent == b"pipe" or (_PIPE.search(text) and agent not in (b"smtp", b"lmtp")):
        return "pipe-command"
    if _UNKNOWN.search(text) or dsn in _UNKNOWN_CODES:
        if agent in _OWN_AGENTS or relay in (b"none", b"local", b"virtual"):
            return "unknown-recipient"
        return "inside-server-reject"
    if _FILTER_PORTS.search(relay) or _CONTENT.search(text) or (dsn.startswith(b"5.7") and loopback_relay):
        return "content-filter"
    if dsn.startswith((b"4.4", b"5.4")) or _UNREACHABLE.search(text):
        return "next-hop-unavailable"
    if agent in (b"smtp", b"lmtp") and dsn.startswith(b"5"):
        return "inside-server-reject"
    return "other"
