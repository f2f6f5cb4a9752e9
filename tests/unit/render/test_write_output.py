"""Writing a report to a path that is not a regular file writes into it, never replaces it."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from auditor.cli.common import write_output


def test_dev_null_stays_a_device() -> None:
    write_output("report\n", os.devnull)  # an atomic replace would leave a regular file behind (as root)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_fifo_receives_the_report(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    write_output("the report\n", str(fifo))
    reader.join(timeout=10)
    assert got == ["the report\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_regular_file_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "r.txt"
    out.write_text("old and longer content\n")
    write_output("new\n", str(out))
    assert out.read_text() == "new\n"
