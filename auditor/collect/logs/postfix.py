"""Follow Postfix queue ids through a mail log and trace every notification to its original.

One pass, constant memory. Each message is a record keyed by (logging host, queue id) that lives
from its entry (smtpd/qmqpd ``client=``, pickup ``uid=``, or the first cleanup/qmgr line) to
qmgr's ``removed``; an id seen again after its record ended, or after ``lifetime`` seconds, starts a
new record (ids are reused after restarts and over time). The table of open records is bounded:
past ``max_open`` the least recently active is dropped and counted.

Chains are followed within one host: a content filter's re-injection (``orig_queue_id=`` on the
smtpd line, or ``queued as QID2`` in the delivery to the filter) and local(8)'s ``forwarded as
QID2`` give the new id the original's entry, so a notification about the re-injected copy is traced
back to how the first copy came in.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from auditor.collect.logs.causes import classify
from auditor.collect.logs.files import MAX_LINE, Input, LineReader
from auditor.collect.logs.syslog import Clock, HeaderParser
from auditor.observations.logs import LogLine, NotificationExample, PostfixLogEvidence

DAEMONS = frozenset(
    (
        b"smtpd smtp lmtp local virtual pipe error retry discard bounce defer trace cleanup qmgr oqmgr "
        b"pickup qmqpd master postsuper postfix-script sendmail postdrop anvil scache tlsmgr postscreen "
        b"dnsblog verify proxymap proxywrite tlsproxy showq flush postlogd postqueue spawn trivial-rewrite "
        b"postmap postalias postconf postmulti postkick postlog"
    ).split()
)
_ENTRY_DAEMONS = frozenset((b"smtpd", b"qmqpd"))
_BOUNCE_DAEMONS = frozenset((b"bounce", b"defer", b"trace"))

# Short ids: 5 hex digits of microseconds + hex inode. Long ids (enable_long_queue_ids): base-52
# seconds and microseconds (no vowels), "z", base-51 inode.
_QID_RE = rb"[0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+"
_QID = re.compile(rb"(" + _QID_RE + rb"): ")
# The common shape in one match: RFC 3164 time, host, program[pid], queue id (optional), the rest.
_FAST = re.compile(
    rb"([A-Z][a-z]{2} [ 0-3]\d [0-2]\d:[0-5]\d:[0-6]\d) (\S+) ([^\s\[\]:]+)\[\d+\]: "
    rb"(?:(" + _QID_RE + rb"): )?(.*)"
)
_QID_ONLY = re.compile(_QID_RE)
# The daemons whose queue-id lines are followed (entries, queue manager, delivery agents, bounce).
FOLLOWED = frozenset(
    b"smtpd qmqpd pickup cleanup qmgr oqmgr bounce defer trace postsuper smtp lmtp local virtual pipe "
    b"error retry discard".split()
)
_TS = rb"[A-Z][a-z]{2} [ 0-3]\d [0-2]\d:[0-5]\d:[0-6]\d"
# Batch scans. Each starts with a literal ("\n" or "/"), which the regex engine finds by a fast
# search instead of trying every position: every line well-formed (the batch is prefixed with a
# newline); lines of Postfix programs; restarts; the lines to follow — a followed daemon, a queue
# id, but not cleanup's message-id or a plain "sent" — whose line start is found backwards.
_WELLFORMED = re.compile(rb"\n" + _TS + rb" \S+ ([^\s\[\]:]+)(?:\[\d+\])?: ")
_STARTED = re.compile(rb"/master(?:\[\d+\])?: daemon started")
_FOLLOW = re.compile(
    rb"/(" + b"|".join(sorted(FOLLOWED, key=lambda d: -len(bytes(d)))) + rb")\[\d+\]: (" + _QID_RE + rb"): "
    rb"(?!message-id=)(?!to=<[^\n]*, status=sent \((?![^\n]*(?:queued|forwarded) as ))([^\n]*)"
)
_CLIENT = re.compile(rb"client=([^\[,\s]*)\[([^\]]*)\]")
_ORIG_CLIENT = re.compile(rb"orig_client=([^\[,\s]*)\[([^\]]*)\]")
_ORIG_QID = re.compile(rb"orig_queue_id=([0-9A-Za-z]+)")
_DELIVERY = re.compile(
    rb"to=<([^>]*)>,(?: orig_to=<[^>]*>,)? relay=([^,]*),.*? dsn=([^,]*), status=([a-z-]+)(?: \((.*)\))?"
)
_FROM = re.compile(rb"from=<([^>]*)>")
_NOTICE = re.compile(rb"(sender|postmaster) (non-delivery|delay|delivery status) notification: (\S+)")
_CHILD = re.compile(rb"(?:queued as|forwarded as) ([0-9A-Za-z]+)")
_LOOPBACK_RELAY = re.compile(rb"(?:localhost|127\.[\d.]+|\[?::1\]?)\[(?:127\.[\d.]+|::1)\]")
_KIND = {b"non-delivery": "non-delivery", b"delay": "delay", b"delivery status": "delivery-status"}

DEFAULT_LIFETIME = 7 * 86400  # longer than maximal_queue_lifetime (5d) with the defaults
UNQUEUED_LIFETIME = 3600  # an id smtpd opened but cleanup never queued (RSET, lost connection)
DEFAULT_MAX_OPEN = 50_000
COUNTER_CAP = 200  # keys per bounded counter (then "other")
MAX_EXAMPLES = 20
EXAMPLES_PER_CAUSE = 3
MAX_SKIPPED_EXAMPLES = 50
_TEXT = 400  # evidence lines are cut here


def _bump(counter: dict[str, int], key: str, cap: int = COUNTER_CAP) -> None:
    if key in counter:
        counter[key] += 1
    elif len(counter) < cap:
        counter[key] = 1
    else:
        counter["other"] = counter.get("other", 0) + 1


class Trust:
    """Is an address inside the site's trusted networks? Loopback always is."""

    def __init__(self, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        self.networks = tuple(networks)
        self._cache: dict[bytes, str] = {}

    def zone(self, addr: bytes) -> str:
        hit = self._cache.get(addr)
        if hit is not None:
            return hit
        text = addr.decode("ascii", "replace")
        if text.lower().startswith("ipv6:"):
            text = text[5:]
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            zone = "unknown"
        else:
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            inside = ip.is_loopback or any(ip.version == n.version and ip in n for n in self.networks)
            zone = "inside" if inside else "outside"
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[addr] = zone
        return zone


# A line as evidence: (input index, line number, raw bytes cut to _TEXT).
_Ref = tuple[int, int, bytes]
# A delivery attempt: agent, relay, dsn, status, text, recipient, line.
_Attempt = tuple[bytes, bytes, bytes, bytes, bytes, bytes, _Ref]


class _Notice:
    __slots__ = ("double", "example", "zone")

    def __init__(self, zone: str, example: _Example | None) -> None:
        self.zone = zone
        self.example = example
        self.double = False


class _Rec:
    """One message (host, queue id, lifetime). Class-level defaults keep creation cheap."""

    entry = "unknown"
    client = b""
    zone = "unknown"
    loopback = False  # entered from a loopback client: a filter's re-injection, perhaps
    entry_ref: _Ref | None = None
    sender: bytes | None = None
    failures: tuple[_Attempt, ...] = ()  # the last three failed attempts
    deferred: _Attempt | None = None
    expired: _Ref | None = None
    notice: _Notice | None = None
    queued = False
    via: tuple[str, ...] = ()

    def __init__(self, now: int) -> None:
        self.born = self.last = now


@dataclass
class _Example:
    kind: str
    cause: str
    zone: str
    entry: str
    client: str
    host: str
    queue_id: str
    notification_id: str
    notified: str
    original_recipient: str
    detail: str
    via: tuple[str, ...]
    refs: list[_Ref] = field(default_factory=list)
    double_bounce: bool = False


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _domain(address: bytes) -> str:
    at = address.rfind(b"@")
    return _s(address[at + 1 :]).lower() if at >= 0 else ("(no domain)" if address else "(null sender)")


class PostfixLogTracker:
    """Feed it inputs in time order; :meth:`evidence` gives the observation."""

    def __init__(
        self,
        trust: Trust,
        *,
        clock: Clock | None = None,
        lifetime: int = DEFAULT_LIFETIME,
        max_open: int = DEFAULT_MAX_OPEN,
    ) -> None:
        self.trust = trust
        self.clock = clock or Clock()
        self.headers = HeaderParser(self.clock)
        self.lifetime = lifetime
        self.max_open = max_open
        self.table: OrderedDict[tuple[bytes, bytes], _Rec] = OrderedDict()
        self.inputs: list[str] = []
        self.read_errors: list[str] = []
        self.lines_read = self.postfix_lines = self.other_program_lines = 0
        self.skipped = 0
        self.skipped_examples: list[LogLine] = []
        self.first_time: int | None = None
        self.last_time: int | None = None
        self.hosts: dict[bytes, None] = {}  # first seen first, bounded
        self.restarts = self.messages_seen = self.reused = self.evicted = self.linked = 0
        self.notifications = self.postmaster_notifications = 0
        self.by_kind: dict[str, int] = {}
        self.by_zone: dict[str, int] = {}
        self.bs = 0
        self.bs_kind: dict[str, int] = {}
        self.bs_day: dict[str, int] = {}
        self.bs_cause: dict[str, int] = {}
        self.bs_domain: dict[str, int] = {}
        self.bs_entry: dict[str, int] = {}
        self.bs_client: dict[str, int] = {}
        self.unattributed = 0
        self.un_cause: dict[str, int] = {}
        self.double = self.bs_double = 0
        self.examples: list[_Example] = []
        self._per_cause: dict[tuple[str, str], int] = {}
        self._last_host = b""
        self._tags: dict[bytes, bytes | None] = {}

    # -- input ------------------------------------------------------------------------------------

    def feed(self, inp: Input) -> None:
        """Read one input, one read (~1 MiB of lines) at a time.

        A batch whose every line has the common RFC 3164 / maillog_file shape is scanned by
        regular expressions over the whole batch (:meth:`_block`), so only the lines about a
        queue id that matter reach Python code; any other batch goes line by line (:meth:`_lines`).
        """
        idx = len(self.inputs)
        self.inputs.append(inp.name)
        self.clock.start_input(inp.name, inp.mtime)
        reader = LineReader(inp)
        for start, batch in reader.batches():
            if self.table and self.last_time is not None:
                self._sweep(self.last_time)  # idle and abandoned records go
            if not self._block(idx, start, batch, reader.cut):
                self._lines(idx, start, batch)
        if reader.error:
            self.read_errors.append(reader.error)

    def _seen(self, t: int) -> None:
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t

    def _block(self, idx: int, start: int, batch: list[bytes], cut: bool = False) -> bool:
        """Scan a batch as a whole; False (nothing done) when a line in it is not of the common
        shape or was cut at MAX_LINE."""
        n = len(batch)
        block = b"\n" + b"\n".join(batch)
        tags = _WELLFORMED.findall(block)  # each line's program tag, if every line is well-formed
        if len(tags) != n or cut:
            return False
        postfix = masters = 0
        for tag, count in Counter(tags).items():
            daemon = self._daemon_of(tag)
            if daemon is not None:
                postfix += count
                if daemon == b"master":
                    masters += count
        self.lines_read += n
        self.postfix_lines += postfix
        self.other_program_lines += n - postfix
        if masters:
            self.restarts += len(_STARTED.findall(block))
        bsd = self.clock.bsd
        # The batch's first and last lines bound its time (called in order: the year logic sees
        # the lines as they come).
        head = batch[0]
        first = bsd(head[:3], head[4:6], head[7:9], head[10:12], head[13:15])
        if first is not None:
            self._seen(first[0])
        last_ts = b""
        now, day = 0, ""
        pos = 0
        lineno = start
        hosts = self.hosts
        table = self.table
        lifetime = self.lifetime
        get = self._get
        queue_line = self._queue_line
        for m in _FOLLOW.finditer(block):
            slash = m.start()
            ls = block.rfind(b"\n", 0, slash) + 1
            he = block.find(b" ", ls + 16, slash)
            if he < 0 or block.find(b" ", he + 1, slash) >= 0:
                continue  # the "/daemon[pid]: " is inside a message, not the line's tag
            lineno += block.count(b"\n", pos, ls)
            pos = ls
            host = block[ls + 16 : he]
            daemon, qid, rest = m.groups()
            if rest.startswith(b"removed") and (daemon == b"qmgr" or daemon == b"postsuper"):
                table.pop((host, qid), None)  # the commonest followed line: no time needed
                continue
            ts = block[ls : ls + 15]
            if ts != last_ts:
                val = bsd(ts[:3], ts[4:6], ts[7:9], ts[10:12], ts[13:15])
                if val is None:
                    self.postfix_lines -= 1
                    self._skip(idx, lineno, "not a syslog line", batch[lineno - start - 1])
                    last_ts = b""
                    continue
                last_ts = ts
                now, day = val
                if self.last_time is None or now > self.last_time:
                    self.last_time = now
            if host not in hosts and len(hosts) < 100:
                hosts[host] = None
            if daemon == b"qmgr" and rest.startswith(b"from=<") and b"returned to sender" not in rest:
                key = (host, qid)  # qmgr's from= (one per message): inline, the sender is all it gives
                rec = table.get(key)
                if rec is None or now - rec.last > lifetime:
                    rec = get(key, now)
                else:
                    rec.last = now
                    table.move_to_end(key)
                end = rest.find(b">", 6)
                rec.sender = rest[6:end] if end >= 0 else rest[6:]
                rec.queued = True
                continue
            queue_line(idx, lineno, batch[lineno - start - 1], now, day, host, daemon, qid, rest)
        tail = batch[-1]
        if tail[:15] != last_ts:
            end = bsd(tail[:3], tail[4:6], tail[7:9], tail[10:12], tail[13:15])
            if end is not None:
                self._seen(end[0])
        return True

    def _daemon_of(self, tag: bytes) -> bytes | None:
        """The Postfix daemon of a program tag ("postfix-out/relay/smtp" → smtp), None if not Postfix."""
        hit = self._tags.get(tag, b"")
        if hit == b"":
            slash = tag.rfind(b"/")
            hit = tag[slash + 1 :] if slash >= 0 and tag[slash + 1 :] in DAEMONS else None
            if len(self._tags) < 10_000:
                self._tags[tag] = hit
        return hit

    def _lines(self, idx: int, start: int, batch: list[bytes]) -> None:
        fast = _FAST.match
        bsd = self.clock.bsd
        last_ts = b""
        now, day = 0, ""
        for lineno, line in enumerate(batch, start + 1):
            m = fast(line)
            if m is None or len(line) >= MAX_LINE:
                self.line(idx, lineno, line)
                last_ts = b""  # line() may have moved the clock
                continue
            ts, host, prog, qid, rest = m.groups()
            if ts != last_ts:
                val = bsd(ts[:3], ts[4:6], ts[7:9], ts[10:12], ts[13:15])
                if val is None:
                    self.line(idx, lineno, line)
                    last_ts = b""
                    continue
                last_ts = ts
                now, day = val
                self._seen(now)
            self._parsed(idx, lineno, line, now, day, host, prog, qid, rest)

    def _skip(self, idx: int, lineno: int, reason: str, line: bytes) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < MAX_SKIPPED_EXAMPLES:
            shown = _s(line[:80]).encode("unicode_escape").decode("ascii")
            self.skipped_examples.append(LogLine(self.inputs[idx], lineno, f"{reason}: {shown}"))

    def line(self, idx: int, lineno: int, line: bytes) -> None:
        """One line of any accepted shape (the slow, general path)."""
        if len(line) >= MAX_LINE:
            self.lines_read += 1
            self._skip(idx, lineno, f"longer than {MAX_LINE} bytes", line)
            return
        if line[-1:] == b"\r":
            line = line[:-1]
        h = self.headers.split(line)
        if h is None:
            self.lines_read += 1
            self._skip(idx, lineno, "not a syslog line" if line.strip() else "empty line", line)
            return
        now, day, host, prog, msg = h
        self._seen(now)
        m = _QID.match(msg)
        if m is None:
            self._parsed(idx, lineno, line, now, day, host, prog, None, msg)
        else:
            self._parsed(idx, lineno, line, now, day, host, prog, m.group(1), msg[m.end() :])

    def _parsed(
        self,
        idx: int,
        lineno: int,
        line: bytes,
        now: int,
        day: str,
        host: bytes,
        prog: bytes,
        qid: bytes | None,
        rest: bytes,
    ) -> None:
        """A line split into its parts: count it, and follow it if it is about a queue id."""
        self.lines_read += 1
        slash = prog.rfind(b"/")
        daemon = prog[slash + 1 :] if slash >= 0 else prog
        if slash < 0 or daemon not in DAEMONS:  # Postfix always logs "syslog_name/daemon"
            self.other_program_lines += 1
            return
        self.postfix_lines += 1
        if len(self.hosts) < 100:
            self.hosts.setdefault(host, None)
        if qid is None:
            if daemon == b"master" and rest.startswith(b"daemon started"):
                self.restarts += 1
            return
        if daemon not in FOLLOWED:
            return
        # The two commonest lines carry nothing to follow: cleanup's message-id (qmgr's from=
        # opens the record too) and a plain successful delivery (as _FOLLOW leaves them out).
        if daemon == b"cleanup" and rest.startswith(b"message-id="):
            return
        if b", status=sent (" in rest and not _CHILD.search(rest):
            return
        self._queue_line(idx, lineno, line, now, day, host, daemon, qid, rest)

    def _queue_line(
        self,
        idx: int,
        lineno: int,
        line: bytes,
        now: int,
        day: str,
        host: bytes,
        daemon: bytes,
        qid: bytes,
        rest: bytes,
    ) -> None:
        """A line about one queue id: follow the message."""
        if rest[-1:] == b"\r":
            rest = rest[:-1]
        key = (host, qid)
        if rest.startswith(b"to=<"):
            self._delivery(key, daemon, rest, now, (idx, lineno, line[:_TEXT]), day)
        elif daemon in _ENTRY_DAEMONS:
            if rest.startswith(b"client="):
                self._smtpd_entry(key, daemon, rest, now, (idx, lineno, line[:_TEXT]))
        elif daemon == b"cleanup":
            rec = self._get(key, now)
            if rest.startswith((b"message-id=", b"resent-message-id=")):
                rec.queued = True
            elif rest.startswith((b"reject: ", b"milter-reject: ")):
                cause_agent = b"cleanup" if rest.startswith(b"reject: ") else b"milter"
                attempt = (cause_agent, b"none", b"5.7.1", b"bounced", rest, b"", (idx, lineno, line[:_TEXT]))
                rec.failures = (*rec.failures[-2:], attempt)
        elif daemon == b"qmgr" or daemon == b"oqmgr":
            if rest.startswith(b"removed"):
                self.table.pop(key, None)
                return
            rec = self._get(key, now)
            if rest.startswith(b"from=<"):
                end = rest.find(b">", 6)
                rec.sender = rest[6:end] if end >= 0 else rest[6:]
                rec.queued = True
                if b"returned to sender" in rest:
                    rec.expired = (idx, lineno, line[:_TEXT])
                    if rec.notice is not None:
                        self._double(rec.notice, (idx, lineno, line[:_TEXT]))
        elif daemon == b"pickup":
            if rest.startswith(b"uid="):
                rec = self._new(key, now)
                rec.entry, rec.zone, rec.queued = "pickup", "inside", True
                rec.entry_ref = (idx, lineno, line[:_TEXT])
                fm = _FROM.search(rest)
                if fm is not None:
                    rec.sender = fm.group(1)
        elif daemon in _BOUNCE_DAEMONS:
            nm = _NOTICE.match(rest)
            if nm is not None:
                self._notification(key, host, nm, now, (idx, lineno, line[:_TEXT]), day)
        elif daemon == b"postsuper" and rest.startswith(b"removed"):
            self.table.pop(key, None)

    # -- records ----------------------------------------------------------------------------------

    def _new(self, key: tuple[bytes, bytes], now: int) -> _Rec:
        old = self.table.pop(key, None)
        if old is not None and old.queued:
            self.reused += 1
        rec = _Rec(now)
        self.table[key] = rec
        self.messages_seen += 1
        if len(self.table) > self.max_open:
            self.table.popitem(last=False)
            self.evicted += 1
        return rec

    def _get(self, key: tuple[bytes, bytes], now: int) -> _Rec:
        rec = self.table.get(key)
        if rec is None or now - rec.last > self.lifetime:
            if rec is not None:
                self.evicted += 1
            return self._new(key, now)
        rec.last = now
        self.table.move_to_end(key)
        return rec

    def _sweep(self, now: int) -> None:
        table = self.table
        while table:
            key, rec = next(iter(table.items()))
            idle = now - rec.last
            if idle > self.lifetime:
                self.evicted += 1
            elif not (idle > UNQUEUED_LIFETIME and not rec.queued):
                break
            del table[key]

    def _smtpd_entry(self, key: tuple[bytes, bytes], daemon: bytes, rest: bytes, now: int, ref: _Ref) -> None:
        rec = self._new(key, now)
        rec.entry = "smtpd" if daemon == b"smtpd" else _s(daemon)
        rec.entry_ref = ref
        forwarded = b"orig_" in rest  # XFORWARD from a content filter: the real client and parent id
        cm = (_ORIG_CLIENT.search(rest) if forwarded else None) or _CLIENT.match(rest)
        if cm is not None:
            rec.client = rest[cm.start(1) : cm.end(2) + 1]  # name[address]
            rec.zone = self.trust.zone(cm.group(2))
            rec.loopback = cm.group(2).startswith(b"127.") or cm.group(2) == b"::1"
        if b"sasl_username=" in rest:
            rec.zone = "inside"  # authenticated submission: the sender is the site's own user
            rec.entry = rec.entry + "+sasl"
        om = _ORIG_QID.search(rest) if forwarded else None
        if om is not None:
            parent = self.table.get((key[0], om.group(1)))
            if parent is not None:
                self._inherit(rec, parent, "orig_queue_id " + _s(om.group(1)))

    def _inherit(self, child: _Rec, parent: _Rec, how: str) -> None:
        child.entry, child.client, child.zone = parent.entry, parent.client, parent.zone
        child.entry_ref, child.loopback = parent.entry_ref, parent.loopback
        child.via = (*parent.via, how)[-8:]
        self.linked += 1

    def _delivery(
        self, key: tuple[bytes, bytes], daemon: bytes, rest: bytes, now: int, ref: _Ref, day: str
    ) -> None:
        dm = _DELIVERY.match(rest)
        if dm is None:
            self._skip(ref[0], ref[1], "unrecognised Postfix delivery line", ref[2])
            return
        rec = self._get(key, now)
        status = dm.group(4)
        text = dm.group(5) or b""
        if status == b"sent":
            cm = _CHILD.search(text)
            if cm is not None:
                child = self.table.get((key[0], cm.group(1)))
                forward = b"forwarded as" in text
                if child is None and (forward or _LOOPBACK_RELAY.match(dm.group(2))):
                    # local(8)'s forward, or a filter on this host: the copy is ours, opened here.
                    child = self._new((key[0], cm.group(1)), now)
                # Only a copy born after the original, not yet traced elsewhere (a remote server's
                # "queued as" id is not in this host's table).
                if (
                    child is not None
                    and child is not rec
                    and (child.zone == "unknown" or child.loopback)
                    and child.born >= rec.born
                ):
                    how = "forwarded as" if forward else "re-injected as"
                    self._inherit(child, rec, f"{_s(key[1])} {how} {_s(cm.group(1))}")
            return
        attempt = (daemon, dm.group(2), dm.group(3), status, text, dm.group(1), ref)
        if status == b"deferred":
            rec.deferred = attempt
            return
        if status in (b"bounced", b"expired"):
            if rec.notice is not None:
                self._double(rec.notice, ref)
                return
            rec.failures = (*rec.failures[-2:], attempt)

    def _double(self, notice: _Notice, ref: _Ref) -> None:
        if notice.double or notice.zone == "postmaster":
            return
        notice.double = True
        self.double += 1
        if notice.zone == "outside":
            self.bs_double += 1
        if notice.example is not None:
            notice.example.double_bounce = True
            notice.example.refs.append(ref)

    # -- notifications ----------------------------------------------------------------------------

    def _notification(
        self, key: tuple[bytes, bytes], host: bytes, nm: re.Match[bytes], now: int, ref: _Ref, day: str
    ) -> None:
        kind = _KIND[nm.group(2)]
        new_id = nm.group(3)
        if not _QID_ONLY.fullmatch(new_id):
            return
        orig = self.table.get(key)
        notice_rec = self._get((host, new_id), now)
        notice_rec.entry, notice_rec.zone, notice_rec.queued = "bounce", "inside", True
        if nm.group(1) == b"postmaster":
            self.postmaster_notifications += 1
            notice_rec.notice = _Notice("postmaster", None)
            return
        self.notifications += 1
        _bump(self.by_kind, kind)
        attempt: _Attempt | None = None
        if orig is None:
            zone, cause, entry = "unknown", "unknown", "unknown"
        else:
            zone, entry = orig.zone, orig.entry
            if kind == "delivery-status":
                cause = "success-requested"
            elif kind == "delay":
                attempt = orig.deferred
                cause = classify(*attempt[:5]) if attempt else "unknown"
            elif orig.expired is not None:
                attempt = orig.deferred
                cause = "expiry"
            elif orig.failures:
                attempt = orig.failures[0]
                cause = classify(*attempt[:5])
            elif orig.deferred is not None:
                attempt = orig.deferred
                cause = classify(*attempt[:5])
            else:
                cause = "unknown"
            if kind == "non-delivery":
                orig.failures = ()  # the next notice about this message reports later failures
        _bump(self.by_zone, zone)
        sender = orig.sender if orig is not None else None
        if zone == "outside":
            self.bs += 1
            _bump(self.bs_kind, kind)
            _bump(self.bs_day, day, 1000)
            _bump(self.bs_cause, cause)
            _bump(self.bs_domain, _domain(sender) if sender is not None else "(unknown)")
            _bump(self.bs_entry, entry)
            if orig is not None:
                _bump(self.bs_client, _s(orig.client))
        elif zone == "unknown":
            self.unattributed += 1
            _bump(self.un_cause, cause)
        example = self._example(kind, cause, zone, entry, host, key[1], new_id, orig, attempt, sender, ref)
        notice_rec.notice = _Notice(zone, example)

    def _example(
        self,
        kind: str,
        cause: str,
        zone: str,
        entry: str,
        host: bytes,
        qid: bytes,
        new_id: bytes,
        orig: _Rec | None,
        attempt: _Attempt | None,
        sender: bytes | None,
        ref: _Ref,
    ) -> _Example | None:
        # Backscatter first: up to EXAMPLES_PER_CAUSE per cause; a few others for context.
        slot = (zone, cause)
        have = self._per_cause.get(slot, 0)
        limit = EXAMPLES_PER_CAUSE if zone == "outside" else 1
        if have >= limit or len(self.examples) >= MAX_EXAMPLES:
            return None
        self._per_cause[slot] = have + 1
        refs: list[_Ref] = []
        if orig is not None and orig.entry_ref is not None:
            refs.append(orig.entry_ref)
        if attempt is not None:
            refs.append(attempt[6])
        if orig is not None and orig.expired is not None:
            refs.append(orig.expired)
        refs.append(ref)
        ex = _Example(
            kind=kind,
            cause=cause,
            zone=zone,
            entry=entry,
            client=_s(orig.client) if orig is not None else "",
            host=_s(host),
            queue_id=_s(qid),
            notification_id=_s(new_id),
            notified=_s(sender) if sender is not None else "",
            original_recipient=_s(attempt[5]) if attempt is not None else "",
            detail=_s(attempt[4])[:300] if attempt is not None else "",
            via=orig.via if orig is not None else (),
            refs=refs,
        )
        self.examples.append(ex)
        return ex

    # -- result -----------------------------------------------------------------------------------

    def evidence(
        self, *, target: str, trusted: Sequence[str], trusted_source: str, notes: Sequence[str] = ()
    ) -> PostfixLogEvidence:
        def iso(t: int | None) -> str:
            if t is None:
                return ""
            return _dt.datetime.fromtimestamp(t, _dt.UTC).replace(tzinfo=None).isoformat()

        def line_of(ref: _Ref) -> LogLine:
            return LogLine(self.inputs[ref[0]], ref[1], _s(ref[2]))

        examples = tuple(
            NotificationExample(
                kind=e.kind,
                cause=e.cause,
                zone=e.zone,
                entry=e.entry,
                client=e.client,
                host=e.host,
                queue_id=e.queue_id,
                notification_id=e.notification_id,
                notified=e.notified,
                original_recipient=e.original_recipient,
                detail=e.detail,
                double_bounce=e.double_bounce,
                via=e.via,
                lines=tuple(line_of(r) for r in e.refs),
            )
            for e in sorted(self.examples, key=lambda e: (e.zone != "outside", e.cause))
        )
        all_notes = [*self.clock.inferred, *notes]
        if self.unattributed:
            all_notes.append(
                f"{self.unattributed} notification(s) could not be traced to how their original entered "
                "(its entry is not in these logs: they start while it was queued, or a line is missing)"
            )
        if self.evicted:
            all_notes.append(
                f"{self.evicted} open message record(s) were dropped (table bound {self.max_open} or idle "
                f"longer than {self.lifetime // 3600} h); notifications about them count as unattributed"
            )
        return PostfixLogEvidence(
            target=target,
            inputs=tuple(self.inputs),
            complete=not self.read_errors,
            read_errors=tuple(self.read_errors),
            lines_read=self.lines_read,
            postfix_lines=self.postfix_lines,
            other_program_lines=self.other_program_lines,
            skipped_lines=self.skipped,
            skipped_examples=tuple(self.skipped_examples),
            first_time=iso(self.first_time),
            last_time=iso(self.last_time),
            hosts=tuple(_s(h) for h in self.hosts),
            restarts=self.restarts,
            messages_seen=self.messages_seen,
            reused_queue_ids=self.reused,
            evicted_records=self.evicted,
            open_at_end=sum(1 for r in self.table.values() if r.queued),
            linked_reinjections=self.linked,
            notifications=self.notifications,
            postmaster_notifications=self.postmaster_notifications,
            by_kind=dict(self.by_kind),
            by_zone=dict(self.by_zone),
            backscatter_notifications=self.bs,
            backscatter_by_kind=dict(self.bs_kind),
            backscatter_by_day=dict(sorted(self.bs_day.items())),
            backscatter_by_cause=dict(self.bs_cause),
            backscatter_by_domain=dict(sorted(self.bs_domain.items(), key=lambda kv: (-kv[1], kv[0]))),
            backscatter_by_entry=dict(self.bs_entry),
            backscatter_by_client=dict(sorted(self.bs_client.items(), key=lambda kv: (-kv[1], kv[0]))),
            unattributed_notifications=self.unattributed,
            unattributed_by_cause=dict(self.un_cause),
            double_bounces=self.double,
            backscatter_double_bounces=self.bs_double,
            examples=examples,
            trusted_networks=tuple(trusted),
            trusted_source=trusted_source,
            notes=tuple(all_notes),
        )
