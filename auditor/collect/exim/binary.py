"""The installed Exim binary, where there is one: its built-in macros (``exim -bP macros``).

Exim defines ``_HAVE_*``, ``_OPT_*``, ``_DRIVER_*`` … macros for what it was built with; configs
test them with ``.ifdef``. Only the binary knows them. The linter runs it with a private, empty
configuration (``-C``) so nothing of the host's own Exim setup is read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

TIMEOUT = 10.0
CANDIDATES = ("exim4", "exim")


def find_exim() -> str | None:
    """``$BSA_EXIM`` if set, else exim4/exim on PATH or in /usr/sbin."""
    env = os.environ.get("BSA_EXIM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in CANDIDATES:
        found = shutil.which(name) or (
            f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None
        )
        if found:
            return found
    return None


def run(exe: str, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``exe -C config args…`` with a bounded time and no environment of ours leaking in."""
    return subprocess.run(
        [exe, "-C", config, *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TIMEOUT,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )


def builtin_macros(exe: str) -> dict[str, str] | None:
    """Every built-in macro (name → value), or None when the binary does not answer."""
    with tempfile.TemporaryDirectory(prefix="bsa-exim-") as d:
        conf = os.path.join(d, "empty.conf")
        with open(conf, "w") as fh:
            fh.write("keep_environment =\n")
        try:
            proc = run(exe, conf, "-bP", "macros")
        except (OSError, subprocess.TimeoutExpired):
            return None
    if proc.returncode != 0:
        return None
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("_") and "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
    return out or None
