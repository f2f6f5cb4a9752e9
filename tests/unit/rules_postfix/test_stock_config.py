"""A stock Postfix (the package's own main.cf/master.cf) is no backscatter source: exit 0."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, need_tool

pytestmark = pytest.mark.postfix

SHARE = Path("/usr/share/postfix")  # shipped by the postfix package (Debian: main.cf.debian too)


@pytest.mark.parametrize("main", ["main.cf.dist", "main.cf.debian"])
def test_stock_configuration_passes_with_the_default_fail_on(tmp_path: Path, main: str) -> None:
    need_tool("postconf")
    need((SHARE / main).is_file() and (SHARE / "master.cf.dist").is_file(), f"{SHARE}/{main}")
    shutil.copy(SHARE / main, tmp_path / "main.cf")
    shutil.copy(SHARE / "master.cf.dist", tmp_path / "master.cf")
    proc = subprocess.run(
        [sys.executable, "-m", "auditor", "lint", "postfix", str(tmp_path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert '"status": "fail"' not in proc.stdout
