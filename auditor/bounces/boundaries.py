"""Rename MIME boundaries to canonical ones before parsing, so the stdlib parser's regex is cached.

Why: ``email.feedparser`` compiles one regular expression per multipart part from its boundary
string. Boundaries are unique per message, so every multipart message pays for fresh compiles in
``re`` (measured: about a fifth of the parse time of the NDR corpus), and the ``re`` cache never
helps. Renaming each boundary to ``<token>0001Z``, ``<token>0002Z``, … (a token drawn once per
process) makes those patterns the same from one message to the next, so they come from the cache.

The rename is meant to change nothing the analyser sees, or not to happen. It rewrites only the
``boundary=`` parameters and the delimiter lines (``\\n--<boundary>``), and only when the parser
is sure to see the same structure: every ``boundary=`` parameter follows a ";" and has a simple
form (no ":", no quoted-printable escape), no boundary is a prefix of another or of the token,
lines end in LF or CRLF, the token does not occur in the message, and every declared charset
decodes ASCII bytes as ASCII wherever they stand. Anything else leaves the message unchanged.
Texts read from the parsed message are mapped back with :meth:`Renamed.unmap` (a boundary can
also appear in quoted text). tests/unit/bounces/test_boundaries.py compares the stdlib's parse
with and without the rename on the corpus and on generated messages.
"""

from __future__ import annotations

import codecs
import functools
import itertools
import re
import secrets
from dataclasses import dataclass, field

# Drawn per process so that no message can carry it on purpose (the cache only needs it stable).
_TOKEN = b"bsaB" + secrets.token_hex(4).encode("ascii")
_MAX_BOUNDARIES = 100
# A quoted value: printable ASCII but space, '"', '\\', "<" and ">" (the stdlib unquotes "<x>" to x),
# real boundaries use "@", "!", "[" too; a bare one: RFC 2046 bchars without the space. Neither
# with ":": a line "--X:…" outside its multipart is a header line, "--<token>0001Z…" would not be.
# Then what must follow the value for the stdlib to read exactly this value: ";", or the end of
# the (unfolded) header line.
_QUOTED = re.compile(rb'"([\x21\x23-\x39;=\x3f-\x5b\x5d-\x7e]{1,70})"')
_BARE = re.compile(rb"([0-9A-Za-z'()+_,./=?-]{1,70})")
_AFTER = re.compile(rb"[ \t]*(?:;|\r?\n(?![ \t])|\Z)")
_EQUALS = re.compile(rb"[ \t]*=[ \t]*")
_QP_ESCAPE = re.compile(rb"=[0-9A-Fa-f]{2}")
_TOKEN_TEXT = _TOKEN.decode("ascii")


@dataclass
class Renamed:
    """The message bytes with canonical boundaries, and the way back for texts."""

    data: bytes
    tokens: dict[str, str] = field(default_factory=dict)  # canonical → original boundary

    def unmap(self, text: str) -> str:
        """The text with any canonical boundary replaced by the original one."""
        if self.tokens and _TOKEN_TEXT in text:
            for token, original in self.tokens.items():
                text = text.replace(token, original)
        return text


# Texts are mapped back after decoding, which is exact only where the bytes of a delimiter line
# decode to the same ASCII characters wherever they stand: stateless ASCII-superset charsets.
_ASCII_SUPERSET = re.compile(
    r"utf-8(-sig)?|ascii|latin-?1|iso8859-\d+|cp\d+|koi8-\w+|mac-[\w-]+|tis-620|shift_jis\w*|euc_\w+|"
    r"gb2312|gbk|gb18030|big5(hkscs)?|johab|kz1048|ptcp154|hp-roman8"
)
_PROBE = b'\n--bsaB0123abcd0001Z--; boundary="A-z.0_9/=?+,()\'"\r\n'
_CHARSET = re.compile(rb'[ \t]*=[ \t]*"?([a-z0-9_.:+-]{1,40})')


@functools.lru_cache(maxsize=256)
def _transparent(name: bytes) -> bool:
    try:
        codec = codecs.lookup(name.decode("ascii"))
    except LookupError:  # the analyser then decodes as latin-1 / ASCII
        return True
    if not _ASCII_SUPERSET.fullmatch(codec.name):
        return False  # stateful (ISO-2022, UTF-7, HZ), UTF-16/32, or a text transform
    try:
        return _PROBE.decode(codec.name) == _PROBE.decode("ascii")  # EBCDIC code pages fail
    except UnicodeError:
        return False


def _charsets_ok(lower: bytes) -> bool:
    """Every declared charset decodes ASCII bytes as ASCII wherever they stand; no uuencoded part."""
    if b"charset*" in lower or b"uuencode" in lower or b"x-uue" in lower:
        return False
    if lower.count(b"charset") > _MAX_BOUNDARIES * 10:  # bounded work on hostile input
        return False
    at = lower.find(b"charset")
    while at >= 0:
        m = _CHARSET.match(lower, at + 7)
        if m is not None and not _transparent(m.group(1)):
            return False
        at = lower.find(b"charset", at + 7)
    return True


def _params(data: bytes, lower: bytes) -> list[tuple[int, int, bytes]] | None:
    """(start, end, value) of every ``boundary=`` value, or None when one is not of a simple form."""
    if b"boundary*" in lower:  # RFC 2231 encoded or continued parameter
        return None
    found: list[tuple[int, int, bytes]] = []
    at = lower.find(b"boundary")
    while at >= 0:
        eq = _EQUALS.match(data, at + 8)
        if eq is not None:
            # A parameter only after ";": without it the stdlib reads it as part of the type.
            before = at - 1
            while before >= max(0, at - 200) and data[before] in b" \t\r\n":
                before -= 1
            if before < 0 or data[before] != 0x3B:  # ";" (within 200 bytes of folding space)
                return None
            m = _QUOTED.match(data, eq.end()) or _BARE.match(data, eq.end())
            if m is None or _AFTER.match(data, m.end()) is None:
                return None
            found.append((m.start(1), m.end(1), m.group(1)))
            if len(found) > _MAX_BOUNDARIES:
                return None
        at = lower.find(b"boundary", at + 8)
    return found


def rename(data: bytes) -> Renamed:
    """The message with canonical boundaries where that is exact; else the message unchanged."""
    lower = data.lower()
    if b"boundary" not in lower or _TOKEN in data or data.startswith(b"--"):
        return Renamed(data)
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):  # a lone CR also ends a line
        return Renamed(data)
    params = _params(data, lower)
    if not params or not _charsets_ok(lower):
        return Renamed(data)
    names: dict[bytes, bytes] = {}
    for _s, _e, value in params:
        if _QP_ESCAPE.search(value):  # in quoted-printable text "=41" decodes to "A", the token would not
            return Renamed(data)
        if value not in names:
            names[value] = _TOKEN + b"%04dZ" % (len(names) + 1)
    ordered = sorted(names)
    # Prefix-free (also of the tokens): a line "--X..." then starts a delimiter of at most one
    # boundary, before and after the rename.
    if any(b.startswith(a) for a, b in itertools.pairwise(ordered)) or any(
        _TOKEN.startswith(a) for a in ordered
    ):
        return Renamed(data)
    pieces: list[bytes] = []
    last = 0
    for start, end, value in params:
        pieces += (data[last:start], names[value])
        last = end
    pieces.append(data[last:])
    out = b"".join(pieces)
    for value, token in names.items():
        out = out.replace(b"\n--" + value, b"\n--" + token)
    return Renamed(out, {t.decode("ascii"): v.decode("ascii") for v, t in names.items()})
