"""The file-only collector: main.cf + master.cf + built-in defaults → PostfixConfig.

Effective values follow Postfix: the last assignment wins, unset parameters take the built-in
default *expression* of the defaults data file (so ``$myhostname`` means the linted host's name and
the compatibility-level dependent defaults follow the linted ``compatibility_level``), and values
are expanded recursively with :mod:`auditor.collect.postfix.expand`. Values are whitespace-normalised
the way ``postconf`` prints them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.postfix.defaults import Defaults, load_defaults
from auditor.collect.postfix.expand import (
    VALUE_CHARS,
    Budget,
    Expander,
    ExpansionError,
    ExpansionLimit,
    Memo,
)
from auditor.collect.postfix.maincf import MainCf, parse_main_cf
from auditor.collect.postfix.mastercf import FIELDS, MasterCf, ServiceLine, parse_master_cf, stock_master_cf
from auditor.collect.postfix.redact import is_secret_param, secret_flow
from auditor.collect.postfix.templates import find_tokens
from auditor.model import InputError, Location
from auditor.observations.postfix import RULE_PARAMETERS, MasterService, ParamValue, TemplateToken

# main.cf parameters that Postfix does not know are kept (and expanded) up to this many; the rest
# are only read when some value references them. Rules read known parameters and restriction classes.
MAX_UNKNOWN_PARAMS = 2000
_SPACES = (" " * 2, "\t", "\n", "\r", "\v", "\f")


def normalize(value: str) -> str:
    """Collapse whitespace like postconf's output does."""
    if value[:1].isspace() or value[-1:].isspace() or any(w in value for w in _SPACES):
        return " ".join(value.split())
    return value  # already normal: no copy of a 60 MB value


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()  # a dangling or /dev/zero link is refused when read


def check_directory(directory: str) -> Path:
    d = Path(directory)
    if not d.exists():
        raise InputError("no such directory", directory)
    if not d.is_dir():
        raise InputError("not a directory (give the Postfix config directory)", directory)
    if not _exists(d / "main.cf"):
        raise InputError("no main.cf in this directory", directory)
    return d


@dataclass
class Parsed:
    """Everything the file parser found, before tables are added."""

    directory: Path
    main: MainCf
    master: MasterCf
    defaults: Defaults
    params: dict[str, ParamValue] = field(default_factory=dict)
    services: list[MasterService] = field(default_factory=list)
    templates: list[TemplateToken] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # parameters whose value is a secret or flows into one (errors on them never quote the value)
    secret_flow: set[str] = field(default_factory=set)
    # main.cf names, and "INDEX/name" of service INDEX's -o overrides, whose value uses a default
    # that the server computes at run time (myhostname, mydomain, mynetworks)
    host_dependent: set[str] = field(default_factory=set)


class _Context:
    """Raw-value lookup for main.cf (optionally with one service's ``-o`` overrides on top)."""

    def __init__(self, main: MainCf, defaults: Defaults) -> None:
        self.main = main
        self.defaults = defaults
        self.templated = {n for n, a in main.params.items() if a.tokens}
        self.computed: dict[str, str] = {}
        self.memo: Memo = {}
        self.budget = Budget()

    def lookup(self, name: str) -> str | None:
        a = self.main.params.get(name)
        if a is not None:
            return a.raw
        if name in self.computed:
            return self.computed[name]
        return self.defaults.values.get(name)

    def overlay(self, overrides: dict[str, str]) -> Callable[[str], str | None]:
        def lookup(name: str) -> str | None:
            return overrides[name] if name in overrides else self.lookup(name)

        return lookup


def _host_computed(ctx: _Context, notes: list[str]) -> None:
    """myhostname / mydomain / mynetworks defaults are computed by the server at run time."""
    params = ctx.main.params
    if "myhostname" not in params:
        ctx.computed["myhostname"] = ""
        notes.append("myhostname is not set: the server uses its own host name; here $myhostname is empty")
    if "mydomain" not in params:
        try:
            host = normalize(Expander(ctx.lookup, ctx.budget).expand_name("myhostname"))
        except ExpansionError:
            host = ""
        # mail_params.c: the domain part of myhostname, else "localdomain".
        ctx.computed["mydomain"] = host.split(".", 1)[1] if "." in host.strip(".") else "localdomain"
    if "mynetworks" not in params:
        ctx.computed["mynetworks"] = ""
        notes.append("mynetworks is not set: the server computes it from its interfaces (mynetworks_style)")


def _error_location(ctx: _Context, name: str, exc: ExpansionError) -> tuple[str | None, int | None]:
    if "compatibility level" in str(exc) and "compatibility_level" in ctx.main.params:
        name = "compatibility_level"
    a = ctx.main.params.get(name)
    return (ctx.main.path, a.line) if a else (ctx.main.path, None)


