"""Small helpers for the Postfix collector tests: write a config directory."""

from __future__ import annotations

import os
import time
from pathlib import Path


def write_config(directory: Path, main: str | bytes | None, master: str | None = None, **files: str) -> Path:
    """Write main.cf (and master.cf, tables) into ``directory``; mtimes set in the past.

    Postfix waits (up to ~2 s) before reading a main.cf modified within the last second, so the
    files are back-dated to keep tests fast when real postconf/postmap read them.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if main is not None:
        target = directory / "main.cf"
        if isinstance(main, bytes):
            target.write_bytes(main)
        else:
            target.write_text(main)
    if master is not None:
        (directory / "master.cf").write_text(master)
    for name, text in files.items():
        (directory / name).write_text(text)
    past = time.time() - 60
    for p in directory.iterdir():
        os.utime(p, (past, past))
    return directory
