"""Keep secrets a main.cf or master.cf may hold out of every observation (and so every report).

Postfix lets main.cf carry LDAP/SQL map settings inline (``<name>_bind_pw``, ldap_table(5) "legacy"
form), and lookup tables can be written inline (``static:user:password``, ``inline:{ host=user:pw }``)
for ``smtp_sasl_password_maps`` and similar parameters. Their values are replaced before they are
stored; no rule needs a secret's value, only the fact that a parameter is set.
"""

from __future__ import annotations

import re
from dataclasses import replace

from auditor.observations.postfix import MasterService, ParamValue

REDACTED = "<redacted>"

# Parameter names whose value is a secret, or a table spec that may embed one.
_SECRET_NAME = re.compile(r"(?:^|_)(?:bind_pw|password|passwd|secret)$", re.IGNORECASE)
_PASSWORD_MAPS = re.compile(r"sasl_password_maps$|_passwd_maps$|password_maps$", re.IGNORECASE)
_INLINE_SECRET = re.compile(r"\b(static|inline|texthash-inline):\s*(\{[^}]*\}|\S+)", re.IGNORECASE)


def _scrub(name: str, text: str) -> str:
    if not text:
        return text
    if _SECRET_NAME.search(name):
        return REDACTED
    if _PASSWORD_MAPS.search(name):
        return _INLINE_SECRET.sub(lambda m: f"{m.group(1)}:{REDACTED}", text)
    return text


def redact_param(pv: ParamValue) -> ParamValue:
    value, raw = _scrub(pv.name, pv.value), _scrub(pv.name, pv.raw)
    if value == pv.value and raw == pv.raw:
        return pv
    return replace(pv, value=value, raw=raw)


def redact_params(params: dict[str, ParamValue]) -> dict[str, ParamValue]:
    return {name: redact_param(pv) for name, pv in params.items()}


def _secret_override(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name)) or bool(
        _PASSWORD_MAPS.search(name) and _INLINE_SECRET.search(value)
    )


def _redact_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """master.cf argv with the values of secret ``-o name=value`` / ``-o { name = value }`` hidden."""
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        out.append(tok)
        i += 1
        if tok != "-o" or i >= len(args):
            continue
        nxt = args[i]
        if nxt.startswith("{") and nxt.endswith("}") and nxt != "{":  # -o "{ name = value }" as one token
            name, _, value = nxt[1:-1].partition("=")
            if _secret_override(name.strip(), value):
                out.append(f"{{ {name.strip()} = {REDACTED} }}")
                i += 1
            continue
        if nxt == "{":  # -o { name = value … }
            end = next((j for j in range(i, len(args)) if args[j] == "}"), len(args) - 1)
            text = " ".join(args[i + 1 : end])
            name, _, value = text.partition("=")
            if _secret_override(name.strip(), value):
                out += ["{", f"{name.strip()} = {REDACTED}", "}"]
                i = end + 1
            continue
        name, eq, value = nxt.partition("=")
        if not eq:
            continue
        rest = value
        j = i + 1
        while rest.count("{") > rest.count("}") and j < len(args):  # an inline:{ … } value split by spaces
            rest += " " + args[j]
            j += 1
        if _secret_override(name, rest):
            out.append(f"{name}={REDACTED}")
            i = j
    return tuple(out)


def secret_values(params: dict[str, ParamValue], services: list[MasterService]) -> set[str]:
    """The secret values themselves, so that a reference elsewhere (``$x_bind_pw``) is hidden too."""
    found: set[str] = set()
    pvs = [*params.values(), *(pv for s in services for pv in s.overrides.values())]
    for pv in pvs:
        if _SECRET_NAME.search(pv.name):
            found |= {v for v in (pv.value.strip(), pv.raw.strip()) if len(v) >= 4 and not v.startswith("$")}
    return found


def scrub_text(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_param(pv: ParamValue, secrets: set[str]) -> ParamValue:
    value, raw = scrub_text(pv.value, secrets), scrub_text(pv.raw, secrets)
    return pv if (value, raw) == (pv.value, pv.raw) else replace(pv, value=value, raw=raw)


def redact_service(svc: MasterService) -> MasterService:
    overrides = redact_params(svc.overrides)
    args = _redact_args(svc.args)
    if overrides == svc.overrides and args == svc.args:
        return svc
    return replace(svc, overrides=overrides, args=args)


__all__ = ["REDACTED", "redact_param", "redact_params", "redact_service"]
