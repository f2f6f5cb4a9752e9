"""Bring the lab up and down: namespaces, dnsmasq, slapd, the sink, the greylist policy, Postfix.

Bounded (every wait has a timeout), idempotent (``up`` first clears what a crashed run left;
``down`` with nothing up is a no-op) and thorough (each daemon is stopped by its pid, Postfix with
``postfix stop`` in its namespace, then whatever still runs inside a ``bsa-`` namespace is killed
before the namespaces go). The lab is one per machine (namespace names are fixed), so a file lock
serialises ``up``/``down`` and ``/run/bsa-lab.active`` names the state dir of the running lab.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from pyroute2 import NetlinkError

from auditor.lab import dns, hardened, netns, postfix, procs
from auditor.lab import topology as topo
from auditor.lab.info import Endpoint, LabInfo, LdapInfo, PostfixInfo
from auditor.lab.procs import LabError

DEFAULT_STATE_DIR = Path("/run/bsa-lab")
LOCK_FILE = Path("/run/bsa-lab.lock")
SESSION_LOCK_FILE = Path("/run/bsa-lab.session.lock")
ACTIVE_FILE = Path("/run/bsa-lab.active")
LOCK_TIMEOUT = 120.0
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
LDAP_SUFFIX = "dc=example,dc=test"
LDAP_QUERY = "(|(mail=%s)(mailLocalAddress=%s)(mailAlternateAddress=%s)(proxyAddresses=smtp:%s))"
_PKG_ROOT = Path(__file__).resolve().parents[2]  # so `python -m auditor.lab.*` works in a namespace

_DAEMON_LOGS = {"dnsmasq": "dns/dnsmasq.out", "sink": "sink/sink.log", "greylist": "greylist/greylist.log"}

# Markers that must appear in a recorded pid's command line before it is signalled (pids get reused).
_MARKERS = {
    "dnsmasq": "dnsmasq",
    "sink": "auditor.lab.sink_process",
    "greylist": "auditor.lab.greylist",
    "slapd": "slapd",
}


def default_state_dir() -> Path:
    return Path(os.environ.get("BSA_LAB_DIR") or DEFAULT_STATE_DIR)


@contextmanager
def _flock(path: Path, timeout: float, holder: str) -> Iterator[None]:
    """Exclusive lock on ``path``, polled so that the wait is bounded (never a hang)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LabError(f"{holder} holds {path} (waited {timeout:.0f} s)") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _locked(timeout: float = LOCK_TIMEOUT) -> AbstractContextManager[None]:
    """Machine-wide lock around one up/down."""
    return _flock(LOCK_FILE, timeout, "another lab operation")


_session_depth = 0  # > 0 while this process holds the session lock


@contextmanager
def session(timeout: float) -> Iterator[None]:
    """Hold the lab for a whole session (a test run, the demo).

    While one process holds it, ``up``/``down`` from any other process (``lab up``, a second test
    run) wait up to their timeout and then fail, instead of tearing down a lab that is in use.
    """
    global _session_depth
    if _session_depth:
        yield
        return
    with _flock(SESSION_LOCK_FILE, timeout, "another session using the lab"):
        _session_depth += 1
        try:
            yield
        finally:
            _session_depth -= 1


def _own_session() -> AbstractContextManager[None]:
    """For one up/down outside any session: fail at once if another process holds the lab."""
    return session(timeout=0)


def _check_traversable(path: Path) -> None:
    """Postfix daemons (user postfix) must reach their queue: every ancestor needs o+x."""
    for p in [path, *path.parents]:
        try:
            mode = p.stat().st_mode
        except OSError:
            continue
        if not mode & stat.S_IXOTH:
            raise LabError(
                f"{p} is not world-searchable (mode {stat.filemode(mode)}): Postfix could not reach "
                f"its queue under {path}; choose another BSA_LAB_DIR"
            )


