"""The Exim rules on real configurations: Debian's exim4-config for each configtype, Exim's default.

Debian's rcpt ACL ends in ``require verify = recipient`` then ``accept domains = +relay_to_domains``:
local users are checked, relay domains only for routability (EXIM-RCPT-001 fails, as measured
live by the lab's sloppy backup MX). The satellite and smarthost types listen on loopback only.
Exim's default configure verifies recipients and relays for no domain.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.collect.exim import collect
from auditor.model import Status
from auditor.rules import load_all
from auditor.rules.base import Observations
from tests.conftest import need
from tests.integration.test_exim_differential import EXAMPLE, ROOT, _debian

pytestmark = [pytest.mark.integration]


def _verdicts(path: Path) -> dict[str, set[Status]]:
    cfg = collect(str(path), use_exim=False)
    obs = Observations([cfg])
    out = {}
    for rid in ("EXIM-RCPT-001", "EXIM-RCPT-002", "EXIM-CF-001"):
        r = load_all()[rid]
        out[rid] = {f.status for f in r.check(obs, r)}
    return out


DEBIAN = [
    ("internet", True, {"EXIM-RCPT-001": {Status.FAIL}, "EXIM-RCPT-002": {Status.PASS}}),
    ("internet", False, {"EXIM-RCPT-001": {Status.FAIL}, "EXIM-RCPT-002": {Status.PASS}}),
    ("satellite", True, {"EXIM-RCPT-001": {Status.NOT_APPLICABLE}, "EXIM-RCPT-002": {Status.NOT_APPLICABLE}}),
    (
        "smarthost",
        False,
        {"EXIM-RCPT-001": {Status.NOT_APPLICABLE}, "EXIM-RCPT-002": {Status.NOT_APPLICABLE}},
    ),
]


@pytest.mark.parametrize(
    ("kind", "split", "want"), DEBIAN, ids=[f"{d[0]}-{'split' if d[1] else 'tpl'}" for d in DEBIAN]
)
def test_debian(tmp_path: Path, kind: str, split: bool, want: dict[str, set[Status]]) -> None:
    d, generated = _debian(tmp_path, kind, split)
    for path in (d, generated):  # the directory (our emulation) and update-exim4.conf's own output
        got = _verdicts(path)
        assert {k: got[k] for k in want} == want, path
        assert got["EXIM-CF-001"] == {Status.NOT_APPLICABLE}


def test_debian_local_rcpt_callout_file(tmp_path: Path) -> None:
    """Debian's hook: recipients listed in /etc/exim4/local_rcpt_callout get a callout → pass."""
    d, _ = _debian(tmp_path, "internet", True)
    (d / "local_rcpt_callout").write_text("*@backup.example.net\n*@other.example\n")
    assert _verdicts(d)["EXIM-RCPT-001"] == {Status.PASS}


def test_debian_template_unrendered(tmp_path: Path) -> None:
    need((ROOT / "etc/exim4/exim4.conf.template").is_file(), "Debian's exim4.conf.template")
    got = _verdicts(ROOT / "etc/exim4/exim4.conf.template")
    # local_domains = MAIN_LOCAL_DOMAINS (a placeholder): nothing literal to replay, said so
    assert got["EXIM-RCPT-002"] <= {Status.PASS, Status.INCONCLUSIVE}
    cfg = collect(str(ROOT / "etc/exim4/exim4.conf.template"), use_exim=False)
    assert any(t.token == "MAIN_LOCAL_DOMAINS" for t in cfg.templates)


def test_exim_default_configure() -> None:
    need(EXAMPLE.is_file(), f"Exim's default configure ({EXAMPLE})")
    got = _verdicts(EXAMPLE)
    assert got == {
        "EXIM-RCPT-001": {Status.NOT_APPLICABLE},
        "EXIM-RCPT-002": {Status.PASS},
        "EXIM-CF-001": {Status.NOT_APPLICABLE},
    }
