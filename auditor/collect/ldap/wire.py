"""A fast paged-search reader on an ldap3 connection: ldap3 encodes and sends, we decode.

Why hand-written: ldap3 decodes every response into nested dicts, case-insensitive dicts and
formatted values; on 100,000 entries that costs ~25 µs per entry, 7x ldapsearch's wall time
(benchmarks/RESULTS-ldap.md). The collector needs only the DN and a few attribute values, so this
module reads the BER of SearchResultEntry / SearchResultDone (RFC 4511 §4.5.2, §4.1.9) and the
paged-results control (RFC 2696) directly from the (TLS) socket ldap3 opened and bound.
Connection set-up, TLS, bind and request encoding stay with ldap3.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator, Sequence

from ldap3 import SUBTREE, Connection
from ldap3.core.exceptions import LDAPException
from ldap3.core.results import RESULT_CODES
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.utils.asn1 import encode

from auditor.collect.ldap.search import _PARTIAL, PAGED_RESULTS_OID, SearchIncomplete, SearchStats

Entry = tuple[str, dict[str, list[str]]]

_ENTRY, _DONE, _REF = 0x64, 0x65, 0x73  # [APPLICATION 4], [APPLICATION 5], [APPLICATION 19]
# One LDAP message above this size is treated as hostile (a real entry is a few KiB).
MAX_MESSAGE = 16 << 20


class BerError(ValueError):
    """The server sent bytes that are not the LDAP message they claim to be."""


def _tlv(buf: bytes | bytearray, i: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the TLV at ``i``; raises BerError past ``len(buf)``."""
    try:
        tag = buf[i]
        n = buf[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            if k == 0 or k > 4:
                raise BerError("unsupported BER length form")
            n = int.from_bytes(buf[i : i + k], "big")
            i += k
    except IndexError:
        raise BerError("truncated") from None
    return tag, i, i + n


def _message_end(buf: bytearray, i: int) -> int:
    """End offset of the complete LDAPMessage starting at ``i``, or -1 if more bytes are needed."""
    if len(buf) - i < 2:
        return -1
    if buf[i] != 0x30:
        raise BerError(f"expected an LDAPMessage SEQUENCE, got tag 0x{buf[i]:02x}")
    n = buf[i + 1]
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise BerError("unsupported BER length form")
        if len(buf) - i < 2 + k:
            return -1
        end = i + 2 + k + int.from_bytes(buf[i + 2 : i + 2 + k], "big")
    else:
        end = i + 2 + n
    if end - i > MAX_MESSAGE:
        raise BerError(f"message of {end - i} bytes exceeds the {MAX_MESSAGE} byte limit")
    return end if end <= len(buf) else -1


def _decode_entry(buf: bytes | bytearray, i: int, end: int, wanted: frozenset[str]) -> Entry:
    """objectName + attributes of a SearchResultEntry body ``buf[i:end]``; only ``wanted`` attributes.

    Lengths are decoded inline (no helper call per TLV): this loop runs once per value of a large
    directory. Any inconsistency surfaces as BerError (offsets checked against ``end``).
    """
    try:
        n = buf[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[i : i + k], "big")
            i += k
        dn = buf[i : i + n].decode("utf-8", "replace")
        i += n
        n = buf[i + 1]  # attributes SEQUENCE
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[i : i + k], "big")
            i += k
        attrs_end = i + n
        attrs: dict[str, list[str]] = {}
        while i < attrs_end:
            n = buf[i + 1]  # PartialAttribute SEQUENCE
            i += 2
            if n & 0x80:
                k = n & 0x7F
                n = int.from_bytes(buf[i : i + k], "big")
                i += k
            pa_end = i + n
            n = buf[i + 1]  # type
            i += 2
            if n & 0x80:
                k = n & 0x7F
                n = int.from_bytes(buf[i : i + k], "big")
                i += k
            name = buf[i : i + n].decode("ascii", "replace")
            i += n
            if name.lower() in wanted:
                n = buf[i + 1]  # vals SET
                i += 2
                if n & 0x80:
                    k = n & 0x7F
                    n = int.from_bytes(buf[i : i + k], "big")
                    i += k
                vals_end = i + n
                vals = []
                while i < vals_end:
                    n = buf[i + 1]
                    i += 2
                    if n & 0x80:
                        k = n & 0x7F
                        n = int.from_bytes(buf[i : i + k], "big")
                        i += k
                    vals.append(buf[i : i + n].decode("utf-8", "replace"))
                    i += n
                attrs[name] = vals
            i = pa_end
    except IndexError:
        raise BerError("truncated SearchResultEntry") from None
    if i != attrs_end or attrs_end > end:
        raise BerError("inconsistent lengths in SearchResultEntry")
    return dn, attrs