def _template_cause(ctx: _Context, name: str, exc: ExpansionError, raw: str = "") -> str:
    """Why an expansion failed because of a template placeholder ('' when it did not).

    ``relay_domains = <% $relay_domains %>`` or ``compatibility_level = {{ compat }}`` cannot be
    expanded, but that is the template's doing: the rendered file decides, so it is not judged.
    """
    if name in ctx.templated or find_tokens(raw):
        return f"{name} is a template placeholder"
    if "compatibility level" in str(exc) and "compatibility_level" in ctx.templated:
        return "compatibility_level is a template placeholder"
    named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(exc)))
    hit = sorted(named & ctx.templated)
    return f"it depends on {hit[0]}, a template placeholder" if hit else ""


def _expand(
    exp: Expander, lookup: Callable[[str], str | None], name: str, raw_params: frozenset[str]
) -> tuple[str, set[str]]:
    exp.used = set()
    if name in raw_params:
        return normalize(lookup(name) or ""), {name}
    value = exp.expand_name(name)
    return normalize(value), exp.used


def _clip(raw: str) -> str:
    """A value that is not judged is kept as written, but only its start when it is huge."""
    raw = normalize(raw[:2000])
    return raw if len(raw) < 1000 else raw[:1000] + " …"


def _failure(name: str, exc: ExpansionError, secret: bool) -> str:
    """What an expansion error says; never a piece of a secret-bearing value."""
    if secret and not isinstance(exc, ExpansionLimit):
        return f"{name}: macro processing error (value not shown: it may hold a secret)"
    return f"{name}: {exc}"


def _recorded(main: MainCf, defaults: Defaults, notes: list[str]) -> list[str]:
    """The main.cf parameters to record: known ones, restriction classes, some unknown ones."""
    known = defaults.values
    classes: set[str] = set()
    rc = main.params.get("smtpd_restriction_classes")
    if rc is not None:
        classes = set(rc.raw.replace(",", " ").split())
    names: list[str] = []
    unknown = 0
    skipped: list[int] = []
    for name, a in main.params.items():
        if name in known or name in classes or name in RULE_PARAMETERS:
            names.append(name)
        elif unknown < MAX_UNKNOWN_PARAMS:
            unknown += 1
            names.append(name)
        else:
            skipped.append(a.line)
    if skipped:
        notes.append(
            f"{main.path}:{min(skipped)}: {len(skipped)} more parameters that Postfix does not know are not "
            f"recorded (only the first {MAX_UNKNOWN_PARAMS} are; values that reference them are complete)"
        )
    return names


def parse_files(directory: str) -> Parsed:
    """Read DIR/main.cf and DIR/master.cf (stock services when absent) into effective values."""
    d = check_directory(directory)
    main = parse_main_cf(d / "main.cf")
    notes = list(main.notes)
    if _exists(d / "master.cf"):
        master = parse_master_cf(d / "master.cf")
    else:
        defaults_for_stock = load_defaults()
        master = stock_master_cf(defaults_for_stock.stock_master_cf)
        notes.append("no master.cf: assuming the stock master.cf services (smtp inet n - y - - smtpd …)")
    notes.extend(master.notes)
    defaults = load_defaults()
    p = Parsed(d, main, master, defaults, notes=notes)
    ctx = _Context(main, defaults)
    raws = [a.raw for a in main.params.values()] + [o.raw for s in master.services for o in s.overrides]
    ctx.budget = Budget.for_config(raws)
    del raws
    p.secret_flow = secret_flow(
        main.params,
        lambda n: a.raw if (a := main.params.get(n)) is not None else None,
        extra=[o.raw for s in master.services for o in s.overrides if is_secret_param(o.name)],
        known=defaults.values,
    )
    _host_computed(ctx, p.notes)
    host_computed = {n for n in defaults.computed if n not in main.params}
    known = set(defaults.values) | set(RULE_PARAMETERS)
    exp = Expander(ctx.lookup, ctx.budget, ctx.memo)

    recorded = _recorded(main, defaults, p.notes)
    # known parameters first: an unused expansion bomb must not spend their share of the budget
    order = sorted(recorded, key=lambda n: n not in known)
    for name in [*order, *(n for n in RULE_PARAMETERS if n not in main.params)]:
        a = main.params.get(name)
        unresolved = ""
        secret = name in p.secret_flow
        try:
            size = (a.length or len(a.raw)) if a is not None else 0
            if size > VALUE_CHARS:
                raise ExpansionLimit(f"a value of {size} characters (this tool judges up to {VALUE_CHARS})")
            value, used = _expand(exp, ctx.lookup, name, defaults.raw_parameters)
        except ExpansionLimit as exc:
            if name not in known:
                p.notes.append(
                    f"{main.path}:{a.line if a else '?'}: {name}: {exc} (unused parameter, kept raw)"
                )
            unresolved = f"not judged: {exc}"
            value, used = _clip(a.raw if a else ""), {name}
        except ExpansionError as exc:
            why = _template_cause(ctx, name, exc)
            if why:  # the rendered file decides this value: not a broken config, just not judged
                unresolved = f"not judged: {why}"
                value, used = _clip(a.raw if a else ""), {name}
            elif name in known:
                path, line = _error_location(ctx, name, exc)
                raise InputError(_failure(name, exc, secret), path, line) from None
            else:
                where = f"{main.path}:{a.line if a else '?'}"
                p.notes.append(f"{where}: {_failure(name, exc, secret)} (unused parameter, kept raw)")
                value, used = normalize(a.raw if a else ""), {name}
        if used & host_computed:
            p.host_dependent.add(name)
        templated = bool(used & ctx.templated) or bool(unresolved)
        if a is not None:
            loc = Location(main.path, a.line)
            raw = _clip(a.raw) if unresolved else a.raw
            pv = ParamValue(name, value, raw, "main.cf", loc, True, templated, unresolved)
        else:
            raw = ctx.lookup(name) or ""
            pv = ParamValue(name, value, raw, "default", None, False, templated, unresolved)
        p.params[name] = pv

    _check_mynetworks_style(p, ctx)
    for name, a in main.params.items():
        for tok, line in a.tokens:
            p.templates.append(TemplateToken(tok, Location(main.path, line), name))
    for tok, line in main.skipped_templates:
        p.templates.append(TemplateToken(tok, Location(main.path, line), main.template_params.get(line)))
    for sl in main.skipped_lines:
        for tok, line in sl.tokens:
            p.templates.append(TemplateToken(tok, Location(main.path, line), sl.parameter, sl.text))
    for index, svc in enumerate(master.services):
        p.services.append(_service(index, svc, master, ctx, p, host_computed))
    if master.path:
        for tok, line in master.skipped_templates:
            p.templates.append(TemplateToken(tok, Location(master.path, line), None))
    return p


