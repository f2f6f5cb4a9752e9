"""RFC 3464 delivery status notifications: the message/delivery-status fields.

Also reads DSN fields quoted inline in a text body ("Technical report: Reporting-MTA: …"), which
several services (Amazon WorkMail, some appliances) send instead of a proper MIME part.
"""

from __future__ import annotations

import re

from auditor.bounces import status as st
from auditor.bounces.caseless import Caseless
from auditor.bounces.detectors.base import ADDRESS, Context, Detection, first_address, strip_address_type
from auditor.observations.ndr import NdrRecipient

FAMILY = "rfc3464"

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40})[ \t]*:[ \t]*(.*)$")
_PER_MESSAGE = {"reporting-mta", "original-envelope-id", "arrival-date", "received-from-mta", "dsn-gateway"}
_PER_RCPT = {"action", "status", "diagnostic-code", "remote-mta", "last-attempt-date", "will-retry-until"}
_INLINE = Caseless(r"^(Final|Original)-Recipient\s*:", re.M)


def parse_fields(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Per-message fields and per-recipient field groups, in order, from DSN text."""
    fields: list[tuple[str, str]] = []
    for line in text.splitlines()[:5000]:
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        m = _FIELD.match(line)
        if m:
            fields.append((m.group(1).lower(), m.group(2).strip()))
    per_message: dict[str, str] = {}
    rcpts: list[dict[str, str]] = []
    orphans: dict[str, str] = {}
    current: dict[str, str] | None = None
    for name, value in fields:
        if name in _PER_MESSAGE:
            per_message.setdefault(name, value)
        elif name in ("final-recipient", "original-recipient"):
            # Original-Recipient may come before or after Final-Recipient within one group.
            fresh = current is None or name in current
            if name == "original-recipient" and current is not None and current.keys() & _PER_RCPT:
                fresh = True
            if fresh or current is None:
                current = {}
                rcpts.append(current)
            current[name] = value
        elif name in _PER_RCPT:
            if current is None:
                orphans.setdefault(name, value)
            else:
                current.setdefault(name, value)
    for name, value in orphans.items():
        if rcpts:
            rcpts[0].setdefault(name, value)
    return per_message, rcpts


def _typed_value(value: str) -> str:
    """``dns; host`` / ``rfc822; addr`` → the value after the type (also ``smtp=``, ``SMTP:``)."""
    return value.split(";", 1)[1].strip() if ";" in value else strip_address_type(value)


_QUOTED = re.compile(r'"[^"\r\n]{1,64}"@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,10}')


def _good(addr: str) -> bool:
    """A plain or quoted-local-part address with a dotted domain (not a source route, not bare)."""
    if _QUOTED.fullmatch(addr):
        return True
    return bool(ADDRESS.fullmatch(addr)) and "." in addr.rsplit("@", 1)[-1]


def _pick_address(r: dict[str, str], fallback: str) -> str:
    """Final-Recipient, unless it is a source route or lacks a local part and Original-Recipient is sane."""
    values = [
        _typed_value(r.get(k, "")).strip("<> ").lower() for k in ("final-recipient", "original-recipient")
    ]
    for value in values:
        if _good(value):
            return value
    for value in values:
        found = first_address(value.rsplit(":", 1)[-1])
        if found:
            return found
    return fallback


def recipients_from(rcpts: list[dict[str, str]], fallback: str = "") -> list[NdrRecipient]:
    """Recipients from field groups; ``fallback`` stands in for one unusable Final-Recipient."""
    out: list[NdrRecipient] = []
    seen: set[str] = set()
    for r in rcpts:
        addr = _pick_address(r, fallback if len(rcpts) == 1 else "")
        if not addr or addr in seen:
            continue
        seen.add(addr)
        action = r.get("action", "").strip().lower().split(" ")[0] if r.get("action") else ""
        diagnostic = _typed_value(r.get("diagnostic-code", ""))
        permanent = None
        if action == "failed":
            permanent = True
        elif action == "delayed":
            permanent = False
        status = st.derive(diagnostic, given=r.get("status", ""), permanent=permanent)
        if not action and status:
            action = {"5": "failed", "4": "delayed", "2": "delivered"}.get(status[0], "")
        out.append(
            NdrRecipient(
                address=addr,
                status=status,
                action=action,
                diagnostic=re.sub(r"\s+", " ", diagnostic).strip()[:1000],
                remote_mta=_typed_value(r.get("remote-mta", "")),
            )
        )
    return out


def detect(ctx: Context) -> Detection | None:
    texts = list(ctx.dsn_texts)
    if not texts and _INLINE.search(ctx.body):
        texts = [ctx.body]
    for text in texts:
        per_message, rcpts = parse_fields(text)
        recipients = recipients_from(rcpts, first_address(ctx.original_to))
        if recipients:
            return Detection(
                family=FAMILY,
                recipients=recipients,
                reporting_mta=_typed_value(per_message.get("reporting-mta", "")),
                envelope_id=per_message.get("original-envelope-id", ""),
            )
    return None
