"""Syslog line headers: timestamp, host, program and pid, in the shapes mail logs come in.

Accepted shapes (one regular expression each, tried in this order):

* RFC 3164 / BSD syslog and Postfix's own ``maillog_file``: ``Dec  4 18:25:33 mx2 postfix/smtpd[42]: …``
  (day space- or zero-padded, optional fractional seconds, optional ``<PRI>``);
* ISO 8601 / RFC 3339 timestamps (rsyslog's high-precision format, ``journalctl -o short-iso``
  and ``short-iso-precise``): ``2026-12-04T18:25:33.123456+01:00 mx2 postfix/smtpd[42]: …``;
* RFC 5424: ``<22>1 2026-12-04T18:25:33.1Z mx2 postfix/smtpd 42 - - …``.

**Year inference (RFC 3164 has no year).** ``--year Y`` gives the year of the first such line of
the first input; later lines keep that year and move to the next one when the month steps back by
more than six months (December → January). Without ``--year``, each input's first RFC 3164 line
takes the year that puts it at or before the input's modification time (stdin: the current time),
i.e. the input was last written after its first line. A line with a full ISO date sets the year for
the RFC 3164 lines after it. Times are kept as written (no time-zone conversion): per-day counts
use the log's own calendar day.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import re
from dataclasses import dataclass

_MONTHS = {
    m.encode(): i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

# Groups: 1 mon, 2 day, 3 h, 4 m, 5 s | 6 date, 7 h, 8 m, 9 s, 10 tz | 11 host, 12 prog, 13 pid, 14 msg
_BSD_OR_ISO = re.compile(
    rb"(?:<\d{1,3}>)?"
    rb"(?:([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.\d{1,9})?"
    rb"|(\d{4}-\d\d-\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,]\d{1,9})?(Z|[+-]\d\d(?::?\d\d)?)?)"
    rb" (\S+) ([^\s\[\]]+?)(?:\[(\d+)\])?: (.*)"
)
# Groups: 1 date, 2 h, 3 m, 4 s, 5 tz, 6 host, 7 app, 8 procid, 9 msg
_RFC5424 = re.compile(
    rb"<\d{1,3}>1 (\d{4}-\d\d-\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d{1,9})?(Z|[+-]\d\d:\d\d)?"
    rb" (\S+) (\S+) (\S+) \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?:\xef\xbb\xbf)?(.*))?"
)


@dataclass
class Header:
    """A parsed line header. ``time`` is seconds since the epoch of the time as written."""

    time: int
    day: str  # YYYY-MM-DD as written
    host: bytes
    prog: bytes
    msg: bytes


def _tz_offset(tz: bytes | None) -> int:
    if not tz or tz == b"Z":
        return 0
    sign = -1 if tz[:1] == b"-" else 1
    digits = tz[1:].replace(b":", b"")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    return sign * (hours * 3600 + minutes * 60)


class Clock:
    """Turns header timestamps into epoch seconds, inferring RFC 3164 years (see module doc)."""

    def __init__(self, year: int | None = None, now: float | None = None) -> None:
        self.explicit_year = year
        self.year: int | None = year
        self.last_month = 0
        self._ref: float | None = None
        self._now = now
        self._day_cache: dict[tuple[int, int, int], tuple[int, str]] = {}
        self.notes: list[str] = []
        self.inferred: list[str] = []  # one line per input: which year was taken and why

    def start_input(self, name: str, mtime: float | None) -> None:
        """A new input begins: without an explicit year, its first RFC 3164 line is inferred anew."""
        self._name = name
        self._ref = mtime if mtime is not None else (self._now if self._now is not None else None)
        if self.explicit_year is None:
            self.year = None
        elif self.year is None:
            self.year = self.explicit_year

    def _infer(self, month: int, day: int) -> int:
        ref = self._ref
        if ref is None:
            ref = _dt.datetime.now(_dt.UTC).timestamp()
        when = _dt.datetime.fromtimestamp(ref, _dt.UTC)
        year = when.year if (month, day) <= (when.month, when.day) else when.year - 1
        self.inferred.append(
            f"{self._name}: RFC 3164 timestamps without a year read as {year} "
            f"(the first one is at or before the file's last write, {when.date().isoformat()})"
        )
        return year

    def _day(self, year: int, month: int, day: int) -> tuple[int, str]:
        key = (year, month, day)
        hit = self._day_cache.get(key)
        if hit is None:
            if len(self._day_cache) > 4096:
                self._day_cache.clear()
            try:
                hit = (calendar.timegm((year, month, day, 0, 0, 0)), f"{year:04d}-{month:02d}-{day:02d}")
                _dt.date(year, month, day)  # Feb 30 is no date
            except ValueError:
                hit = (-1, "")
            self._day_cache[key] = hit
        return hit

    def bsd(self, mon: bytes, day: bytes, h: bytes, m: bytes, s: bytes) -> tuple[int, str] | None:
        month = _MONTHS.get(mon)
        if month is None:
            return None
        d, hh, mm, ss = int(day), int(h), int(m), int(s)
        if not (0 <= hh < 24 and 0 <= mm < 60 and 0 <= ss < 61):
            return None
        if self.year is None:
            self.year = self._infer(month, d)
            self.last_month = month
        year = self.year
        if self.last_month and month < self.last_month - 6:  # December → January
            self.year = year = year + 1
            self.last_month = month
        elif self.last_month and month > self.last_month + 6:  # a late line of last year
            year -= 1
        else:
            self.last_month = month
        base, dstr = self._day(year, month, d)
        if base < 0:
            return None
        return base + hh * 3600 + mm * 60 + ss, dstr

    def iso(self, date: bytes, h: bytes, m: bytes, s: bytes, tz: bytes | None) -> tuple[int, str] | None:
        try:
            year, month, d = int(date[:4]), int(date[5:7]), int(date[8:10])
        except ValueError:
            return None
        base, dstr = self._day(year, month, d)
        if base < 0:
            return None
        self.year, self.last_month = year, month
        # Epoch seconds in UTC (so lifetimes are right across offsets); the day stays as written.
        return base + int(h) * 3600 + int(m) * 60 + int(s) - _tz_offset(tz), dstr


class HeaderParser:
    """Parse line headers, caching the last timestamp (a busy log repeats each second many times)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._last_ts: bytes = b""
        self._last_val: tuple[int, str] = (0, "")

    def parse(self, line: bytes) -> Header | None:
        parts = self.split(line)
        return None if parts is None else Header(*parts)

    def split(self, line: bytes) -> tuple[int, str, bytes, bytes, bytes] | None:
        """(time, day, host, program, message) of one line, or None when it is no syslog line.

        The common RFC 3164 / maillog_file shape is cut by position (no regular expression);
        everything else goes through the full patterns.
        """
        if line[15:16] == b" " and line[3:4] == b" " and line[9:10] == b":" and line[12:13] == b":":
            ts = line[:15]
            if ts != self._last_ts:
                try:
                    val = self.clock.bsd(line[:3], line[4:6], line[7:9], line[10:12], line[13:15])
                except ValueError:
                    val = None
                if val is None:
                    return self._slow(line)
                self._last_ts, self._last_val = ts, val
            sp = line.find(b" ", 16)
            if sp > 16:
                colon = line.find(b": ", sp + 1)
                if colon > sp + 1:
                    tag = line[sp + 1 : colon]
                    if b" " not in tag:
                        br = tag.find(b"[")
                        if br < 0:
                            t, day = self._last_val
                            return t, day, line[16:sp], tag, line[colon + 2 :]
                        if br > 0 and tag[-1:] == b"]" and tag[br + 1 : -1].isdigit():
                            t, day = self._last_val
                            return t, day, line[16:sp], tag[:br], line[colon + 2 :]
        return self._slow(line)

    def _slow(self, line: bytes) -> tuple[int, str, bytes, bytes, bytes] | None:
        m = _BSD_OR_ISO.match(line)
        if m is not None:
            if m.group(1) is not None:
                ts = line[: m.end(5)]
                if ts != self._last_ts:
                    val = self.clock.bsd(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5))
                    if val is None:
                        return None
                    self._last_ts, self._last_val = ts, val
            else:
                ts = line[: m.end(10) if m.group(10) is not None else m.end(9)]
                if ts != self._last_ts:
                    val = self.clock.iso(m.group(6), m.group(7), m.group(8), m.group(9), m.group(10))
                    if val is None:
                        return None
                    self._last_ts, self._last_val = ts, val
            t, day = self._last_val
            return t, day, m.group(11), m.group(12), m.group(14)
        m = _RFC5424.match(line)
        if m is None:
            return None
        val = self.clock.iso(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5))
        if val is None:
            return None
        self._last_ts = b""
        return val[0], val[1], m.group(6), m.group(7), m.group(9) or b""
