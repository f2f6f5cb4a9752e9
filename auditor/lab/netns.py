"""Network plumbing of the lab with pyroute2: a bridge in the root namespace, one namespace per host.

Each namespace gets a veth into the bridge, its addresses, ``lo`` up, and *no* default route, so a
daemon inside can reach only 198.18.0.0/24. ``/etc/netns/<ns>/resolv.conf`` points at the lab DNS:
``ip netns exec`` bind-mounts it over /etc/resolv.conf, so the MTAs resolve through dnsmasq without
any change to the host's resolver.
"""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from pathlib import Path

from pyroute2 import IPRoute, NetlinkError, NetNS, netns

from auditor.lab import topology as topo

ETC_NETNS = Path("/etc/netns")
# Present while /etc/netns exists only because the lab made it (kept outside any state dir, so that
# a run whose bookkeeping was lost still removes it).
ETC_NETNS_MARKER = Path("/run/bsa-lab.etc-netns-created")
RUN_NETNS = Path("/run/netns")
_ENODEV = 19
_EEXIST = 17


def _veth_names(h: topo.Host) -> tuple[str, str]:
    # IFNAMSIZ is 16: "bsa-h-" + name stays well below.
    return f"{topo.PREFIX}h-{h.name}", f"{topo.PREFIX}p-{h.name}"


def lab_namespaces() -> list[str]:
    return sorted(n for n in netns.listnetns() if n.startswith(topo.PREFIX))


def create(hosts: tuple[topo.Host, ...] = topo.HOSTS) -> None:
    """Create the bridge (PROBER_IP and the vantage addresses) and every host namespace; fails if any
    of it already exists."""
    if not ETC_NETNS.exists():
        ETC_NETNS.mkdir(parents=True)
        ETC_NETNS_MARKER.touch()
    with IPRoute() as ipr:
        ipr.link("add", ifname=topo.BRIDGE, kind="bridge")
        br = ipr.link_lookup(ifname=topo.BRIDGE)[0]
        ipr.addr("add", index=br, address=topo.PROBER_IP, prefixlen=topo.PREFIXLEN)
        # Secondary addresses: the kernel keeps choosing PROBER_IP as the source unless one is bound.
        for v in topo.VANTAGES:
            ipr.addr("add", index=br, address=v.address, prefixlen=topo.PREFIXLEN)
        ipr.link("set", index=br, state="up")
        for h in hosts:
            netns.create(h.netns)
            outer, inner = _veth_names(h)
            ipr.link("add", ifname=outer, kind="veth", peer=inner)
            ipr.link("set", index=ipr.link_lookup(ifname=outer)[0], master=br, state="up")
            ipr.link("set", index=ipr.link_lookup(ifname=inner)[0], net_ns_fd=h.netns)
            with NetNS(h.netns) as ns:
                idx = ns.link_lookup(ifname=inner)[0]
                ns.link("set", index=idx, ifname="eth0")
                for addr in h.addresses:
                    ns.addr("add", index=idx, address=addr, prefixlen=topo.PREFIXLEN)
                ns.link("set", index=idx, state="up")
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            etc = ETC_NETNS / h.netns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(f"nameserver {topo.DNS_IP}\n")
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{h.addresses[0]} {h.hostname}\n")


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(RUN_NETNS / name).st_ino
    except OSError:
        return None


def pids_in(name: str) -> list[int]:
    """Processes whose network namespace is ``name`` (what ``ip netns pids`` does, without a fork)."""
    ino = netns_inode(name)
    if ino is None:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/net").st_ino == ino:
                found.append(int(entry.name))
        except OSError:  # exited meanwhile, or a kernel thread
            continue
    return found


def destroy() -> list[str]:
    """Remove every bsa- namespace, /etc/netns/bsa-* entry, veth and the bridge. Returns what it removed."""
    removed = []
    for name in lab_namespaces():
        netns.remove(name)
        removed.append(f"netns {name}")
    if ETC_NETNS.is_dir():
        for entry in ETC_NETNS.iterdir():
            if entry.name.startswith(topo.PREFIX):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(str(entry))
    if ETC_NETNS_MARKER.exists():
        with suppress(OSError):  # not empty: someone else's namespaces have entries there now
            ETC_NETNS.rmdir()
            removed.append(str(ETC_NETNS))
        ETC_NETNS_MARKER.unlink(missing_ok=True)
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if not name.startswith(topo.PREFIX):
                continue
            try:  # a veth's host end vanishes by itself once its peer's namespace is gone
                ipr.link("del", index=link["index"])
                removed.append(f"link {name}")
            except NetlinkError as exc:
                if exc.code != _ENODEV:
                    raise
    return removed


def leftovers() -> list[str]:
    """What of the lab's network state exists now (namespaces, links, /etc/netns entries)."""
    found = [f"netns {n}" for n in lab_namespaces()]
    if ETC_NETNS.is_dir():
        found += [str(e) for e in ETC_NETNS.iterdir() if e.name.startswith(topo.PREFIX)]
    with IPRoute() as ipr:
        found += [
            f"link {n}"
            for link in ipr.get_links()
            if (n := link.get_attr("IFLA_IFNAME") or "").startswith(topo.PREFIX)
        ]
    return found
