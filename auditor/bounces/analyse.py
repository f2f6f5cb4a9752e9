"""Analyse one message: is it a bounce, a delay or success DSN, an auto-reply, a feedback report?

Flow (rules.md §12.3): parse safely → collect the texts → structured DSN and vendor detectors →
auto-reply markers → text heuristics → kind, recipients, what of the original came back.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re
from collections.abc import Callable
from email.message import Message

from auditor.bounces import detectors
from auditor.bounces.caseless import Caseless
from auditor.bounces.detectors import generic
from auditor.bounces.detectors.base import DELAY, Context, Detection, first_address
from auditor.bounces.parse import (
    MAX_PARSE,
    MAX_TEXT,
    Parsed,
    decode_part,
    delivery_status_text,
    header_text,
    parse_bytes,
)
from auditor.observations.ndr import NdrAnalysis, NdrRecipient, OriginalMessage

# Where an inline copy of the original message starts in a text bounce.
COPY_MARKER = Caseless(
    r"^[ \t]*(?:"
    r"-+ ?Below this line is a copy of the message"
    r"|-+ ?This is a copy of (?:the|your) message"
    r"|-*[ \t]*Original message follows"
    r"|Included is a copy of the message header"
    r"|(?:Received|Return-Path|X-Received|DKIM-Signature|ARC-Seal|Delivered-To)[ \t]*:[ \t]*\S"
    r"|-+ ?(?:The )?Original message(?: follows)? ?-*"
    r"|-+ ?Original Message Headers? ?-*"
    r"|-+ ?(?:Returned|Unsent|Undelivered) message(?: follows)? ?-*"
    r"|[ \t]*Below is a copy of the original message"
    r"|[-=]+ ?(?:The )?header of (?:the )?original message"
    r"|Message headers follow"
    r"|Original message headers:"
    r"|The original message (?:was|headers are):?[ \t]*$"
    r"|-+ ?Forwarded message ?-+"
    r"|Content-Type: message/rfc822"
    r"|-+ ?Original message text ?-*"
    r"|\|?-+ ?Message text follows"
    r")",
    re.M,
)
_HEADER_LINE = re.compile(r"[ \t]*(?!Content-Type)[A-Za-z][A-Za-z0-9-]*[ \t]*:", re.I)
_AUTOREPLY_SUBJECT = re.compile(
    r"^(?:re:\s*)?(?:automatic reply|auto(?:matic)?[ -]?(?:reply|response|antwort)|auto:|"
    r"out of (?:the )?office|abwesend|abwesenheit|r[ée]ponse automatique|respuesta autom[aá]tica|"
    r"risposta automatica|automatisch antwoord|automatyczna odpowied|resposta autom[aá]tica|autosvar|"
    r"automaattinen vastaus|自動応答|自動返信|vacation|on vacation|away from)",
    re.I,
)
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-vacation")
_REPORTER = Caseless(
    r"(?:mail system|program|agent[^\n]{0,40}?|server) at (?:host )?([A-Za-z0-9][A-Za-z0-9.-]{2,253})"
    r"|Generating server: ([A-Za-z0-9][A-Za-z0-9.-]{2,253})",
)
_MARK = re.compile(rb"bsa-[a-z0-9][a-z0-9._+=-]{0,80}")
_MAX_MARKS = 50


def analyse_bytes(data: bytes, path: str = "") -> NdrAnalysis:
    """Analyse one RFC 5322 message. Never raises on bad input; bounded time and memory."""
    try:
        return _analyse(data, path)
    except RecursionError:
        return NdrAnalysis(path=path, kind="not-bounce", size=len(data), notes=("analysis too deep",))


def _analyse(data: bytes, path: str) -> NdrAnalysis:
    parsed = parse_bytes(data)
    ctx, original, returned = _context(parsed)
    notes = list(parsed.notes)
    det: Detection | None = None
    kind = "not-bounce"
    if _is_feedback(parsed):
        kind = "feedback"
    else:
        det = detectors.run(ctx)
        # Auto-Submitted: auto-replied is also on Postfix and Exim bounces: only the explicit
        # responder markers (OOF subject, X-Autoreply…) come before the bounce text heuristics.
        if det is None and _is_autoreply(ctx, strong_only=True):
            kind = "autoreply"
        elif det is None:
            det = generic.detect(ctx)
            if det is None and _is_autoreply(ctx, strong_only=False):
                kind = "autoreply"
        if det is not None:
            kind = _kind(det, ctx)
        elif kind != "autoreply" and _is_dsn(parsed):
            kind = "failure"
            notes.append("delivery-status report without recipients")
    recips: tuple[NdrRecipient, ...] = tuple(det.recipients) if det else ()
    reporting = (det.reporting_mta if det else "") or (_reporter(ctx) if kind in _BOUNCE_KINDS else "")
    return NdrAnalysis(
        path=path,
        kind=kind,
        recipients=recips,
        reporting_mta=reporting,
        returned=returned if kind != "not-bounce" else "none",
        original=original,
        family=det.family if det else ("arf" if kind == "feedback" else ""),
        envelope_id=det.envelope_id if det else "",
        return_path=_return_path(parsed, ctx.headers),
        delivered_to=first_address(ctx.header("delivered-to") or ctx.header("x-original-to")),
        header_from=first_address(ctx.from_) or ctx.from_,
        header_to=first_address(ctx.to) or ctx.to,
        subject=ctx.subject,
        message_id=ctx.header("message-id").strip("<> "),
        auto_submitted=ctx.header("auto-submitted"),
        content_type=parsed.parts[0].ctype,
        size=parsed.size,
        notes=tuple(notes),
        probe_marks=_marks(data, ctx.body),
    )


_BOUNCE_KINDS = ("failure", "delay", "success")


# The header fields anything here reads: only these are decoded (decoding all is the slow part).
_WANTED = frozenset(
    (
        "subject",
        "from",
        "to",
        "cc",
        "reply-to",
        "sender",
        "return-path",
        "delivered-to",
        "x-original-to",
        "auto-submitted",
        "message-id",
        "x-failed-recipients",
        "precedence",
        "x-autogenerated",
        "x-autoreply",
        "x-autorespond",
        "x-autoresponder",
        "x-vacation",
    )
)


# What of the returned original's header is read.
_WANTED_ORIGINAL = frozenset(("subject", "from", "to", "return-path", "message-id"))


def _same(text: str) -> str:
    return text


def _headers(
    msg: Message, wanted: frozenset[str] = _WANTED, unmap: Callable[[str], str] = _same
) -> dict[str, str]:
    """The first value of each wanted header field, decoded (RFC 2047) to one line."""
    out: dict[str, str] = {}
    try:
        # raw_items + the policy's fetch for wanted fields only: items() would run it on every field.
        items = list(itertools.islice(msg.raw_items(), 500))
        fetch = msg.policy.header_fetch_parse
        compat32 = msg.policy is email.policy.compat32
        for name, value in items:
            key = name.lower()
            if key not in wanted:
                key = key.strip()  # "Subject :" (rare): the parser keeps the space in the name
                if key not in wanted:
                    continue
            if key not in out:
                # compat32's fetch only changes values with undecodable bytes (never ASCII ones).
                plain = compat32 and isinstance(value, str) and value.isascii()
                out[key] = unmap(header_text(value if plain else fetch(name, value)))
    except Exception:
        return out
    return out


def _context(parsed: Parsed) -> tuple[Context, OriginalMessage, str]:
    msg = parsed.msg
    unmap = parsed.unmap
    heads = _headers(msg, _WANTED, unmap)
    texts: list[str] = []
    html: list[str] = []
    dsn: list[str] = []
    original_headers: Message | None = None
    returned = "none"
    for wp in parsed.parts:
        part = wp.part
        ctype = wp.ctype
        if ctype == "message/delivery-status" and not wp.returned:
            dsn.append(unmap(delivery_status_text(part)))
        elif ctype in ("message/rfc822", "message/global") and original_headers is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original_headers = inner[0]
                returned = "full" if _has_body(inner[0]) else "headers"
        elif ctype == "text/rfc822-headers" and original_headers is None and not wp.returned:
            original_headers = _header_block(decode_part(part, unmap=unmap))[0]
            returned = "headers"
        elif wp.returned:
            continue
        elif ctype.startswith("multipart/") and isinstance(raw := part.get_payload(), str):
            texts.append(unmap(raw)[:MAX_TEXT])  # boundary lost (broken MIME): read it as text
        elif ctype == "text/plain" or (wp.part is msg and not part.is_multipart() and ctype != "text/html"):
            texts.append(decode_part(part, unmap=unmap))
        elif ctype == "text/html":
            html.append(_strip_html(decode_part(part, unmap=unmap)))
    body = "\n".join(texts or html)[:MAX_TEXT]
    report = body
    marker = COPY_MARKER.search(body)
    if marker:
        report = body[: marker.start()]
        if original_headers is None:
            if _HEADER_LINE.match(marker.group(0)):
                copy = body[marker.start() :]  # the marker is the copy's first header line
            else:
                copy = body[marker.end() :]
                copy = copy.split("\n", 1)[1] if "\n" in copy else ""
            original_headers, has_body = _header_block(copy)
            if original_headers is not None:
                returned = "full" if has_body else "headers"
    original = _original(original_headers, unmap)
    exclude = (
        " ".join(heads.get(h, "") for h in ("from", "to", "reply-to", "sender", "cc")),
        heads.get("return-path", ""),
        original.from_,
        original.envelope_from,
    )
    ctx = Context(
        msg=msg,
        subject=heads.get("subject", ""),
        from_=heads.get("from", ""),
        to=heads.get("to", ""),
        report=report,
        body=body,
        dsn_texts=dsn,
        headers=heads,
        exclude_sources=exclude,
        original_to=original.to,
    )
    return ctx, original, returned


def _header_block(text: str) -> tuple[Message | None, bool]:
    """Parse the quoted headers of a returned original: (headers or None when there are none, has body).

    Only the header section goes to the parser: the first blank line ends it (as for the parser, which
    splits lines at CRLF, CR or LF), and whether any text follows is all that is read of the body.
    """
    text = text.lstrip("\r\n ")[:MAX_TEXT]
    if not text:
        return None, False
    ends = [i for i in (text.find("\n\n"), text.find("\n\r"), text.find("\r\r")) if i >= 0]
    rest = ""
    if ends:
        cut = min(ends) + 1  # just after the last header line's line end
        text, rest = text[:cut] + "\n", text[cut:]
    try:
        m = email.parser.Parser(policy=email.policy.compat32).parsestr(text, headersonly=True)
    except Exception:
        return None, False
    if len(m.keys()) < 1:
        return None, False
    return m, _has_body(m) or bool(rest.strip())


def _has_body(m: Message) -> bool:
    try:
        payload = m.get_payload()
    except Exception:
        return False
    if isinstance(payload, list):
        return bool(payload)
    return bool(str(payload or "").strip())


def _original(m: Message | None, unmap: Callable[[str], str]) -> OriginalMessage:
    if m is None:
        return OriginalMessage()
    h = _headers(m, _WANTED_ORIGINAL, unmap)
    return OriginalMessage(
        message_id=h.get("message-id", "").strip("<> "),
        from_=h.get("from", ""),
        to=h.get("to", ""),
        subject=h.get("subject", ""),
        envelope_from=first_address(h.get("return-path", "")),
    )


def _strip_html(text: str) -> str:
    # Only to find addresses and phrases: a tag stripper is enough, no rendering is needed.
    text = re.sub(r"<(?:br|p|div|tr|li)\b[^>]{0,500}>", "\n", text, flags=re.I)
    text = re.sub(r"<[^>]{0,2000}>", " ", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("&nbsp;", " ")


def _is_feedback(parsed: Parsed) -> bool:
    if parsed.parts[0].ctype == "multipart/report" and parsed.report_type == "feedback-report":
        return True
    for wp in parsed.parts:
        ctype = wp.ctype
        if ctype == "message/feedback-report" and not wp.returned:
            return True
        if ctype == "message/rfc822" and wp.depth <= 1:
            # Outlook.com/Hotmail JMRP complaints: the reported message alone, marked by this header.
            inner = wp.part.get_payload()
            if (
                isinstance(inner, list)
                and inner
                and isinstance(inner[0], Message)
                and inner[0].get("X-HmXmrOriginalRecipient") is not None
            ):
                return True
    return False


def _is_dsn(parsed: Parsed) -> bool:
    return parsed.parts[0].ctype == "multipart/report" and parsed.report_type == "delivery-status"


def _is_autoreply(ctx: Context, strong_only: bool) -> bool:
    auto = ctx.header("auto-submitted").lower()
    if not strong_only and auto.startswith("auto-replied"):
        return True
    if any(ctx.header(h) for h in _AUTOREPLY_HEADERS):
        return True
    if ctx.header("x-autogenerated").lower() == "reply" or ctx.header("precedence").lower() == "auto_reply":
        return True
    return bool(_AUTOREPLY_SUBJECT.search(ctx.subject))


def _kind(det: Detection, ctx: Context) -> str:
    if det.kind:
        return det.kind
    actions = {r.action for r in det.recipients}
    if "failed" in actions:
        return "failure"
    if "delayed" in actions:
        return "delay"
    if actions & {"delivered", "relayed", "expanded", "deliverable"}:
        return "success"
    if DELAY.search(ctx.subject):
        return "delay"
    return "failure"


def _reporter(ctx: Context) -> str:
    m = _REPORTER.search(ctx.report[:5000])
    if m:
        return (m.group(1) or m.group(2) or "").strip(".").lower()
    frm = first_address(ctx.from_)
    return frm.split("@", 1)[1] if "@" in frm else ""


def _return_path(parsed: Parsed, heads: dict[str, str]) -> str | None:
    value = heads.get("return-path")  # the first Return-Path, already decoded by _headers
    if value is None:  # none among the first 500 fields: look at all of them
        try:
            values = parsed.msg.get_all("return-path") or []
        except Exception:
            return None
        if not values:
            return None
        value = parsed.unmap(header_text(values[0]))
    return first_address(value) if "@" in value else ""


def _marks(data: bytes, body: str) -> tuple[str, ...]:
    found: list[str] = []
    # Lowercase first: a case-sensitive literal prefix search is ~20x faster than re.I here.
    for source in (data[:MAX_PARSE].lower(), body.lower().encode("utf-8", "replace")):
        for m in _MARK.finditer(source):
            mark = m.group(0).decode("ascii", "replace").rstrip(".-=+")
            if mark not in found:
                found.append(mark)
                if len(found) >= _MAX_MARKS:
                    return tuple(found)
    return tuple(found)
