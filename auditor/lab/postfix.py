"""Lab Postfix instances: private config/queue/data dirs, started inside their namespace.

Recipe and pitfalls: shared lab.md §2. The queue dir is a sibling of the config dir (a queue inside
it trips postfix-script's ownership checks); chroot is off (no resolv.conf copies); logs go to a
``maillog_file``; ``postfix -c DIR`` needs DIR in the default instance's
``alternate_config_directories``; ``postfix start`` reports errors only to a TTY, hence ``script``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.lab import topology as topo
from auditor.lab.procs import LabError, alive, in_netns, read_pidfile, run

DEFAULT_MAIN_CF = Path("/etc/postfix/main.cf")
STOCK_MASTER_CF = Path("/etc/postfix/master.cf")
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Paths:
    base: Path

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def queue(self) -> Path:
        return self.base / "queue"

    @property
    def maillog(self) -> Path:
        return self.base / "maillog"

    @property
    def master_pid(self) -> Path:
        return self.queue / "pid" / "master.pid"


def _inline(pairs: Sequence[tuple[str, str]]) -> str:
    return "inline:{ " + ", ".join(f"{k}={v}" for k, v in pairs) + " }"


def instance_params(
    syslog_name: str, paths: Paths, state: Path, interfaces: str, myhostname: str
) -> list[tuple[str, str]]:
    """What every private lab instance needs: its own dirs and log, its addresses, no local delivery.

    mynetworks is loopback only: the prober on the bridge is an Internet client to these MXs.
    """
    return [
        ("compatibility_level", "3.6"),
        ("queue_directory", str(paths.queue)),
        ("data_directory", str(paths.base / "data")),
        ("mail_owner", "postfix"),
        ("setgid_group", "postdrop"),
        ("syslog_name", syslog_name),
        ("maillog_file", str(paths.maillog)),
        ("maillog_file_prefixes", f"/var, /dev/stdout, {state}"),
        ("inet_protocols", "ipv4"),
        ("inet_interfaces", interfaces),
        ("myhostname", myhostname),
        ("mydestination", ""),
        ("mynetworks", "127.0.0.0/8"),
        ("alias_maps", ""),
        ("alias_database", ""),
        ("local_recipient_maps", ""),
        ("biff", "no"),
    ]


def main_cf(
    inst: topo.PostfixInstance,
    paths: Paths,
    state: Path,
    greylist_socket: Path,
    recipient_maps: str,
) -> str:
    """main.cf of one instance. ``recipient_maps``: the strict instance's relay_recipient_maps."""
    addrs = [listener.address for listener in inst.listeners]
    inbox = f"smtp:[{topo.SINK_IP}]:{topo.SINK_INBOX_PORT}"
    params = instance_params(f"postfix-bsa-{inst.name}", paths, state, ", ".join(addrs), inst.myhostname)
    params += [
        # Fast queue: deferred paths and NDRs complete within a test's patience.
        ("queue_run_delay", "1s"),
        ("minimal_backoff_time", "1s"),
        ("maximal_backoff_time", "2s"),
        ("maximal_queue_lifetime", "30s"),
        ("bounce_queue_lifetime", "30s"),
        ("smtp_connect_timeout", "3s"),
    ]
    relay = topo.served_domains(inst)
    catchall = topo.served_domains(inst, catch_all=True)
    if inst.strict:
        params += [
            ("relay_domains", ", ".join(relay)),
            ("relay_recipient_maps", recipient_maps),
            ("virtual_alias_domains", ", ".join(catchall)),
            (
                "virtual_alias_maps",
                _inline([(f"@{d}", f"catchall@inbox.{d}") for d in catchall]),
            ),
            # Everything the strict site accepts is delivered to the sink's inbox, never to a real mailbox.
            (
                "transport_maps",
                _inline([(d, inbox) for d in relay] + [(f"inbox.{d}", inbox) for d in catchall]),
            ),
            (
                "bsa_greylist_restrictions",
                f"reject_unauth_destination, check_policy_service unix:{greylist_socket}",
            ),
        ]
    else:
        # The sloppy backup: relays the domain without knowing its recipients, routes by DNS MX.
        params += [("relay_domains", ", ".join(relay)), ("relay_recipient_maps", "")]
    return "".join(f"{k} = {v}\n" for k, v in params)


def without_smtp_inet(stock: str) -> list[str]:
    """The stock master.cf's lines without its catch-all ``smtp inet`` service (and its -o lines)."""
    kept: list[str] = []
    dropping = False
    for line in stock.splitlines():
        if line[:1] in (" ", "\t") and line.strip() and not line.lstrip().startswith("#"):
            if not dropping:  # a continuation ("  -o ...") belongs to the service above it
                kept.append(line)
            continue
        dropping = line.split()[:2] == ["smtp", "inet"]
        if not dropping:
            kept.append(line)
    return kept


def master_cf(inst: topo.PostfixInstance, stock: str) -> str:
    """The stock master.cf without its catch-all smtpd, plus one smtpd per listener address."""
    kept = without_smtp_inet(stock)
    for listener in inst.listeners:
        kept.append(f"{listener.address}:smtp inet n - n - - smtpd")
        kept.append(f"  -o syslog_name=postfix-bsa-{inst.name}/{listener.scenario}")
        kept += [f"  -o {k}={v}" for k, v in listener.overrides]
    return "\n".join(kept) + "\n"


def texthash(recipients: Sequence[str]) -> str:
    return "".join(f"{r} OK\n" for r in recipients)


