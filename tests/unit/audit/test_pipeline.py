"""One pipeline: `probe` from arguments and `audit` from site.toml are the same collectors with the
same settings; interrupts (Ctrl-C, SIGTERM) keep the partial report; the probe time bound is hard."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.audit import interrupts, run_audit
from auditor.cli import build_parser, main
from auditor.cli.cmd_probe import config_from_args
from auditor.collect.base import FunctionCollector
from auditor.config import parse_site_config
from auditor.model import Observation
from auditor.progress import Progress
from auditor.stages import ProbeCollector, build_collectors, probe_settings
from tests.unit.dns.fakedns import serve
from tests.unit.smtp.fakes import Scripted, known_only
from tests.unit.smtp.test_cli import ZONE, smtp_in_thread

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]


class _Quiet(Progress):
    def __init__(self) -> None:
        super().__init__(io.StringIO(), enabled=False)
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)

    def done(self) -> None:
        pass


@contextlib.contextmanager
def tarpit() -> Iterator[tuple[int, list[socket.socket]]]:
    """A server on 127.0.0.1 that accepts connections and never says a word; yields (port, held)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        yield srv.getsockname()[1], held
    finally:
        stop.set()
        th.join(2)
        for conn in held:
            conn.close()
        srv.close()


def _site_toml(ns: str, port: int, extra: str = "") -> str:
    return (
        f'[site]\ndomains = ["example.test"]\nnon_mail_domains = ["parked.test"]\n'
        f'[dns]\nnameservers = ["{ns}"]\n'
        f'[probe]\ncontrols = ["alice@example.test"]\ntimeout = 2\nsession_delay = 0\nport = {port}\n{extra}'
        '[report]\noutput_dir = "out"\nformats = ["json"]\n'
    )


def _probe_argv(ns: str, port: int) -> list[str]:
    return [
        "probe",
        "example.test",
        "--nameserver",
        ns,
        "--port",
        str(port),
        "--timeout",
        "2",
        "--session-delay",
        "0",
        "--control",
        "alice@example.test",
        "--non-mail-domain",
        "parked.test",
    ]


def test_probe_arguments_and_site_toml_give_the_same_settings(tmp_path: Path) -> None:
    args = build_parser().parse_args(_probe_argv("127.0.0.1:5353", 2525))
    from_args = config_from_args(args)
    from_toml = parse_site_config(_site_toml("127.0.0.1:5353", 2525), str(tmp_path / "site.toml"))
    assert probe_settings(from_args) == probe_settings(from_toml)
    assert [c.name for c in build_collectors(from_args, ("probe",))] == [
        c.name for c in build_collectors(from_toml)
    ]


def _shape(doc: dict[str, Any]) -> list[Any]:
    """What was observed, without the parts that differ on every run (random local parts, times)."""
    out: list[Any] = []
    for o in doc["observations"]:
        if o["kind"] == "dns.mx":
            out.append(("dns", o["target"], o["status"], [(h["name"], h["addresses"]) for h in o["hosts"]]))
        elif o["kind"] == "smtp.probe":
            roles = sorted((x["role"], (x.get("reply") or {}).get("code")) for x in o["outcomes"])
            out.append(("smtp", o["target"], o["failure"], roles))
        else:
            out.append((o["kind"], o.get("target")))
    return out


def test_probe_and_audit_observe_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    srv = Scripted(rcpt=known_only({"alice@example.test"}))
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        assert main([*_probe_argv(ns, port), "-f", "json", "--fail-on", "critical"]) == 0
        probed = json.loads(capsys.readouterr().out)
        site = tmp_path / "site.toml"
        site.write_text(_site_toml(ns, port))
        assert main(["audit", "--config", str(site), "-f", "json", "--fail-on", "critical"]) == 0
        audited = json.loads(capsys.readouterr().out)
    assert _shape(probed) == _shape(audited)
    assert _shape(probed)[-1][:3] == ("smtp", "example.test mx1.example.test[127.0.0.1]", None)
    rules = {(f["rule_id"], f["target"], f["status"]) for f in probed["findings"]}
    assert ("SMTP-RCPT-001", "example.test mx1.example.test[127.0.0.1]", "pass") in rules
    assert rules == {(f["rule_id"], f["target"], f["status"]) for f in audited["findings"]}
    assert srv.connections == 2  # one session each


def test_probe_time_bound_is_hard_against_a_tarpit(capsys: pytest.CaptureFixture[str]) -> None:
    """A tarpit that never greets: past --audit-timeout the session is dropped, not politely QUIT
    (which waited one more --timeout for the reply), and what was asked is still reported."""
    with serve(ZONE) as ns, tarpit() as (port, held):
        t0 = time.monotonic()
        argv = ["probe", "example.test", "--nameserver", ns, "--port", str(port), "--timeout", "30"]
        code = main([*argv, "--audit-timeout", "2", "-f", "json"])
        took = time.monotonic() - t0
    doc = json.loads(capsys.readouterr().out)
    assert took < 15, took  # the polite QUIT alone took --timeout (30 s) more
    assert len(held) == 1
    assert code == 3
    [probe] = [o for o in doc["observations"] if o["kind"] == "smtp.probe"]
    assert probe["failure"] == "audit-timeout"
    assert not [o for o in doc["observations"] if o["kind"] == "audit.gap"]


def test_a_second_interrupt_while_the_report_is_written_is_ignored() -> None:
    cfg = parse_site_config('[site]\ndomains = ["example.test"]\n', "site.toml")
    started = threading.Event()

    def slow(_remaining: float) -> list[Observation]:
        started.set()
        time.sleep(5)
        return []

    timer = threading.Timer(0.3, signal.raise_signal, (signal.SIGTERM,))
    with interrupts():
        timer.start()
        rep = run_audit(cfg, [FunctionCollector("probes", ("smtp",), slow)], command="t", progress=_Quiet())
        # The run is over and its report not yet written: further signals must not cut it short.
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert started.is_set()
    assert rep.run.partial and "interrupted by SIGTERM" in rep.run.notes


def test_sigterm_writes_the_partial_report(tmp_path: Path) -> None:
    """`timeout`, CI cancellation and systemd stop with SIGTERM: the audit still writes its report."""
    with serve(ZONE) as ns, tarpit() as (port, held):
        site = tmp_path / "site.toml"
        site.write_text(_site_toml(ns, port, "audit_timeout = 60\n").replace("timeout = 2", "timeout = 30"))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "audit", "--config", str(site), "-f", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        deadline = time.monotonic() + 30
        while not held and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(held) == 1  # the probe is in its tarpit session
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode == 3, err.decode()
    doc = json.loads(out)
    assert doc["run"]["partial"] and "interrupted by SIGTERM" in doc["run"]["notes"]
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["run"]["partial"] is True
    gaps = [o for o in saved["observations"] if o["kind"] == "audit.gap"]
    assert [g["stage"] for g in gaps] == [ProbeCollector.name]
