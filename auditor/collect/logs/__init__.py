"""Log and queue evidence: what a mail site did, read from its own logs and queue.

``collect_postfix_logs`` reads Postfix logs (files, rotated sets, .gz/.xz, stdin) into one
:class:`~auditor.observations.logs.PostfixLogEvidence`; ``collect_postfix_queue`` reads a
``postqueue -j`` dump (or runs it) into a :class:`~auditor.observations.logs.PostfixQueueSnapshot`.
Both measure; PF-LOG-001 judges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from auditor.collect.logs.files import order_inputs
from auditor.collect.logs.postfix import DEFAULT_LIFETIME, DEFAULT_MAX_OPEN, PostfixLogTracker, Trust
from auditor.collect.logs.queue import collect_postfix_queue
from auditor.collect.logs.syslog import Clock
from auditor.model import InputError
from auditor.observations.logs import PostfixLogEvidence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str, where: str = "--trusted-networks") -> list[Network]:
    """CIDRs / addresses separated by commas or spaces (``[::1]/128`` accepted); a bad one is an error."""
    out: list[Network] = []
    for token in value.replace(",", " ").split():
        t = token
        if t.startswith("[") and "]" in t:
            t = t[1:].replace("]", "", 1)
        try:
            out.append(ipaddress.ip_network(t, strict=False))
        except ValueError:
            raise InputError(f"not a network or address: {token!r}", where) from None
    return out


def networks_from_postfix(directory: str) -> tuple[list[Network], list[str]]:
    """The literal networks of ``mynetworks`` in DIR's main.cf (with Postfix's defaults), and notes.

    Table lookups (``hash:…``) and ``/file`` entries in ``mynetworks`` cannot be expanded here; they
    are named in the notes (pass those networks with ``--trusted-networks``).
    """
    from auditor.collect.postfix import collect

    cfg = collect(directory)
    value = cfg.value("mynetworks")
    nets: list[Network] = []
    notes: list[str] = []
    for token in value.replace(",", " ").split():
        t = token[1:].replace("]", "", 1) if token.startswith("[") and "]" in token else token
        try:
            nets.append(ipaddress.ip_network(t, strict=False))
        except ValueError:
            notes.append(f"mynetworks entry {token!r} in {directory} is not a literal network: not used")
    return nets, notes


def collect_postfix_logs(
    paths: Sequence[str],
    *,
    trusted_networks: Sequence[Network] = (),
    trusted_source: str = "",
    year: int | None = None,
    target: str = "",
    notes: Sequence[str] = (),
    lifetime: int = DEFAULT_LIFETIME,
    max_open: int = DEFAULT_MAX_OPEN,
    now: float | None = None,
) -> PostfixLogEvidence:
    """Read the logs in time order and trace every notification Postfix logged."""
    if not paths:
        raise InputError("no log file given")
    inputs = order_inputs(paths)
    tracker = PostfixLogTracker(
        Trust(trusted_networks), clock=Clock(year=year, now=now), lifetime=lifetime, max_open=max_open
    )
    for inp in inputs:
        tracker.feed(inp)
    trusted = [str(n) for n in trusted_networks]
    return tracker.evidence(
        target=target or _target(paths),
        trusted=trusted,
        trusted_source=trusted_source or "loopback only (no --trusted-networks or --postfix-dir given)",
        notes=notes,
    )


def _target(paths: Sequence[str]) -> str:
    names = ["stdin" if p == "-" else p for p in paths]
    return names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1} more)"


__all__ = [
    "collect_postfix_logs",
    "collect_postfix_queue",
    "networks_from_postfix",
    "parse_networks",
]
