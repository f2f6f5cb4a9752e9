"""One audit, one report: stages that fail, overrun the time bound or are interrupted leave gaps
that are reported inconclusive (never a silent pass), and the report is marked partial."""

from __future__ import annotations

import io
import json
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from auditor.audit import run_audit
from auditor.cli import main
from auditor.collect.base import FunctionCollector
from auditor.config import parse_site_config
from auditor.exitcodes import ExitCode
from auditor.model import InputError, Observation, Status
from auditor.observations.audit import AuditGap
from auditor.progress import Progress
from tests.conftest import CORPUS, need_shared

CFG = parse_site_config('[site]\ndomains = ["example.test"]\n', "site.toml")


class _Quiet(Progress):
    def __init__(self) -> None:
        super().__init__(io.StringIO(), enabled=False)
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)

    def done(self) -> None:
        pass


def _ok(_remaining: float) -> list[Observation]:
    return []


def _boom(_remaining: float) -> list[Observation]:
    raise RuntimeError("LDAP server went away")


def _slow(remaining: float) -> list[Observation]:
    time.sleep(min(remaining + 5, 30))
    return []


def _interrupt(_remaining: float) -> list[Observation]:
    raise KeyboardInterrupt


def _gaps(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {g.stage: g.reason for g in report.of(AuditGap)}


def test_complete_run_is_not_partial() -> None:
    rep = run_audit(
        CFG, [FunctionCollector("ok", ("postfix",), _ok)], command="t", progress=_Quiet(), time_bound=10
    )
    assert not rep.run.partial and not _gaps(rep)


def test_failing_stage_becomes_an_inconclusive_gap_and_the_rest_still_runs() -> None:
    ran: list[str] = []

    def after(_r: float) -> list[Observation]:
        ran.append("after")
        return []

    stages = [
        FunctionCollector("directory", ("directory",), _boom),
        FunctionCollector("after", ("smtp",), after),
    ]
    rep = run_audit(CFG, stages, command="t", progress=_Quiet(), time_bound=10)
    assert ran == ["after"]
    assert rep.run.partial
    assert "LDAP server went away" in _gaps(rep)["directory"]
    gap = [f for f in rep.findings if f.rule_id == "BSA-AUDIT-001"]
    assert [f.status for f in gap] == [Status.INCONCLUSIVE]
    assert rep.assessment.exit_code == ExitCode.INCONCLUSIVE


def test_time_bound_stops_a_slow_stage_and_lists_what_did_not_run() -> None:
    t0 = time.monotonic()
    stages = [FunctionCollector("probes", ("smtp",), _slow), FunctionCollector("later", ("ndr",), _ok)]
    rep = run_audit(CFG, stages, command="t", progress=_Quiet(), time_bound=1.0)
    assert time.monotonic() - t0 < 10
    gaps = _gaps(rep)
    assert "time bound" in gaps["probes"] and "time bound" in gaps["later"]
    assert rep.run.partial


@pytest.mark.parametrize("how", ["signal", "raised"])
def test_ctrl_c_writes_a_partial_report(how: str) -> None:
    if how == "signal":  # a real SIGINT reaches the main thread while a stage runs
        timer = threading.Timer(0.3, signal.raise_signal, (signal.SIGINT,))
        timer.start()
        stages = [FunctionCollector("probes", ("smtp",), _slow), FunctionCollector("later", ("ndr",), _ok)]
    else:
        stages = [
            FunctionCollector("probes", ("smtp",), _interrupt),
            FunctionCollector("later", ("ndr",), _ok),
        ]
    t0 = time.monotonic()
    rep = run_audit(CFG, stages, command="t", progress=_Quiet(), time_bound=20)
    assert time.monotonic() - t0 < 5
    assert rep.run.partial and "interrupted by the user (Ctrl-C)" in rep.run.notes
    assert set(_gaps(rep)) == {"probes", "later"}


def test_input_errors_are_not_swallowed_as_gaps() -> None:
    def bad(_r: float) -> list[Observation]:
        raise InputError("broken", "main.cf", 3)

    with pytest.raises(InputError):
        run_audit(
            CFG,
            [FunctionCollector("postfix", ("postfix",), bad)],
            command="t",
            progress=_Quiet(),
            time_bound=5,
        )


def test_offline_audit_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """site.toml with a Postfix config and an Exchange export (no network): one report, every format."""
    corpus = need_shared(CORPUS / "postfix")
    pf = tmp_path / "pf"
    pf.mkdir()
    shutil.copy(corpus / "proxmox+pmg-api__src_templates_main.cf.in", pf / "main.cf")
    shutil.copy(corpus / "proxmox+pmg-api__src_templates_master.cf.in", pf / "master.cf")
    export = need_shared(CORPUS / "exchange" / "Tests_DataCollection_E19_Exchange_GetAcceptedDomain_Bad.xml")
    site = tmp_path / "site.toml"
    site.write_text(
        "[site]\ndomains = []\n[probe]\nenabled = false\n"
        f'[postfix]\nconfig_dirs = ["pf"]\n[exchange]\nexports = ["{export}"]\n'
        '[report]\noutput_dir = "out"\nformats = ["html", "markdown", "json", "sarif", "junit", "csv"]\n'
    )
    rc = main(["audit", "--config", str(site), "--format", "json"])
    assert rc == 1
    doc = json.loads(capsys.readouterr().out)
    fails = {(f["rule_id"], f["status"]) for f in doc["findings"]}
    assert ("PF-RCPT-003", "fail") in fails and ("EX-RELAY-001", "fail") in fails
    assert doc["run"]["partial"] is False
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["report.csv", "report.html", "report.json", "report.md", "report.sarif", "report.xml"]
