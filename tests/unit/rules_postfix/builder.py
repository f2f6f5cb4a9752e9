"""Build PostfixConfig observations by hand, the way the collector fills them, for rule tests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from auditor.judge import evaluate
from auditor.model import Finding, Location, Status
from auditor.observations.postfix import LookupTable, MasterService, ParamValue, PostfixConfig, TemplateToken
from auditor.rules import load_all

TARGET = "/etc/postfix"
_TOKEN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\[%.*?%\]|%\{[^}]*\}|\bPH_[A-Z0-9_]+")


def pv(name: str, value: str, line: int | None, path: str = "main.cf") -> ParamValue:
    templated = bool(_TOKEN.search(value))
    return ParamValue(
        name=name,
        value=value,
        raw=value,
        source=path if line else "default",
        location=Location(f"{TARGET}/{path}", line) if line else None,
        explicit=line is not None,
        templated=templated,
    )


_line = iter(range(100, 100000))


def svc(
    name: str,
    type_: str = "inet",
    command: str = "smtpd",
    overrides: Mapping[str, str] | None = None,
    args: Iterable[str] = (),
) -> MasterService:
    line = next(_line)
    ov = {k: pv(k, v, line + 1 + i, "master.cf") for i, (k, v) in enumerate((overrides or {}).items())}
    return MasterService(
        name=name,
        type=type_,
        private="n",
        unpriv="-",
        chroot="n",
        wakeup="-",
        maxproc="-",
        command=command,
        args=tuple(args),
        overrides=ov,
        location=Location(f"{TARGET}/master.cf", line),
    )


def stock_services() -> list[MasterService]:
    return [svc("smtp"), svc("pickup", "unix", "pickup"), svc("cleanup", "unix", "cleanup")]


def config(
    main: Mapping[str, str] | None = None,
    services: Iterable[MasterService] | None = None,
    tables: Iterable[LookupTable] = (),
    compat: str | None = "3.6",
) -> PostfixConfig:
    """A config directory; ``compat`` None leaves compatibility_level unset (level 0)."""
    values = dict(main or {})
    if compat is not None:
        values.setdefault("compatibility_level", compat)
    params = {k: pv(k, v, i + 1) for i, (k, v) in enumerate(values.items())}
    templates = tuple(
        TemplateToken(m.group(0), p.location or Location(f"{TARGET}/main.cf"), k)
        for k, p in params.items()
        for m in _TOKEN.finditer(p.raw)
    )
    svcs = tuple(stock_services() if services is None else services)
    return PostfixConfig(
        target=TARGET,
        main_cf=f"{TARGET}/main.cf",
        master_cf=f"{TARGET}/master.cf",
        params=params,
        services=svcs,
        tables=tuple(tables),
        templates=templates,
    )


def run(rule_id: str, cfg: PostfixConfig) -> list[Finding]:
    r = load_all()[rule_id]
    return evaluate([cfg], rules=[r])


def status_of(rule_id: str, cfg: PostfixConfig, target: str = TARGET) -> Status:
    """The status of the one finding for ``target`` (fails the test when there is none or several)."""
    found = [f for f in run(rule_id, cfg) if f.target == target]
    assert len(found) == 1, f"{rule_id} {target}: {found}"
    return found[0].status


def finding(rule_id: str, cfg: PostfixConfig, target: str = TARGET) -> Finding:
    found = [f for f in run(rule_id, cfg) if f.target == target]
    assert len(found) == 1, f"{rule_id} {target}: {found}"
    return found[0]


def svc_target(s: MasterService) -> str:
    return f"{TARGET} service {s.name}/{s.type}"


PC = f"postconf -c {TARGET}"  # every fix names the linted directory (the builder's is not live)


def lines(f: Finding) -> list[str]:
    """The shell lines of a finding's fix."""
    return [c.line for c in f.remediation.commands]
