"""Where messages come from: single message files, mbox files, Maildirs and folders of files.

What is read is bounded and never silently partial. Only regular files are read (a FIFO would
block, ``/dev/zero`` never ends), and at most ``MAX_BYTES`` of each message. Inside a directory no
symbolic link is followed (one could lead anywhere on the host); the walk goes through directory
descriptors, so a link swapped in while it runs is not followed either. Whatever could not be
read — an unreadable folder or file, a link, a device — is an :class:`Unread`: with no list to
collect them into, the first one is an :class:`~auditor.model.InputError`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple

from auditor.bounces.parse import MAX_BYTES
from auditor.model import InputError

MAX_FILES = 100_000  # files visited under one directory argument
MAX_DEPTH = 32  # folder levels under one directory argument (each level holds a descriptor open)
_LINE = 64 * 1024  # mbox is split line by line; longer lines are read in pieces of this size

_OPEN_FILE = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: opening a FIFO must not wait
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Unread(NamedTuple):
    """A part of the input that was not read, and why."""

    path: str
    reason: str


class _Walk:
    def __init__(self, unread: list[Unread] | None) -> None:
        self.unread = unread
        self.files = 0

    def problem(self, path: str, reason: str) -> None:
        if self.unread is None:
            raise InputError(reason, path)
        self.unread.append(Unread(path, reason))


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _messages(fd: int, path: str, walk: _Walk) -> Iterator[tuple[str, bytes]]:
    """The message(s) of one open regular file (closed here): one, or each of an mbox."""
    with os.fdopen(fd, "rb") as fh:
        try:
            head = fh.read(5)
            if head == b"From ":
                yield from _mbox(fh, path)
            else:
                yield path, head + fh.read(MAX_BYTES + 1 - len(head))
        except OSError as exc:
            walk.problem(path, f"cannot read: {exc.strerror or exc}")


def _mbox(fh: BinaryIO, path: str) -> Iterator[tuple[str, bytes]]:
    # Every line starting "From " opens a message (mboxo/mboxrd, as the mailbox module reads them);
    # the From_ line and the blank line before the next one are not part of the message.
    fh.readline(_LINE)  # the rest of the first From_ line
    n = 1
    current = bytearray()
    at_line_start = True
    for chunk in iter(lambda: fh.readline(_LINE), b""):
        if at_line_start and chunk.startswith(b"From "):
            yield f"{path}#{n}", _mbox_message(current)
            n += 1
            current = bytearray()
        elif len(current) <= MAX_BYTES:
            current += chunk[: MAX_BYTES + 1 - len(current)]
        at_line_start = chunk.endswith(b"\n")
    yield f"{path}#{n}", _mbox_message(current)


def _mbox_message(data: bytearray) -> bytes:
    return bytes(data[:-1] if data.endswith(b"\n\n") else data)


def _file(path: str, walk: _Walk) -> Iterator[tuple[str, bytes]]:
    """A file named by the user (a link there is the user's choice: followed, to a regular file)."""
    try:
        fd = os.open(path, _OPEN_FILE)
    except OSError as exc:
        walk.problem(path, f"cannot read: {exc.strerror or exc}")
        return
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        walk.problem(path, f"not a regular file ({_kind(mode)}), not read")
        return
    yield from _messages(fd, path, walk)


def _directory(root: str, walk: _Walk) -> Iterator[tuple[str, bytes]]:
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        walk.problem(root, f"cannot open directory: {exc.strerror or exc}")
        return
    try:
        yield from _walk_dir(fd, root, os.path.realpath(root), 0, walk)
    finally:
        os.close(fd)


def _walk_dir(fd: int, path: str, real_root: str, depth: int, walk: _Walk) -> Iterator[tuple[str, bytes]]:
    # A Maildir's cur/new/tmp are plain folders of message files, so a sorted recursive walk covers
    # Maildirs, nested Maildir++ folders and folders of .eml files alike.
    try:
        with os.scandir(fd) as it:
            entries = sorted(((e.name, e) for e in it), key=lambda x: x[0])
    except OSError as exc:
        walk.problem(path, f"cannot list directory: {exc.strerror or exc}")
        return
    dirs = {n for n, e in entries if e.is_dir(follow_symlinks=False)}
    maildir = {"cur", "new", "tmp"} <= dirs
    subdirs: list[str] = []
    for name, entry in entries:
        full = os.path.join(path, name)
        if entry.is_symlink():
            _link(full, real_root, walk)
        elif name in dirs:
            if not (maildir and name == "tmp"):  # a Maildir's tmp/ holds messages still being written
                subdirs.append(name)
        elif not name.startswith("."):
            walk.files += 1
            if walk.files > MAX_FILES:
                raise InputError(f"more than {MAX_FILES} files under this directory", real_root)
            yield from _entry(fd, name, full, walk)
    for name in subdirs:
        full = os.path.join(path, name)
        if depth + 1 > MAX_DEPTH:
            walk.problem(full, f"more than {MAX_DEPTH} folder levels, not read")
            continue
        try:
            sub = os.open(name, _OPEN_DIR, dir_fd=fd)
        except OSError as exc:
            walk.problem(full, f"cannot open directory: {_why(exc)}")
            continue
        try:
            yield from _walk_dir(sub, full, real_root, depth + 1, walk)
        finally:
            os.close(sub)


def _entry(dir_fd: int, name: str, full: str, walk: _Walk) -> Iterator[tuple[str, bytes]]:
    try:
        fd = os.open(name, _OPEN_FILE | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        return  # moved since it was listed (a mail client moving new/ to cur/): seen at the next read
    except OSError as exc:
        walk.problem(full, f"cannot read: {_why(exc)}")
        return
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        walk.problem(full, f"not a regular file ({_kind(mode)}), not read")
        return
    yield from _messages(fd, full, walk)


def _why(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "replaced by a symbolic link while reading, not followed"
    return exc.strerror or str(exc)


def _link(full: str, real_root: str, walk: _Walk) -> None:
    target = os.path.realpath(full)
    if os.path.commonpath([target, real_root]) == real_root and os.path.exists(target):
        return  # points inside the tree: its target is read under its own name
    walk.problem(full, f"symbolic link to {target}, outside the directory: not followed")


def iter_messages(paths: Iterable[str], unread: list[Unread] | None = None) -> Iterator[tuple[str, bytes]]:
    """(path, raw bytes) of every message in the given files and directories, recursively.

    A file holding an mbox yields one item per message, named ``file#n``. What cannot be read (a
    missing path, an unreadable folder, a link leading out of a directory, a FIFO or device) is
    appended to ``unread`` when a list is given, else raised as an :class:`InputError`.
    """
    walk = _Walk(unread)
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            walk.problem(path, "no such file or directory")
            continue
        except OSError as exc:
            walk.problem(path, f"cannot read: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(mode):
            yield from _directory(path, walk)
        else:
            yield from _file(path, walk)
