"""Golden findings per lab site: what `lint postfix` says about each lab Postfix instance.

Each lab instance is a configuration a real site could have (a strict primary, a sloppy backup, a
soft-bouncing or greylisting MX, ...). Its expected findings are committed, one file per instance in
tests/golden/lab/ (rule, status, target with the temporary directory cut off), so a change in any
rule's judgement of a known site shows up as a reviewed diff (UPDATE_GOLDEN=1 regenerates).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.collect.postfix import collect
from auditor.judge import evaluate
from auditor.lab import topology as topo
from auditor.lab.postfix import Paths, write_instance

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "lab"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _findings(tmp: Path, inst: topo.PostfixInstance) -> str:
    paths = Paths(tmp / "state" / f"lab-{inst.name}")
    recipients = paths.etc / "recipients"
    write_instance(inst, paths, tmp / "state", tmp / "greylist.sock", f"texthash:{recipients}")
    recipients.write_text("".join(f"{r} OK\n" for s in topo.SCENARIOS for r in s.valid_recipients))
    cfg = collect(str(paths.etc), use_postconf=False)  # the files as written, the same on any machine
    rows = sorted(
        {(f.rule_id, f.status.value, f.target.replace(str(paths.etc), "<lab>")) for f in evaluate([cfg])}
    )
    return "".join(f"{rule}\t{status}\t{target}\n" for rule, status, target in rows)


@pytest.mark.parametrize("inst", topo.POSTFIX_INSTANCES, ids=lambda i: i.name)
def test_lab_site_findings_match_the_golden(inst: topo.PostfixInstance, tmp_path: Path) -> None:
    got = _findings(tmp_path, inst)
    path = GOLDEN / f"{inst.name}.tsv"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert got == path.read_text(), f"{inst.name} differs from {path} (UPDATE_GOLDEN=1; review the diff)"


def test_the_sloppy_backup_is_caught_and_the_strict_primary_is_not() -> None:
    """The goldens themselves say what the lab is for: the backup fails the relay-recipient rule."""
    rows = {p.stem: p.read_text() for p in GOLDEN.glob("*.tsv")}
    assert any("PF-RCPT-003\tfail" in text for text in rows.values())
    assert any("PF-RCPT-003\tfail" not in text for text in rows.values())
