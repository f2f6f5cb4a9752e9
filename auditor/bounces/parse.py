"""Safe reading of one message with the standard ``email`` package, and the texts detectors need.

Hostile input is expected (we read what strangers send us), so everything here is bounded: the
bytes read, the MIME parts walked, the nesting depth, the text scanned by regular expressions.
``compat32`` is used because it never raises on malformed headers when they are read (the modern
policy parses headers lazily and can raise on access), and it parses the NDR corpus about 4-5x
faster (``benchmarks/ndr_bench.py --parser``); decoding is done here with ``errors=replace``.
MIME boundaries are renamed before parsing (:mod:`auditor.bounces.boundaries`), so texts read from
the parsed message go through :meth:`Parsed.unmap`.
"""

from __future__ import annotations

import contextlib
import email
import email.header
import email.parser
import email.policy
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message

from auditor.bounces.boundaries import Renamed, rename

MAX_BYTES = 20 * 1024 * 1024  # bytes of one message that are read at all
# Bytes given to the MIME parser. The report parts of an NDR come first and are small; only the
# tail of a large returned original lies beyond this, and the stdlib parser costs ~0.1 s per MB.
MAX_PARSE = 1024 * 1024
MAX_HEADER_BLOCK = 64 * 1024  # top-level header section kept (real ones are a few KB)
MAX_PARTS = 2000  # MIME parts walked
MAX_DEPTH = 30  # MIME nesting followed
MAX_TEXT = 200_000  # characters of text that regular expressions scan
# More boundaries than this in the raw bytes: skip MIME parsing (the parser recurses per level).
MAX_BOUNDARIES = 4 * MAX_PARTS

_WS = re.compile(r"\s+")


def header_text(value: object) -> str:
    """A header value as one line of text, RFC 2047 words decoded, never raising."""
    if value is None:
        return ""
    text = str(value)
    if "=?" in text:  # no encoded word without "=?": decode_header would return the text unchanged
        with contextlib.suppress(Exception):  # malformed encoded words, unknown charsets: keep raw text
            text = str(email.header.make_header(email.header.decode_header(text)))
    if text.isprintable() and "  " not in text:
        return text.strip()  # printable text has no whitespace but " ": nothing to collapse
    return _WS.sub(" ", text).strip()


def decode_part(part: Message, limit: int = MAX_TEXT, unmap: Callable[[str], str] | None = None) -> str:
    """The decoded text of a non-multipart part (transfer encoding + charset), never raising.

    ``unmap`` restores what parsing changed in the text (see :mod:`auditor.bounces.boundaries`).
    """
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, str):
            return (unmap(raw) if unmap else raw)[:limit]
        return ""
    if not isinstance(payload, bytes):
        return ""
    payload = payload[: limit * 4]
    charset = _charset(part)
    try:
        text = payload.decode(charset, errors="replace")
    except (LookupError, ValueError):
        text = payload.decode("latin-1")
    return (unmap(text) if unmap else text)[:limit]


def _charset(part: Message) -> str:
    """The part's charset parameter, lowercased, or "utf-8"."""
    try:
        value = part.get("content-type")
    except Exception:
        value = None
    if isinstance(value, str) and len(value) <= 300:  # bounded memo: real values are short
        return _charset_of(value)
    with contextlib.suppress(Exception):  # a malformed charset parameter
        return part.get_content_charset() or "utf-8"
    return "utf-8"


@functools.lru_cache(maxsize=1024)
def _charset_of(content_type: str) -> str:
    # Parsing parameters is costly and most parts share a few Content-Type values: a memo, computed
    # by the stdlib on a message holding just that header (so exactly what the part would give).
    probe = Message()
    probe["Content-Type"] = content_type
    with contextlib.suppress(Exception):
        return probe.get_content_charset() or "utf-8"
    return "utf-8"


_CTYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,64}")


def content_type(part: Message) -> str:
    """The part's type/subtype; a broken header (missing ";", folded junk) keeps its leading type."""
    try:
        ctype = part.get_content_type()
    except Exception:
        return "text/plain"
    m = _CTYPE.match(ctype)
    return m.group(0) if m else "text/plain"


def param(part: Message, name: str) -> str:
    """A Content-Type parameter, lowercased ("" if none)."""
    try:
        ctype = part.get("content-type")
    except Exception:
        ctype = None
    if isinstance(ctype, str) and len(ctype) <= 300:  # bounded memo, as for the charset
        return _param_of(ctype, name)
    return _param(part, name)


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    if isinstance(value, tuple):  # RFC 2231 value
        value = value[2]
    return str(value or "").lower()


@functools.lru_cache(maxsize=1024)
def _param_of(content_type: str, name: str) -> str:
    probe = Message()
    probe["Content-Type"] = content_type
    return _param(probe, name)


@dataclass(slots=True)
class WalkedPart:
    part: Message
    depth: int
    returned: bool  # inside a returned original (message/rfc822)
    ctype: str = "text/plain"  # content_type(part), computed once: every step needs it


