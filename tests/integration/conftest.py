"""The session-wide lab: real Postfix, slapd, dnsmasq and the sink in network namespaces.

``lab`` (a :class:`auditor.lab.LabInfo`) is brought up once per test session and torn down at its
end. It needs root, ``ip netns``, Postfix, dnsmasq and slapd: on a developer machine without them
the tests skip, in CI (``CI=true``) they fail. The lab is one per machine, so a session lock makes
concurrent test sessions (several developers on one box) take turns instead of tearing down each
other's lab.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need, need_tool

SESSION_LOCK_WAIT = 900.0  # another session's lab run; bounded, then fail loudly
MAIN_CF = Path("/etc/postfix/main.cf")


def _need_lab_prerequisites() -> None:
    need(os.geteuid() == 0, "root (network namespaces)")
    for tool in ("ip", "postfix", "postconf", "dnsmasq", "slapd", "slapadd", "script", "openssl"):
        need_tool(tool)
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        need(False, "the pyroute2 Python package")


@pytest.fixture(scope="session")
def lab_runner() -> Iterator[dict[str, Any]]:
    """The Lab object plus what the host looked like before it (for teardown assertions)."""
    _need_lab_prerequisites()
    from auditor.lab import Lab, LabError
    from auditor.lab.orchestrator import session

    state_dir = Path(os.environ.get("BSA_LAB_DIR") or "/run/bsa-lab-test")
    with ExitStack() as stack:
        try:
            stack.enter_context(session(SESSION_LOCK_WAIT))
        except LabError as exc:
            pytest.fail(str(exc), pytrace=False)
        lab = Lab(state_dir)
        lab.down()  # a lab left by `lab up` or a crashed session: its main.cf is not the host's own
        before = MAIN_CF.read_text() if MAIN_CF.exists() else None
        etc_netns_before = Path("/etc/netns").exists()
        try:
            info = lab.up()  # tears down what it started if it fails
        except LabError as exc:
            pytest.fail(f"lab up failed: {exc}", pytrace=False)
        runner = {"lab": lab, "info": info, "main_cf_before": before, "etc_netns_before": etc_netns_before}
        try:
            yield runner
        finally:
            runner["lab"].down()


def assert_lab_routed(info: Any) -> None:
    """The lab's addresses must be reached through the lab's own bridge.

    If the lab went away (torn down by a test, a crash), 198.18.0.x would follow the default route
    off this machine: fail instead of sending anything there.
    """
    from auditor.lab import topology

    for address in (info.nameserver.host, *info.mx_addresses("example.test")):
        route = subprocess.run(
            ["ip", "-o", "route", "get", address], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        if f" dev {topology.BRIDGE} " not in f" {route} ":
            pytest.fail(f"lab address {address} is not routed via the lab bridge: {route.strip()!r}")


@pytest.fixture(scope="session")
def lab(lab_runner: dict[str, Any]) -> Any:
    """The running lab's :class:`auditor.lab.LabInfo` (addresses, domains, expected verdicts)."""
    assert_lab_routed(lab_runner["info"])
    return lab_runner["info"]


@pytest.fixture(autouse=True)
def _lab_still_routed(request: pytest.FixtureRequest) -> None:
    """Before every test that uses the lab: is it still there? (see assert_lab_routed)"""
    if "lab" in request.fixturenames:
        assert_lab_routed(request.getfixturevalue("lab"))
