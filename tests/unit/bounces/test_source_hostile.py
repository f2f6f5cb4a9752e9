"""Hostile message stores: what cannot be read is never silent, nothing outside is read, no hang."""

from __future__ import annotations

import mailbox
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.bounces import iter_messages
from auditor.bounces.parse import MAX_BYTES
from auditor.bounces.source import MAX_DEPTH, Unread
from auditor.cli import main
from auditor.model import InputError
from tests.unit.bounces import messages as m

ROOT = Path(__file__).resolve().parents[3]


def _maildir(path: Path, n: int) -> Path:
    box = mailbox.Maildir(str(path), create=True)
    for _ in range(n):
        box.add(m.EXIM)
    return path


def _lenient(*paths: Path) -> tuple[list[str], list[Unread]]:
    unread: list[Unread] = []
    names = [p for p, _ in iter_messages([str(p) for p in paths], unread)]
    return names, unread


def test_link_out_of_the_maildir_is_not_followed(tmp_path: Path) -> None:
    md = _maildir(tmp_path / "Maildir", 2)
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"Subject: not yours\r\n\r\nsecret\r\n")
    (md / "cur" / "evil").symlink_to(secret)
    with pytest.raises(InputError, match="outside the directory: not followed") as err:
        list(iter_messages([str(md)]))
    assert err.value.path == str(md / "cur" / "evil")
    names, unread = _lenient(md)
    assert len(names) == 2 and all("evil" not in n for n in names)
    assert unread == [
        Unread(str(md / "cur" / "evil"), f"symbolic link to {secret}, outside the directory: not followed")
    ]


def test_link_to_a_directory_outside_is_not_followed(tmp_path: Path) -> None:
    md = _maildir(tmp_path / "Maildir", 1)
    _maildir(tmp_path / "elsewhere", 3)
    (md / ".Folder").symlink_to(tmp_path / "elsewhere")
    names, unread = _lenient(md)
    assert len(names) == 1 and [u.path for u in unread] == [str(md / ".Folder")]


def test_link_inside_the_tree_is_read_once_under_its_target(tmp_path: Path) -> None:
    md = _maildir(tmp_path / "Maildir", 1)
    (target,) = (md / "new").iterdir()
    (md / "cur" / "alias").symlink_to(target)
    names, unread = _lenient(md)
    assert names == [str(target)] and unread == []


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom"])
def test_device_as_input_is_refused(tmp_path: Path, target: str) -> None:
    with pytest.raises(InputError, match=r"not a regular file \(a character device\)"):
        list(iter_messages([target]))
    md = _maildir(tmp_path / "Maildir", 1)
    (md / "new" / "zero").symlink_to(target)
    names, unread = _lenient(md)
    assert len(names) == 1 and "outside the directory" in unread[0].reason


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    md = _maildir(tmp_path / "Maildir", 1)
    os.mkfifo(md / "new" / "pipe")
    os.mkfifo(tmp_path / "pipe")
    names, unread = _lenient(md, tmp_path / "pipe")
    assert len(names) == 1
    assert [(Path(u.path).name, u.reason) for u in unread] == [
        ("pipe", "not a regular file (a FIFO), not read"),
        ("pipe", "not a regular file (a FIFO), not read"),
    ]


def test_deep_folders_are_bounded_and_reported(tmp_path: Path) -> None:
    deep = tmp_path / "top"
    leaf = deep.joinpath(*["d"] * (MAX_DEPTH + 3))
    leaf.mkdir(parents=True)
    (leaf / "m.eml").write_bytes(m.EXIM)
    (deep / "m.eml").write_bytes(m.EXIM)
    names, unread = _lenient(deep)
    assert names == [str(deep / "m.eml")]
    assert len(unread) == 1 and "folder levels" in unread[0].reason


def test_mbox_message_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.mbox"
    with open(big, "wb") as fh:
        fh.write(b"From x Thu Jan  1 00:00:00 1970\n" + m.EXIM.replace(b"\r\n", b"\n") + b"\n")
        fh.write(b"From y Thu Jan  1 00:00:00 1970\nSubject: big\n\n")
        line = b"y" * 999 + b"\n"
        for _ in range(MAX_BYTES // len(line) + 10):
            fh.write(line)
        fh.write(b"\nFrom z Thu Jan  1 00:00:00 1970\nSubject: after\n\nz\n")
    got = list(iter_messages([str(big)]))
    assert [p.rsplit("#", 1)[1] for p, _ in got] == ["1", "2", "3"]
    assert len(got[1][1]) == MAX_BYTES + 1 and got[2][1] == b"Subject: after\n\nz\n"


def _as_unprivileged(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI where file modes bind: as root, without the capabilities that bypass them."""
    cmd = [sys.executable, "-m", "auditor", *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root's DAC override for this test"
        cmd = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)


def test_unreadable_cur_is_an_error_not_a_partial_result(tmp_path: Path) -> None:
    md = _maildir(tmp_path / "Maildir", 1)
    for i in range(4):
        (md / "cur" / f"m{i}:2,S").write_bytes(m.EXIM)
    os.chmod(md / "cur", 0)
    try:
        r = _as_unprivileged(["ndr", "--format", "json", str(md)])
    finally:
        os.chmod(md / "cur", 0o700)
    assert r.returncode == 2, r.stdout
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert (
        r.stderr.strip()
        == f"backscatter-audit: error: {md / 'cur'}: cannot open directory: Permission denied"
    )


def test_unreadable_message_file_is_an_error(tmp_path: Path) -> None:
    md = _maildir(tmp_path / "Maildir", 2)
    victim = sorted((md / "new").iterdir())[0]
    os.chmod(victim, 0)
    r = _as_unprivileged(["ndr", str(md)])
    assert r.returncode == 2 and r.stderr.strip().endswith(f"{victim}: cannot read: Permission denied")


def test_cli_refuses_fifo_and_device_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "pipe")
    assert main(["ndr", str(tmp_path / "pipe")]) == 2
    assert "not a regular file (a FIFO)" in capsys.readouterr().err
    assert main(["ndr", "/dev/zero"]) == 2
    assert "not a regular file (a character device)" in capsys.readouterr().err