class Lab:
    """The lab site. ``with Lab() as info: ...`` brings it up and always tears it down."""

    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self._slapd: Any = None  # auditor.lab.slapd.Slapd while this process runs it
        self.info: LabInfo | None = None

    # --- paths -----------------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def info_file(self) -> Path:
        return self.state_dir / "lab.json"

    def _pf_paths(self, inst: topo.PostfixInstance) -> postfix.Paths:
        return postfix.Paths(self.state_dir / f"postfix-{inst.name}")

    @property
    def _hardened_paths(self) -> postfix.Paths:
        return postfix.Paths(self.state_dir / f"postfix-{hardened.NAME}")

    # --- up --------------------------------------------------------------------------------------
    def up(self) -> LabInfo:
        """Bring the whole lab up and return what it offers; on any failure, tear it down and raise."""
        t0 = time.monotonic()
        with _own_session(), _locked():
            self._teardown_locked()
            try:
                info = self._up_locked(t0)
            except BaseException:
                self._teardown_locked()
                raise
        self.info = info
        return info

    def _up_locked(self, t0: float) -> LabInfo:
        sd = self.state_dir
        phases: dict[str, float] = {"cleanup": round(time.monotonic() - t0, 3)}

        def mark(name: str) -> None:
            phases[name] = round(time.monotonic() - t0, 3)

        sd.mkdir(parents=True, exist_ok=True)
        os.chmod(sd, 0o755)
        _check_traversable(sd)
        for sub in (
            "dns",
            "sink",
            "greylist",
            "ldap",
            *(f"postfix-{i.name}" for i in topo.POSTFIX_INSTANCES),
            f"postfix-{hardened.NAME}",
        ):
            shutil.rmtree(sd / sub, ignore_errors=True)
            (sd / sub).mkdir()
        state: dict[str, Any] = {
            "pids": {},
            "postfix": [
                *([topo.host(i.host).netns, str(self._pf_paths(i).base)] for i in topo.POSTFIX_INSTANCES),
                [topo.host(hardened.HOST).netns, str(self._hardened_paths.base)],
            ],
        }
        self._save_state(state)
        ACTIVE_FILE.write_text(str(sd.resolve()) + "\n")

        try:
            procs.bounded(netns.create, 60, "creating the lab's network namespaces")
        except (OSError, NetlinkError) as exc:
            raise LabError(f"cannot create the lab network (namespaces, veths, bridge): {exc}") from None
        mark("netns")
        # Postfix first: its start (postfix-script checks, master -w) overlaps the other daemons.
        greylist_sock = sd / "greylist" / "policy.sock"
        ldap_cf = sd / "postfix-strict" / "ldap-recipients.cf"
        static = sd / "postfix-strict" / "recipients"
        recipients = f"ldap:{ldap_cf}, texthash:{static}"
        for inst in topo.POSTFIX_INSTANCES:
            postfix.write_instance(inst, self._pf_paths(inst), sd, greylist_sock, recipients)
        static.write_text(
            postfix.texthash([r for s in topo.SCENARIOS if s.in_scope for r in s.valid_recipients])
        )
        hardened.write(self._hardened_paths, sd)
        # result_attribute objectClass: every entry has one (AD-like users may lack `mail`), and
        # relay_recipient_maps only asks whether the address exists.
        ldap_cf.write_text(
            f"server_host = ldap://{topo.LDAP_IP}:{topo.LDAP_PORT}\nversion = 3\n"
            f"search_base = {LDAP_SUFFIX}\nquery_filter = {LDAP_QUERY}\n"
            "result_attribute = objectClass\ntimeout = 5\n"
        )
        postfix.backdate(static, ldap_cf)
        postfix.authorize(
            [*(self._pf_paths(i).etc for i in topo.POSTFIX_INSTANCES), self._hardened_paths.etc],
            sd / "main.cf.backup",
        )
        mark("configs")
        starting = [
            *(postfix.launch(topo.host(i.host).netns, self._pf_paths(i)) for i in topo.POSTFIX_INSTANCES),
            postfix.launch(topo.host(hardened.HOST).netns, self._hardened_paths),
        ]
        try:
            env = dict(os.environ, PYTHONPATH=str(_PKG_ROOT))
            conf = sd / "dns" / "dnsmasq.conf"
            conf.write_text(dns.config(sd / "dns"))
            state["pids"]["dnsmasq"] = procs.spawn(
                procs.in_netns(topo.host("dns").netns, dns.command(conf)), sd / "dns" / "dnsmasq.out"
            )
            sink = [
                f"bounces={topo.SINK_IP}:{topo.SINK_BOUNCE_PORT}:bounces",
                f"inbox={topo.SINK_IP}:{topo.SINK_INBOX_PORT}:inbox",
            ]
            state["pids"]["sink"] = procs.spawn(
                procs.in_netns(
                    topo.host("sink").netns,
                    [sys.executable, "-m", "auditor.lab.sink_process", "--dir", str(sd / "sink"), *sink],
                ),
                sd / "sink" / "sink.log",
                env,
            )
            state["pids"]["greylist"] = procs.spawn(
                procs.in_netns(
                    topo.host("mx1").netns,
                    [sys.executable, "-m", "auditor.lab.greylist", "--socket", str(greylist_sock),
                     "--delay", str(topo.GREYLIST_DELAY_S)],
                ),
                sd / "greylist" / "greylist.log",
                env,
            )  # fmt: skip
            self._save_state(state)
            mark("dnsmasq+sink+greylist spawned")
            ldap = self._start_slapd(state)
            mark("slapd ready")
            self._save_state(state)
        finally:
            postfix.finish(starting)
            mark("postfix started")

        endpoints = [
            (topo.DNS_IP, topo.DNS_PORT),
            (topo.SINK_IP, topo.SINK_BOUNCE_PORT),
            (topo.SINK_IP, topo.SINK_INBOX_PORT),
            (topo.LDAP_IP, topo.LDAP_PORT),
            *((lst.address, 25) for i in topo.POSTFIX_INSTANCES for lst in i.listeners),
            *((a, 25) for a in hardened.addresses()),
        ]
        missing = self._wait_listening(endpoints, state, t0)
        if not procs.wait_unix(greylist_sock, max(0.5, READY_TIMEOUT - (time.monotonic() - t0))):
            missing.append((str(greylist_sock), 0))
        if missing:
            raise LabError(
                "not listening after start: " + ", ".join(f"{h}:{p}" for h, p in missing) + self._logs_hint()
            )
        mark("all listening")
        info = self._info(ldap, time.monotonic() - t0, phases)
        self.info_file.write_text(info.to_json())
        return info

    def _wait_listening(
        self, endpoints: list[tuple[str, int]], state: dict[str, Any], t0: float
    ) -> list[tuple[str, int]]:
        """Poll until every endpoint accepts; fail at once (with its log) if a daemon has died."""
        missing = endpoints
        while missing and time.monotonic() - t0 < READY_TIMEOUT:
            missing = procs.wait_tcp(missing, 0.5)
            for name, pid in state["pids"].items():
                if missing and not procs.alive(pid):
                    log = self.state_dir / _DAEMON_LOGS.get(name, "")
                    tail = log.read_text(errors="replace")[-300:].strip() if log.is_file() else ""
                    raise LabError(f"{name} exited during start-up: {tail or 'no output'}")
        return missing

    def _start_slapd(self, state: dict[str, Any]) -> LdapInfo:
        from auditor.lab import ldap_data
        from auditor.lab.slapd import Slapd, SlapdError

        secret = secrets.token_urlsafe(18)
        secret_file = self.state_dir / "ldap" / "bind.secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret)
        tree = ldap_data.ad_tree(LDAP_SUFFIX)
        slapd = Slapd(
            self.state_dir / "ldap",
            LDAP_SUFFIX,
            netns=topo.host("ldap").netns,
            host=topo.LDAP_IP,
            port=topo.LDAP_PORT,
            tls_port=636,
            password=secret,
            reader_password=secrets.token_urlsafe(18),
            cert_names=(topo.host("ldap").hostname, topo.LDAP_IP),
        )
        try:
            slapd.load(tree.ldif)
            state["slapd_sockdir"] = os.path.dirname(slapd.ldapi_path)
            slapd.start(timeout=READY_TIMEOUT)
        except SlapdError as exc:
            slapd.cleanup()
            raise LabError(f"slapd: {exc}") from None
        self._slapd = slapd
        state["pids"]["slapd"] = slapd.pid
        domain = tree.domains[0]
        return LdapInfo(
            url=slapd.url,
            ldaps_url=slapd.ldaps_url,
            suffix=LDAP_SUFFIX,
            bind_dn=slapd.root_dn,
            secret_file=str(secret_file),
            ca_file=str(slapd.ca_file),
            netns=topo.host("ldap").netns,
            domain=domain,
            valid_recipients=tuple(sorted(tree.expected[domain])),
            known_valid=tree.known_valid,
            alias=tree.alias,
        )

    def _info(self, ldap: LdapInfo | None, seconds: float, phases: dict[str, float]) -> LabInfo:
        sd = self.state_dir
        pf = tuple(
            PostfixInfo(
                name=i.name,
                netns=topo.host(i.host).netns,
                config_dir=str(self._pf_paths(i).etc),
                queue_dir=str(self._pf_paths(i).queue),
                maillog=str(self._pf_paths(i).maillog),
                addresses=tuple(lst.address for lst in i.listeners),
                scenarios=tuple(lst.scenario for lst in i.listeners),
            )
            for i in topo.POSTFIX_INSTANCES
        )
        hp = self._hardened_paths
        hardened_info = PostfixInfo(
            name=hardened.NAME,
            netns=topo.host(hardened.HOST).netns,
            config_dir=str(hp.etc),
            queue_dir=str(hp.queue),
            maillog=str(hp.maillog),
            addresses=hardened.addresses(),
            scenarios=hardened.SCENARIOS,
        )
        return LabInfo(
            state_dir=str(sd),
            nameserver=Endpoint(topo.DNS_IP, topo.DNS_PORT),
            prober_address=topo.PROBER_IP,
            sink_domain=topo.SINK_DOMAIN,
            probe_prefix=topo.PROBE_LOCAL_PREFIX,
            sink_bounces=Endpoint(topo.SINK_IP, topo.SINK_BOUNCE_PORT),
            sink_inbox=Endpoint(topo.SINK_IP, topo.SINK_INBOX_PORT),
            bounce_maildir=str(sd / "sink" / "bounces"),
            sink_token_dir=str(sd / "sink" / "tokens"),
            inbox_maildir=str(sd / "sink" / "inbox"),
            greylist_delay_s=topo.GREYLIST_DELAY_S,
            domains=topo.SCENARIOS,
            postfix=pf,
            ldap=ldap,
            bringup_seconds=round(seconds, 3),
            phases=phases,
            hardened=hardened_info,
        )

    def _logs_hint(self) -> str:
        return f" (logs under {self.state_dir})"

    # --- down ------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop everything and remove the network state; returns what had to be cleaned up."""
        with _own_session(), _locked():
            return self._teardown_locked()

    def _teardown_locked(self) -> list[str]:
        done: list[str] = []
        dirs = {self.state_dir.resolve()} if self.state_dir.exists() else set()
        with suppress(OSError):
            dirs.add(Path(ACTIVE_FILE.read_text().strip()))
        for sd in sorted(dirs):
            done += self._stop_daemons(sd)
        # Anything still inside a lab namespace is ours by construction (orphans of a crashed run).
        stray = [p for ns in netns.lab_namespaces() for p in netns.pids_in(ns)]
        if stray:
            procs.kill_all(stray, STOP_TIMEOUT)
            done.append(f"killed {len(stray)} leftover process(es) in lab namespaces")
        done += procs.bounded(netns.destroy, 60, "removing the lab's network namespaces")
        for sd in sorted(dirs):
            state = self._load_state(sd)
            if postfix.restore(sd / "main.cf.backup"):
                done.append(f"restored {postfix.DEFAULT_MAIN_CF}")
            if state.get("slapd_sockdir"):
                shutil.rmtree(state["slapd_sockdir"], ignore_errors=True)
            for f in ("state.json", "lab.json"):
                (sd / f).unlink(missing_ok=True)
        ACTIVE_FILE.unlink(missing_ok=True)
        self.info = None
        return done

    def _stop_daemons(self, sd: Path) -> list[str]:
        state = self._load_state(sd)
        done: list[str] = []
        instances = [(ns, postfix.Paths(Path(base))) for ns, base in state.get("postfix", [])]
        masters = postfix.stop_all([(ns, p) for ns, p in instances if netns.netns_inode(ns) is not None])
        if masters:
            done.append(f"postfix stop ({len(masters)} instance(s))")
        pids = list(masters)
        # A master whose namespace is already gone (crash mid-teardown) cannot run `postfix stop`:
        # SIGTERM to the master ends its children too.
        for ns, p in instances:
            pid = postfix.master_pid(p)
            if pid is not None and netns.netns_inode(ns) is None and procs.signal_pid(pid, "master"):
                pids.append(pid)
                done.append(f"orphan postfix master (pid {pid}) stopped")
        if self._slapd is not None:
            self._slapd.cleanup()
            self._slapd = None
            done.append("slapd stopped")
        for name, pid in state.get("pids", {}).items():
            if isinstance(pid, int) and procs.signal_pid(pid, _MARKERS.get(name, name)):
                pids.append(pid)
                done.append(f"{name} (pid {pid}) stopped")
        left = procs.wait_gone(pids, STOP_TIMEOUT)
        if left:
            procs.kill_all(left, 2.0)
            done.append(f"killed stubborn pid(s) {left}")
        return done

    # --- status ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What runs now: components with pid/liveness/listening, and any leftovers of the lab."""
        info: LabInfo | None = None
        try:
            info = LabInfo.load(self.info_file)
        except (OSError, ValueError, TypeError, KeyError):
            info = None
        state = self._load_state(self.state_dir)
        comps: list[dict[str, Any]] = []
        for name, pid in state.get("pids", {}).items():
            comps.append({"name": name, "pid": pid, "running": isinstance(pid, int) and procs.alive(pid)})
        for ns, base in state.get("postfix", []):
            pid = postfix.master_pid(postfix.Paths(Path(base)))
            comps.append({"name": f"postfix {Path(base).name}", "pid": pid, "running": pid is not None,
                          "netns": ns})  # fmt: skip
        listening: dict[str, bool] = {}
        if info is not None:
            eps = [(e.host, e.port) for e in (info.nameserver, info.sink_bounces, info.sink_inbox)]
            eps += [(a, 25) for p in info.postfix for a in p.addresses]
            if info.hardened is not None:
                eps += [(a, 25) for a in info.hardened.addresses]
            if info.ldap is not None:
                eps.append((topo.LDAP_IP, topo.LDAP_PORT))
            down = set(procs.wait_tcp(eps, 0.5))
            listening = {f"{h}:{p}": (h, p) not in down for h, p in eps}
        leftovers = netns.leftovers()
        up = info is not None and all(c["running"] for c in comps) and all(listening.values())
        try:
            active: str | None = ACTIVE_FILE.read_text().strip() or None
        except OSError:
            active = None
        return {
            "up": up,
            "state_dir": str(self.state_dir),
            "active_state_dir": active,  # the state dir of the lab that runs now, if any
            "components": comps,
            "listening": listening,
            "network": leftovers,
            "info": json.loads(info.to_json()) if info is not None else None,
        }

    # --- state file ------------------------------------------------------------------------------
    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self._state_file)

    @staticmethod
    def _load_state(sd: Path) -> dict[str, Any]:
        try:
            data = json.loads((sd / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # --- context manager -------------------------------------------------------------------------
    def __enter__(self) -> LabInfo:
        return self.up()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()
