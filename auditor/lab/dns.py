"""The lab's DNS: a dnsmasq configuration generated from :mod:`auditor.lab.topology`."""

from __future__ import annotations

from pathlib import Path

from auditor.lab import topology as topo


def records() -> list[str]:
    """dnsmasq directives for every lab zone (authoritative for .test and the lab's reverse zone)."""
    lines = ["local=/test/", "local=/0.18.198.in-addr.arpa/"]
    hosts: dict[str, str] = {h.hostname: h.addresses[0] for h in topo.HOSTS}
    for s in topo.SCENARIOS:
        if s.dns_kind == "null-mx":
            # RFC 7505 "MX 0 .": dnsmasq's mx-host cannot name the root, so the RDATA is given raw
            # (type 15; preference 0x0000, then the root label 0x00).
            lines.append(f"dns-rr={s.domain},15,000000")
            continue
        for mx in s.mx:
            if s.dns_kind == "implicit-mx":
                hosts[s.domain] = mx.address
            else:
                lines.append(f"mx-host={s.domain},{mx.host},{mx.preference}")
                hosts[mx.host] = mx.address
    # The prober's vantage addresses (forward and reverse) and the DNSBL listing the listed ones:
    # an A record 127.0.0.2 plus a TXT reason, as public blocklists answer.
    hosts.update({v.hostname: v.address for v in topo.VANTAGES})
    lines += [f"host-record={name},{addr}" for name, addr in hosts.items()]
    for v in topo.VANTAGES:
        if v.listed:
            name = topo.dnsbl_name(v.address)
            lines += [f"host-record={name},{topo.DNSBL_ANSWER}", f'txt-record={name},"{topo.DNSBL_TEXT}"']
    return lines


def config(state: Path) -> str:
    return (
        "\n".join(
            [
                "no-resolv",  # never forward: the lab has no upstream and must not leak queries
                "no-hosts",
                "no-poll",
                "bind-interfaces",
                f"listen-address={topo.DNS_IP}",
                f"port={topo.DNS_PORT}",
                f"log-facility={state / 'dnsmasq.log'}",
                "log-queries",
                *records(),
            ]
        )
        + "\n"
    )


def command(conf: Path) -> list[str]:
    # In the foreground so the lab holds its pid directly (no pid-file race).
    return ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"]
