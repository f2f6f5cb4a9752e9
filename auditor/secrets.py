"""Passwords come from a file or an environment variable — never from site.toml or argv, where
``ps``, shell history and reports would show them — and are read in one place."""

from __future__ import annotations

import os

from auditor.model import InputError


def read_secret(path: str | None, env: str, what: str = "password") -> str | None:
    """The first line of ``path`` if given, else the environment variable ``env`` (None if unset).

    A named file that cannot be read is an :class:`InputError` naming the file, not a silent
    anonymous bind.
    """
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InputError(f"cannot read {what} file: {reason}", path) from None
    return os.environ.get(env)
