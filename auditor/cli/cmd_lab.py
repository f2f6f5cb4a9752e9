"""`lab up|down|status`: the demo/test site in network namespaces (real Postfix, slapd, DNS, sink)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

from auditor.exitcodes import ExitCode


def register(sub: Any) -> None:
    lab = sub.add_parser("lab", help="bring the test lab up or down, or show its status (root)")
    actions = lab.add_subparsers(dest="lab_action", metavar="ACTION")
    for name, helptext, func in (
        ("up", "start the lab (tears down a previous or crashed one first)", run_up),
        ("down", "stop every lab daemon and remove its namespaces", run_down),
        ("status", "show what runs (exit 0 when the whole lab is up, 4 otherwise)", run_status),
    ):
        p = actions.add_parser(name, help=helptext)
        p.add_argument(
            "--state-dir",
            metavar="DIR",
            help="lab state directory (default: $BSA_LAB_DIR or /run/bsa-lab)",
        )
        if name != "down":
            p.add_argument("--format", "-f", choices=["text", "json"], default="text")
        p.set_defaults(func=func)
    lab.set_defaults(func=lambda _a: (lab.print_help(sys.stderr), ExitCode.INPUT)[1])


def _fail(message: str) -> int:
    print(f"backscatter-audit: error: lab: {message}", file=sys.stderr)
    return ExitCode.INPUT


def _lab(args: argparse.Namespace) -> Any:
    from auditor.lab import Lab

    return Lab(args.state_dir)


def _preflight() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it creates network namespaces and runs Postfix)"
    for tool in ("ip", "postfix", "postconf", "dnsmasq", "slapd", "slapadd", "script", "openssl"):
        if not (shutil.which(tool) or os.access(f"/usr/sbin/{tool}", os.X_OK)):
            return f"the {tool!r} command is missing (see scripts/lab-packages.txt)"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "the Python package pyroute2 is missing (pip install '.[lab]')"
    return None


def run_up(args: argparse.Namespace) -> int:
    from auditor.lab import LabError

    problem = _preflight()
    if problem:
        return _fail(problem)
    try:  # fails at once if another session (a test run) holds the lab
        info = _lab(args).up()
    except LabError as exc:
        return _fail(str(exc))
    if args.format == "json":
        sys.stdout.write(info.to_json())
        return ExitCode.OK
    print(f"lab up in {info.bringup_seconds:.2f} s (state: {info.state_dir})")
    print(f"nameserver {info.nameserver}; sink bounces {info.sink_bounces} -> {info.bounce_maildir}")
    for d in info.domains:
        mxs = ", ".join(f"{m.host or d.domain}[{m.address}] {m.verdict}" for m in d.mx) or d.dns_kind
        print(f"  {d.domain:16} {mxs}")
    return ExitCode.OK


def run_down(args: argparse.Namespace) -> int:
    from auditor.lab import LabError

    if os.geteuid() != 0:
        return _fail("needs root")
    try:  # fails at once if another session (a test run) holds the lab
        done = _lab(args).down()
    except LabError as exc:
        return _fail(str(exc))
    print("lab down" + (": " + "; ".join(done) if done else " (nothing was running)"))
    return ExitCode.OK


def run_status(args: argparse.Namespace) -> int:
    from auditor.lab import LabError

    try:
        st = _lab(args).status()
    except (LabError, PermissionError) as exc:
        return _fail(str(exc))
    if args.format == "json":
        sys.stdout.write(json.dumps(st, indent=2) + "\n")
    else:
        print(f"lab {'UP' if st['up'] else 'DOWN'} (state: {st['state_dir']})")
        for c in st["components"]:
            where = f" in {c['netns']}" if c.get("netns") else ""
            print(f"  {c['name']:24} pid {c['pid']}{where}: {'running' if c['running'] else 'NOT running'}")
        for ep, ok in st["listening"].items():
            print(f"  {ep:24} {'listening' if ok else 'NOT listening'}")
        active = st.get("active_state_dir")
        if active and active != os.path.realpath(st["state_dir"]):
            print(f"  a lab runs with another state dir: --state-dir {active}")
        elif st["network"] and not st["components"]:
            print("  leftovers (`lab down` removes them): " + ", ".join(st["network"]))
    return ExitCode.OK if st["up"] else ExitCode.LAB_DOWN
