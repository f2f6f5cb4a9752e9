"""Argument types shared by the commands: numbers checked against the same limits as site.toml."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from auditor.config import range_error
from auditor.model import InputError


def limited(section: str, key: str, kind: type[float] | type[int] = float) -> Callable[[str], float]:
    """An argparse type for the setting ``section.key``: a finite number within its limits."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not {'an integer' if kind is int else 'a number'}: {text!r}"
            ) from None
        why = range_error(value, section, key)
        if why:
            raise argparse.ArgumentTypeError(f"{why}, not {text!r}")
        return value

    return parse


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in [lo, hi] (options with no site.toml counterpart, e.g. the sink's limits)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, not {text!r}")
        return value

    return parse


def bounded_float(lo: float, hi: float) -> Callable[[str], float]:
    """A finite number in (lo, hi]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not lo < value <= hi:  # also false for NaN
            raise argparse.ArgumentTypeError(f"must be more than {lo:g} and at most {hi:g}, not {text!r}")
        return value

    return parse


def check_output(path: str | None, what: str = "report") -> None:
    """Before any work: the output's directory must exist (a typo must not cost a whole audit)."""
    if not path or path == "-":
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"no such directory {directory!r} to write the {what} into", path)
    if os.path.isdir(path):
        raise InputError(f"is a directory, not a {what} file", path)
