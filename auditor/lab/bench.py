"""A benchmark-only Postfix site: N domains, each with a strict primary MX and an accept-all backup.

Issue 6's probe benchmark needs a site far bigger than the test lab (500 domains × 2 MX), with
Postfix's *default* limits (smtpd_soft_error_limit 10, hard 20, in_flow_delay 1 s, default
smtpd_client_* limits) and no postscreen in front. It lives beside the test lab, never inside it:
its own namespaces and links (prefix ``bsb-``), its own bridge and subnet (198.18.1.0/24), its own
state dir. It reuses the lab's process and Postfix helpers, and holds the lab *session* lock for its
whole life, so no test run brings the test lab up or down (and rewrites /etc/postfix/main.cf) while
a benchmark runs.

Layout: ``bsb-dns`` (dnsmasq or unbound, .10) serves ``bench-0001.test`` … with ``MX 10 mx1.<domain>`` →
.11 and ``MX 20 mx2.<domain>`` → .12; ``bsb-mx1`` is the primary Postfix (relay_recipient_maps
lists postmaster@ and user@ of every domain), ``bsb-mx2`` the backup (relay_domains, no recipient
map: accepts everything, would route to MX 10 by DNS). The prober is the bridge address .1, which is
not in either instance's mynetworks. Probes are RCPT-only, so nothing is ever queued; the primary's
relay transport is ``discard`` so that even a stray DATA could not send mail anywhere.

The DNS server is dnsmasq (the test lab's) by default. dnsmasq keeps ``mx-host`` records in a
list that it walks for every query (measured: 0.12 ms of its CPU per query with 500 domains,
0.33 ms with 2,000, 7.7 ms with 10,000), so for thousands of domains the site can serve its zone
with unbound instead (``dns_server="unbound"``: ``local-data`` in a tree, authoritative, no
recursion). The binary is ``$BSB_UNBOUND`` or ``unbound`` on the PATH (Debian package unbound).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pyroute2 import netns

from auditor.lab import orchestrator, postfix, procs
from auditor.lab import topology as topo
from auditor.lab.netns import pids_in
from auditor.lab.procs import LabError

PREFIX = "bsb-"  # every namespace, link and /etc/netns entry of the bench site
BRIDGE = "bsb-br0"
NET = "198.18.1"  # RFC 2544 benchmarking range, one /24 above the test lab's
PREFIXLEN = 24
PROBER_IP = f"{NET}.1"
DNS_IP = f"{NET}.10"
PRIMARY_IP = f"{NET}.11"
BACKUP_IP = f"{NET}.12"
DEFAULT_STATE_DIR = Path("/run/bsb-bench")
DEFAULT_DOMAINS = 500
SESSION_TIMEOUT = 900.0  # how long to wait for a test run holding the lab session to finish
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
ETC_NETNS = Path("/etc/netns")
# Present while /etc/netns exists only because the bench site made it (survives a crashed run).
ETC_NETNS_MARKER = Path("/run/bsb-bench.etc-netns-created")

# (namespace suffix, address, hostname)
_HOSTS = (("dns", DNS_IP, "ns.bench.test"), ("mx1", PRIMARY_IP, "mx1.bench.test"),
          ("mx2", BACKUP_IP, "mx2.bench.test"))  # fmt: skip


MAX_DOMAINS = 20000


def domain_names(n: int) -> tuple[str, ...]:
    """bench-0001.test … (five digits from 10,000 domains on: bench-00001.test …)."""
    if not 1 <= n <= MAX_DOMAINS:
        raise ValueError(f"domain count {n} out of range 1..{MAX_DOMAINS}")
    width = max(4, len(str(n)))
    return tuple(f"bench-{i:0{width}d}.test" for i in range(1, n + 1))


def control_address(domain: str) -> str:
    """The one known-valid user of each domain (the probe's control besides postmaster@)."""
    return f"user@{domain}"


def primary_host(domain: str) -> str:
    return f"mx1.{domain}"


def backup_host(domain: str) -> str:
    return f"mx2.{domain}"


def dnsmasq_config(state: Path, domains: Sequence[str]) -> str:
    """dnsmasq: authoritative for .test, never forwards; two MX and their A records per domain."""
    lines = [
        "no-resolv",
        "no-hosts",
        "no-poll",
        "bind-interfaces",
        f"listen-address={DNS_IP}",
        f"log-facility={state / 'dnsmasq.log'}",
        "local=/test/",
    ]
    for d in domains:
        lines += [
            f"mx-host={d},{primary_host(d)},10",
            f"mx-host={d},{backup_host(d)},20",
            f"host-record={primary_host(d)},{PRIMARY_IP}",
            f"host-record={backup_host(d)},{BACKUP_IP}",
        ]
    return "\n".join(lines) + "\n"


DNS_SERVERS = ("dnsmasq", "unbound")


def unbound_binary() -> str:
    path = (
        os.environ.get("BSB_UNBOUND") or shutil.which("unbound") or shutil.which("unbound", path="/usr/sbin")
    )
    if not path:
        raise LabError("unbound not found: install the Debian package unbound or set BSB_UNBOUND")
    return path


def unbound_config(state: Path, domains: Sequence[str]) -> str:
    """unbound as an authoritative-only server for .test: the same records as dnsmasq's, and
    nothing else (the root is a static zone too, so no name ever leads to a recursive query)."""
    lines = [
        "server:",
        f"  interface: {DNS_IP}",
        "  port: 53",
        f"  access-control: {NET}.0/{PREFIXLEN} allow",
        '  username: ""',
        '  chroot: ""',
        f'  directory: "{state}"',
        f'  pidfile: "{state / "unbound.pid"}"',
        f'  logfile: "{state / "unbound.log"}"',
        "  use-syslog: no",
        "  verbosity: 0",
        "  num-threads: 1",
        "  do-ip6: no",
        '  module-config: "iterator"',
        "  minimal-responses: yes",
        '  local-zone: "." static',
        '  local-zone: "test." static',
    ]
    for d in domains:
        lines += [
            f'  local-data: "{d}. 60 IN MX 10 {primary_host(d)}."',
            f'  local-data: "{d}. 60 IN MX 20 {backup_host(d)}."',
            f'  local-data: "{primary_host(d)}. 60 IN A {PRIMARY_IP}"',
            f'  local-data: "{backup_host(d)}. 60 IN A {BACKUP_IP}"',
        ]
    return "\n".join(lines) + "\n"


def main_cf(name: str, address: str, paths: postfix.Paths, state: Path, strict: bool) -> str:
    """main.cf of one bench instance. Only site-shape parameters: every limit stays at its default."""
    etc = paths.etc
    params = postfix.instance_params(f"postfix-{PREFIX}{name}", paths, state, address, f"{name}.bench.test")
    params.append(("relay_domains", f"texthash:{etc / 'domains'}"))
    if strict:
        params += [
            ("relay_recipient_maps", f"texthash:{etc / 'recipients'}"),
            ("relay_transport", "discard:bench site delivers nothing"),
        ]
    else:
        params += [("relay_recipient_maps", "")]  # accept all; routes to MX 10 by DNS
    return "".join(f"{k} = {v}\n" for k, v in params)


def recipients_table(domains: Sequence[str]) -> str:
    return postfix.texthash([a for d in domains for a in (f"postmaster@{d}", control_address(d))])


@dataclass(frozen=True)
class BenchInfo:
    """What the running bench site offers to the benchmark."""

    state_dir: str
    nameserver: str
    prober_address: str
    primary_address: str
    backup_address: str
    domains: tuple[str, ...]
    primary_maillog: str
    backup_maillog: str
    bringup_seconds: float
    dns_server: str = "dnsmasq"

    @property
    def controls(self) -> tuple[str, ...]:
        return tuple(control_address(d) for d in self.domains)

    @property
    def maillogs(self) -> tuple[str, str]:
        return self.primary_maillog, self.backup_maillog


# --- Postfix's own view: maillog lines of a time window ------------------------------------------

_DISCONNECT = re.compile(r"disconnect from \S+ (.*?)\s*$")
_COUNT = re.compile(r"(\w+)=(\d+)(?:/(\d+))?")
_CODE_421 = re.compile(r"(?<=[\s:])421(?=[\s-])")  # a reply code, not a pid like smtpd[421]


@dataclass
class MaillogView:
    """What smtpd logged for a window: sessions, errors per session, limit-related events."""

    connects: int = 0
    disconnects: int = 0
    too_many_errors: int = 0  # "too many errors after ..." (smtpd_hard_error_limit reached)
    lines_421: int = 0
    lost_connection: int = 0
    max_errors_per_session: int = 0  # refused commands in one session (disconnect line n/m)
    sessions_at_soft_limit: int = 0  # sessions whose errors reached smtpd_soft_error_limit (sleeps)
    rcpt_ok: int = 0
    rcpt_total: int = 0
    warnings: list[str] = field(default_factory=list)

    def add(self, text: str, soft_limit: int = 10) -> None:
        for line in text.splitlines():
            if "postfix" not in line:
                continue
            if " connect from " in line:
                self.connects += 1
            if "too many errors" in line:
                self.too_many_errors += 1
            if _CODE_421.search(line):
                self.lines_421 += 1
            if "lost connection" in line:
                self.lost_connection += 1
            if ": warning: " in line and len(self.warnings) < 5:
                self.warnings.append(line.split(": warning: ", 1)[1][:200])
            m = _DISCONNECT.search(line)
            if m:
                self.disconnects += 1
                errors = 0
                for name, ok, total in _COUNT.findall(m.group(1)):
                    if name == "commands":
                        continue
                    if total:
                        errors += int(total) - int(ok)
                    if name == "rcpt":
                        self.rcpt_ok += int(ok)
                        self.rcpt_total += int(total or ok)
                self.max_errors_per_session = max(self.max_errors_per_session, errors)
                self.sessions_at_soft_limit += errors >= soft_limit


def wait_quiet(paths: Sequence[Path | str], quiet: float = 0.3, timeout: float = 3.0) -> bool:
    """Wait until the logs stop growing for ``quiet`` s (postlogd writes asynchronously), so a
    window opened next does not catch the tail of what came before. False after ``timeout``."""
    deadline = time.monotonic() + timeout
    sizes = [LogWindow._size(Path(p)) for p in paths]
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = [LogWindow._size(Path(p)) for p in paths]
        if now != sizes:
            sizes, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            return True
    return False


class LogWindow:
    """Byte offsets of the maillogs at the start of a window; :meth:`read` parses what came since."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = [Path(p) for p in paths]
        self.start = [self._size(p) for p in self.paths]

    @staticmethod
    def _size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0

    def text(self) -> str:
        out = []
        for p, off in zip(self.paths, self.start, strict=True):
            with suppress(OSError), open(p, "rb") as fh:
                fh.seek(off)
                out.append(fh.read().decode("utf-8", "replace"))
        return "".join(out)

    def read(self, expect_disconnects: int, timeout: float = 5.0) -> MaillogView:
        """Parse the window once postlogd has written ``expect_disconnects`` disconnect lines
        (it writes asynchronously), or after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            view = MaillogView()
            view.add(self.text())
            if view.disconnects >= expect_disconnects or time.monotonic() >= deadline:
                return view
            time.sleep(0.05)


# --- the site ------------------------------------------------------------------------------------


def _ns(short: str) -> str:
    return PREFIX + short


def bench_namespaces() -> list[str]:
    return sorted(n for n in netns.listnetns() if n.startswith(PREFIX))  # reads /run/netns only


# The plumbing uses `ip` under procs.run rather than pyroute2's IPRoute: on this shared machine an
# IPRoute request once waited forever for its netlink answer (pyroute2 has no per-call timeout),
# and a benchmark must never hang; every `ip` call here is bounded.
def _ip(*argv: str) -> None:
    procs.run(["ip", *argv], 15, "ip " + " ".join(argv))


def _links() -> list[str]:
    out = procs.run(["ip", "-o", "link", "show"], 15, "ip link show")
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.count(":") >= 2]


