"""Lookup tables: find each table's source beside the config and read it.

For every table named by a recipient-validation parameter (main.cf, or a service's ``-o``), we
record how many entries it has, its ``@domain`` wildcard keys, and entries that match any address
(regexp/pcre patterns that match a random local part, ``static:`` maps, ``inline:`` wildcards).
``random_lookup`` is what a lookup of a random unknown address returned: via ``postmap -q`` on a
copy in a temp dir when postmap is installed (never writing into the linted directory), else our
own evaluation.

Tables of the content checks (``header_checks`` & co.) and of ``transport_maps`` are read the same
way, and every entry is kept with its action or result (``LookupTable.contents``), because rules
judge what the entries do (REJECT, pipe transports), not whether they match addresses.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from auditor.collect.postfix.parse import Parsed
from auditor.collect.postfix.textfile import logical_lines
from auditor.model import InputError, Location
from auditor.observations.postfix import MAX_CONTENTS, MAX_RESULT_KINDS, LookupTable, TableEntry, split_list

RECIPIENT_PARAMS = (
    "relay_recipient_maps",
    "virtual_alias_maps",
    "virtual_mailbox_maps",
    "local_recipient_maps",
)
# Tables whose every entry is kept with its action/result (cleanup(8) content checks, trivial-rewrite).
CONTENT_PARAMS = ("header_checks", "body_checks", "mime_header_checks", "nested_header_checks")
TRANSPORT_PARAMS = ("transport_maps",)
LISTED_PARAMS = (*CONTENT_PARAMS, *TRANSPORT_PARAMS)
DOMAIN_PARAMS = ("mydestination", "virtual_alias_domains", "virtual_mailbox_domains", "relay_domains")
INDEXED = {"hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"}
REGEX = {"regexp", "pcre"}
REMOTE = {"ldap", "mysql", "pgsql", "sqlite", "memcache", "tcp", "socketmap", "nis", "nisplus", "netinfo"}
MAX_DOMAINS = 20
POSTMAP_TIMEOUT = 10.0
# Nested quantifiers (``(a+)+``) can backtrack exponentially in Python's re: not evaluated.
_NESTED_QUANT = re.compile(r"\([^()]*[*+}][^()]*\)\s*[*+{]")
_DOMAIN_IN_PATTERN = re.compile(r"@((?:[A-Za-z0-9-]+\\?\.)+[A-Za-z]{2,})")


@dataclass
class _Table:
    spec: str
    used_by: list[str] = field(default_factory=list)


def _table_specs(parsed: Parsed) -> dict[str, _Table]:
    found: dict[str, _Table] = {}

    def add(spec: str, user: str) -> None:
        if ":" not in spec or spec.startswith("$"):
            return
        t = found.setdefault(spec, _Table(spec))
        if user not in t.used_by:
            t.used_by.append(user)

    for name in (*RECIPIENT_PARAMS, *LISTED_PARAMS):
        pv = parsed.params.get(name)
        if pv is not None:
            for spec in split_list(pv.value):
                add(spec, name)
    rr = parsed.params.get("smtpd_recipient_restrictions")
    if rr is not None:
        _access_tables(rr.value, "smtpd_recipient_restrictions", add)
    for svc in parsed.services:
        for name, pv in svc.overrides.items():
            user = f"{svc.name}/{svc.type}/{name}"
            if name in RECIPIENT_PARAMS or name in LISTED_PARAMS:
                for spec in split_list(pv.value):
                    add(spec, user)
            elif name == "smtpd_recipient_restrictions":
                _access_tables(pv.value, user, add)
    return found


def _access_tables(value: str, user: str, add: Callable[[str, str], None]) -> None:
    words = split_list(value)
    for i, w in enumerate(words[:-1]):
        if w == "check_recipient_access":
            add(words[i + 1], user)


def _unwrap(spec: str) -> tuple[str, str]:
    """``proxy:hash:/x`` → (``hash``, ``/x``); ``inline:{…}`` → (``inline``, ``{…}``)."""
    while spec.startswith("proxy:"):
        spec = spec[len("proxy:") :]
    typ, _, name = spec.partition(":")
    return typ, name


def _resolve(name: str, typ: str, directory: Path, config_directory: str) -> Path | None:
    """Where the table's source text lives inside the linted directory (copied config)."""
    base = name
    if typ in {"hash", "btree", "lmdb", "cdb", "dbm", "sdbm"}:
        for suffix in (".db", ".lmdb", ".cdb"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
    cands: list[Path] = []
    cfg = config_directory.rstrip("/") + "/"
    if base.startswith(cfg):
        cands.append(directory / base[len(cfg) :])
    elif not base.startswith("/"):
        cands.append(directory / base)
    cands.append(directory / Path(base).name)
    root = directory.resolve()
    for c in cands:
        try:
            if c.is_file() and c.resolve().is_relative_to(root):
                return c
        except OSError:
            continue
    return None


def _hosted_domains(parsed: Parsed) -> list[str]:
    doms: dict[str, None] = {}  # ordered set
    for name in DOMAIN_PARAMS:
        pv = parsed.params.get(name)
        # only MAX_DOMAINS are probed: a bounded prefix of a huge list is enough
        for w in split_list((pv.value if pv else "")[:100_000]):
            w = w.lower().strip(".")
            if ":" in w or "/" in w or "." not in w or "$" in w or w.startswith("localhost"):
                continue
            doms[w] = None
            if len(doms) >= MAX_DOMAINS:  # only this many are probed
                return list(doms)
    return list(doms)


Guard = tuple["re.Pattern[str] | None", bool]  # (compiled pattern, negated)


@dataclass
class _Rule:
    rx: re.Pattern[str] | None  # None: not evaluated (unsupported or risky)
    negated: bool
    entry: TableEntry
    guards: tuple[Guard, ...] = ()  # enclosing ``if /pattern/`` … ``endif`` conditions

    def evaluable(self) -> bool:
        return self.rx is not None and all(g is not None for g, _ in self.guards)

    def matches(self, addr: str) -> bool:
        conds = [*self.guards, (self.rx, self.negated)]
        return all(rx is not None and bool(rx.search(addr)) != neg for rx, neg in conds)


@dataclass
class _Source:
    entries: list[TableEntry]
    patterns: list[_Rule]


def _read_indexed(path: Path) -> _Source:
    entries: list[TableEntry] = []
    for ll in logical_lines(path).logical:
        parts = ll.text.strip().split(None, 1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        entries.append(TableEntry(key, value, Location(str(path), ll.line)))
    return _Source(entries, [])


def _parse_regex_line(text: str) -> tuple[str, str, bool, str] | None:
    """``[!]/pattern/flags result`` → (pattern, flags, negated, result); None if not a rule line."""
    s = text.strip()
    negated = s.startswith("!")
    if negated:
        s = s[1:]
    if not s:
        return None
    delim = s[0]
    if delim.isalnum() or delim.isspace():
        return None
    i = 1
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == delim:
            break
        i += 1
    if i >= len(s):
        return None
    pattern = s[1:i]
    rest = s[i + 1 :]
    m = re.match(r"[A-Za-z]*", rest)
    flags = m.group() if m else ""
    return pattern, flags, negated, rest[len(flags) :].strip()


def _compile(pattern: str, flags: str) -> re.Pattern[str] | None:
    if len(pattern) > 1000 or _NESTED_QUANT.search(pattern):
        return None
    ignore_case = True  # regexp_table(5)/pcre_table(5): case-insensitive unless the "i" flag toggles it
    for f in flags:
        if f == "i":
            ignore_case = not ignore_case
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except (re.error, RecursionError, OverflowError):
        return None


def _read_regex(path: Path, *, evaluate: bool = True) -> _Source:
    entries: list[TableEntry] = []
    rules: list[_Rule] = []
    guards: list[Guard] = []
    for ll in logical_lines(path).logical:
        text = ll.text.strip()
        word = text.split(None, 1)[0].lower()
        if word == "endif":
            if guards:
                guards.pop()
            continue
        is_if = word == "if"
        rule = _parse_regex_line(text[2:] if is_if else text)
        if rule is None:
            continue
        pattern, flags, negated, result = rule
        if not evaluate:  # content/transport tables are never matched here: compiling costs ~0.1 ms a line
            if not is_if:
                key = ("!" if negated else "") + f"/{pattern}/{flags}"
                entries.append(TableEntry(key, result, Location(str(path), ll.line)))
            continue
        if is_if:
            guards.append((_compile(pattern, flags), negated))
            continue
        e = TableEntry(("!" if negated else "") + f"/{pattern}/{flags}", result, Location(str(path), ll.line))
        entries.append(e)
        rules.append(_Rule(_compile(pattern, flags), negated, e, tuple(guards)))
    return _Source(entries, rules)


def _read_inline(body: str) -> _Source:
    inner = body.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    entries: list[TableEntry] = []
    for item in split_list(inner):
        item = item.strip("{}").strip()
        key, _, value = item.partition("=")
        entries.append(TableEntry(key.strip(), value.strip(), None))
    return _Source(entries, [])


def result_keyword(value: str) -> str:
    """``REJECT text`` → ``REJECT``; ``autoreply:nexthop`` → ``autoreply`` (upper-cased when an action)."""
    word = value.split(None, 1)[0] if value.strip() else ""
    return word.split(":", 1)[0] if ":" in word else word.upper()


def _result_kinds(entries: list[TableEntry]) -> tuple[TableEntry, ...]:
    first: dict[str, TableEntry] = {}
    for e in entries:
        k = result_keyword(e.value)
        if k not in first:
            first[k] = e
            if len(first) >= MAX_RESULT_KINDS:
                break
    return tuple(first.values())


def _probe_addresses(domains: list[str]) -> list[tuple[str, str]]:
    local = "bsa-" + secrets.token_hex(8)
    return [(f"{local}@{d}", d) for d in domains]


def _own_lookup(typ: str, src: _Source, probes: list[tuple[str, str]]) -> str | None:
    for addr, dom in probes:
        if typ in REGEX:
            for r in src.patterns:
                if r.evaluable() and r.matches(addr):
                    return r.entry.value
        else:
            by_key = {e.key.lower(): e.value for e in src.entries}
            for key in (addr, "@" + dom):
                if key in by_key:
                    return by_key[key]
    return None


def _postmap_lookup(postmap: str, typ: str, source: Path, probes: list[tuple[str, str]]) -> str | None:
    """``postmap -q - type:copy`` on a copy in a temp dir. Raises OSError/subprocess errors."""
    with tempfile.TemporaryDirectory(prefix="bsa-postmap-") as tmp:
        copy = Path(tmp) / "table"
        shutil.copyfile(source, copy)
        (Path(tmp) / "main.cf").write_text("")  # postmap reads a main.cf: give it an empty one, not /etc's
        # Postfix waits up to ~2 s before reading a file modified within the last second: back-date.
        past = time.time() - 60
        for f in (copy, Path(tmp) / "main.cf"):
            os.utime(f, (past, past))
        if typ in INDEXED and typ != "texthash":
            subprocess.run(
                [postmap, "-c", tmp, f"{typ}:{copy}"],
                capture_output=True,
                timeout=POSTMAP_TIMEOUT,
                check=True,
            )
        keys = [a for a, _ in probes]
        if typ not in REGEX:
            keys += ["@" + d for _, d in probes]
        proc = subprocess.run(
            [postmap, "-c", tmp, "-q", "-", f"{typ}:{copy}"],
            input="\n".join(keys) + "\n",
            capture_output=True,
            text=True,
            timeout=POSTMAP_TIMEOUT,
        )
        if proc.returncode not in (0, 1):
            raise subprocess.CalledProcessError(proc.returncode, "postmap", proc.stdout, proc.stderr)
        for line in proc.stdout.splitlines():
            _key, sep, value = line.partition("\t")
            if sep:
                return value
        return None


def _find_postmap() -> str | None:
    return shutil.which("postmap") or next(
        (p for p in ("/usr/sbin/postmap", "/usr/bin/postmap") if Path(p).is_file()), None
    )


def collect_tables(parsed: Parsed, *, use_postmap: bool = True) -> tuple[tuple[LookupTable, ...], list[str]]:
    """Every recipient-validation, content-check and transport table, read from the linted directory."""
    notes: list[str] = []
    cfgdir_pv = parsed.params.get("config_directory")
    config_directory = cfgdir_pv.value if cfgdir_pv and cfgdir_pv.explicit else "/etc/postfix"
    domains = _hosted_domains(parsed)
    postmap = _find_postmap() if use_postmap else None
    out: list[LookupTable] = []
    for spec, t in _table_specs(parsed).items():
        typ, name = _unwrap(spec)
        base = LookupTable(spec=spec, type=typ, name=name, used_by=tuple(t.used_by))
        listed = any(base.used_for(n) for n in LISTED_PARAMS)
        # a table only named by content/transport parameters is never looked up with addresses
        recipient = any(u.rsplit("/", 1)[-1] not in LISTED_PARAMS for u in t.used_by)
        if typ == "static":
            value = name.strip("{} ")
            entry = TableEntry("*", value, None)
            out.append(
                replace(
                    base,
                    entries=1,
                    match_all_entries=(entry,) if recipient else (),
                    random_lookup=value if recipient else "",
                    readable=True,
                    contents=(entry,) if listed else (),
                )
            )
            continue
        if typ in REMOTE or typ == "unix":
            # The map's own config file (ldap:/etc/postfix/ldap-users.cf) as copied beside main.cf:
            # the directory stage queries it from there. Its contents are not judged here.
            where = _resolve(name, typ, parsed.directory, config_directory) if "/" in name else None
            out.append(replace(base, resolved_path=str(where) if where else None, readable=False))
            continue
        try:
            path: Path | None = None
            if typ == "inline":
                src = _read_inline(name)
            elif typ in INDEXED or typ in REGEX or typ == "cidr":
                path = _resolve(name, typ, parsed.directory, config_directory)
                if path is None:
                    out.append(replace(base, error=f"table source not found in {parsed.directory}"))
                    continue
                src = _read_regex(path, evaluate=recipient) if typ in REGEX else _read_indexed(path)
            else:
                out.append(replace(base, error=f"table type {typ!r} not evaluated"))
                continue
        except InputError as exc:
            out.append(replace(base, error=str(exc)))
            continue
        contents = tuple(src.entries[:MAX_CONTENTS]) if listed else ()
        kinds = _result_kinds(src.entries) if listed else ()
        truncated = listed and len(src.entries) > MAX_CONTENTS
        if truncated:
            notes.append(f"{path or spec}: only the first {MAX_CONTENTS} of {len(src.entries)} entries kept")
        if not recipient:
            out.append(
                replace(
                    base,
                    resolved_path=str(path) if path else None,
                    entries=len(src.entries),
                    readable=True,
                    contents=contents,
                    contents_truncated=truncated,
                    result_kinds=kinds,
                )
            )
            continue
        extra = {e.key.split("@", 1)[1].lower() for e in src.entries if "@" in e.key and typ not in REGEX}
        for r in src.patterns:
            found = _DOMAIN_IN_PATTERN.finditer(r.entry.key)
            extra |= {m.group(1).replace("\\.", ".").lower() for m in found}
        doms = [*domains, *sorted(extra - set(domains))][:MAX_DOMAINS] or ["example.invalid"]
        probes = _probe_addresses(doms)
        wild = tuple(e for e in src.entries if e.key.startswith("@")) if typ not in REGEX else ()
        match_all: list[TableEntry] = []
        if typ in REGEX:
            for r in src.patterns:
                if not r.evaluable():
                    e = r.entry
                    notes.append(f"{e.location}: pattern not evaluated (unsupported or risky): {e.key[:60]}")
                    continue
                if any(r.matches(a) for a, _ in probes):
                    match_all.append(r.entry)
        elif typ == "inline":
            match_all = list(wild)
        random: str | None = _own_lookup(typ, src, probes)
        if postmap is not None and path is not None and typ != "cidr":
            try:
                random = _postmap_lookup(postmap, typ, path, probes)
            except (OSError, subprocess.SubprocessError) as exc:
                notes.append(
                    f"postmap -q on a copy of {path} failed ({type(exc).__name__}); own evaluation used"
                )
        out.append(
            replace(
                base,
                resolved_path=str(path) if path else None,
                entries=len(src.entries),
                wildcard_entries=wild,
                match_all_entries=tuple(match_all),
                random_lookup=random if typ != "cidr" else "",
                readable=True,
                contents=contents,
                contents_truncated=truncated,
                result_kinds=kinds,
            )
        )
    return tuple(out), notes