def write_instance(
    inst: topo.PostfixInstance,
    paths: Paths,
    state: Path,
    greylist_socket: Path,
    recipient_maps: str,
) -> None:
    paths.etc.mkdir(parents=True, exist_ok=True)
    paths.queue.mkdir(parents=True, exist_ok=True)  # data/ is made by Postfix itself, with its owner
    (paths.etc / "main.cf").write_text(main_cf(inst, paths, state, greylist_socket, recipient_maps))
    (paths.etc / "master.cf").write_text(master_cf(inst, read_stock_master_cf()))
    no_chroot(paths)


def read_stock_master_cf() -> str:
    try:
        return STOCK_MASTER_CF.read_text()
    except OSError as exc:
        raise LabError(f"{STOCK_MASTER_CF}: {exc.strerror} (is the postfix package installed?)") from None


def no_chroot(paths: Paths) -> None:
    """Every service unchrooted (``postconf -F``), the files backdated so Postfix loads them at once."""
    backdate(paths.etc / "main.cf", paths.etc / "master.cf")  # before postconf: it waits too
    run(["postconf", "-c", str(paths.etc), "-F", "*/*/chroot = n"], 15, "postconf (chroot = n)")
    backdate(paths.etc / "master.cf")


def backdate(*files: Path) -> None:
    """Backdate freshly written config files by a minute.

    Postfix will not load a table or main.cf whose mtime is within the last second or so ("still
    being written"): it re-reads every 300 ms, which delays each start by ~2 s (seen with strace).
    """
    past = time.time() - 60
    for f in files:
        os.utime(f, (past, past))


def authorize(config_dirs: Sequence[Path], backup: Path) -> None:
    """List our config dirs in the default instance's main.cf, keeping its content and a backup.

    The backup ("absent", or "present <mtime>" and the content) is written once per lab, so a
    crashed run's backup is what a later teardown restores.
    """
    original = _read_backup(backup) if backup.exists() else None
    if not backup.exists():
        if DEFAULT_MAIN_CF.exists():
            text = DEFAULT_MAIN_CF.read_text()
            original = (text, DEFAULT_MAIN_CF.stat().st_mtime)
            backup.write_text(f"present {original[1]!r}\n{text}")
        else:
            backup.write_text("absent")
    extra = ""
    if original is not None:
        existing = run(
            ["postconf", "-c", str(DEFAULT_MAIN_CF.parent), "-h", "alternate_config_directories"], 15
        ).strip()
        extra = f"{existing}, " if existing else ""
    dirs = extra + ", ".join(str(d) for d in config_dirs)
    body = original[0] if original is not None else "compatibility_level = 3.6\n"
    if not body.endswith("\n"):
        body += "\n"
    DEFAULT_MAIN_CF.parent.mkdir(parents=True, exist_ok=True)
    DEFAULT_MAIN_CF.write_text(
        f"{body}# added by backscatter-audit lab (restored at lab down)\n"
        f"alternate_config_directories = {dirs}\n"
    )
    backdate(DEFAULT_MAIN_CF)


def _read_backup(backup: Path) -> tuple[str, float] | None:
    head, _, text = backup.read_text().partition("\n")
    if not head.startswith("present"):
        return None
    try:
        mtime = float(head.split()[1])
    except (IndexError, ValueError):
        mtime = time.time() - 60
    return text, mtime


def restore(backup: Path) -> bool:
    """Put /etc/postfix/main.cf back as it was before ``authorize`` (content and mtime)."""
    if not backup.exists():
        return False
    original = _read_backup(backup)
    if original is None:
        DEFAULT_MAIN_CF.unlink(missing_ok=True)
    else:
        DEFAULT_MAIN_CF.write_text(original[0])
        os.utime(DEFAULT_MAIN_CF, (original[1], original[1]))
    backup.unlink()
    return True


@dataclass
class Starting:
    """A ``postfix start`` under way (started in parallel with the rest of the lab)."""

    netns: str
    paths: Paths
    proc: subprocess.Popen[bytes]


def launch(netns: str, paths: Paths) -> Starting:
    """Begin ``postfix -c DIR start`` inside ``netns``; :func:`finish` waits for it."""
    cmd = f"postfix -c {shlex.quote(str(paths.etc))} start"
    argv = in_netns(netns, ["script", "-qec", cmd, "/dev/null"])
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return Starting(netns, paths, proc)


def finish(starting: Sequence[Starting], timeout: float = START_TIMEOUT) -> None:
    """Wait for every launched start; raise LabError with Postfix's own words if one failed."""
    errors = []
    deadline = time.monotonic() + timeout
    for st in starting:
        try:
            out, _ = st.proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            st.proc.kill()
            st.proc.communicate()
            errors.append(f"postfix start in {st.netns}: no answer within {timeout:.0f} s")
            continue
        if st.proc.returncode != 0:
            text = out.decode(errors="replace").replace("\r", "").strip()
            errors.append(
                f"postfix start in {st.netns} failed (exit {st.proc.returncode}): "
                f"{text[-400:]} {_maillog_tail(st.paths)}".strip()
            )
    if errors:
        raise LabError("; ".join(errors))


def _maillog_tail(paths: Paths) -> str:
    try:
        return paths.maillog.read_text(errors="replace")[-400:]
    except OSError:
        return ""


def master_pid(paths: Paths) -> int | None:
    pid = read_pidfile(paths.queue / "pid" / "master.pid")
    return pid if pid is not None and alive(pid) else None


def stop_all(instances: Sequence[tuple[str, Paths]], timeout: float = 15.0) -> list[int]:
    """``postfix -c DIR stop`` inside each instance's netns (its inet_interfaces check needs it).

    Returns the master pids that were running, for the caller to wait on.
    """
    masters = []
    procs = []
    for ns, paths in instances:
        pid = master_pid(paths)
        if pid is None:
            continue
        masters.append(pid)
        argv = in_netns(ns, ["postfix", "-c", str(paths.etc), "stop"])
        procs.append(
            subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return masters