@dataclass
class Parsed:
    """One message, parsed and flattened within the limits."""

    msg: Message
    size: int
    parts: list[WalkedPart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    renamed: Renamed | None = None  # the boundaries renamed for the parser (texts are mapped back)

    def unmap(self, text: str) -> str:
        """A text read from ``msg`` as it was in the message (original MIME boundaries)."""
        return self.renamed.unmap(text) if self.renamed is not None else text

    @functools.cached_property
    def report_type(self) -> str:
        """The report-type parameter of the top-level Content-Type, lowercased ("" if none)."""
        return self.unmap(param(self.msg, "report-type"))


def parse_bytes(data: bytes) -> Parsed:
    """Parse a message; oversized, over-deep or broken MIME degrades to less structure, never raises."""
    notes: list[str] = []
    size = len(data)
    if size > MAX_PARSE:
        data = data[:MAX_PARSE]
        notes.append(f"message of {size} bytes: only the first {MAX_PARSE} bytes analysed")
    data = _cap_header_block(data, notes)
    msg: Message | None = None
    renamed: Renamed | None = None
    if data.count(b"boundary") > MAX_BOUNDARIES:
        notes.append("too many MIME boundaries: body analysed as plain text")
    else:
        try:
            renamed = rename(data)
            msg = email.message_from_bytes(renamed.data, policy=email.policy.compat32)
        except RecursionError:
            notes.append("MIME nesting too deep: body analysed as plain text")
        except Exception as exc:  # the parser is lenient, but a bug in it must not stop an audit
            notes.append(f"MIME parse error ({type(exc).__name__}): body analysed as plain text")
    if msg is None:
        renamed = None
        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data, headersonly=True)
    parsed = Parsed(msg=msg, size=size, notes=notes, renamed=renamed)
    _walk(parsed)
    return parsed


def _cap_header_block(data: bytes, notes: list[str]) -> bytes:
    """Drop header lines beyond MAX_HEADER_BLOCK (a flood of header lines is slow to parse)."""
    end = data.find(b"\n\n", 0, MAX_HEADER_BLOCK + 2)
    end_crlf = data.find(b"\r\n\r\n", 0, MAX_HEADER_BLOCK + 4)
    if end >= 0 or end_crlf >= 0 or len(data) <= MAX_HEADER_BLOCK:
        return data
    cut = data.rfind(b"\n", 0, MAX_HEADER_BLOCK)
    if cut < 0:
        cut = MAX_HEADER_BLOCK
    rest = data.find(b"\n\n", cut)
    rest_crlf = data.find(b"\r\n\r\n", cut)
    body_at = min(x for x in (rest, rest_crlf, len(data)) if x >= 0)
    notes.append(f"header section longer than {MAX_HEADER_BLOCK} bytes: the rest of it was skipped")
    return data[: cut + 1] + data[body_at:]


def _walk(parsed: Parsed) -> None:
    # Iterative, depth-first, in document order, with a cap on parts and depth.
    stack: list[WalkedPart] = [WalkedPart(parsed.msg, 0, False)]
    while stack:
        if len(parsed.parts) >= MAX_PARTS:
            parsed.notes.append(f"more than {MAX_PARTS} MIME parts: the rest was not analysed")
            return
        item = stack.pop()
        item.ctype = ctype = content_type(item.part)
        parsed.parts.append(item)
        try:
            payload = item.part.get_payload()
        except Exception:
            continue
        if not isinstance(payload, list):
            continue
        if item.depth >= MAX_DEPTH:
            if "MIME nesting deeper than" not in " ".join(parsed.notes):
                parsed.notes.append(f"MIME nesting deeper than {MAX_DEPTH}: inner parts not analysed")
            continue
        if ctype == "message/delivery-status":
            continue  # its payload is a list of header blocks, not parts
        returned = item.returned or ctype in ("message/rfc822", "message/global")
        children = [c for c in payload[: MAX_PARTS + 1] if isinstance(c, Message)]
        for child in reversed(children):
            stack.append(WalkedPart(child, item.depth + 1, returned))


def delivery_status_text(part: Message) -> str:
    """The text of a message/delivery-status part, however the parser stored it."""
    try:
        payload = part.get_payload()
    except Exception:
        return ""
    if isinstance(payload, list):
        blocks = []
        for block in payload[:1000]:
            if isinstance(block, Message):
                try:
                    # What items() returns, with the policy's fetch only where it can change a value.
                    fetch = block.policy.header_fetch_parse
                    items = [(k, v if v.isascii() else fetch(k, v)) for k, v in block.raw_items()]
                except Exception:
                    continue
                blocks.append("\n".join(f"{k}: {v}" for k, v in items))
        text = "\n\n".join(blocks)
        if text.strip():
            return text[:MAX_TEXT]
    return decode_part(part)
