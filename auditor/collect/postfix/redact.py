"""Keep secrets a Postfix config may hold out of every observation, note and error message.

Where secrets live in a config directory:

- legacy LDAP/SQL map settings in main.cf (``<name>_bind_pw``, ``*_password``): the whole value;
- password tables written inline (``smtp_sasl_password_maps = static:user:pw``, ``inline:{ {[a]:587 =
  u:pw}, … }``, also behind ``proxy:`` and inside ``unionmap:{…}``): every table body that is not a
  file name, found by brace matching over the whole list, nested groups included;
- parameters whose value flows into one of those (``relay_creds = static:u:pw`` with
  ``smtp_sasl_password_maps = $relay_creds``): their whole value;
- access keys in DNSBL names (Spamhaus DQS ``KEY.zen.dq.spamhaus.net``, other key-shaped first
  labels after ``reject_rbl_client`` & co. and in ``postscreen_dnsbl_sites``);
- ``user:password@`` in LDAP URLs.

Values are redacted by that meaning, and every secret value found is also scrubbed as text from
everything else the collector emits (other parameters, master.cf arguments, notes, errors), so a
secret that reappears elsewhere (``$x_bind_pw`` expanded, echoed by postconf) is hidden there too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable
from dataclasses import replace

from auditor.model import InputError
from auditor.observations.postfix import MasterService, ParamValue

REDACTED = "<redacted>"
MIN_SCRUB = 4  # shorter secrets are hidden where they are set, but not searched for as text

# Parameter names whose value is a secret, or a table list that may embed one (name endings).
_SECRET_NAMES = ("bind_pw", "password", "passwd", "secret")
_PASSWORD_MAPS = ("password_maps", "passwd_maps")
# Table types whose name is a file, a server address or a map config file: never a secret itself.
_FILE_TYPES = frozenset(
    [
        "hash",
        "btree",
        "lmdb",
        "cdb",
        "dbm",
        "sdbm",
        "texthash",
        "regexp",
        "pcre",
        "cidr",
        "ldap",
        "mysql",
        "pgsql",
        "sqlite",
        "memcache",
        "nis",
        "nisplus",
        "netinfo",
        "tcp",
        "socketmap",
        "unix",
        "fail",
        "environ",
    ]
)
_PLAIN_NAME = re.compile(r"[\w./@+:\[\]-]*")
_REF = re.compile(r"\$[{(]?\s*([A-Za-z0-9_]+)")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_SECRETISH_TEXT = re.compile(r"static:|inline:|://[^/\s@]*@|dq\.spamhaus\.", re.IGNORECASE)
_USERINFO = re.compile(r"(?i)\b(ldaps?|ldapi)://([^/\s@,]*)@")
_QUOTED = re.compile(r'"([^"\n]*)"')
# DNSBL restriction keywords: the next list element is a DNS domain (maybe with =filter, *weight).
_DNSBL_WORDS = frozenset(
    [
        "reject_rbl_client",
        "reject_rhsbl_client",
        "reject_rhsbl_sender",
        "reject_rhsbl_recipient",
        "reject_rhsbl_helo",
        "reject_rhsbl_reverse_client",
        "permit_dnswl_client",
        "permit_rhswl_client",
        "reject_rbl",
        "reject_rhsbl",
        "warn_if_reject",
    ]
)
_DNSBL_LISTS = ("postscreen_dnsbl_sites", "maps_rbl_domains", "postscreen_dnsbl_reply_map")
_DQS = ".dq.spamhaus."
_KEY_LABEL = re.compile(r"[A-Za-z0-9]{20,64}")


_SECRET_SUFFIXES = tuple("_" + w for w in _SECRET_NAMES)


def is_secret_name(name: str) -> bool:
    """A parameter whose whole value is a secret (``*_bind_pw``, ``*_password``)."""
    low = name.lower()
    return low.endswith(_SECRET_SUFFIXES) or low in _SECRET_NAMES


def is_password_map(name: str) -> bool:
    """A parameter whose value is a list of tables that may carry passwords inline."""
    return name.lower().endswith(_PASSWORD_MAPS)


def is_secret_param(name: str) -> bool:
    return is_secret_name(name) or is_password_map(name)


def mentions_secret(text: str) -> bool:
    """Could this config text (a line an error would quote) hold a secret? Then it is not quoted."""
    if _SECRETISH_TEXT.search(text):
        return True
    return any(is_secret_param(w) for w in _WORD.findall(text[:4096]))


def quote_safely(text: str, limit: int = 80) -> str:
    """``text`` shortened for an error message, or only its first word when it may hold a secret."""
    if mentions_secret(text):
        m = _WORD.match(text.strip().lstrip("{").strip())
        return (m.group() + " … (rest not shown: it may hold a secret)") if m else "(not shown)"
    text = " ".join(text.split()[:12])
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- value semantics ---------------------------------------------------------------------------


def _elements(value: str) -> list[tuple[int, int]]:
    """(start, end) of each list element: separated by whitespace/commas outside ``{…}``, nested
    groups matched recursively; an unclosed ``{`` runs to the end (and so is redacted whole)."""
    out: list[tuple[int, int]] = []
    depth = 0
    start = -1
    for i, ch in enumerate(value):
        if ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        sep = depth == 0 and (ch.isspace() or ch == ",")
        if sep:
            if start >= 0:
                out.append((start, i))
                start = -1
        elif start < 0:
            start = i
    if start >= 0:
        out.append((start, len(value)))
    return out


def _strip_group(text: str) -> str:
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        return text[1:-1].strip()
    return text


def _pieces(body: str, depth: int = 0) -> list[str]:
    """The secret strings inside a table body: the body itself; for ``inline:`` each value after
    ``=`` (nested groups recursively); for ``static:`` the password after ``user:``."""
    body = body.strip()
    out = [body]
    inner = _strip_group(body)
    if "=" not in inner or depth > 20:
        _user, colon, password = inner.partition(":")
        if colon:
            out.append(password)
        return [p.strip() for p in out if p.strip() and not p.strip().startswith("$")]
    words = [_strip_group(inner[s:e]) for s, e in _elements(inner)]
    values: list[str] = []
    for k, w in enumerate(words):
        if w == "=" or w.endswith("="):  # ``key = value`` split by the list's own separators
            if k + 1 < len(words):
                values.append(words[k + 1])
        elif w.startswith("="):
            values.append(w[1:])
        elif "=" in w:
            values.append(w.split("=", 1)[1])
    for v in values:
        out.extend(_pieces(v, depth + 1) if "=" in v else [v, v.partition(":")[2]])
    return [p.strip() for p in out if p.strip() and not p.strip().startswith("$")]


def redact_map_list(value: str) -> tuple[str, list[str]]:
    """A password-map list with every non-file table body replaced: (redacted, secrets removed)."""
    if not value:
        return value, []
    spans = _elements(value)
    out: list[str] = []
    secrets: list[str] = []
    pos = 0
    for s, e in spans:
        element = value[s:e]
        rest = element
        while rest.lower().startswith("proxy:"):
            rest = rest[len("proxy:") :]
        prefix = element[: len(element) - len(rest)]
        typ, colon, name = rest.partition(":")
        plain = typ.lower() in _FILE_TYPES and _PLAIN_NAME.fullmatch(name) is not None
        if not colon and "{" not in element:
            continue  # a $reference or a bare word: kept (its target is handled by flow)
        if plain:
            continue
        out.append(value[pos:s])
        if colon and _WORD.fullmatch(typ):
            out.append(f"{prefix}{typ}:{REDACTED}")
        else:
            out.append(REDACTED)
        secrets.extend(_pieces(name if colon else element))
        pos = e
    if not out:
        return value, []
    out.append(value[pos:])
    return "".join(out), secrets


def _key_label(label: str) -> bool:
    """A first label that is an access key, not a zone name: long, letters and digits mixed."""
    return (
        bool(_KEY_LABEL.fullmatch(label))
        and any(c.isdigit() for c in label)
        and any(c.isalpha() for c in label)
    )


def redact_dnsbl(name: str, value: str) -> tuple[str, list[str]]:
    """DNSBL names with an access key (``KEY.zen.dq.spamhaus.net``): the key replaced."""
    keys: list[str] = []
    if "." not in value:
        return value, keys
    low = value.lower()
    if _DQS in low:
        i = low.find(_DQS)
        while i >= 0:
            # KEY.zone.dq.spamhaus.net: the label before the zone label is the key
            zone_start = max(value.rfind(".", 0, i), -1) + 1
            if zone_start > 0:
                j = zone_start - 1
                k = j
                while k > 0 and (value[k - 1].isalnum() or value[k - 1] in "_-"):
                    k -= 1
                if k < j:
                    keys.append(value[k:j])
            i = low.find(_DQS, i + 1)
    if name in _DNSBL_LISTS or any(w in low for w in ("rbl", "dnswl", "rhswl")):
        words = [value[s:e] for s, e in _elements(value)] if len(value) < 1_000_000 else []
        for k, w in enumerate(words):
            target = w if name in _DNSBL_LISTS else (words[k + 1] if k + 1 < len(words) else "")
            if name not in _DNSBL_LISTS and w.lower() not in _DNSBL_WORDS:
                continue
            label = re.split(r"[.=*]", target, maxsplit=1)[0]
            if "." in target and _key_label(label):
                keys.append(label)
    keys = sorted({k for k in keys if k}, key=len, reverse=True)
    for key in keys:
        value = value.replace(key + ".", REDACTED + ".")
    return value, keys


def redact_userinfo(value: str) -> tuple[str, list[str]]:
    """``ldap://user:password@host`` → ``ldap://<redacted>@host``: (value, secrets)."""
    if "://" not in value or "@" not in value:
        return value, []
    found: list[str] = []

    def sub(m: re.Match[str]) -> str:
        info = m.group(2)
        found.append(info)
        if ":" in info:
            found.append(info.split(":", 1)[1])
        return f"{m.group(1)}://{REDACTED}@"

    return _USERINFO.sub(sub, value), found


# --- the redactor ------------------------------------------------------------------------------


def secret_flow(
    names: Iterable[str],
    raw: Callable[[str], str | None],
    extra: Iterable[str] = (),
    known: Container[str] = (),
) -> set[str]:
    """Names whose value is a secret or flows into one: the secret-named and password-map
    parameters among ``names``, and every parameter that they or the ``extra`` raw values (``-o``
    overrides) reference, transitively, that is set (``raw`` not None) and is not a built-in
    Postfix parameter (``known``: its value is configuration, not a secret)."""
    roots = [n for n in names if is_secret_param(n)]
    todo = [r for r in map(raw, roots) if r]
    todo.extend(extra)
    found = set(roots)
    while todo:
        text = todo.pop()
        if "$" not in text:
            continue
        for ref in _REF.findall(text):
            if ref in found or ref in known:
                continue
            value = raw(ref)
            if value is None:
                continue
            found.add(ref)
            todo.append(value)
    return found


class Redactor:
    """Hide every secret of one config: by parameter meaning first, then as text everywhere."""

    def __init__(self, flow: set[str]) -> None:
        self.flow = flow  # user-defined parameters that feed a password map: hidden whole
        self.secrets: set[str] = set()

    def _add(self, values: Iterable[str]) -> None:
        for v in values:
            v = v.strip()
            if len(v) >= MIN_SCRUB and v != REDACTED and not v.startswith("$"):
                self.secrets.add(v)

    def value(self, name: str, text: str) -> str:
        """One value of parameter ``name`` with its secrets replaced (and remembered)."""
        if not text:
            return text
        if is_secret_name(name) or (name in self.flow and not is_password_map(name)):
            self._add([text])
            return REDACTED
        if is_password_map(name):
            text, found = redact_map_list(text)
            self._add(found)
        text, found = redact_dnsbl(name, text)
        self._add(found)
        text, found = redact_userinfo(text)
        self._add(found)
        return text

    def param(self, pv: ParamValue) -> ParamValue:
        value = self.value(pv.name, pv.value)
        raw = value if pv.raw is pv.value else self.value(pv.name, pv.raw)
        if value == pv.value and raw == pv.raw:
            return pv
        return replace(pv, value=value, raw=raw)

    def override_spec(self, spec: str) -> str:
        """``name=value`` or ``{ name = value }`` (one ``-o`` argument) with the value redacted."""
        grouped = spec.startswith("{")
        inner = _strip_group(spec) if grouped else spec
        name, eq, value = inner.partition("=")
        if not eq:
            return self.text(spec)
        hidden = self.value(name.strip(), value.strip())
        if hidden == value.strip():
            return self.text(spec)
        return f"{{ {name.strip()} = {hidden} }}" if grouped else f"{name}={hidden}"

    def args(self, args: tuple[str, ...]) -> tuple[str, ...]:
        """master.cf argv with the values of secret ``-o`` overrides hidden, in every form:
        ``-o name=value``, ``-o { name = value }``, ``-oname=value``, ``-o{name=value}``."""
        out: list[str] = []
        i = 0
        while i < len(args):
            tok = args[i]
            i += 1
            if tok == "-o" and i < len(args):
                out.append(tok)
                spec = args[i]
                i += 1
                if spec == "{":  # a group split into words: up to the closing brace
                    end = next((j for j in range(i, len(args)) if args[j] == "}"), len(args))
                    spec = "{ " + " ".join(args[i:end]) + " }"
                    i = end + 1
                elif "=" in spec and spec.count("{") > spec.count("}"):
                    # ``-o x=inline:{ a=b }`` is split by master.cf's own rules: redact the words too
                    while i < len(args) and spec.count("{") > spec.count("}"):
                        spec += " " + args[i]
                        i += 1
                out.append(self.override_spec(spec))
            elif tok.startswith("-o") and len(tok) > 2:
                out.append("-o" + self.override_spec(tok[2:]))
            else:
                out.append(self.text(tok))
        return tuple(out)

    def service(self, svc: MasterService) -> MasterService:
        overrides = {n: self.scrub_param(self.param(pv)) for n, pv in svc.overrides.items()}
        return replace(svc, overrides=overrides, args=self.args(svc.args))

    def text(self, text: str) -> str:
        """Free text (a note, an error, an argument): known secrets and quoted parts of them hidden."""
        if not text or not self.secrets:
            return text
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        if '"' in text:
            text = _QUOTED.sub(self._quoted, text)
        return text

    def _quoted(self, m: re.Match[str]) -> str:
        # Messages quote a truncated piece of a value ("$!rest"): hide a piece of any secret.
        parts = [p for p in re.split(r">>>|\.\.\.|…", m.group(1)) if len(p.strip()) >= MIN_SCRUB]
        if any(p.strip() in s for p in parts for s in self.secrets):
            return f'"{REDACTED}"'
        return m.group()

    def scrub_param(self, pv: ParamValue) -> ParamValue:
        value, raw = self.text(pv.value), self.text(pv.raw)
        return pv if (value, raw) == (pv.value, pv.raw) else replace(pv, value=value, raw=raw)

    def error(self, exc: InputError) -> InputError:
        """The same error with secrets hidden from its message."""
        message = self.text(exc.message)
        return exc if message == exc.message else InputError(message, exc.path, exc.line)


__all__ = [
    "REDACTED",
    "Redactor",
    "is_password_map",
    "is_secret_name",
    "is_secret_param",
    "mentions_secret",
    "quote_safely",
    "redact_dnsbl",
    "redact_map_list",
    "redact_userinfo",
    "secret_flow",
]
