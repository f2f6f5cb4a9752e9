"""The model's JSON round trip and the exit-code policy."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from auditor.engine import EXIT_FINDINGS, EXIT_INCONCLUSIVE, EXIT_OK, build_report, exit_code
from auditor.model import Evidence, Finding, InputError, Location, Observation, Severity, Status
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
    f = _finding(Status.FAIL, Severity.HIGH)
    rep = build_report([obs], command="test", started="2026-01-01T00:00:00+00:00", findings=[f])
    back = report_from_dict(report_to_dict(rep))
    assert back.observations == (obs,)
    assert back.findings == (f,)
    assert back.run == rep.run
    assert back.findings[0].location == Location("main.cf", 3)


@pytest.mark.parametrize(
    ("statuses", "fail_on", "expected"),
    [
        ([(Status.FAIL, Severity.LOW)], Severity.LOW, EXIT_FINDINGS),
        ([(Status.FAIL, Severity.LOW)], Severity.HIGH, EXIT_OK),
        ([(Status.INCONCLUSIVE, Severity.CRITICAL)], Severity.HIGH, EXIT_INCONCLUSIVE),
        ([(Status.INCONCLUSIVE, Severity.HIGH), (Status.FAIL, Severity.HIGH)], Severity.LOW, EXIT_FINDINGS),
        ([(Status.PASS, Severity.CRITICAL), (Status.SUPPRESSED, Severity.CRITICAL)], Severity.LOW, EXIT_OK),
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
    with pytest.raises(InputError, match="not a backscatter-audit/1 report"):
        load_report(str(bad))
