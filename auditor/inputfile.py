"""Read a user's input file safely: regular files only, at most a cap, errors as InputError.

A site.toml or a saved report that is a FIFO would block ``open()`` forever, and a symlink to
/dev/zero would be read until memory runs out: open without blocking, ``fstat`` the descriptor (not
the name, which can change in between) and read at most ``cap + 1`` bytes.
"""

from __future__ import annotations

import os
import stat

from auditor.model import InputError

DEFAULT_CAP = 16 << 20


def read_regular_file(path: str, cap: int = DEFAULT_CAP, what: str = "file") -> bytes:
    """The bytes of the regular file ``path`` (at most ``cap``); anything else is an InputError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"is a directory, not a {what}", path)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"not a regular file (a {what} must be one)", path)
        chunks: list[bytes] = []
        size = 0
        while size <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None
    finally:
        os.close(fd)
    if size > cap:
        raise InputError(f"larger than {cap >> 20} MiB: not a {what}", path)
    return b"".join(chunks)
