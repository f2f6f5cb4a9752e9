"""Suppressions and baselines: accepted risks stay visible in every report, as ``suppressed``.

A suppressions file is TOML::

    [[suppress]]
    rule = "PF-RCPT-003"              # a rule id (case-insensitive)
    target = "mx2.example.com*"       # the finding's target, exactly or as a glob (* ? [..])
    reason = "backup MX retired in January"
    expires = 2027-01-31              # optional: from the day after, the finding fails again

A matching FAIL or INCONCLUSIVE finding becomes SUPPRESSED with the reason as its note; it is kept
in every format (SARIF marks it with ``suppressions``, JUnit as skipped), so a suppression hides
nothing. An expired suppression does not apply: the finding keeps its status and its note says so.
A baseline is a suppressions file written from the current FAIL findings, so that a CI gate only
fails on what is new.

A rule id the catalog does not know is an error (a typo would otherwise suppress nothing, silently).
A target that starts with a path matches whatever spelling of that path the finding uses
(``./postfix``, ``postfix``, ``postfix/``, the absolute path): both sides are normalised when they
are compared; the file keeps the target as written.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import difflib
import glob
import json
import os
import re
import tomllib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from auditor.model import Finding, InputError, Status

_KEYS = {"rule", "target", "reason", "expires"}
_REQUIRED = ("rule", "target", "reason")
_SUPPRESSIBLE = (Status.FAIL, Status.INCONCLUSIVE)


@dataclass(frozen=True)
class Suppression:
    rule: str
    target: str
    reason: str
    expires: _dt.date | None = None
    path: str = ""
    line: int | None = None

    def matches(self, f: Finding) -> bool:
        if f.rule_id.upper() != self.rule.upper():
            return False
        # Exact first: targets such as "mx[192.0.2.1]" would otherwise read as glob classes.
        if f.target == self.target or fnmatchcase(f.target, self.target):
            return True
        mine, theirs = normalise_target(self.target), normalise_target(f.target)
        return (mine, theirs) != (self.target, f.target) and (mine == theirs or fnmatchcase(theirs, mine))

    def expired(self, today: _dt.date) -> bool:
        return self.expires is not None and today > self.expires

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.path and self.line else self.path


_HEADER = re.compile(r"^\s*\[\[\s*suppress\s*\]\]")


_TABLE_OR_URL = re.compile(r"^[A-Za-z][A-Za-z0-9_+.-]*:")


def normalise_target(target: str) -> str:
    """``target`` with its first word spelled as an absolute, normalised path (relative to the current
    directory): ``./postfix/main.cf``, ``postfix/main.cf``, ``postfix//main.cf`` and the absolute path
    become one, and so do ``postfix`` and ``postfix/``. Applied to both sides of a comparison, a
    domain, an MX address or a DN compares as it did. A ``type:table``, a URL and a glob that starts
    with a wildcard (``*/main.cf`` already matches any spelling) are returned unchanged."""
    head, sep, rest = target.partition(" ")
    if not head or head[0] in "*?[" or _TABLE_OR_URL.match(head):
        return target
    return os.path.abspath(head) + sep + rest


class _Lines:
    """Where each ``[[suppress]]`` block and key sits: tomllib reports no lines for valid TOML."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers = [i + 1 for i, line in enumerate(self.lines) if _HEADER.match(line)]

    def block(self, index: int) -> int | None:
        return self.headers[index] if index < len(self.headers) else None

    def key(self, index: int, key: str) -> int | None:
        start = self.block(index)
        if start is None:
            return None
        end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines) + 1
        pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        for n in range(start + 1, end):
            if pattern.match(self.lines[n - 1]):
                return n
        return start

    def top_key(self, key: str) -> int | None:
        pattern = re.compile(rf"^\s*\[*\s*{re.escape(key)}\b")
        return next((i + 1 for i, line in enumerate(self.lines) if pattern.match(line)), None)


