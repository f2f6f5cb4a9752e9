"""Vantage check: from which source address would we reach an MX, and does the site trust it?

A probe sent from inside the MX's trusted networks (Postfix ``mynetworks``) is answered like a
trusted client (relay allowed, fewer checks), so it proves nothing about what the Internet sees.
pyroute2 is an optional, Linux-only dependency; without it the kernel is asked through a UDP
socket's ``connect`` (which sends no packet).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

from auditor.model import InputError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(specs: Iterable[str], origin: str = "--trusted-network") -> list[Network]:
    """CIDR strings → networks; a bad one is an InputError naming where it came from."""
    out: list[Network] = []
    for spec in specs:
        try:
            out.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise InputError(f"not a network: {spec!r}", origin) from None
    return out


def networks_from_mynetworks(value: str) -> list[Network]:
    """The literal CIDRs of a Postfix ``mynetworks`` value (table lookups and names are skipped)."""
    out: list[Network] = []
    for token in value.replace(",", " ").split():
        token = token.strip()
        if token.startswith("[") and "]" in token:  # [::1]/128 form
            token = token[1:].replace("]", "", 1)
        try:
            out.append(ipaddress.ip_network(token, strict=False))
        except ValueError:
            continue
    return out


def _route_source(dst: str) -> str:
    try:
        from pyroute2 import IPRoute
    except ImportError:
        return ""
    try:
        with IPRoute() as ipr:
            routes = ipr.route("get", dst=dst)
            for r in routes:
                src = r.get_attr("RTA_PREFSRC")
                if src:
                    return str(src)
    except Exception:  # netlink errors vary by kernel; fall back to the socket method
        return ""
    return ""


def _socket_source(dst: str, port: int) -> str:
    family = socket.AF_INET6 if ipaddress.ip_address(dst).version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((dst, port))  # UDP connect only asks the kernel for a route; nothing is sent
            return str(s.getsockname()[0])
    except OSError:
        return ""


def source_address(dst: str, port: int = 25, configured: str = "") -> str:
    """The source address the kernel would use toward ``dst`` (or the configured one)."""
    if configured:
        return configured
    return _route_source(dst) or _socket_source(dst, port)


def trusted(source: str, networks: Sequence[Network]) -> Network | None:
    """The trusted network that contains ``source``, if any."""
    if not source:
        return None
    try:
        ip = ipaddress.ip_address(source)
    except ValueError:
        return None
    return next((n for n in networks if ip.version == n.version and ip in n), None)
