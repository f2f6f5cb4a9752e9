"""Reading a config directory through the real ``postconf`` binary (the truth where installed).

``postconf -c DIR -x -h NAME…`` gives expanded values, ``postconf -c DIR -h NAME…`` raw ones,
``postconf -c DIR -P -x`` the expanded ``-o`` overrides. File:line locations, template tokens and
host-computed defaults (myhostname, mydomain, mynetworks: postconf would report *this* machine's)
come from the file parser. postconf warnings on stderr become notes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from auditor.collect.postfix.parse import Parsed, normalize
from auditor.model import InputError

TIMEOUT = 30.0
_ASSIGN = re.compile(r"^(\S+) =(?: (.*))?$")  # postconf prints "name =" for an empty value
_UNUSED = re.compile(r"(unused parameter: [^=\s]+)=.*")


def find_postconf() -> str | None:
    return shutil.which("postconf") or next(
        (p for p in ("/usr/sbin/postconf", "/usr/bin/postconf") if Path(p).is_file()), None
    )


def run_postconf(binary: str, directory: str, *args: str) -> tuple[str, list[str]]:
    """Run postconf on DIR; InputError with its fatal message on failure."""
    try:
        proc = subprocess.run(
            [binary, "-c", directory, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"postconf did not answer within {TIMEOUT:.0f} s", directory) from None
    except OSError as exc:
        raise InputError(f"cannot run postconf: {exc.strerror or exc}", directory) from None
    warnings = [_redact(ln.strip()) for ln in proc.stderr.splitlines() if ln.strip()]
    if proc.returncode != 0:
        fatal = next((w for w in warnings if ": fatal: " in w), warnings[-1] if warnings else "failed")
        raise InputError(f"postconf: {fatal.split(': fatal: ', 1)[-1]}", directory)
    return proc.stdout, warnings


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


def apply_postconf(parsed: Parsed, binary: str) -> None:
    """Replace the parser's effective values with postconf's, keeping locations and flags."""
    d = str(parsed.directory)
    known = [n for n in parsed.params if n in parsed.defaults.values]
    host_computed = {n for n in parsed.defaults.computed if n not in parsed.main.params}
    names = [n for n in known if n not in host_computed]
    expanded, warn = run_postconf(binary, d, "-x", *names)
    # "name = value" lines, matched by name: a parameter this postconf does not know is just absent
    values = {m.group(1): m.group(2) or "" for m in map(_ASSIGN.match, expanded.splitlines()) if m}
    seen = set(warn)
    parsed.notes.extend(f"postconf: {w}" for w in warn)
    for name in names:
        if name not in values:
            continue
        if host_computed and _uses(parsed, name, host_computed):
            continue  # postconf would substitute this machine's hostname/networks
        pv = parsed.params[name]
        parsed.params[name] = replace(pv, value=normalize(values[name]), source="postconf")
    if parsed.master.path is None:
        return
    ptext, warn = run_postconf(binary, d, "-P", "-x")
    parsed.notes.extend(f"postconf: {w}" for w in warn if w not in seen)
    by_service = _overrides(ptext)
    for i, svc in enumerate(parsed.services):
        pc = by_service.get((svc.name, svc.type), {})
        new = {}
        for name, pv in svc.overrides.items():
            hosty = bool(host_computed) and _uses(parsed, name, host_computed, pv.raw)
            if name in pc and name in parsed.defaults.values and not hosty:
                new[name] = replace(pv, value=normalize(pc[name]), source="postconf")
            else:
                new[name] = pv
        parsed.services[i] = replace(svc, overrides=new)


def _uses(parsed: Parsed, name: str, host_computed: set[str], raw: str | None = None) -> bool:
    """Does ``name`` (or ``raw``, an override's text) depend on a host-computed default?"""
    from auditor.collect.postfix.expand import Expander

    main = parsed.main

    def lookup(n: str) -> str | None:
        a = main.params.get(n)
        return a.raw if a else parsed.defaults.values.get(n)

    exp = Expander(lookup)
    try:
        if raw is None:
            exp.expand_name(name)
        else:
            exp.expand(raw)
    except ValueError:
        return False
    return bool(exp.used & host_computed)
