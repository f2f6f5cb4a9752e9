"""The committed man page and completions match the CLI, and the bash completion completes."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, need

pytestmark = pytest.mark.packaging


def _need_generators() -> None:
    for mod in ("argparse_manpage", "shtab"):
        need(importlib.util.find_spec(mod) is not None, f"the {mod!r} package (pip install -e '.[dev]')")


def test_generated_docs_are_up_to_date() -> None:
    _need_generators()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def _complete(line: str) -> list[str]:
    """COMPREPLY of the committed bash completion for the words of ``line`` (last one being typed)."""
    bash = shutil.which("bash")
    need(bash is not None, "bash")
    assert bash is not None
    script = ROOT / "docs" / "completions" / "backscatter-audit.bash"
    words = line.split(" ")
    prog = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={line!r}\nCOMP_POINT=${{#COMP_LINE}}\n"
        "_shtab_backscatter_audit backscatter-audit\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run([bash, "--norc", "-c", prog], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_bash_completes_commands_and_options() -> None:
    assert _complete("backscatter-audit li") == ["lint"]
    assert _complete("backscatter-audit lint p") == ["postfix"]
    assert "--dry-run" in _complete("backscatter-audit probe --d")
    assert "--fail-on" in _complete("backscatter-audit lint postfix --f")
