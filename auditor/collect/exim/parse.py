"""Logical lines → the structure Exim builds: main options, named lists, ACLs, drivers.

The shapes follow readconf.c and acl.c: a main-section line is a macro definition (upper case),
a named list (``[hide] domainlist NAME = …``) or an option (``[hide] [no_|not_]name [= value]``);
an ACL section is ``name:`` lines each followed by statements that start with a verb, one
condition or modifier per logical line; a driver section is ``name:`` lines followed by options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.collect.exim.reader import LogicalLine
from auditor.model import InputError, Location
from auditor.observations.exim import (
    ACL_VERBS,
    EximAcl,
    EximAclStatement,
    EximCondition,
    EximDriver,
    EximNamedList,
    EximSetting,
)

_OPTION = re.compile(r"(?:(hide)\s+)?([a-z_][a-z0-9_]*)\s*(?:=\s*(.*))?\Z", re.S)
_LIST = re.compile(r"(?:(hide)\s+)?(domain|host|address|localpart)list\s+([A-Za-z0-9_]+)\s*=\s*(.*)\Z", re.S)
_NAME_COLON = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*:(.*)\Z", re.S)
_CONDITION = re.compile(r"(!\s*)?([a-z_][a-z0-9_]*)\s*(?:=\s*(.*))?\Z", re.S)
_VERB = re.compile(r"(" + "|".join(ACL_VERBS) + r")(?=\s|\Z)(.*)\Z", re.S)
# Options that hold secrets: their values never leave the collector.
_SECRET_NAME = re.compile(r"pass|secret|_pw\b|^pw|key|token|client_send|server_condition", re.I)


@dataclass
class Parsed:
    options: dict[str, EximSetting] = field(default_factory=dict)
    lists: dict[str, EximNamedList] = field(default_factory=dict)
    acls: list[EximAcl] = field(default_factory=list)
    routers: list[EximDriver] = field(default_factory=list)
    transports: list[EximDriver] = field(default_factory=list)
    authenticators: list[EximDriver] = field(default_factory=list)
    retry: list[EximSetting] = field(default_factory=list)
    rewrite: list[EximSetting] = field(default_factory=list)


def _bad(msg: str, loc: Location) -> InputError:
    return InputError(msg, loc.path, loc.line)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:59] + "…"


def setting(text: str, loc: Location, what: str) -> EximSetting:
    """``[hide] [no_|not_]name [= value]`` → a setting; booleans become "true"/"false"."""
    m = _OPTION.match(text)
    if not m:
        raise _bad(f"malformed {what} line: {_short(text)}", loc)
    hide, name, value = m.group(1), m.group(2), m.group(3)
    if value is None:
        value = "true"
        for prefix in ("no_", "not_"):
            if name.startswith(prefix) and len(name) > len(prefix):
                name, value = name[len(prefix) :], "false"
                break
    hidden = bool(hide) or bool(_SECRET_NAME.search(name))
    return EximSetting(name, value.strip(), loc, hidden=hidden)


def parse(lines: list[LogicalLine]) -> Parsed:
    out = Parsed()
    acl: dict[str, object] | None = None  # the ACL being read: name, location, statements
    stmts: list[EximAclStatement] = []
    stmt: dict[str, object] | None = None
    driver: dict[str, object] | None = None

    def close_stmt() -> None:
        nonlocal stmt
        if stmt is not None:
            stmts.append(
                EximAclStatement(
                    verb=str(stmt["verb"]),
                    location=stmt["loc"],  # type: ignore[arg-type]
                    conditions=tuple(stmt["conds"]),  # type: ignore[arg-type]
                )
            )
            stmt = None

    def close_acl() -> None:
        nonlocal acl, stmts
        close_stmt()
        if acl is not None:
            out.acls.append(EximAcl(str(acl["name"]), acl["loc"], tuple(stmts)))  # type: ignore[arg-type]
        acl, stmts = None, []

    def close_driver() -> None:
        nonlocal driver
        if driver is not None:
            target = {
                "routers": out.routers,
                "transports": out.transports,
                "authenticators": out.authenticators,
            }[str(driver["section"])]
            target.append(
                EximDriver(
                    kind=str(driver["section"])[:-1],
                    name=str(driver["name"]),
                    location=driver["loc"],  # type: ignore[arg-type]
                    options=dict(driver["opts"]),  # type: ignore[call-overload]
                )
            )
            driver = None

    for ln in lines:
        text, loc, section = ln.text, ln.location, ln.section
        if text[:6].lower() == "begin ":
            close_acl()
            close_driver()
            continue
        is_macro = text[:1].isupper() and (section == "main" or re.match(r"[A-Za-z0-9_]+\s*=", text))
        if is_macro:
            if section in ("routers", "transports", "authenticators"):
                close_driver()  # readconf.c: a macro definition ends the driver before it
            continue
        if section == "main":
            lm = _LIST.match(text)
            if lm:
                hide, kind, name, value = lm.groups()
                out.lists[name] = EximNamedList(kind, name, value.strip(), loc, hidden=bool(hide))
                continue
            st = setting(text, loc, "main option")
            if st.name in out.options:
                raise _bad(f'"{st.name}" option set for the second time', loc)
            out.options[st.name] = st
        elif section == "acls":
            nm = _NAME_COLON.match(text)
            vm = _VERB.match(text)
            if nm and not vm and "=" not in text.split(":", 1)[0]:
                close_acl()
                acl = {"name": nm.group(1), "loc": loc}
                rest = nm.group(2).strip()
                if rest:
                    raise _bad(f"text after the ACL name {nm.group(1)}: {_short(rest)}", loc)
                continue
            if acl is None:
                raise _bad("missing or malformed ACL name", loc)
            if vm:
                close_stmt()
                stmt = {"verb": vm.group(1), "loc": loc, "conds": []}
                rest = vm.group(2).strip()
                if rest:
                    stmt["conds"].append(_condition(rest, loc))  # type: ignore[attr-defined]
                continue
            if stmt is None:
                raise _bad(f"ACL {acl['name']}: condition before any verb: {_short(text)}", loc)
            stmt["conds"].append(_condition(text, loc))  # type: ignore[attr-defined]
        elif section in ("routers", "transports", "authenticators"):
            nm = _NAME_COLON.match(text)
            if nm and "=" not in text.split(":", 1)[0]:
                close_driver()
                driver = {"section": section, "name": nm.group(1), "loc": loc, "opts": {}}
                rest = nm.group(2).strip()
                if rest:
                    st = setting(rest, loc, f"{section[:-1]} option")
                    driver["opts"][st.name] = st  # type: ignore[index]
                continue
            if driver is None:
                raise _bad(f"{section[:-1]} option before any {section[:-1]} name: {_short(text)}", loc)
            st = setting(text, loc, f"{section[:-1]} option")
            if st.name in driver["opts"]:  # type: ignore[operator]
                raise _bad(
                    f'"{st.name}" option set for the second time ({section[:-1]} {driver["name"]})', loc
                )
            if section == "authenticators" and st.name not in ("driver", "public_name"):
                st = EximSetting(st.name, st.value, st.location, hidden=True)
            driver["opts"][st.name] = st  # type: ignore[index]
        elif section == "retrys":
            out.retry.append(EximSetting("retry", text, loc))
        elif section == "rewrites":
            out.rewrite.append(EximSetting("rewrite", text, loc))
    close_acl()
    close_driver()
    return out


def _condition(text: str, loc: Location) -> EximCondition:
    sm = re.match(r"(!\s*)?set\s+(\S.*)\Z", text, re.S)
    if sm:  # ``set acl_m_x = value``: the variable name comes before the "="
        return EximCondition(name="set", value=sm.group(2).strip(), negated=False, location=loc)
    m = _CONDITION.match(text)
    if not m:
        raise _bad(f"malformed ACL condition or modifier: {_short(text)}", loc)
    neg, name, value = m.group(1), m.group(2), m.group(3)
    return EximCondition(
        name=name, value=(value or "").strip(), negated=bool(neg), location=loc, bare=value is None
    )
