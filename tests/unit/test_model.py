"""The model's JSON round trip (everything the judge decided survives it) and the exit-code policy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from auditor.exitcodes import ExitCode
from auditor.judge import build_report, exit_code
from auditor.model import (
    Evidence,
    Finding,
    FixCommand,
    InputError,
    Location,
    Observation,
    Remediation,
    Severity,
    Status,
)
from auditor.observations import KINDS
from auditor.serialize import load_report, report_from_dict, report_to_dict


@dataclass(frozen=True)
class _Obs(Observation):
    kind = "test.obs"
    count: int = 0
    names: tuple[str, ...] = ()
    where: Location | None = None
    extra: dict[str, str] | None = None


def _finding(status: Status, severity: Severity) -> Finding:
    return Finding("X-1", status, severity, "t", "m", evidence=(Evidence("e", Location("main.cf", 3)),))


def test_round_trip_keeps_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, _Obs.kind, _Obs)
    obs = _Obs("host", 3, ("a", "b"), Location("main.cf", 7), {"k": "v"})
    fix = Remediation(
        "t", (FixCommand("postconf -c /etc/postfix -e 'a = <b>'", "main.cf a", False, ("<b>",)),)
    )
    f = dataclasses.replace(_finding(Status.FAIL, Severity.HIGH), remediation=fix)
    rep = build_report(
        [obs], command="test", started="2026-01-01T00:00:00+00:00", findings=[f], fail_on=Severity.MEDIUM
    )
    back = report_from_dict(report_to_dict(rep))
    assert back == rep  # assessment, plan, compliance and rule entries included
    assert back.observations == (obs,)
    assert back.findings == (f,)
    assert back.findings[0].location == Location("main.cf", 3)
    assert back.assessment.fail_on is Severity.MEDIUM and back.plan[0].steps[0].commands == fix.commands


@pytest.mark.parametrize(
    ("statuses", "fail_on", "expected"),
    [
        ([(Status.FAIL, Severity.LOW)], Severity.LOW, ExitCode.FINDINGS),
        ([(Status.FAIL, Severity.LOW)], Severity.HIGH, ExitCode.OK),
        ([(Status.INCONCLUSIVE, Severity.CRITICAL)], Severity.HIGH, ExitCode.INCONCLUSIVE),
        (
            [(Status.INCONCLUSIVE, Severity.HIGH), (Status.FAIL, Severity.HIGH)],
            Severity.LOW,
            ExitCode.FINDINGS,
        ),
        (
            [(Status.PASS, Severity.CRITICAL), (Status.SUPPRESSED, Severity.CRITICAL)],
            Severity.LOW,
            ExitCode.OK,
        ),
    ],
)
def test_exit_codes(statuses: list[tuple[Status, Severity]], fail_on: Severity, expected: int) -> None:
    assert exit_code([_finding(s, sev) for s, sev in statuses], fail_on) == expected


def test_load_report_errors_name_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "r.json"
    bad.write_text("{\n  nope")
    with pytest.raises(InputError) as err:
        load_report(str(bad))
    assert str(bad) in str(err.value) and ":2:" in str(err.value)
    bad.write_text('{"schema": "other"}')
    with pytest.raises(InputError, match="not a backscatter-audit/2 report"):
        load_report(str(bad))
