"""Amazon SES notifications delivered by mail (SNS): a JSON document instead of a DSN."""

from __future__ import annotations

import json
from typing import Any

from auditor.bounces import status as st
from auditor.bounces.detectors.base import Context, Detection, first_address
from auditor.observations.ndr import NdrRecipient

FAMILY = "amazonses"
_MAX_JSON = 1_000_000


def _loads(text: str) -> Any:
    """The JSON value at the start of ``text`` (trailing text ignored); lines folded by mail unfolded."""
    decoder = json.JSONDecoder()
    for candidate in (text, text.replace("\r\n ", "").replace("\n ", "")):
        try:
            return decoder.raw_decode(candidate)[0]
        except (ValueError, RecursionError):
            continue
    return None


def _document(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0:
        return None
    doc = _loads(text[start : start + _MAX_JSON])
    if isinstance(doc, dict) and isinstance(doc.get("Message"), str):  # SNS envelope around SES JSON
        doc = _loads(doc["Message"])
    return doc if isinstance(doc, dict) else None


def _recipient(item: Any, action: str, permanent: bool | None) -> NdrRecipient | None:
    if not isinstance(item, dict):
        item = {"emailAddress": str(item)}
    addr = first_address(str(item.get("emailAddress", "")))
    if not addr:
        return None
    diag = str(item.get("diagnosticCode", "") or "")
    given = str(item.get("status", "") or "")
    status = st.derive(diag, given=given, permanent=permanent)
    return NdrRecipient(
        address=addr, status=status, action=str(item.get("action") or action), diagnostic=diag
    )


def detect(ctx: Context) -> Detection | None:
    if "amazonses" not in ctx.body[:20000].lower() and "notificationType" not in ctx.body[:20000]:
        return None
    doc = _document(ctx.body)
    if doc is None:
        return None
    ntype = str(doc.get("notificationType") or doc.get("eventType") or "").lower()
    if ntype == "bounce" and isinstance(doc.get("bounce"), dict):
        b = doc["bounce"]
        permanent = str(b.get("bounceType", "")).lower() != "transient"
        items = b.get("bouncedRecipients") or []
        action = "failed" if permanent else "delayed"
        kind = "failure" if permanent else "delay"
        mta = str(b.get("reportingMTA", ""))
    elif ntype == "delivery" and isinstance(doc.get("delivery"), dict):
        d = doc["delivery"]
        items = [{"emailAddress": a, "status": "2.0.0"} for a in d.get("recipients") or []]
        permanent, action, kind, mta = None, "delivered", "success", str(d.get("reportingMTA", ""))
    elif ntype == "complaint" and isinstance(doc.get("complaint"), dict):
        items = doc["complaint"].get("complainedRecipients") or []
        permanent, action, kind, mta = None, "", "feedback", ""
    else:
        return None
    recips = [r for r in (_recipient(i, action, permanent) for i in list(items)[:1000]) if r is not None]
    if kind == "feedback":  # a complaint names no failed recipients (like an ARF report)
        return Detection(family=FAMILY, recipients=[], kind=kind)
    return Detection(family=FAMILY, recipients=recips, kind=kind, reporting_mta=mta.split(";")[-1].strip())