def parse_suppressions(
    text: str, path: str = "<suppressions>", known_rules: Collection[str] | None = None
) -> list[Suppression]:
    """Parse a suppressions file; any problem is an :class:`InputError` naming file and line.

    ``known_rules`` are the rule ids a suppression may name (default: every rule of the catalog).
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = int(m.group(1)) if m else None
        detail = re.sub(r" ?\(at line.*\)", "", msg)
        raise InputError(f"not valid TOML: {detail}", path, line) from None
    except RecursionError:
        raise InputError("not valid TOML: nested too deeply", path) from None
    where = _Lines(text)
    for key in doc:
        if key != "suppress":
            raise InputError(f"unknown key {key!r} (expected [[suppress]] blocks)", path, where.top_key(key))
    blocks = doc.get("suppress", [])
    if not isinstance(blocks, list):
        line = where.top_key("suppress")
        raise InputError("'suppress' must be an array of tables: [[suppress]]", path, line)
    out = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise InputError("each suppress entry must be a table", path, where.block(i))
        for key in block:
            if key not in _KEYS:
                known = ", ".join(sorted(_KEYS))
                msg = f"unknown key {key!r} in [[suppress]] (known: {known})"
                raise InputError(msg, path, where.key(i, key))
        for key in _REQUIRED:
            value = block.get(key)
            if value is None:
                raise InputError(f"[[suppress]] needs {key!r}", path, where.block(i))
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{key!r} must be a non-empty string", path, where.key(i, key))
        rule = block["rule"].strip()
        expires = _expiry(block.get("expires"), path, where.key(i, "expires"))
        _check_rule(rule, known_rules, path, where.key(i, "rule"))
        out.append(
            Suppression(
                rule=rule,
                target=block["target"],
                reason=block["reason"].strip(),
                expires=expires,
                path=path,
                line=where.block(i),
            )
        )
    return out


def _check_rule(rule: str, known: Collection[str] | None, path: str, line: int | None) -> None:
    if known is None:
        from auditor.rules import load_all  # the catalog, loaded only when a file is read

        known = load_all()
    ids = {k.upper() for k in known}
    if rule.upper() in ids:
        return
    near = difflib.get_close_matches(rule.upper(), sorted(ids), n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    raise InputError(f"unknown rule id {rule!r}{hint}", path, line)


def _expiry(value: Any, path: str, line: int | None) -> _dt.date | None:
    if value is None:
        return None
    # datetime is a subclass of date: a time of day would be a silent truncation, so refuse it.
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InputError(f"'expires' must be a date like 2027-01-31, not {value!r}", path, line)


def known_rule_ids(findings: Iterable[Finding] = ()) -> set[str]:
    """The ids a suppression may name: the catalog's, plus those of the findings it will be applied to
    (a saved report re-rendered by another version may hold rules this one does not have)."""
    from auditor.rules import load_all

    return set(load_all()) | {f.rule_id.upper() for f in findings}


def load_suppressions(path: str, known_rules: Collection[str] | None = None) -> list[Suppression]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", path) from None
    return parse_suppressions(text, path, known_rules)


_ESCAPED = re.compile(r"\[([*?\[])\]")


def _literal(pattern: str) -> str | None:
    """The literal string a glob matches when it has no wildcards (only ``[*]``-style escapes)."""
    if any(c in _ESCAPED.sub("", pattern) for c in "*?["):
        return None
    return _ESCAPED.sub(r"\1", pattern)


class _Index:
    """Suppressions by rule, exact targets in a dict: a baseline of thousands of entries applied to
    thousands of findings must not cost findings × suppressions glob matches."""

    def __init__(self, suppressions: Sequence[Suppression]) -> None:
        self.exact: dict[tuple[str, str], list[tuple[int, Suppression]]] = {}
        self.globs: dict[str, list[tuple[int, Suppression]]] = {}
        for i, s in enumerate(suppressions):
            rule = s.rule.upper()
            literal = _literal(s.target)
            keys = {s.target}
            if literal is None:
                self.globs.setdefault(rule, []).append((i, s))
            else:  # glob.escape()d, as baselines write them, is an exact match too
                keys |= {literal, normalise_target(literal)}
            for key in keys:
                self.exact.setdefault((rule, key), []).append((i, s))

    def matching(self, f: Finding) -> list[Suppression]:
        """Every suppression matching ``f``, in file order."""
        rule = f.rule_id.upper()
        found = dict(self.exact.get((rule, f.target), []))
        found.update(self.exact.get((rule, normalise_target(f.target)), []))
        for i, s in self.globs.get(rule, []):
            if i not in found and s.matches(f):
                found[i] = s
        return [found[i] for i in sorted(found)]


def apply_suppressions(
    findings: Iterable[Finding], suppressions: Sequence[Suppression], today: _dt.date
) -> list[Finding]:
    """FAIL/INCONCLUSIVE findings matched by a live suppression become SUPPRESSED (note = reason).

    A finding matched only by expired suppressions keeps its status; its note names the expiry.
    """
    index = _Index(suppressions)
    out = []
    for f in findings:
        if f.status not in _SUPPRESSIBLE:
            out.append(f)
            continue
        matching = index.matching(f)
        live = next((s for s in matching if not s.expired(today)), None)
        if live is not None:
            note = live.reason if f.status is Status.FAIL else f"{live.reason} [was inconclusive]"
            out.append(dataclasses.replace(f, status=Status.SUPPRESSED, note=note))
        elif matching:
            s = matching[0]
            assert s.expires is not None
            note = f"suppression expired {s.expires.isoformat()} ({s.where}): {s.reason}"
            out.append(dataclasses.replace(f, note=f"{f.note}; {note}" if f.note else note))
        else:
            out.append(f)
    return out


def _toml_string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; DEL is the one control character
    # JSON leaves raw and TOML forbids.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def baseline_text(findings: Iterable[Finding], today: _dt.date) -> str:
    """A suppressions file accepting every current FAIL finding (one block per rule and target)."""
    lines = [
        f"# Baseline written by backscatter-audit on {today.isoformat()}: every finding that failed then.",
        "# Use with --suppressions; findings not listed here still fail.",
    ]
    seen: set[tuple[str, str]] = set()
    for f in sorted(findings, key=lambda f: f.key):
        if f.status is not Status.FAIL or f.key in seen:
            continue
        seen.add(f.key)
        target = glob.escape(f.target) if any(c in f.target for c in "*?[") else f.target
        lines += [
            "",
            "[[suppress]]",
            f"rule = {_toml_string(f.rule_id)}",
            f"target = {_toml_string(target)}",
            f"reason = {_toml_string(f'baseline {today.isoformat()}')}",
        ]
    return "\n".join(lines) + "\n"


def write_baseline(findings: Iterable[Finding], path: str, today: _dt.date | None = None) -> None:
    """Write :func:`baseline_text` to ``path`` (atomically: a half-written baseline would un-suppress)."""
    text = baseline_text(findings, today or _today())
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write baseline: {exc.strerror or exc}", path) from None


def _today() -> _dt.date:
    return _dt.datetime.now(_dt.UTC).date()


def add_suppression_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--suppressions FILE`` and ``--write-baseline FILE`` (once: a second call is a no-op, so
    a command may call it even when shared options already include it)."""
    if "--suppressions" in parser._option_string_actions:  # argparse has no public lookup
        return
    parser.add_argument(
        "--suppressions",
        metavar="FILE",
        help="TOML file of [[suppress]] entries: matching findings are reported as suppressed",
    )
    parser.add_argument(
        "--write-baseline",
        metavar="FILE",
        help="write every current FAIL finding to FILE as suppressions (a baseline)",
    )


def check_suppression_options(args: argparse.Namespace) -> None:
    """Read ``--suppressions`` now, so that a bad file stops a command before it sends any probe."""
    path = getattr(args, "suppressions", None)
    if path:
        load_suppressions(path)


__all__ = [
    "Suppression",
    "add_suppression_options",
    "apply_suppressions",
    "baseline_text",
    "check_suppression_options",
    "known_rule_ids",
    "load_suppressions",
    "normalise_target",
    "parse_suppressions",
    "write_baseline",
]
