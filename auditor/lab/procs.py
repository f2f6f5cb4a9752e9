"""Process helpers for the lab: bounded commands, daemons by pid, readiness by TCP connect."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class LabError(RuntimeError):
    """The lab could not be brought up or down; the message says which step and why."""


def run(argv: Sequence[str], timeout: float = 30.0, what: str = "") -> str:
    """Run a command to completion within ``timeout``; raise LabError with its output on failure."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"{what or argv[0]}: no answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise LabError(f"{what or argv[0]}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().replace("\r", "")
        raise LabError(f"{what or argv[0]} failed (exit {proc.returncode}): {out[-600:]}")
    return proc.stdout


def bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a worker thread and give up after ``timeout`` seconds with a LabError.

    pyroute2's netlink calls have no timeout of their own, and one was seen waiting forever for its
    answer on a loaded machine: the lab must fail with a clear error instead of hanging.
    """
    box: list[T] = []
    err: list[BaseException] = []

    def work() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            err.append(exc)

    t = threading.Thread(target=work, name=f"lab-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise LabError(f"{what}: no answer within {timeout:.0f} s (netlink call hung)")
    if err:
        raise err[0]
    return box[0]


def in_netns(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Start a long-running process in its own session, output to ``log``; return its pid.

    ``ip netns exec`` execs the command, so the pid is the daemon's own.
    """
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


# Popen objects of daemons this process started: polled when stopping so they do not linger as zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


def signal_pid(pid: int, marker: str, sig: int = signal.SIGTERM) -> bool:
    """Signal ``pid`` only if its command line still contains ``marker`` (pids get reused)."""
    if not alive(pid) or marker not in cmdline(pid):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Poll until every pid has exited; return those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if alive(p)]
        if left:
            time.sleep(0.02)
    for p in pids:
        if p in _CHILDREN and not alive(p):
            _CHILDREN.pop(p).wait(timeout=1)
    return [p for p in left if alive(p)]


def kill_all(pids: Sequence[int], timeout: float = 3.0) -> list[int]:
    """SIGTERM every pid, wait, then SIGKILL what remains. Returns the pids that had to be killed."""
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    stubborn = wait_gone(pids, timeout)
    for p in stubborn:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    wait_gone(stubborn, 2.0)
    return stubborn


def wait_tcp(endpoints: Sequence[tuple[str, int]], timeout: float) -> list[tuple[str, int]]:
    """Poll TCP connects until all endpoints accept; return those that never did within ``timeout``."""
    deadline = time.monotonic() + timeout
    left = list(endpoints)
    while left and time.monotonic() < deadline:
        for ep in list(left):
            try:
                socket.create_connection(ep, timeout=0.2).close()
                left.remove(ep)
            except OSError:
                pass
        if left:
            time.sleep(0.03)
    return left


def wait_unix(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(path))
                return True
            except OSError:
                time.sleep(0.02)
    return False
