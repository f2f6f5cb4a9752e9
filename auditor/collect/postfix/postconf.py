"""Reading a config directory through the real ``postconf`` binary (the truth where installed).

``postconf -c DIR -x -h NAME…`` gives expanded values, ``postconf -c DIR -h NAME…`` raw ones,
``postconf -c DIR -P -x`` the expanded ``-o`` overrides. File:line locations, template tokens and
host-computed defaults (myhostname, mydomain, mynetworks: postconf would report *this* machine's)
come from the file parser. postconf warnings on stderr become notes.

postconf has no bounds of its own (``lolN = $lol(N-1) $lol(N-1)`` or a master.cf linked to
/dev/zero make it allocate gigabytes): it runs under a time and address-space limit, is never given
a file that is not a regular file, is not asked for values the parser found past its expansion
bounds, and when it still runs out of time or memory the parser's values are used, with a note.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import IO

from auditor.collect.postfix.parse import Parsed, normalize
from auditor.collect.postfix.textfile import check_regular
from auditor.model import InputError

TIMEOUT = 30.0
MEMORY_KB = 1024 * 1024  # address space of one postconf run (a 64 MiB main.cf needs far less)
MAX_WARNINGS = 200
_HEAD = 256 * 1024
# how a postconf stopped by its address-space limit says so (malloc, or the loader at start)
_OUT_OF_MEMORY = ("insufficient memory", "out of memory", "cannot allocate memory", "failed to map segment")


class PostconfGaveUp(Exception):
    """postconf ran out of time or memory: not a verdict on the config, so the parser's view is used."""


_ASSIGN = re.compile(r"^(\S+) =(?: (.*))?$")  # postconf prints "name =" for an empty value
_UNUSED = re.compile(r"(unused parameter: [^=\s]+)=.*")


def find_postconf() -> str | None:
    return shutil.which("postconf") or next(
        (p for p in ("/usr/sbin/postconf", "/usr/bin/postconf") if Path(p).is_file()), None
    )


def run_postconf(binary: str, directory: str, *args: str) -> tuple[str, list[str]]:
    """Run postconf on DIR within TIMEOUT and MEMORY_KB; InputError with its fatal message when it
    refuses the config, PostconfGaveUp when it ran out of time or memory.

    Its warnings come back as notes, at most MAX_WARNINGS of them (one per unused parameter of a
    million-line main.cf would be a million notes); stderr goes to a file, read only at its ends.
    """
    # ``ulimit -v`` in a shell rather than preexec_fn: collectors may run in a worker thread.
    argv = ["/bin/sh", "-c", 'ulimit -v "$1" 2>/dev/null; shift; exec "$@"', "sh", str(MEMORY_KB)]
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(
                [*argv, binary, "-c", directory, *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=TIMEOUT,
                errors="replace",
            )
        except subprocess.TimeoutExpired:
            raise PostconfGaveUp(f"postconf did not answer within {TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise InputError(f"cannot run postconf: {exc.strerror or exc}", directory) from None
        warnings = _warnings(err)
    if proc.returncode != 0:
        fatal = next((w for w in warnings if ": fatal: " in w), warnings[-1] if warnings else "failed")
        fatal = fatal.split(": fatal: ", 1)[-1]
        if proc.returncode < 0 or any(m in fatal.lower() for m in _OUT_OF_MEMORY):
            why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else fatal[:120]
            raise PostconfGaveUp(f"postconf ran out of memory (limit {MEMORY_KB // 1024} MiB): {why}")
        raise InputError(f"postconf: {fatal}", directory)
    return proc.stdout, warnings


def _warnings(err: IO[bytes]) -> list[str]:
    """The first warnings, a count of the rest, and the last lines (where a fatal error is)."""
    size = err.seek(0, os.SEEK_END)
    err.seek(0)
    head = err.read(_HEAD).decode("utf-8", "replace").splitlines()
    if size <= _HEAD:
        tail: list[str] = []
    else:
        head = head[:-1]  # cut mid-line
        err.seek(max(_HEAD, size - 4096))
        tail = err.read().decode("utf-8", "replace").splitlines()[1:]
    lines = [_redact(ln.strip()) for ln in head if ln.strip()]
    kept = lines[:MAX_WARNINGS]
    more = len(lines) - len(kept) + (1 if size > _HEAD else 0)
    if more > 0:
        kept.append(f"(more postconf warnings not shown: {size} bytes in all)")
    return kept + [_redact(ln.strip()) for ln in tail[-3:] if ln.strip()]


def _redact(line: str) -> str:
    """postconf echoes ``name=value`` of unused parameters, also from ldap:/mysql: files (bind_pw!)."""
    line = _UNUSED.sub(r"\1=<value not shown>", line)
    return line.split(": warning: ", 1)[-1] if ": warning: " in line else line


def _overrides(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``service/type/name = value`` lines of ``postconf -P``."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for line in text.splitlines():
        m = _ASSIGN.match(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2) or ""
        parts = key.rsplit("/", 2)
        if len(parts) == 3:
            out.setdefault((parts[0], parts[1]), {})[parts[2]] = value
    return out


def apply_postconf(parsed: Parsed, binary: str) -> bool:
    """Replace the parser's effective values with postconf's, keeping locations and flags.

    Returns False (and notes why) when postconf gave up on time or memory: the parser's values stand.
    """
    d = str(parsed.directory)
    check_regular(parsed.directory / "main.cf")
    if parsed.master.path is not None:
        check_regular(Path(parsed.master.path))
    try:
        _apply(parsed, binary, d)
    except PostconfGaveUp as exc:
        parsed.notes.append(f"{exc}: the files were read by the parser instead")
        return False
    return True


def _apply(parsed: Parsed, binary: str, d: str) -> None:
    known = [n for n in parsed.params if n in parsed.defaults.values]
    # a value past the parser's expansion bounds would make postconf run out of memory, too
    names = [n for n in known if n not in parsed.host_dependent and not parsed.params[n].unresolved]
    expanded, warn = run_postconf(binary, d, "-x", *names)
    # "name = value" lines, matched by name: a parameter this postconf does not know is just absent
    values = {m.group(1): m.group(2) or "" for m in map(_ASSIGN.match, expanded.splitlines()) if m}
    seen = set(warn)
    parsed.notes.extend(f"postconf: {w}" for w in warn)
    for name in names:
        if name not in values:
            continue  # postconf would substitute this machine's hostname/networks
        pv = parsed.params[name]
        parsed.params[name] = replace(pv, value=normalize(values[name]), source="postconf")
    if parsed.master.path is None:
        return
    if any(pv.unresolved for svc in parsed.services for pv in svc.overrides.values()):
        parsed.notes.append("postconf -P not run: a master.cf -o value is past the expansion bounds")
        return
    try:
        ptext, warn = run_postconf(binary, d, "-P", "-x")
    except PostconfGaveUp as exc:
        parsed.notes.append(f"{exc}: the master.cf -o values are the parser's")
        return
    parsed.notes.extend(f"postconf: {w}" for w in warn if w not in seen)
    by_service = _overrides(ptext)
    for i, svc in enumerate(parsed.services):
        pc = by_service.get((svc.name, svc.type), {})
        new = {}
        for name, pv in svc.overrides.items():
            hosty = f"{i}/{name}" in parsed.host_dependent
            if name in pc and name in parsed.defaults.values and not hosty:
                new[name] = replace(pv, value=normalize(pc[name]), source="postconf")
            else:
                new[name] = pv
        parsed.services[i] = replace(svc, overrides=new)
