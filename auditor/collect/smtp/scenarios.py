"""Probe scenarios: the declarative probes/*.toml files (format: probes/README.md).

A scenario is one MAIL + one RCPT with placeholders, what a safe site answers (``expect``) and the
rules that judge the answer (``feeds``). The engine runs every null-sender scenario as its own
transaction (exactly one RCPT after ``MAIL FROM:<>``) and merges the RCPTs of all probe-sender
scenarios into one shared transaction, so many domains cost few MAIL transactions. It records each
answer with the scenario's role, expectation and feeds; the rules named in ``feeds`` judge every
answer that names them.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from auditor import resources
from auditor.model import InputError
from auditor.observations.smtp import Expect, Role

PLACEHOLDERS = frozenset({"domain", "random", "label", "relay_domain", "mail_from"})
# Control addresses come from the user (--control, the directory), never from a scenario.
ROLES = frozenset(r.value for r in Role if r is not Role.CONTROL)
# Settings a scenario may depend on ("always" = no dependency).
ENABLE_KEYS = frozenset({"always", "subdomain_probe", "relay_test_domain"})
_MAIL = re.compile(r"MAIL FROM:<(\{mail_from\})?>")
_RCPT = re.compile(r"RCPT TO:<([^<>\s]+)>")
_RULE_ID = re.compile(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)+")
_KEYS = {"name", "description", "role", "steps", "expect", "feeds", "enabled", "order"}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    role: Role
    null_sender: bool
    recipient: str  # template, e.g. "{random}@{domain}"
    expect: Expect  # what a safe site answers to the RCPT
    feeds: tuple[str, ...]  # the rule ids that judge the answer
    enabled: str = "always"
    order: int = 50
    path: str = ""

    def recipient_for(self, **values: str) -> str:
        return self.recipient.format(**values)


def default_dir() -> Path:
    """The built-in scenarios (the project's probes/ folder, shipped as package data)."""
    return resources.probes_dir()


def _fail(path: Path, message: str, text: str = "", key: str = "") -> InputError:
    line = None
    if key and text:
        for no, raw in enumerate(text.splitlines(), 1):
            if raw.strip().startswith(key):
                line = no
                break
    return InputError(message, str(path), line)


def parse(path: Path) -> Scenario:
    """Load and validate one scenario file; any mistake is an InputError naming file (and line)."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(f"not valid TOML: {str(exc).split(' (at')[0]}", str(path), line) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", str(path)) from None
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise _fail(path, f"unknown key {unknown[0]!r}", text, unknown[0])
    for key in ("name", "description", "role", "expect"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise _fail(path, f"{key!r} must be a non-empty string", text, key)
    if doc["role"] not in ROLES:
        raise _fail(path, f"role must be one of {sorted(ROLES)}", text, "role")
    if doc["expect"] not in {e.value for e in Expect}:
        raise _fail(path, "expect must be '2xx' or '5xx'", text, "expect")
    steps = doc.get("steps")
    if not (isinstance(steps, list) and len(steps) == 2 and all(isinstance(s, str) for s in steps)):
        raise _fail(path, "steps must be exactly two strings: a MAIL FROM and one RCPT TO", text, "steps")
    mail = _MAIL.fullmatch(steps[0])
    rcpt = _RCPT.fullmatch(steps[1])
    if not mail or not rcpt:
        raise _fail(
            path, "steps must be ['MAIL FROM:<{mail_from}>' or 'MAIL FROM:<>', 'RCPT TO:<…>']", text, "steps"
        )
    recipient = rcpt.group(1)
    fields = {f for _, f, _, _ in string.Formatter().parse(recipient) if f is not None}
    bad = sorted(fields - PLACEHOLDERS)
    if bad:
        raise _fail(path, f"unknown placeholder {{{bad[0]}}} in RCPT", text, "steps")
    null_sender = mail.group(1) is None
    if null_sender != (doc["role"] == "null-postmaster"):
        raise _fail(path, "only the null-postmaster role uses MAIL FROM:<>", text, "steps")
    feeds = doc.get("feeds")
    if not isinstance(feeds, list) or not feeds or not all(isinstance(f, str) for f in feeds):
        raise _fail(
            path,
            "feeds must be a non-empty list of rule ids (the rules that judge the answer)",
            text,
            "feeds",
        )
    bad_id = next((f for f in feeds if not _RULE_ID.fullmatch(f)), None)
    if bad_id is not None:
        raise _fail(path, f"feeds: {bad_id!r} is not a rule id (like SMTP-RCPT-001)", text, "feeds")
    enabled = doc.get("enabled", "always")
    if enabled not in ENABLE_KEYS:
        raise _fail(path, f"enabled must be one of {sorted(ENABLE_KEYS)}", text, "enabled")
    order = doc.get("order", 50)
    if not isinstance(order, int) or isinstance(order, bool):
        raise _fail(path, "order must be an integer", text, "order")
    return Scenario(
        name=doc["name"],
        description=doc["description"].strip(),
        role=Role(doc["role"]),
        null_sender=null_sender,
        recipient=recipient,
        expect=Expect(doc["expect"]),
        feeds=tuple(feeds),
        enabled=enabled,
        order=order,
        path=str(path),
    )


def load(directory: str | Path = "") -> list[Scenario]:
    """Every *.toml scenario of the folder, in ``order``; names must be unique."""
    folder = Path(directory) if directory else default_dir()
    if not folder.is_dir():
        raise InputError("probe scenario folder not found", str(folder))
    out: list[Scenario] = []
    for path in sorted(folder.glob("*.toml")):
        sc = parse(path)
        if any(o.name == sc.name for o in out):
            raise InputError(f"duplicate scenario name {sc.name!r}", str(path))
        out.append(sc)
    if not any(s.role == "unknown" for s in out):
        raise InputError("no scenario with role 'unknown': the probe would measure nothing", str(folder))
    return sorted(out, key=lambda s: (s.order, s.name))
