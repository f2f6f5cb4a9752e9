"""The file-only collector: main.cf + master.cf + built-in defaults → PostfixConfig.

Effective values follow Postfix: the last assignment wins, unset parameters take the built-in
default *expression* of the defaults data file (so ``$myhostname`` means the linted host's name and
the compatibility-level dependent defaults follow the linted ``compatibility_level``), and values
are expanded recursively with :mod:`auditor.collect.postfix.expand`. Values are whitespace-normalised
the way ``postconf`` prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.postfix.defaults import Defaults, load_defaults
from auditor.collect.postfix.expand import Expander, ExpansionError
from auditor.collect.postfix.maincf import MainCf, parse_main_cf
from auditor.collect.postfix.mastercf import FIELDS, MasterCf, ServiceLine, parse_master_cf, stock_master_cf
from auditor.model import InputError, Location
from auditor.observations.postfix import RULE_PARAMETERS, MasterService, ParamValue, TemplateToken


def normalize(value: str) -> str:
    """Collapse whitespace like postconf's output does."""
    return " ".join(value.split())


def check_directory(directory: str) -> Path:
    d = Path(directory)
    if not d.exists():
        raise InputError("no such directory", directory)
    if not d.is_dir():
        raise InputError("not a directory (give the Postfix config directory)", directory)
    if not (d / "main.cf").is_file():
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


class _Context:
    """Raw-value lookup for main.cf (optionally with one service's ``-o`` overrides on top)."""

    def __init__(self, main: MainCf, defaults: Defaults) -> None:
        self.main = main
        self.defaults = defaults
        self.templated = {n for n, a in main.params.items() if a.tokens}
        self.computed: dict[str, str] = {}

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
            host = normalize(Expander(ctx.lookup).expand_name("myhostname"))
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


def _expand(
    lookup: Callable[[str], str | None], name: str, raw_params: frozenset[str]
) -> tuple[str, set[str]]:
    if name in raw_params:
        raw = lookup(name)
        return normalize(raw or ""), {name}
    exp = Expander(lookup)
    value = exp.expand_name(name)
    return normalize(value), exp.used


def parse_files(directory: str) -> Parsed:
    """Read DIR/main.cf and DIR/master.cf (stock services when absent) into effective values."""
    d = check_directory(directory)
    main = parse_main_cf(d / "main.cf")
    notes = list(main.notes)
    if (d / "master.cf").is_file():
        master = parse_master_cf(d / "master.cf")
    else:
        defaults_for_stock = load_defaults()
        master = stock_master_cf(defaults_for_stock.stock_master_cf)
        notes.append("no master.cf: assuming the stock master.cf services (smtp inet n - y - - smtpd …)")
    notes.extend(master.notes)
    defaults = load_defaults()
    p = Parsed(d, main, master, defaults, notes=notes)
    ctx = _Context(main, defaults)
    _host_computed(ctx, p.notes)
    known = set(defaults.values) | set(RULE_PARAMETERS)

    for name in [*main.params, *(n for n in RULE_PARAMETERS if n not in main.params)]:
        a = main.params.get(name)
        try:
            value, used = _expand(ctx.lookup, name, defaults.raw_parameters)
        except ExpansionError as exc:
            if name in known:
                path, line = _error_location(ctx, name, exc)
                raise InputError(f"{name}: {exc}", path, line) from None
            p.notes.append(f"{main.path}:{a.line if a else '?'}: {name}: {exc} (unused parameter, kept raw)")
            value, used = normalize(a.raw if a else ""), {name}
        if a is not None:
            pv = ParamValue(
                name, value, a.raw, "main.cf", Location(main.path, a.line), True, bool(used & ctx.templated)
            )
        else:
            raw = ctx.lookup(name) or ""
            pv = ParamValue(name, value, raw, "default", None, False, bool(used & ctx.templated))
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
    for svc in master.services:
        p.services.append(_service(svc, master, ctx, defaults, p.templates))
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
    svc: ServiceLine, master: MasterCf, ctx: _Context, defaults: Defaults, templates: list[TemplateToken]
) -> MasterService:
    raws = {o.name: o.raw for o in svc.overrides}
    lookup = ctx.overlay(raws)
    tokens_by_line: dict[int, list[str]] = {}
    for tok, line in svc.tokens:
        tokens_by_line.setdefault(line, []).append(tok)
    overrides: dict[str, ParamValue] = {}
    claimed: set[tuple[str, int]] = set()
    sid = f"{svc.fields[0]}/{svc.fields[1]}"
    for o in svc.overrides:
        loc = Location(master.path, o.line) if master.path else None
        try:
            # postconf -P -x expands every -o value, "raw" parameters included
            value, used = _expand(lookup, o.name, frozenset())
        except ExpansionError as exc:
            raise InputError(f"{sid}: -o {o.name}: {exc}", master.path, o.line) from None
        own = [t for t in tokens_by_line.get(o.line, []) if t in o.raw]
        for t in own:
            claimed.add((t, o.line))
            if master.path:
                templates.append(TemplateToken(t, Location(master.path, o.line), f"{sid}/{o.name}"))
        templated = bool(own) or bool((used - set(raws)) & ctx.templated)
        overrides[o.name] = ParamValue(o.name, value, o.raw, "master.cf", loc, True, templated)
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