def _create_network() -> None:
    _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{PROBER_IP}/{PREFIXLEN}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    for short, addr, hostname in _HOSTS:
        name = _ns(short)
        outer, inner = f"{PREFIX}h-{short}", f"{PREFIX}p-{short}"  # < IFNAMSIZ (16)
        _ip("netns", "add", name)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", outer, "master", BRIDGE, "up")
        _ip("link", "set", inner, "netns", name)
        _ip("-n", name, "link", "set", inner, "name", "eth0")
        _ip("-n", name, "addr", "add", f"{addr}/{PREFIXLEN}", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        etc = ETC_NETNS / name  # bind-mounted over /etc/* by `ip netns exec`
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {DNS_IP}\n")
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{addr} {hostname}\n")


def _destroy_network() -> list[str]:
    removed = []
    for name in bench_namespaces():
        _ip("netns", "delete", name)
        removed.append(f"netns {name}")
    if ETC_NETNS.is_dir():
        for entry in ETC_NETNS.iterdir():
            if entry.name.startswith(PREFIX):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(str(entry))
    for name in _links():
        if name.startswith(PREFIX):
            # a veth's host end vanishes by itself once its peer's namespace is gone
            with suppress(LabError):
                _ip("link", "delete", name)
                removed.append(f"link {name}")
    return removed


def leftovers() -> list[str]:
    """What of the bench site's network state exists now."""
    found = [f"netns {n}" for n in bench_namespaces()]
    if ETC_NETNS.is_dir():
        found += [str(e) for e in ETC_NETNS.iterdir() if e.name.startswith(PREFIX)]
    return found + [f"link {n}" for n in _links() if n.startswith(PREFIX)]


class BenchSite:
    """``with BenchSite(n) as info:`` holds the lab session, brings the site up, always tears it down."""

    def __init__(
        self,
        n_domains: int = DEFAULT_DOMAINS,
        state_dir: Path | str | None = None,
        dns_server: str = "dnsmasq",
    ) -> None:
        if dns_server not in DNS_SERVERS:
            raise ValueError(f"dns_server must be one of {DNS_SERVERS}, not {dns_server!r}")
        self.domains = domain_names(n_domains)
        self.state_dir = Path(state_dir) if state_dir is not None else DEFAULT_STATE_DIR
        self.dns_server = dns_server
        self._stack: ExitStack | None = None
        self._dns_pid: int | None = None
        self._dns_marker = dns_server

    @property
    def _instances(self) -> list[tuple[str, str, postfix.Paths, bool]]:
        sd = self.state_dir
        return [
            ("mx1", PRIMARY_IP, postfix.Paths(sd / "postfix-primary"), True),
            ("mx2", BACKUP_IP, postfix.Paths(sd / "postfix-backup"), False),
        ]

    def __enter__(self) -> BenchInfo:
        stack = ExitStack()
        stack.enter_context(orchestrator.session(SESSION_TIMEOUT))
        stack.callback(self._teardown)
        self._stack = stack
        try:
            return self._up()
        except BaseException:
            self._stack = None
            stack.close()
            raise

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def restart_postfix(self) -> float:
        """Stop and start both instances (about 1.5 s); returns the seconds it took.

        Postfix's in_flow_delay tokens are spent by every transaction that gets an accepted
        recipient and come back only when mail is queued, which RCPT-only probes never do: after
        ~100 such transactions an instance sleeps 1 s before each new one, for the rest of its
        life. A restart gives a fresh supply, so each benchmark method meets the same quiet server.
        """
        t0 = time.monotonic()
        instances = [(_ns(short), p) for short, _, p, _ in self._instances]
        left = procs.wait_gone(postfix.stop_all(instances), STOP_TIMEOUT)
        if left:
            raise LabError(f"postfix master(s) {left} did not stop within {STOP_TIMEOUT:g} s")
        postfix.finish([postfix.launch(ns, p) for ns, p in instances])
        missing = procs.wait_tcp([(PRIMARY_IP, 25), (BACKUP_IP, 25)], READY_TIMEOUT)
        if missing:
            raise LabError(f"bench Postfix not listening after restart: {missing}")
        wait_quiet([p.maillog for _, p in instances])
        return time.monotonic() - t0

    def down(self) -> list[str]:
        """Tear down whatever a crashed or killed run left (under the lab session lock)."""
        with orchestrator.session(SESSION_TIMEOUT):
            return self._teardown()

    def _up(self) -> BenchInfo:
        t0 = time.monotonic()
        self._teardown()  # whatever a crashed run left
        sd = self.state_dir
        shutil.rmtree(sd, ignore_errors=True)
        sd.mkdir(parents=True)
        os.chmod(sd, 0o755)  # Postfix (user postfix) must reach its queue
        if not ETC_NETNS.exists():
            ETC_NETNS.mkdir(parents=True)
            ETC_NETNS_MARKER.touch()
        _create_network()  # raises LabError naming the failing `ip` command
        try:
            stock = postfix.STOCK_MASTER_CF.read_text()
        except OSError as exc:
            raise LabError(f"{postfix.STOCK_MASTER_CF}: {exc.strerror} (is postfix installed?)") from None
        for short, addr, paths, strict in self._instances:
            paths.etc.mkdir(parents=True)
            paths.queue.mkdir(parents=True)
            (paths.etc / "main.cf").write_text(main_cf(short, addr, paths, sd, strict))
            # The stock master.cf with one plain smtpd on our address (no postscreen in front).
            inst = topo.PostfixInstance(f"bench-{short}", short, "", (topo.Listener(addr, short),), strict)
            (paths.etc / "master.cf").write_text(postfix.master_cf(inst, stock))
            (paths.etc / "domains").write_text(postfix.texthash(self.domains))
            if strict:
                (paths.etc / "recipients").write_text(recipients_table(self.domains))
            postfix.backdate(*paths.etc.iterdir())
            procs.run(["postconf", "-c", str(paths.etc), "-F", "*/*/chroot = n"], 15, "postconf")
            postfix.backdate(paths.etc / "master.cf")
        postfix.authorize([p.etc for _, _, p, _ in self._instances], sd / "main.cf.backup")
        starting = [postfix.launch(_ns(short), paths) for short, _, paths, _ in self._instances]
        try:
            if self.dns_server == "unbound":
                conf = sd / "unbound.conf"
                conf.write_text(unbound_config(sd, self.domains))
                argv = [unbound_binary(), "-d", "-c", str(conf)]
            else:
                conf = sd / "dnsmasq.conf"
                conf.write_text(dnsmasq_config(sd, self.domains))
                argv = ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"]
            self._dns_pid = procs.spawn(procs.in_netns(_ns("dns"), argv), sd / f"{self.dns_server}.out")
        finally:
            postfix.finish(starting)
        missing = procs.wait_tcp([(DNS_IP, 53), (PRIMARY_IP, 25), (BACKUP_IP, 25)], READY_TIMEOUT)
        if missing:
            raise LabError(f"bench site not listening: {missing} (logs under {sd})")
        wait_quiet([p.maillog for _, _, p, _ in self._instances])
        return BenchInfo(
            state_dir=str(sd),
            nameserver=DNS_IP,
            prober_address=PROBER_IP,
            primary_address=PRIMARY_IP,
            backup_address=BACKUP_IP,
            domains=self.domains,
            primary_maillog=str(self._instances[0][2].maillog),
            backup_maillog=str(self._instances[1][2].maillog),
            bringup_seconds=round(time.monotonic() - t0, 3),
            dns_server=self.dns_server,
        )

    def _teardown(self) -> list[str]:
        """Stop Postfix and DNS, kill what is left in bsb- namespaces, remove them, restore main.cf."""
        done: list[str] = []
        live = set(bench_namespaces())
        instances = [(_ns(short), p) for short, _, p, _ in self._instances]
        masters = postfix.stop_all([(ns, p) for ns, p in instances if ns in live])
        if masters:
            done.append(f"postfix stop ({len(masters)} instance(s))")
        pids = list(masters)
        if self._dns_pid is not None and procs.signal_pid(self._dns_pid, self._dns_marker):
            pids.append(self._dns_pid)
        self._dns_pid = None
        left = procs.wait_gone(pids, STOP_TIMEOUT)
        if left:
            procs.kill_all(left, 2.0)
            done.append(f"killed stubborn pid(s) {left}")
        stray = [p for ns in bench_namespaces() for p in pids_in(ns)]
        if stray:
            procs.kill_all(stray, STOP_TIMEOUT)
            done.append(f"killed {len(stray)} leftover process(es)")
        done += _destroy_network()
        if postfix.restore(self.state_dir / "main.cf.backup"):
            done.append(f"restored {postfix.DEFAULT_MAIN_CF}")
        if ETC_NETNS_MARKER.exists():
            with suppress(OSError):  # not empty: someone else's namespaces have entries there now
                ETC_NETNS.rmdir()
            ETC_NETNS_MARKER.unlink(missing_ok=True)
        return done


def iter_targets(info: BenchInfo) -> Iterator[tuple[str, str, bool]]:
    """(domain, MX address, is_primary) for every domain and both of its MX."""
    for d in info.domains:
        yield d, info.primary_address, True
        yield d, info.backup_address, False
