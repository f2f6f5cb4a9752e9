"""Passwords come from a file or an environment variable — never from site.toml or argv, where
``ps``, shell history and reports would show them — and are read in one place."""

from __future__ import annotations

import os

from auditor.model import InputError

MAX_SECRET_BYTES = 64 * 1024  # a password is a line; a file of endless data is not a password file


def read_secret(path: str | None, env: str, what: str = "password") -> str | None:
    """The first line of ``path`` if given, else the environment variable ``env`` (None if unset).

    A named file that cannot be read is an :class:`InputError` naming the file, not a silent
    anonymous bind. At most :data:`MAX_SECRET_BYTES` are read (``<(pass show x)`` pipes are
    fine; a link to /dev/zero is an error, not an endless read), and the message never shows
    any of the file's content.
    """
    if path:
        try:
            with open(path, "rb") as fh:
                raw = fh.readline(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise InputError(f"cannot read {what} file: {exc.strerror or exc}", path) from None
        if len(raw) > MAX_SECRET_BYTES:
            raise InputError(f"{what} file: first line longer than {MAX_SECRET_BYTES} bytes", path)
        if b"\0" in raw:
            raise InputError(f"{what} file: binary data (NUL byte), not a password", path)
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise InputError(f"cannot read {what} file: not UTF-8 text", path) from None
    return os.environ.get(env)