MYNETWORKS_STYLES = ("host", "subnet", "class")


def _check_mynetworks_style(p: Parsed, ctx: _Context) -> None:
    """Postfix computes mynetworks from mynetworks_style when unset, and stops on a bad style."""
    if "mynetworks" in ctx.main.params or "mynetworks_style" not in p.params:
        return
    style = p.params["mynetworks_style"]
    if style.templated or style.value.lower() in MYNETWORKS_STYLES:
        return
    line = style.location.line if style.location else None
    raise InputError(f'unknown mynetworks mask style value "{style.value}"', ctx.main.path, line)


def _service(
    index: int, svc: ServiceLine, master: MasterCf, ctx: _Context, p: Parsed, host_computed: set[str]
) -> MasterService:
    templates = p.templates
    raws = {o.name: o.raw for o in svc.overrides}
    lookup = ctx.overlay(raws)
    exp = Expander(lookup, ctx.budget, {}, shared=ctx.memo, shadow=frozenset(raws))
    tokens_by_line: dict[int, list[str]] = {}
    for tok, line in svc.tokens:
        tokens_by_line.setdefault(line, []).append(tok)
    overrides: dict[str, ParamValue] = {}
    claimed: set[tuple[str, int]] = set()
    sid = f"{svc.fields[0]}/{svc.fields[1]}"
    for o in svc.overrides:
        loc = Location(master.path, o.line) if master.path else None
        unresolved = ""
        try:
            if len(o.raw) > VALUE_CHARS:
                raise ExpansionLimit(
                    f"a value of {len(o.raw)} characters (this tool judges up to {VALUE_CHARS})"
                )
            # postconf -P -x expands every -o value, "raw" parameters included
            value, used = _expand(exp, lookup, o.name, frozenset())
        except ExpansionLimit as exc:
            unresolved = f"not judged: {exc}"
            value, used = _clip(o.raw), {o.name}
        except ExpansionError as exc:
            why = _template_cause(ctx, o.name, exc, o.raw)
            if not why:
                secret = o.name in p.secret_flow or is_secret_param(o.name)
                raise InputError(f"{sid}: -o {_failure(o.name, exc, secret)}", master.path, o.line) from None
            unresolved = f"not judged: {why}"
            value, used = _clip(o.raw), {o.name}
        if used & host_computed:
            p.host_dependent.add(f"{index}/{o.name}")
        own = [t for t in tokens_by_line.get(o.line, []) if t in o.raw]
        for t in own:
            claimed.add((t, o.line))
            if master.path:
                templates.append(TemplateToken(t, Location(master.path, o.line), f"{sid}/{o.name}"))
        templated = bool(own) or bool((used - set(raws)) & ctx.templated) or bool(unresolved)
        raw = _clip(o.raw) if unresolved else o.raw
        overrides[o.name] = ParamValue(o.name, value, raw, "master.cf", loc, True, templated, unresolved)
    if master.path:
        for tok, line in svc.tokens:
            if (tok, line) not in claimed:
                templates.append(TemplateToken(tok, Location(master.path, line), None))
    f = dict(zip(FIELDS, svc.fields, strict=True))
    return MasterService(
        name=f["name"],
        type=f["type"],
        private=f["private"],
        unpriv=f["unpriv"],
        chroot=f["chroot"],
        wakeup=f["wakeup"],
        maxproc=f["maxproc"],
        command=f["command"],
        args=svc.args,
        overrides=overrides,
        location=Location(master.path, svc.line) if master.path and svc.line else None,
        templated=bool(svc.tokens),
    )
