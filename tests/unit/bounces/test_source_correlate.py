"""Reading messages from files, mbox files, Maildirs and folders; correlating NDRs to probes."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from auditor.bounces import analyse_bytes, correlate, iter_messages
from auditor.model import InputError
from tests.unit.bounces import messages as m


def test_single_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.eml").write_bytes(m.QMAIL)
    (tmp_path / "sub" / "b.eml").write_bytes(m.EXIM)
    (tmp_path / ".hidden").write_bytes(b"x")
    got = list(iter_messages([str(tmp_path)]))
    assert [Path(p).name for p, _ in got] == ["a.eml", "b.eml"]
    assert got[0][1] == m.QMAIL
    assert list(iter_messages([str(tmp_path / "a.eml")])) == [(str(tmp_path / "a.eml"), m.QMAIL)]


def test_mbox_yields_each_message(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    box = mailbox.mbox(str(path))
    for raw in (m.QMAIL, m.AUTOREPLY, m.dsn()):
        box.add(raw)
    box.flush()
    box.close()
    got = list(iter_messages([str(path)]))
    assert [p for p, _ in got] == [f"{path}#1", f"{path}#2", f"{path}#3"]
    assert [analyse_bytes(d).kind for _, d in got] == ["failure", "autoreply", "failure"]


def test_maildir(tmp_path: Path) -> None:
    md = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    md.add(m.EXIM)
    md.add(m.PLAIN)
    (tmp_path / "Maildir" / "tmp" / "partial").write_bytes(m.QMAIL)  # being delivered: skipped
    kinds = sorted(analyse_bytes(d).kind for _, d in iter_messages([str(tmp_path / "Maildir")]))
    assert kinds == ["failure", "not-bounce"]


def test_missing_path_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        list(iter_messages([str(tmp_path / "nope")]))
    assert "nope" in str(err.value)


@pytest.mark.parametrize(
    ("raw", "where"),
    [(m.dsn(envid="bsa-tok123"), "envid"), (m.QMAIL, "returned headers"), (m.EXIM, "returned headers")],
)
def test_correlate_finds_token(raw: bytes, where: str) -> None:
    a = analyse_bytes(raw)
    assert correlate(a, {"tok123", "other"}) == "tok123", where
    assert correlate(a, {"bsa-tok123"}) == "tok123"
    assert correlate(a, {"tok12"}) is None  # a prefix of the real token is not a match
    assert correlate(a, set()) is None


def test_correlate_by_envelope_recipient_and_body() -> None:
    a = analyse_bytes(m.PLAIN)
    assert correlate(a, {"zz9"}) is None
    assert correlate(a, {"zz9"}, envelope_recipient="bsa-zz9@sink.example") == "zz9"
    body = m.PLAIN + b"\r\nquoted: <bsa-qq7@sink.example>\r\n"
    assert correlate(analyse_bytes(body), {"qq7"}) == "qq7"
