"""The package as a user installs it: the built wheel in a fresh venv outside the checkout.

A wheel that misses a runtime file (probe scenarios, template, schema, defaults, collector script)
fails here even though every other test passes: those read the source tree. The commands run from a
scratch directory without PYTHONPATH. The only network use is pip fetching the dependencies from the
package index; the probe is a --dry-run against 127.0.0.1 with a loopback nameserver.

``BSA_DIST_DIR`` (set by .ci/run, which builds the wheel and sdist once) skips the build here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor import __version__
from tests.conftest import ROOT, need

pytestmark = pytest.mark.packaging

MAIN_CF = """\
myhostname = mx.example.test
mydomain = example.test
mydestination = $myhostname, localhost, example.test
local_recipient_maps =
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
"""
DIST = f"backscatter_auditor-{__version__}"


def _clean_env() -> dict[str, str]:
    """The environment without anything that points Python at the checkout or another venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@dataclass(frozen=True)
class Installed:
    venv: Path
    cwd: Path

    def run(self, *args: str, program: str = "backscatter-audit") -> subprocess.CompletedProcess[str]:
        """A program of the venv, from the scratch directory, with nothing pointing at the checkout."""
        return subprocess.run(
            [str(self.venv / "bin" / program), *args],
            cwd=self.cwd,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("BSA_DIST_DIR")
    if given:
        return Path(given)
    need(_has_module("build"), "the 'build' package (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    found = sorted(dist.glob(f"{DIST}-py3-none-any.whl"))
    assert len(found) == 1, f"expected one wheel in {dist}: {found}"
    return found[0]


@pytest.fixture(scope="module")
def sdist(dist: Path) -> Path:
    found = sorted(dist.glob(f"{DIST}.tar.gz"))
    assert len(found) == 1, f"expected one sdist in {dist}: {found}"
    return found[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    venv = base / "venv"
    # Without PYTHONPATH: pip would take the checkout's egg-info for an installed copy and skip the wheel.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=_clean_env())
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=_clean_env(),
        cwd=base,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cwd = base / "work"
    (cwd / "postfix").mkdir(parents=True)
    (cwd / "postfix" / "main.cf").write_text(MAIN_CF)
    return Installed(venv, cwd)


def _tracked(*folders: str) -> list[str]:
    """Files git tracks under these folders (a checkout without git: the files on disk)."""
    if shutil.which("git") and (ROOT / ".git").exists():
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--", *folders], capture_output=True, text=True, check=True
        ).stdout.split()
        if out:
            return out
    return [str(p.relative_to(ROOT)) for f in folders for p in (ROOT / f).rglob("*") if p.is_file()]


def test_wheel_carries_every_runtime_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    probes = sorted(p.name for p in (ROOT / "probes").glob("*.toml"))
    assert probes, "no probe scenarios in the checkout"
    missing = [f"auditor/probes/{p}" for p in probes if f"auditor/probes/{p}" not in names]
    assert not missing
    for path in (
        "auditor/probes/README.md",
        "auditor/schema/report-2.schema.json",
        "auditor/schema/report-1.schema.json",
        "auditor/render/templates/report.html.j2",
        "auditor/collect/postfix/postfix_defaults.json",
        "auditor/collect/exchange/Collect-BackscatterAudit.ps1",
        f"{DIST}.data/data/share/man/man1/backscatter-audit.1",
        f"{DIST}.data/data/share/bash-completion/completions/backscatter-audit.bash",
        f"{DIST}.data/data/share/zsh/site-functions/_backscatter-audit",
    ):
        assert path in names, path
    # Only the package: no tests, no top-level probes/ folder in site-packages.
    tops = {n.split("/")[0] for n in names}
    assert tops == {"auditor", f"{DIST}.dist-info", f"{DIST}.data"}


def test_wheel_metadata(wheel: Path) -> None:
    meta = zipfile.ZipFile(wheel).read(f"{DIST}.dist-info/METADATA").decode()
    assert "Name: backscatter-auditor\n" in meta
    assert "License-Expression: MIT\n" in meta
    assert "Requires-Python: >=3.11\n" in meta
    assert "Project-URL: Source, https://github.com/backscatter-auditor/backscatter-auditor\n" in meta
    entry = zipfile.ZipFile(wheel).read(f"{DIST}.dist-info/entry_points.txt").decode()
    assert "backscatter-audit = auditor.cli:main" in entry


def test_sdist_carries_tests_probes_and_docs(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {n.removeprefix(f"{DIST}/") for n in tar.getnames()}
    wanted = _tracked("tests", "probes", "auditor", "docs")
    assert any(w.startswith("tests/") for w in wanted)
    missing = [w for w in wanted if w not in names]
    assert not missing, missing[:20]
    for path in (
        "setup.py",
        "pyproject.toml",
        "MANIFEST.in",
        "LICENSE",
        "README.md",
        "scripts/build_docs.py",
    ):
        assert path in names, path


def test_installed_package_is_not_the_checkout(installed: Installed) -> None:
    proc = installed.run("-c", "import auditor; print(auditor.__file__)", program="python")
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(installed.venv)


def test_version_rules_explain(installed: Installed) -> None:
    proc = installed.run("--version")
    assert (proc.returncode, proc.stdout.strip()) == (0, f"backscatter-audit {__version__}")
    proc = installed.run("rules")
    assert proc.returncode == 0, proc.stderr
    assert "PF-RCPT-003" in proc.stdout
    proc = installed.run("explain", "PF-RCPT-003")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# PF-RCPT-003: ")
    assert "## What it flags" in proc.stdout


def test_init_writes_site_toml(installed: Installed) -> None:
    target = installed.cwd / "x" / "site.toml"
    assert installed.run("init", str(target)).returncode == 2  # a missing directory is not made silently
    target.parent.mkdir()
    proc = installed.run("init", str(target))
    assert proc.returncode == 0, proc.stderr
    assert "[site]" in target.read_text()


def test_probe_dry_run_plans_the_shipped_scenarios(installed: Installed) -> None:
    proc = installed.run(
        "probe",
        "example.test",
        "--dry-run",
        "--mx-override",
        "example.test=127.0.0.1",
        "--nameserver",
        "127.0.0.1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "dns example.test: ok; hosts: 10 127.0.0.1 (hosts from mx_override)" in proc.stdout
    for scenario in ("null-sender", "postmaster", "unknown-recipient", "subdomain"):
        assert f"({scenario})" in proc.stdout, scenario


def test_lint_then_report_html(installed: Installed) -> None:
    proc = installed.run("lint", "postfix", "postfix")
    assert proc.returncode == 1, proc.stderr  # findings at or above the default threshold
    assert "PF-RCPT-001" in proc.stdout
    saved = installed.cwd / "saved.json"
    proc = installed.run("lint", "postfix", "postfix", "--format", "json", "--output", str(saved))
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(saved.read_text())
    assert doc["schema"] == "backscatter-audit/2"
    html = installed.cwd / "report.html"
    proc = installed.run("report", str(saved), "--format", "html", "--output", str(html))
    assert proc.returncode == 1, proc.stderr  # the saved assessment's exit code
    text = html.read_text()
    assert text.lstrip().lower().startswith("<!doctype html")
    assert "PF-RCPT-001" in text


def test_collector_script_and_schema_are_installed(installed: Installed) -> None:
    proc = installed.run("lint", "exchange", "--collector")
    assert proc.returncode == 0, proc.stderr
    script = Path(proc.stdout.strip())
    assert script.is_relative_to(installed.venv) and script.name == "Collect-BackscatterAudit.ps1"
    assert script.stat().st_size > 1000
    code = "from auditor.schema import load_report_schema as load; print(load()['$id'])"
    proc = installed.run("-c", code, program="python")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "urn:backscatter-audit:schema:report-2"


def test_man_page_and_completions_are_installed(installed: Installed) -> None:
    share = installed.venv / "share"
    man = (share / "man" / "man1" / "backscatter-audit.1").read_text()
    assert man.startswith(".TH BACKSCATTER\\-AUDIT")
    assert "lint" in man and "probe" in man
    assert "complete -o" in (share / "bash-completion" / "completions" / "backscatter-audit.bash").read_text()
    assert (
        "#compdef backscatter-audit" in (share / "zsh" / "site-functions" / "_backscatter-audit").read_text()
    )
