"""Inputs: compression, rotated sets in time order, stdin, year inference, hostile lines and files."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import sys
from pathlib import Path

import pytest

from auditor.collect.logs import collect_postfix_logs, collect_postfix_queue, parse_networks
from auditor.collect.logs.files import MAX_LINE, order_inputs
from auditor.collect.logs.syslog import Clock, HeaderParser
from auditor.judge import evaluate
from auditor.model import InputError, Status

SAMPLE = Path(__file__).parent / "data" / "postfix-sample.log"


def _notice(host: str, ts: str, qid: str, client: str, sender: str) -> str:
    """One outside message bounced by local(8) and its notification (a minimal real sequence)."""
    return (
        f"{ts} {host} postfix/smtpd[1]: {qid}1: client=c.example.net[{client}]\n"
        f"{ts} {host} postfix/cleanup[2]: {qid}1: message-id=<m@example.net>\n"
        f"{ts} {host} postfix/qmgr[3]: {qid}1: from=<{sender}>, size=1, nrcpt=1 (queue active)\n"
        f"{ts} {host} postfix/local[4]: {qid}1: to=<nx@example.com>, relay=local, delay=0, "
        'delays=0/0/0/0, dsn=5.1.1, status=bounced (unknown user: "nx")\n'
        f"{ts} {host} postfix/bounce[5]: {qid}1: sender non-delivery notification: {qid}2\n"
        f"{ts} {host} postfix/qmgr[3]: {qid}1: removed\n"
    )


def test_rotated_set_is_read_oldest_first_across_compressions(tmp_path: Path) -> None:
    old = _notice("mx", "Dec 30 10:00:00", "AAAAAA", "203.0.113.1", "a@one.example")
    mid = _notice("mx", "Dec 31 10:00:00", "BBBBBB", "203.0.113.2", "b@two.example")
    new = _notice("mx", "Jan  1 10:00:00", "CCCCCC", "203.0.113.3", "c@three.example")
    (tmp_path / "mail.log.2.gz").write_bytes(gzip.compress(old.encode()))
    (tmp_path / "mail.log.1").write_text(mid)
    (tmp_path / "mail.log").write_bytes(new.encode())
    xz = tmp_path / "other.log.xz"
    xz.write_bytes(
        lzma.compress(_notice("mx9", "Dec 30 11:00:00", "DDDDDD", "203.0.113.4", "d@x.example").encode())
    )
    os.utime(xz, (0, 1_000))  # an older set: read first
    paths = [str(tmp_path / n) for n in ("mail.log", "mail.log.1", "mail.log.2.gz")] + [str(xz)]
    assert [Path(i.name).name for i in order_inputs(paths)] == [
        "other.log.xz",
        "mail.log.2.gz",
        "mail.log.1",
        "mail.log",
    ]
    ev = collect_postfix_logs(paths, year=2026)
    assert ev.backscatter_notifications == 4 and ev.complete
    assert ev.backscatter_by_day == {"2026-12-30": 2, "2026-12-31": 1, "2027-01-01": 1}


def test_year_is_inferred_from_each_files_mtime(tmp_path: Path) -> None:
    p = tmp_path / "mail.log"
    p.write_text(_notice("mx", "Dec 30 10:00:00", "AAAAAA", "203.0.113.1", "a@one.example"))
    jan_2031 = 1925000000  # 2031-01-01: the Dec 30 line must be from 2030
    os.utime(p, (jan_2031, jan_2031))
    ev = collect_postfix_logs([str(p)])
    assert ev.backscatter_by_day == {"2030-12-30": 1}
    assert any("read as 2030" in n for n in ev.notes)


def test_header_shapes() -> None:
    hp = HeaderParser(Clock(year=2026))
    lines = {
        b"Dec  4 18:25:33 mx2 postfix/smtpd[42]: x": ("2026-12-04", b"postfix/smtpd"),
        b"Dec 04 18:25:33.123456 mx2 postfix-bsa/sloppy/smtpd[42]: x": (
            "2026-12-04",
            b"postfix-bsa/sloppy/smtpd",
        ),
        b"<22>Dec  4 18:25:33 mx2 postfix/qmgr[1]: x": ("2026-12-04", b"postfix/qmgr"),
        b"2026-12-05T00:30:00.5+01:00 mx2 postfix/smtp[1]: x": ("2026-12-05", b"postfix/smtp"),
        b"2026-12-05T00:30:00+0100 mx2 postfix/smtp[1]: x": ("2026-12-05", b"postfix/smtp"),
        b"<22>1 2026-12-05T00:30:00Z mx2 postfix/bounce 7 - - x": ("2026-12-05", b"postfix/bounce"),
        b"Dec  4 18:25:33 mx2 postfix/postfix-script: x": ("2026-12-04", b"postfix/postfix-script"),
    }
    for line, (day, prog) in lines.items():
        h = hp.parse(line)
        assert h is not None, line
        assert (h.day, h.prog, h.msg) == (day, prog, b"x"), line
    # the +01:00 time is 23:30 UTC the day before
    h1 = HeaderParser(Clock()).parse(b"2026-12-05T00:30:00+01:00 mx postfix/smtp[1]: x")
    h2 = HeaderParser(Clock()).parse(b"2026-12-04T23:30:00Z mx postfix/smtp[1]: x")
    assert h1 is not None and h2 is not None and h1.time == h2.time
    for bad in (b"Dec 32 10:00:00 mx postfix/smtpd[1]: x", b"Foo  4 10:00:00 mx p/smtpd[1]: x", b"Dec  4 1"):
        assert hp.parse(bad) is None


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _notice("mx", "2026-12-04T10:00:00Z", "AAAAAA", "203.0.113.1", "a@one.example").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    ev = collect_postfix_logs(["-"])
    assert ev.backscatter_notifications == 1 and ev.inputs == ("-",)


def test_ten_megabyte_line_and_binary_junk_are_skipped_with_numbers(tmp_path: Path) -> None:
    p = tmp_path / "hostile.log"
    head = _notice("mx", "Dec  4 10:00:00", "AAAAAA", "203.0.113.1", "a@one.example")
    with open(p, "wb") as fh:
        fh.write(head.encode())  # lines 1-6
        fh.write(b"Dec  4 10:00:01 mx postfix/smtpd[1]: " + b"A" * (10 * 1024 * 1024) + b"\n")  # 7
        fh.write(b"\x00\x01\x02\xff\xfe binary \x00 junk\n")  # 8
        fh.write(os.urandom(3000).replace(b"\n", b"."))  # 9 (no newline at the end)
        fh.write(b"\n")
        fh.write(_notice("mx", "Dec  4 10:00:02", "BBBBBB", "203.0.113.2", "b@two.example").encode())
    ev = collect_postfix_logs([str(p)], year=2026)
    assert ev.backscatter_notifications == 2 and ev.complete
    assert [s.line for s in ev.skipped_examples] == [7, 8, 9]
    assert ev.skipped_examples[0].text.startswith(f"longer than {MAX_LINE} bytes")
    assert ev.lines_read == 15


def test_a_binary_file_counts_only_skipped_lines(tmp_path: Path) -> None:
    p = tmp_path / "core"
    p.write_bytes(bytes(range(256)) * 200)
    ev = collect_postfix_logs([str(p)])
    assert ev.postfix_lines == 0 and ev.notifications == 0 and ev.skipped_lines == ev.lines_read > 0
    (f,) = [f for f in evaluate([ev]) if f.rule_id == "PF-LOG-001"]
    assert f.status is Status.INCONCLUSIVE and "no Postfix log line" in f.message


def test_truncated_gzip_is_incomplete_not_fatal(tmp_path: Path) -> None:
    p = tmp_path / "mail.log.1.gz"
    blob = gzip.compress(
        (_notice("mx", "Dec  4 10:00:00", "AAAAAA", "198.51.100.1", "a@x.example") * 50).encode()
    )
    p.write_bytes(blob[: len(blob) // 2])
    ev = collect_postfix_logs([str(p)], trusted_networks=parse_networks("198.51.100.0/24"), year=2026)
    assert not ev.complete and ev.read_errors and "mail.log.1.gz" in ev.read_errors[0]
    (f,) = [f for f in evaluate([ev]) if f.rule_id == "PF-LOG-001"]
    assert f.status is Status.INCONCLUSIVE and "could not be read completely" in f.message


def test_pass_only_when_everything_is_inside_and_complete(tmp_path: Path) -> None:
    p = tmp_path / "mail.log"
    p.write_text(_notice("mx", "Dec  4 10:00:00", "AAAAAA", "198.51.100.7", "a@x.example"))
    ev = collect_postfix_logs([str(p)], trusted_networks=parse_networks("198.51.100.0/24"), year=2026)
    (f,) = [f for f in evaluate([ev]) if f.rule_id == "PF-LOG-001"]
    assert ev.by_zone == {"inside": 1} and f.status is Status.PASS


def test_only_unattributed_is_inconclusive(tmp_path: Path) -> None:
    p = tmp_path / "mail.log"
    p.write_text("Dec  4 10:00:00 mx postfix/bounce[5]: ABCDEF1: sender non-delivery notification: ABCDEF2\n")
    ev = collect_postfix_logs([str(p)], year=2026)
    (f,) = [f for f in evaluate([ev]) if f.rule_id == "PF-LOG-001"]
    assert ev.unattributed_notifications == 1
    assert f.status is Status.INCONCLUSIVE and f.message.startswith("1 of 1 notification(s) could not")


def test_table_is_bounded_and_evictions_are_counted(tmp_path: Path) -> None:
    p = tmp_path / "mail.log"
    with open(p, "w") as fh:
        for i in range(5000):  # messages that are never removed
            fh.write(f"Dec  4 10:00:00 mx postfix/smtpd[1]: {i + 0x100000:X}: client=c[203.0.113.1]\n")
            fh.write(
                f"Dec  4 10:00:00 mx postfix/qmgr[1]: {i + 0x100000:X}: from=<a@x.example>, size=1, "
                "nrcpt=1 (queue active)\n"
            )
    ev = collect_postfix_logs([str(p)], year=2026, max_open=1000)
    assert ev.messages_seen == 5000 and ev.evicted_records == 4000 and ev.open_at_end == 1000


def test_stale_record_is_not_reused_after_its_lifetime(tmp_path: Path) -> None:
    p = tmp_path / "mail.log"
    p.write_text(
        "Dec  1 10:00:00 mx postfix/smtpd[1]: ABCDEF1: client=c[203.0.113.1]\n"
        "Dec  1 10:00:00 mx postfix/qmgr[1]: ABCDEF1: from=<a@x.example>, size=1, nrcpt=1 (queue active)\n"
        # ten days later the same id, with no entry line (log gap): must not inherit "outside"
        "Dec 11 10:00:00 mx postfix/qmgr[1]: ABCDEF1: from=<b@y.example>, size=1, nrcpt=1 (queue active)\n"
        "Dec 11 10:00:00 mx postfix/local[1]: ABCDEF1: to=<nx@example.com>, relay=local, delay=0, "
        'delays=0/0/0/0, dsn=5.1.1, status=bounced (unknown user: "nx")\n'
        "Dec 11 10:00:00 mx postfix/bounce[1]: ABCDEF1: sender non-delivery notification: ABCDEF2\n"
    )
    ev = collect_postfix_logs([str(p)], year=2026)
    assert ev.backscatter_notifications == 0 and ev.unattributed_notifications == 1


def test_queue_snapshot(tmp_path: Path) -> None:
    q = tmp_path / "queue.json"
    rows = [
        '{"queue_name": "deferred", "queue_id": "A1", "arrival_time": 1700000000, "sender": "", '
        '"recipients": [{"address": "x@one.example", "delay_reason": "connect to mx.one.example: refused"}]}',
        '{"queue_name": "deferred", "queue_id": "A2", "arrival_time": 1690000000, "sender": "MAILER-DAEMON", '
        '"recipients": [{"address": "y@two.example"}, {"address": "z@three.example"}]}',
        '{"queue_name": "active", "queue_id": "A3", "arrival_time": 1700000000, "sender": "", '
        '"recipients": []}',
        '{"queue_name": "deferred", "queue_id": "A4", "arrival_time": 1700000000, "sender": "u@example.com", '
        '"recipients": [{"address": "w@four.example"}]}',
        "not json",
        '{"queue_id": 5}',
    ]
    q.write_text("\n".join(rows) + "\n")
    snap = collect_postfix_queue(str(q))
    assert (snap.messages, snap.null_sender_messages, snap.null_sender_deferred) == (4, 3, 2)
    assert snap.null_sender_domains == 3 and snap.oldest_arrival == 1690000000
    assert [s.line for s in snap.skipped_examples] == [5, 6]
    (f,) = [f for f in evaluate([snap]) if f.rule_id == "PF-LOG-001"]
    assert f.status is Status.FAIL and "for 3 distinct domains" in f.message
    (q2 := tmp_path / "q2.json").write_text(rows[3] + "\n")
    (f2,) = [f for f in evaluate([collect_postfix_queue(str(q2))]) if f.rule_id == "PF-LOG-001"]
    assert f2.status is Status.PASS


def test_queue_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        collect_postfix_queue(str(tmp_path / "nope.json"))
