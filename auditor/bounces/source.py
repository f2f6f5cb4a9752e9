"""Where messages come from: single message files, mbox files, Maildirs and folders of files."""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterable, Iterator

from auditor.bounces.parse import MAX_BYTES
from auditor.model import InputError

MAX_FILES = 100_000  # files visited under one directory argument


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None


def _is_mbox(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(5) == b"From "
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None


def _mbox(path: str) -> Iterator[tuple[str, bytes]]:
    box = mailbox.mbox(path, create=False)
    try:
        for i, key in enumerate(box.iterkeys()):
            try:
                data = box.get_bytes(key)
            except (OSError, KeyError) as exc:
                raise InputError(f"cannot read message {i + 1}: {exc}", path) from None
            yield f"{path}#{i + 1}", data[: MAX_BYTES + 1]
    finally:
        box.close()


def _file(path: str) -> Iterator[tuple[str, bytes]]:
    if _is_mbox(path):
        yield from _mbox(path)
    else:
        yield path, _read(path)


def _directory(root: str) -> Iterator[tuple[str, bytes]]:
    # A Maildir's cur/new/tmp are plain folders of message files, so a sorted recursive walk covers
    # Maildirs, nested Maildir++ folders and folders of .eml files alike.
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames.sort()
        if "cur" in dirnames and "new" in dirnames and "tmp" in dirnames:
            dirnames.remove("tmp")  # a Maildir: tmp/ holds messages still being written
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            if not os.path.isfile(full):
                continue
            count += 1
            if count > MAX_FILES:
                raise InputError(f"more than {MAX_FILES} files under this directory", root)
            yield from _file(full)


def iter_messages(paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(path, raw bytes) of every message in the given files and directories, recursively.

    A file holding an mbox yields one item per message, named ``file#n``. A missing path is an
    :class:`~auditor.model.InputError`.
    """
    for path in paths:
        if os.path.isdir(path):
            yield from _directory(path)
        elif os.path.isfile(path):
            yield from _file(path)
        else:
            raise InputError("no such file or directory", path)
