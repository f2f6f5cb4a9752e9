"""Lookup tables: find each table's source beside the config and read it.

For every table named by a recipient-validation parameter (main.cf, or a service's ``-o``), we
record how many entries it has, its ``@domain`` wildcard keys, and entries that match any address
(regexp/pcre patterns that match a random local part, ``static:`` maps, ``inline:`` wildcards).
``random_lookup`` is what a lookup of a random unknown address returned: via ``postmap -q`` on a
copy in a temp dir when postmap is installed (never writing into the linted directory), else our
own evaluation: regexp/pcre patterns run in :mod:`auditor.collect.postfix.rxmatch` with a time budget
per pattern, and a pattern that could not be evaluated is recorded (``LookupTable.unevaluated``).

Sources are read one logical line at a time and only bounded parts are kept (counts, catch-all
entries, the first :data:`MAX_CONTENTS` entries of content/transport tables), so a table of
millions of lines costs time in proportion but little memory.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from auditor.collect.postfix.parse import Parsed
from auditor.collect.postfix.rxmatch import Outcome, match_patterns
from auditor.collect.postfix.textfile import (
    LogicalLine,
    ParsedText,
    check_regular,
    iter_logical_lines,
    read_text,
)
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
MAX_PATTERNS = 20_000  # regexp/pcre rules evaluated per recipient table; the rest: not evaluated
MAX_PATTERN_CHARS = 4000
MAX_KEYED = 100_000  # @domain keys remembered per table for our own lookup
MAX_TABLE_DOMAINS = 1000  # domains named by a table's keys, remembered to pick probe domains
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
            if not os.path.lexists(c) or c.is_dir():
                continue
            if not c.is_file():
                return c  # a FIFO, a device, a dangling link: refused (and named) when read
            if c.resolve().is_relative_to(root):
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


@dataclass
class _Rule:
    """A regexp/pcre rule: its pattern and the enclosing ``if /pattern/`` … ``endif`` guards, as
    (index into the table's distinct patterns, negated) conditions."""

    entry: TableEntry
    conds: tuple[tuple[int, bool], ...]


@dataclass
class _Source:
    """What is kept of a table source: bounded, whatever the size of the file."""

    text: str = ""  # the source itself, for the postmap copy
    count: int = 0
    contents: list[TableEntry] = field(default_factory=list)  # the first MAX_CONTENTS (listed tables)
    kinds: dict[str, TableEntry] = field(default_factory=dict)  # first entry of each result keyword
    wildcards: list[TableEntry] = field(default_factory=list)  # @domain keys (the first MAX_CONTENTS)
    keyed: dict[str, str] = field(default_factory=dict)  # key -> result, for probe-relevant keys
    domains: set[str] = field(default_factory=set)  # domains named in keys or patterns
    patterns: list[tuple[str, bool]] = field(default_factory=list)  # distinct (pattern, ignore case)
    rules: list[_Rule] = field(default_factory=list)
    skipped: list[TableEntry] = field(default_factory=list)  # rules not evaluated: why, in ``note``
    skipped_count: int = 0

    def keep(self, e: TableEntry, listed: bool) -> None:
        self.count += 1
        if listed:
            if len(self.contents) < MAX_CONTENTS:
                self.contents.append(e)
            k = result_keyword(e.value)
            if k not in self.kinds and len(self.kinds) < MAX_RESULT_KINDS:
                self.kinds[k] = e

    def skip(self, e: TableEntry, why: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_CONTENTS:
            self.skipped.append(replace(e, note=why))


def _lines(path: Path, text: str) -> Iterator[LogicalLine]:
    return iter_logical_lines(path, ParsedText(str(path)), text=text)


def _read_indexed(path: Path, text: str, listed: bool, local: str) -> _Source:
    """``key value`` lines: counted; @domain keys, the probe's own key and key domains kept."""
    src = _Source(text)
    for ll in _lines(path, text):
        parts = ll.text.strip().split(None, 1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        e = TableEntry(key, value, Location(str(path), ll.line))
        src.keep(e, listed)
        if "@" not in key:
            continue
        low = key.lower()
        user, _, dom = low.rpartition("@")
        if not user and len(src.wildcards) < MAX_CONTENTS:
            src.wildcards.append(e)
        # postmap keeps the first of duplicate keys (and warns)
        if (not user or user == local) and low not in src.keyed and len(src.keyed) < MAX_KEYED:
            src.keyed[low] = value
        if dom and len(src.domains) < MAX_TABLE_DOMAINS:
            src.domains.add(dom)
    return src


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


def _ignore_case(flags: str) -> bool:
    ignore_case = True  # regexp_table(5)/pcre_table(5): case-insensitive unless the "i" flag toggles it
    for f in flags:
        if f == "i":
            ignore_case = not ignore_case
    return ignore_case


def _read_regex(path: Path, text: str, *, listed: bool, evaluate: bool) -> _Source:
    """Rules with their ``if``/``endif`` guards; patterns to evaluate are collected, not compiled."""
    src = _Source(text)
    index: dict[tuple[str, bool], int] = {}
    guards: list[tuple[int, bool] | None] = []  # None: a guard we do not evaluate

    def pattern_id(pattern: str, flags: str) -> int | None:
        if len(pattern) > MAX_PATTERN_CHARS:
            return None
        key = (pattern, _ignore_case(flags))
        if key not in index:
            if len(index) >= MAX_PATTERNS:
                return None
            index[key] = len(src.patterns)
            src.patterns.append(key)
        return index[key]

    for ll in _lines(path, text):
        body = ll.text.strip()
        word = body.split(None, 1)[0].lower()
        if word == "endif":
            if guards:
                guards.pop()
            continue
        is_if = word == "if"
        rule = _parse_regex_line(body[2:] if is_if else body)
        if rule is None:
            continue
        pattern, flags, negated, result = rule
        if is_if:
            if evaluate:
                pid = pattern_id(pattern, flags)
                guards.append(None if pid is None else (pid, negated))
            continue
        e = TableEntry(("!" if negated else "") + f"/{pattern}/{flags}", result, Location(str(path), ll.line))
        src.keep(e, listed)
        if not evaluate:  # content/transport tables are never matched with addresses
            continue
        for m in _DOMAIN_IN_PATTERN.finditer(pattern):
            if len(src.domains) < MAX_TABLE_DOMAINS:
                src.domains.add(m.group(1).replace("\\.", ".").lower())
        pid = pattern_id(pattern, flags)
        if pid is None or any(g is None for g in guards):
            why = (
                "pattern too long"
                if len(pattern) > MAX_PATTERN_CHARS
                else (
                    "inside an if-block whose pattern is not evaluated"
                    if pid is not None
                    else f"more than {MAX_PATTERNS} distinct patterns in the table"
                )
            )
            src.skip(e, why)
            continue
        conds = tuple(g for g in guards if g is not None)
        src.rules.append(_Rule(e, (*conds, (pid, negated))))
    return src


def _read_inline(body: str, listed: bool) -> _Source:
    inner = body.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    src = _Source()
    for item in split_list(inner):
        item = item.strip("{}").strip()
        key, _, value = item.partition("=")
        e = TableEntry(key.strip(), value.strip(), None)
        src.keep(e, listed)
        low = e.key.lower()
        if low.startswith("@"):
            src.wildcards.append(e)
        src.keyed.setdefault(low, e.value)
    return src


def result_keyword(value: str) -> str:
    """``REJECT text`` → ``REJECT``; ``autoreply:nexthop`` → ``autoreply`` (upper-cased when an action)."""
    word = value.split(None, 1)[0] if value.strip() else ""
    return word.split(":", 1)[0] if ":" in word else word.upper()


def _probe_addresses(local: str, domains: list[str]) -> list[tuple[str, str]]:
    return [(f"{local}@{d}", d) for d in domains]


@dataclass(frozen=True)
class _Verdict:
    """Our own evaluation of the probes against a regexp/pcre table."""

    match_all: tuple[TableEntry, ...]  # rules that matched some probe address
    first: str | None  # the result of the first rule that matched (None: none did)
    unevaluated: tuple[TableEntry, ...]  # rules whose outcome is unknown, ``note`` saying why


def _judge_rules(src: _Source, probes: list[tuple[str, str]]) -> _Verdict:
    outcomes: list[Outcome] = match_patterns(src.patterns, [a for a, _ in probes]) if src.rules else []
    n = len(probes)
    match_all: list[TableEntry] = []
    unknown: list[TableEntry] = []
    first: str | None = None
    for r in src.rules:
        hit = False
        undecided = ""
        for j in range(n):
            value: bool | None = True
            for pid, negated in r.conds:
                o = outcomes[pid]
                if j in o.matched:
                    cond: bool | None = not negated
                elif j in o.unknown:
                    cond = None
                    undecided = undecided or o.error
                else:
                    cond = negated
                if cond is False:
                    value = False
                    break
                if cond is None:
                    value = None
            if value:
                hit = True
                break
        if hit:
            match_all.append(r.entry)
            if first is None:
                first = r.entry.value
        elif undecided:
            unknown.append(replace(r.entry, note=undecided))
    return _Verdict(tuple(match_all), first, tuple(unknown))


def _own_lookup(src: _Source, probes: list[tuple[str, str]]) -> str | None:
    for addr, dom in probes:
        for key in (addr.lower(), "@" + dom):
            if key in src.keyed:
                return src.keyed[key]
    return None


def _postmap_lookup(postmap: str, typ: str, text: str, probes: list[tuple[str, str]]) -> str | None:
    """``postmap -q - type:copy`` on a copy (of the text we read: postmap never sees the linted
    file, which might be swapped for a FIFO) in a temp dir. Raises OSError/subprocess errors."""
    with tempfile.TemporaryDirectory(prefix="bsa-postmap-") as tmp:
        copy = Path(tmp) / "table"
        copy.write_text(text, encoding="utf-8")
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
    local = "bsa-" + secrets.token_hex(8)
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
        path: Path | None = None
        try:
            if typ == "inline":
                src = _read_inline(name, listed)
            elif typ in INDEXED or typ in REGEX or typ == "cidr":
                path = _resolve(name, typ, parsed.directory, config_directory)
                if path is None:
                    out.append(replace(base, error=f"table source not found in {parsed.directory}"))
                    continue
                check_regular(path)  # a FIFO or a device is named, and never opened
                text = read_text(path)
                if typ in REGEX:
                    src = _read_regex(path, text, listed=listed, evaluate=recipient)
                else:
                    src = _read_indexed(path, text, listed, local)
                del text
            else:
                out.append(replace(base, error=f"table type {typ!r} not evaluated"))
                continue
        except InputError as exc:
            out.append(replace(base, resolved_path=str(path) if path else None, error=str(exc)))
            notes.append(f"{exc}: table {spec} not read")
            continue
        contents = tuple(src.contents) if listed else ()
        kinds = tuple(src.kinds.values()) if listed else ()
        truncated = listed and src.count > MAX_CONTENTS
        if truncated:
            notes.append(f"{path or spec}: only the first {MAX_CONTENTS} of {src.count} entries kept")
        if not recipient:
            out.append(
                replace(
                    base,
                    resolved_path=str(path) if path else None,
                    entries=src.count,
                    readable=True,
                    contents=contents,
                    contents_truncated=truncated,
                    result_kinds=kinds,
                )
            )
            continue
        extra = src.domains - set(domains)
        doms = [*domains, *sorted(extra)][:MAX_DOMAINS] or ["example.invalid"]
        probes = _probe_addresses(local, doms)
        unevaluated: tuple[TableEntry, ...] = ()
        looked_up_with = "parser"
        if typ in REGEX:
            verdict = _judge_rules(src, probes)
            match_all = list(verdict.match_all)
            random = verdict.first
            unevaluated = tuple(src.skipped) + verdict.unevaluated
            for e in unevaluated[:20]:
                notes.append(f"{e.location}: pattern not evaluated ({e.note}): {e.key[:60]}")
            more = src.skipped_count - len(src.skipped) + max(0, len(unevaluated) - 20)
            if more > 0:
                notes.append(f"{path}: {more} more patterns not evaluated")
        else:
            match_all = list(src.wildcards) if typ == "inline" else []
            random = _own_lookup(src, probes)
        if postmap is not None and path is not None and typ != "cidr":
            try:
                random = _postmap_lookup(postmap, typ, src.text, probes)
                looked_up_with = "postmap"
            except (OSError, subprocess.SubprocessError) as exc:
                notes.append(
                    f"postmap -q on a copy of {path} failed ({type(exc).__name__}); own evaluation used"
                )
        out.append(
            replace(
                base,
                resolved_path=str(path) if path else None,
                entries=src.count,
                wildcard_entries=tuple(src.wildcards) if typ not in REGEX else (),
                match_all_entries=tuple(match_all),
                random_lookup=random if typ != "cidr" else "",
                readable=True,
                contents=contents,
                contents_truncated=truncated,
                result_kinds=kinds,
                unevaluated=unevaluated,
                looked_up_with=looked_up_with if typ != "cidr" else "",
            )
        )
    return tuple(out), notes
