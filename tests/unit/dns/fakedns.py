"""A tiny authoritative DNS server on 127.0.0.1 (UDP, ephemeral port) for the DNS collector tests.

Records are given as {(name, type): [rdata text]}; names listed in ``servfail`` answer SERVFAIL,
names in ``drop`` never answer (the resolver times out). Runs in a thread, stopped by the context
manager; the receive loop polls a stop flag, so it always ends.

``hold`` (seconds): answers are held back until no new query has come for that long, then all sent
at once; ``stats["max_pending"]`` is then the most questions the client had in flight together.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zone = dict[tuple[str, str], list[str]]


def _answer(query: dns.message.Message, zone: Zone, servfail: set[str], drop: set[str]) -> bytes | None:
    q = query.question[0]
    name = q.name.to_text().lower()
    rdtype = dns.rdatatype.to_text(q.rdtype)
    if name in drop:
        return None
    resp = dns.message.make_response(query)
    resp.flags |= 0x0400  # AA
    if name in servfail:
        resp.set_rcode(dns.rcode.SERVFAIL)
        return resp.to_wire()
    known = {n for n, _ in zone}
    cur = name
    for _ in range(8):  # follow CNAMEs inside the zone, bounded
        cname = zone.get((cur, "CNAME"))
        if cname and rdtype != "CNAME":
            resp.answer.append(dns.rrset.from_text(cur, 60, "IN", "CNAME", *cname))
            cur = cname[0].lower()
            continue
        break
    records = zone.get((cur, rdtype))
    if records:
        resp.answer.append(dns.rrset.from_text(cur, 60, "IN", rdtype, *records))
    elif cur not in known:
        resp.set_rcode(dns.rcode.NXDOMAIN)
    return resp.to_wire()


@contextlib.contextmanager
def serve(
    zone: Zone,
    servfail: set[str] = frozenset(),  # type: ignore[assignment]
    drop: set[str] = frozenset(),  # type: ignore[assignment]
    log: list[tuple[str, str]] | None = None,
    hold: float = 0.0,
    stats: dict[str, int] | None = None,
) -> Iterator[str]:
    """Yields the nameserver spec "127.0.0.1:PORT"; ``log`` gets every (name, type) asked."""
    zone = {(n.lower() if n.endswith(".") else n.lower() + ".", t): v for (n, t), v in zone.items()}
    sf = {n.lower().rstrip(".") + "." for n in servfail}
    dr = {n.lower().rstrip(".") + "." for n in drop}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(hold or 0.1)
    stop = threading.Event()
    held: list[tuple[bytes, tuple[str, int]]] = []
    counts = stats if stats is not None else {}
    counts.setdefault("max_pending", 0)

    def loop() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                for wire, to in held:  # quiet for ``hold`` s: the client waits for these
                    sock.sendto(wire, to)
                held.clear()
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
                if log is not None:
                    q = query.question[0]
                    log.append((q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)))
                wire = _answer(query, zone, sf, dr)
            except Exception:
                continue
            if wire is not None and hold:
                held.append((wire, peer))
                counts["max_pending"] = max(counts["max_pending"], len(held))
            elif wire is not None:
                sock.sendto(wire, peer)

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        th.join(2)
        sock.close()
