"""Exchange collector: read cmdlet exports (three forms) and normalise them into observations.

Public API:
- :func:`collect` — files → ``ExchangeCmdletOutput`` observations + one ``ExchangeRun``;
- :func:`collector_script_path` — the PowerShell script an admin runs to produce the JSON form;
- :func:`read_file` — one file → :class:`ParsedFile` (used by tests and tools).

The form is detected from the content, never the extension: ``<Objs`` XML is Export-Clixml, ``{``
or ``[`` is JSON (collector file or plain ConvertTo-Json), anything else is console text.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence

from auditor import resources
from auditor.collect.exchange import cmdlets
from auditor.collect.exchange.clixml import parse_clixml
from auditor.collect.exchange.formatlist import parse_format_list
from auditor.collect.exchange.jsonform import SCHEMA, parse_json
from auditor.collect.exchange.parsed import ParsedFile
from auditor.model import InputError, Observation
from auditor.observations.exchange import (
    ENV_ONLINE,
    ENV_ONPREM,
    ExchangeCmdletOutput,
    ExchangeRun,
    ExObject,
    ExValue,
)
from auditor.safeio import read_regular

SCRIPT_NAME = "Collect-BackscatterAudit.ps1"
_PS_PROMPT = re.compile(r"\[PS\]", re.I)  # the Exchange Management Shell prompt: text, not JSON
# A whole organisation's export is a few MB. Memory grows with what is parsed — measured 6-12x the
# file size once parsed, ~1.2 KB per object (benchmarks: 25 MB of tiny objects peaked at 377 MB)
# — so the inputs of one run are capped in bytes and in objects, with a clear error past either.
MAX_BYTES = 24 * 1024 * 1024  # all export files of one run together
MAX_OBJECTS = 50_000  # objects of all cmdlets in all files of one run


def collector_script_path() -> str:
    """Filesystem path of the shipped collector script (package data)."""
    return str(resources.path(__name__, SCRIPT_NAME))


def decode(data: bytes, path: str) -> str:
    """Text from bytes as PowerShell writes them: UTF-8 (with or without BOM) or UTF-16 (BOM)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    elif data.startswith(b"\xef\xbb\xbf"):
        codec = "utf-8-sig"
    elif len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0:
        codec = "utf-16-le"  # Windows PowerShell's `>` redirection without a BOM
    else:
        codec = "utf-8"
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        if codec == "utf-8":
            try:
                return data.decode("cp1252")  # a console paste saved in the ANSI code page
            except UnicodeDecodeError:
                pass
        raise InputError(f"cannot decode as {codec}: byte {exc.start}", path) from None


def _size(path: str) -> int:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a directory, expected an export file", path)
    return st.st_size


def read_file(path: str, max_bytes: int = MAX_BYTES) -> ParsedFile:
    """Parse one export file in whichever form it is (a regular file of at most ``max_bytes``)."""
    _size(path)  # the clearer errors for a missing path or a directory
    try:
        data = read_regular(path, max_bytes)
    except InputError as exc:
        if exc.message.startswith("file too large"):
            raise InputError(
                f"file too large (more than {max_bytes} bytes for one run of exports)", path
            ) from None
        raise
    parsed = _parse(data, path)
    n = sum(len(o.objects) for o in parsed.outputs)
    if n > MAX_OBJECTS:
        raise InputError(f"more than {MAX_OBJECTS} objects in one run of exports ({n} here)", path)
    return parsed


def _parse(data: bytes, path: str) -> ParsedFile:
    text = decode(data, path).replace("\x00", "")
    head = text.lstrip("\ufeff \t\r\n")
    if not head:
        raise InputError("empty file", path)
    if head.startswith("<"):
        return parse_clixml(head, path)
    if head[0] == "{" or (head[0] == "[" and not _PS_PROMPT.match(head)):
        return parse_json(head, path)
    return parse_format_list(text.lstrip("\ufeff"), path)


def collect(paths: Sequence[str]) -> list[Observation]:
    """All files → observations: one ``ExchangeCmdletOutput`` per cmdlet per file, one ``ExchangeRun``."""
    total = sum(_size(p) for p in paths)
    if total > MAX_BYTES:
        raise InputError(
            f"exports total {total} bytes, more than the {MAX_BYTES} one run reads; lint them in parts"
        )
    parsed = [read_file(p) for p in paths]
    outputs = [o for p in parsed for o in p.outputs]
    n = sum(len(o.objects) for o in outputs)
    if n > MAX_OBJECTS:
        raise InputError(
            f"exports hold {n} objects, more than the {MAX_OBJECTS} one run reads; lint them in parts"
        )
    env, source = _environment(parsed, outputs)
    first = next((p for p in parsed if p.server or p.exchange_version or p.collected), None)
    run = ExchangeRun(
        target="exchange",
        environment=env,
        environment_source=source,
        server=first.server if first else "",
        exchange_version=first.exchange_version if first else "",
        collected=first.collected if first else "",
        inputs=tuple(paths),
        cmdlets=tuple(sorted({o.cmdlet for o in outputs})),
    )
    return [run, *outputs]


def _environment(parsed: list[ParsedFile], outputs: list[ExchangeCmdletOutput]) -> tuple[str, str]:
    declared = {p.environment for p in parsed if p.environment}
    if len(declared) > 1:
        raise InputError("inputs mix OnPremises and ExchangeOnline collector files; lint them separately")
    if declared:
        return declared.pop(), "collector manifest"
    seen = {o.cmdlet for o in outputs if not o.error and o.objects}
    online = sorted(seen & cmdlets.ONLINE_ONLY)
    onprem = sorted(seen & cmdlets.ONPREM_ONLY)
    if online and not onprem:
        return ENV_ONLINE, "output of " + ", ".join(online)
    if onprem and not online:
        return ENV_ONPREM, "output of " + ", ".join(onprem)
    return "", "unknown (no collector manifest, no environment-specific cmdlet output)"


__all__ = [
    "ENV_ONLINE",
    "ENV_ONPREM",
    "SCHEMA",
    "ExObject",
    "ExValue",
    "ExchangeCmdletOutput",
    "ExchangeRun",
    "ParsedFile",
    "collect",
    "collector_script_path",
    "read_file",
]