def _decode_done(buf: bytes | bytearray, i: int, end: int, msg_end: int) -> tuple[int, str, bytes | None]:
    """(resultCode, diagnosticMessage, paged cookie or None) of a SearchResultDone message."""
    _, s, e = _tlv(buf, i)
    code = int.from_bytes(buf[s:e], "big")
    _, s, e = _tlv(buf, e)  # matchedDN
    _, s, e = _tlv(buf, e)
    diag = buf[s:e].decode("utf-8", "replace")
    cookie = None
    j = end
    if j < msg_end:
        tag, cs, ce = _tlv(buf, j)
        if tag == 0xA0:  # controls [0]
            while cs < ce:
                _, s, e = _tlv(buf, cs)  # Control
                _, ts, te = _tlv(buf, s)
                oid = buf[ts:te].decode("ascii", "replace")
                k = te
                value = None
                while k < e:
                    t2, vs, ve = _tlv(buf, k)
                    if t2 == 0x04:
                        value = buf[vs:ve]
                    k = ve
                if oid == PAGED_RESULTS_OID and value is not None:
                    _, s2, _ = _tlv(value, 0)  # realSearchControlValue SEQUENCE
                    _, _, e3 = _tlv(value, s2)  # size INTEGER
                    _, cks, cke = _tlv(value, e3)
                    cookie = bytes(value[cks:cke])
                cs = e
    return code, diag, cookie


class _Reader:
    """Reads whole LDAP messages off a socket within a per-recv timeout and an overall deadline."""

    def __init__(self, sock: socket.socket, deadline: float | None) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.pos = 0

    def fill(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutError("client time limit reached")
        if self.pos > 1 << 20:  # drop consumed bytes now and then, not on every read
            del self.buf[: self.pos]
            self.pos = 0
        data = self.sock.recv(1 << 18)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.buf += data


def paged_search(
    conn: Connection,
    base: str,
    search_filter: str,
    attributes: Sequence[str],
    *,
    page_size: int = 500,
    size_limit: int = 0,
    time_limit: int = 0,
    timeout: float = 10.0,
    deadline: float | None = None,
    stats: SearchStats | None = None,
) -> Iterator[list[Entry]]:
    """Yield the entries page by page (RFC 2696); raise SearchIncomplete when the search cannot finish.

    ``deadline`` (a ``time.monotonic()`` value) bounds the whole search on the client side; each
    receive is bounded by ``timeout``. One page is held at a time: the caller drops it before the next.
    """
    st = stats if stats is not None else SearchStats()
    sock = conn.socket
    if sock is None:
        raise SearchIncomplete("not connected")
    wanted = frozenset(a.lower() for a in attributes)
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    reader = _Reader(sock, deadline)
    cookie: bytes | None = None
    try:
        while True:
            request = search_operation(
                base, search_filter, SUBTREE, 0, list(attributes), size_limit, time_limit, False, True, True
            )
            msg_id = conn.server.next_message_id()
            message = LDAPMessage()
            message["messageID"] = MessageID(msg_id)
            message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
            controls = build_controls_list([paged_search_control(False, page_size, cookie)])
            if controls is not None:
                message["controls"] = controls
            sock.sendall(encode(message))
            page: list[Entry] = []
            done: tuple[int, str, bytes | None] | None = None
            while done is None:
                end = _message_end(reader.buf, reader.pos)
                if end < 0:
                    reader.fill()
                    continue
                buf = reader.buf
                _, body, _ = _tlv(buf, reader.pos)
                _, _, id_end = _tlv(buf, body)  # messageID
                op, os_, oe = _tlv(buf, id_end)
                if op == _ENTRY:
                    page.append(_decode_entry(buf, os_, oe, wanted))
                elif op == _DONE:
                    done = _decode_done(buf, os_, oe, end)
                elif op == _REF:
                    st.references += 1
                reader.pos = end
            st.pages += 1
            st.entries += len(page)
            yield page
            del page
            code, diag, cookie = done
            if code in _PARTIAL:
                raise SearchIncomplete(
                    f"{_PARTIAL[code]} after {st.entries} entries (the directory holds more)"
                )
            if code != 0:
                name = RESULT_CODES.get(code, "error")
                raise SearchIncomplete(
                    f"search failed: {name}{': ' + diag if diag else ''} (result code {code})"
                )
            if not cookie:
                return
    except TimeoutError as exc:
        raise SearchIncomplete(
            f"server stopped answering after {st.pages} pages, {st.entries} entries ({exc or 'timed out'})"
        ) from None
    except (ConnectionError, ssl.SSLError, OSError) as exc:
        raise SearchIncomplete(
            f"connection lost after {st.pages} pages, {st.entries} entries ({exc})"
        ) from None
    except BerError as exc:
        raise SearchIncomplete(f"malformed response after {st.entries} entries: {exc}") from None
    except LDAPException as exc:  # request encoding (ldap3) refused the base, filter or attributes
        raise SearchIncomplete(f"search not sent: {type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(previous)
