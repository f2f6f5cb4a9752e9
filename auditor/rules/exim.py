"""Exim rules (EXIM-*): what Exim's RCPT ACL does with a random recipient, and where spam is decided.

The RCPT rules replay ``acl_smtp_rcpt`` for one address per domain Exim accepts mail for: a
random local part (``bsa-nobody-…``) from an Internet client that is not in ``relay_from_hosts``,
not authenticated, on no DNS blocklist, with a forged but real sender address (the victim of
backscatter). Statements run in order, conditions left to right, as acl.c does; ``acl =``
calls nested ACLs, ``verify = recipient`` routes the address through the routers in verify mode.
What the replay cannot evaluate (an ``${if …}`` on unknown data, a lookup in a file that was not
given, an LDAP/SQL query) is tried both ways: when the outcome depends on it, the finding is
inconclusive and names the line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from auditor.model import Evidence, Finding, FixCommand, Location, Remediation, Severity
from auditor.observations.exim import (
    EximAcl,
    EximAclStatement,
    EximCondition,
    EximConfig,
    EximDriver,
    EximFile,
)
from auditor.rules.base import Observations, Rule, rule

RANDOM_LOCAL_PART = "bsa-nobody-7f3a9c0e"
FORGED_SENDER = "victim@example.net"
CLIENT_IP = "192.0.2.25"
MAX_UNKNOWN_BRANCHES = 10  # statements decided both ways per replay (2**10 paths at most)
MAX_DEPTH = 20  # nested acl = / named lists
MAX_DOMAINS_PER_LIST = 10  # literal domains replayed per named list (the ACL treats them alike)
_REF_SPEC = "https://www.exim.org/exim-html-current/doc/html/spec_html/"
_REF_ACL = _REF_SPEC + "ch-access_control_lists.html"
_REF_VERIFY = _REF_ACL + "#SECTaddressverification"
_REF_CONTENT = _REF_SPEC + "ch-content_scanning_at_acl_time.html"
_REF_FILTER = _REF_SPEC + "ch-systemwide_message_filtering.html"
_MODIFIERS = frozenset(
    {
        "message",
        "log_message",
        "logwrite",
        "control",
        "add_header",
        "remove_header",
        "set",
        "delay",
        "queue",
        "udpsend",
        "continue",
        "debug",
        "log_reject_target",
    }
)
_PASSING_VERIFY = frozenset(
    {
        "sender",
        "helo",
        "reverse_host_lookup",
        "header_syntax",
        "not_blind",
        "header_sender",
        "csa",
        "certificate",
        "header_names_ascii",
        "arc",
    }
)
_EXACT_LOOKUPS = frozenset({"lsearch", "dbm", "dbmnz", "dbmjz", "cdb", "dsearch", "passwd", "nis", "nis0"})
_WILD_LOOKUPS = re.compile(r"(partial\d?-)?(n?wildlsearch|lsearch\*@?|lsearch\*|cdb\*@?|dbm\*@?)")
_SPAM_WORDS = re.compile(
    r"(?i)\$spam_|\$malware_name|x-spam|x-virus|spam_score|spam-flag|spamassassin|spamc\b|clamd|clamscan"
    r"|sophie|sophos|\$h_x-spam|virus"
)


class Tri(Enum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


def _not(t: Tri) -> Tri:
    return {Tri.YES: Tri.NO, Tri.NO: Tri.YES, Tri.UNKNOWN: Tri.UNKNOWN}[t]


class Outcome(Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    DEFER = "defer"
    DISCARD = "discard"


@dataclass(frozen=True)
class Dom:
    """A recipient domain of the replay: a literal name, or 'some member of +list'."""

    label: str
    literal: str | None = None
    member_of: str = ""  # named list (or "@mx_any") the symbolic domain belongs to
    list_name: str = ""  # the named list the domain was taken from (what a fix names)


@dataclass
class Step:
    """What one replay path met on its way: the deciding statement and the recipient checks."""

    why: str
    location: Location | None


@dataclass
class Path:
    outcome: Outcome
    steps: list[Step] = field(default_factory=list)
    decided_by: Location | None = None
    checks: list[str] = field(default_factory=list)  # recipient checks that ran, e.g. "routability"
    unknowns: list[tuple[str, Location]] = field(default_factory=list)


class _Fork(Exception):
    """Raised inside a replay when an unknown must be decided: the caller re-runs both ways."""

    def __init__(self, key: tuple[str, int, str], reason: str, location: Location) -> None:
        super().__init__(reason)
        self.key, self.reason, self.location = key, reason, location


class _Replay:
    """One replay of the RCPT ACL for one recipient; ``choices`` decide earlier unknowns."""

    def __init__(
        self, cfg: EximConfig, dom: Dom, choices: dict[tuple[str, int, str], bool], primary_down: bool
    ) -> None:
        self.cfg, self.dom, self.choices, self.primary_down = cfg, dom, choices, primary_down
        self.path = Path(Outcome.REJECT)
        self.assumptions: list[str] = []

    # --- unknowns ---------------------------------------------------------------------------

    def decide(self, reason: str, loc: Location) -> bool:
        key = (loc.path, loc.line or 0, reason)
        if key not in self.choices:
            raise _Fork(key, reason, loc)
        self.path.unknowns.append((reason, loc))
        return self.choices[key]

    def tri(self, t: Tri, reason: str, loc: Location) -> bool:
        if t is Tri.UNKNOWN:
            return self.decide(reason, loc)
        return t is Tri.YES

    # --- expansion (a small part of Exim's string expansion) --------------------------------

    def variables(self) -> dict[str, str | None]:
        d = self.dom.literal
        return {
            "local_part": RANDOM_LOCAL_PART,
            "domain": d,
            "rcpt_count": "1",
            "recipients_count": "0",
            "sender_address": FORGED_SENDER,
            "sender_address_domain": FORGED_SENDER.split("@")[1],
            "sender_address_local_part": FORGED_SENDER.split("@")[0],
            "sender_host_address": CLIENT_IP,
            "authenticated_id": "",
            "sender_host_authenticated": "",
            "received_port": "25",
            "interface_port": "25",
            "acl_verify_message": "",
            "max_received_linelength": "0",
        }

    def expand(self, s: str) -> str | None:
        """The expansion of ``s``, or None when it holds something we cannot evaluate."""
        if "$" not in s:
            return s
        try:
            out, i = _Expander(self).string(s, 0, "")
        except _Unevaluable:
            return None
        return out if i >= len(s) else None

    # --- lists ------------------------------------------------------------------------------

    def list_match(self, value: str, kind: str, loc: Location, depth: int = 0) -> Tri:
        text = self.expand(value)
        if text is None:
            return Tri.UNKNOWN
        if text == "\0fail":
            return Tri.NO  # a forced failure in a list expansion: the list matches nothing
        if kind == "domain" and len(text) > 4096 and self.dom.literal is not None:
            plain, rest = _plain_domains(text)
            if plain is not None and self.dom.literal in plain:
                return Tri.YES  # a long list of plain names: one set lookup, not a scan
            items = list(rest) if plain is not None else split_list(text)
            if not items:
                return Tri.NO
        else:
            items = split_list(text)
        last_neg = False
        for raw in items:
            neg = raw.startswith("!")
            item = raw.lstrip("!").strip() if neg else raw
            last_neg = neg
            if kind != "host" and item == "" and len(items) == 1:
                return Tri.NO
            r = self.item_match(item, kind, loc, depth)
            if r is Tri.UNKNOWN:
                return Tri.UNKNOWN
            if r is Tri.YES:
                return Tri.NO if neg else Tri.YES
        return Tri.YES if last_neg else Tri.NO

    def item_match(self, item: str, kind: str, loc: Location, depth: int) -> Tri:
        if item == "*":
            return Tri.YES
        if item.startswith("+"):
            name = item[1:]
            nl = self.cfg.lists.get(name)
            if kind == "domain" and self.dom.member_of == name:
                return Tri.YES
            if nl is None or depth > MAX_DEPTH:
                return Tri.UNKNOWN
            return self.list_match(nl.value, kind, nl.location, depth + 1)
        if kind == "host":
            return self.host_item(item)
        if kind == "domain":
            return self.domain_item(item, loc)
        if kind == "localpart":
            return self.string_item(item, RANDOM_LOCAL_PART, loc)
        if kind == "address":
            return self.address_item(item, loc)
        if kind == "sender":
            if item == "":
                return Tri.NO  # the empty item matches only the null sender
            return Tri.NO  # a forged sender is not on the site's own lists (assumed)
        return Tri.UNKNOWN

    def host_item(self, item: str) -> Tri:
        if item in ("0.0.0.0/0", "::/0", "::0/0"):
            return Tri.YES
        if ";" in item and not item.startswith("<"):
            self.assumptions.append(
                f"host list lookup '{item}': a random Internet client is assumed not listed"
            )
        return Tri.NO  # the prober is no listed host (an empty item matches only local submission)

    def domain_item(self, item: str, loc: Location) -> Tri:
        d = self.dom
        if item.startswith("@mx_"):
            return Tri.YES if d.member_of == "@mx_any" else Tri.NO
        if item == "@":
            primary = self.cfg.value("primary_hostname")
            return (
                Tri.YES
                if d.member_of == "@" or (d.literal and primary and d.literal == primary.lower())
                else Tri.NO
            )
        if d.literal is None:
            return Tri.NO  # a member of another list: lists of local and relay domains do not overlap
        if ";" in item:
            return self.lookup_item(item, d.literal, loc)
        if item.startswith("/"):
            return self.file_item(item, d.literal, loc)
        return self.string_item(item, d.literal, loc)

    def string_item(self, item: str, subject: str, loc: Location) -> Tri:
        if item.startswith("^"):
            try:
                return Tri.YES if re.search(item, subject) else Tri.NO
            except re.error:
                return Tri.UNKNOWN
        if ";" in item:
            return self.lookup_item(item, subject, loc)
        if item.startswith("/"):
            return self.file_item(item, subject, loc)
        if item.startswith("*"):
            return Tri.YES if subject.lower().endswith(item[1:].lower()) else Tri.NO
        return Tri.YES if item.lower() == subject.lower() else Tri.NO

    def address_item(self, item: str, loc: Location) -> Tri:
        addr = f"{RANDOM_LOCAL_PART}@{self.dom.literal or ''}"
        if item.startswith("^"):
            return self.string_item(item, addr, loc) if self.dom.literal else Tri.UNKNOWN
        if ";" in item:
            return self.lookup_item(item, addr, loc) if self.dom.literal else self.unknown_file(item, loc)
        if item.startswith("/"):
            return self.file_item(item, addr, loc)
        if "@" not in item:
            return self.domain_item(item, loc)
        local, _, domain = item.rpartition("@")
        if local not in ("*", "") and not local.startswith("*"):
            return Tri.NO  # one named address: not the random one
        return self.domain_item(domain or "*", loc) if domain != "*" else Tri.YES

    def unknown_file(self, item: str, loc: Location) -> Tri:
        return Tri.UNKNOWN

    def file_of(self, path: str) -> EximFile | None:
        return self.cfg.file(path)

    def lookup_item(self, item: str, key: str, loc: Location) -> Tri:
        kind, _, path = item.partition(";")
        kind, path = kind.strip(), path.strip()
        base = re.sub(r"^partial\d?-", "", kind).rstrip("*@")
        f = self.file_of(path)
        if f is None or not f.readable:
            if base in _EXACT_LOOKUPS and kind == base and key.startswith(RANDOM_LOCAL_PART):
                return Tri.NO  # an exact-key lookup has no entry for a random local part
            return Tri.UNKNOWN
        return self.file_keys(f, key, wild=kind != base or "wild" in kind)

    def file_item(self, path: str, key: str, loc: Location) -> Tri:
        f = self.file_of(path)
        if f is None or not f.readable:
            return Tri.UNKNOWN
        for _n, line in f.lines:
            if line.startswith(" "):
                continue
            r = self.string_item(line.split()[0], key, loc) if line.split() else Tri.NO
            if r is not Tri.NO:
                return r
        return Tri.UNKNOWN if f.truncated else Tri.NO

    def file_keys(self, f: EximFile, key: str, wild: bool) -> Tri:
        if wild and f.wildcard_keys:
            return Tri.YES
        keys = {
            re.split(r"[:\s]", ln, maxsplit=1)[0].strip('"').lower()
            for _n, ln in f.lines
            if not ln.startswith(" ")
        }
        if key.lower() in keys:
            return Tri.YES
        return Tri.UNKNOWN if f.truncated else Tri.NO

    # --- the ACL ----------------------------------------------------------------------------

    def run_acl(self, acl: EximAcl, depth: int = 0) -> Outcome:
        for stmt in acl.statements:
            out = self.statement(stmt, depth)
            if out is not None:
                if depth == 0:
                    self.path.decided_by = stmt.location
                return out
        if depth == 0:
            self.path.decided_by = acl.statements[-1].location if acl.statements else acl.location
            self.path.steps.append(Step(f"end of ACL {acl.name}: implicit deny", acl.location))
        return Outcome.REJECT

    def statement(self, stmt: EximAclStatement, depth: int) -> Outcome | None:
        after_endpass = False
        for c in stmt.conditions:
            if c.name == "endpass":
                after_endpass = True
                continue
            ok = self.condition(c, stmt, depth)
            if not ok:
                if stmt.verb == "accept" and after_endpass:
                    return Outcome.REJECT
                if stmt.verb == "require":
                    return Outcome.REJECT
                return None
        return {
            "accept": Outcome.ACCEPT,
            "deny": Outcome.REJECT,
            "drop": Outcome.REJECT,
            "defer": Outcome.DEFER,
            "discard": Outcome.DISCARD,
        }.get(stmt.verb)

    def condition(self, c: EximCondition, stmt: EximAclStatement, depth: int) -> bool:
        if c.name in _MODIFIERS:
            return True
        r = self.evaluate(c, depth)
        if c.negated:
            r = _not(r)
        return self.tri(r, f"{c} ({stmt.verb})", c.location)

    def evaluate(self, c: EximCondition, depth: int) -> Tri:
        n, v, loc = c.name, c.value, c.location
        if n == "hosts":
            return self.list_match(v, "host", loc)
        if n == "domains":
            return self.list_match(v, "domain", loc)
        if n == "local_parts":
            return self.list_match(v, "localpart", loc)
        if n == "recipients":
            return self.list_match(v, "address", loc)
        if n in ("senders", "sender_domains"):
            return self.list_match(v, "sender", loc)
        if n == "authenticated":
            return Tri.NO
        if n == "encrypted":
            return Tri.YES  # the prober may use STARTTLS where it is offered
        if n in ("dnslists", "ratelimit", "spf", "spf_guess", "dkim_status", "dkim_signers"):
            self.assumptions.append(
                f"{loc}: {n}: the sending client is assumed clean (not listed, under limits)"
            )
            return Tri.NO
        if n == "acl":
            name = self.expand(v)
            sub = self.cfg.acl(name.strip()) if name else None
            if sub is None or depth >= MAX_DEPTH:
                return Tri.UNKNOWN
            out = self.run_acl(sub, depth + 1)
            return Tri.YES if out is Outcome.ACCEPT else Tri.NO if out is Outcome.REJECT else Tri.UNKNOWN
        if n == "condition":
            text = self.expand(v)
            if text is None:
                return Tri.UNKNOWN
            t = text.strip().lower()
            if t in ("", "0", "no", "false"):
                return Tri.NO
            if t in ("yes", "true") or t.isdigit():
                return Tri.YES
            return Tri.UNKNOWN
        if n == "verify":
            what, _, opts = v.partition("/")
            what = what.strip()
            if what in _PASSING_VERIFY:
                return Tri.YES  # a forged sender is a real address; the client is assumed to behave
            if what == "recipient":
                return self.verify_recipient(opts, loc)
            return Tri.UNKNOWN
        return Tri.UNKNOWN

    # --- verify = recipient -----------------------------------------------------------------

    def verify_recipient(self, opts: str, loc: Location) -> Tri:
        options = [o.strip() for o in re.split(r"[/,]", opts) if o.strip()]
        callout = any(o.startswith("callout") for o in options)
        defer_ok = "defer_ok" in options
        routed = self.route(loc)
        if routed is None:
            self.path.checks.append("recipient verification: routing failed")
            return Tri.NO
        router, remote, catchall = routed
        if callout and remote:
            if self.primary_down:
                self.path.checks.append(
                    f"callout (next hop unreachable){' with defer_ok' if defer_ok else ''}"
                )
                if defer_ok:
                    return Tri.YES
                raise _Defer(loc)
            self.path.checks.append(f"callout to the next hop of router {router.name}")
            return Tri.NO  # the next hop is asked about the random address and refuses it
        kind = "catch-all" if catchall else "routability" if remote else "local"
        self.path.checks.append(f"{kind}:{router.name}:{router.location}")
        return Tri.YES

    def route(self, loc: Location) -> tuple[EximDriver, bool, bool] | None:
        """The router that accepts the random address in verify mode: (router, remote, catch-all)."""
        for r in self.cfg.routers:
            if r.get("verify", "true") == "false" or r.get("verify_recipient", "true") == "false":
                continue
            if not self.preconditions(r):
                continue  # skipped: "no_more" applies only to a router that ran and declined
            res = self.driver(r)
            if res is not None:
                return res
            if r.get("more", "true") == "false":
                return None
        return None

    def preconditions(self, r: EximDriver) -> bool:
        checks = [("domains", "domain"), ("local_parts", "localpart")]
        for opt, kind in checks:
            st = r.options.get(opt)
            if st and not self.tri(
                self.list_match(st.value, kind, st.location),
                f"router {r.name}: {opt} = {st.value}",
                st.location,
            ):
                return False
        for affix in ("local_part_prefix", "local_part_suffix"):
            st = r.options.get(affix)
            if st and st.value and r.get(affix + "_optional", "false") != "true":
                return False  # the random local part has no such prefix/suffix
        if r.get("check_local_user", "false") == "true":
            return False  # no system user has the random name
        st = r.options.get("senders")
        if st and not self.tri(
            self.list_match(st.value, "sender", st.location), f"router {r.name}: senders", st.location
        ):
            return False
        st = r.options.get("require_files")
        if st and st.value and not self.decide(f"router {r.name}: require_files = {st.value}", st.location):
            return False
        st = r.options.get("condition")
        if st:
            text = self.expand(st.value)
            t = None if text is None else text.strip().lower()
            if t is None or t not in ("", "0", "no", "false", "yes", "true", "1"):
                if not self.decide(f"router {r.name}: condition = {st.value}", st.location):
                    return False
            elif t in ("", "0", "no", "false"):
                return False
        return True

    def driver(self, r: EximDriver) -> tuple[EximDriver, bool, bool] | None:
        drv = r.driver
        if drv == "accept":
            return (r, False, False)
        if drv == "dnslookup":
            self.assumptions.append(f"{r.location}: router {r.name}: the relay domain is assumed to resolve")
            return (r, True, False)
        if drv == "ipliteral":
            return None
        if drv == "manualroute":
            if "route_data" in r.options:
                data = self.expand(r.get("route_data"))
                if data is None:
                    st = r.options["route_data"]
                    return (
                        (r, True, False)
                        if self.decide(f"router {r.name}: route_data = {st.value}", st.location)
                        else None
                    )
                return (r, True, False) if data.strip() else None
            for rule_ in r.get("route_list").split(";"):
                words = rule_.split()
                if words and self.tri(
                    self.list_match(words[0], "domain", r.location),
                    f"router {r.name}: route_list",
                    r.location,
                ):
                    return (r, True, False)
            return None
        if drv == "redirect":
            return self.redirect(r)
        drv_st = r.options.get("driver")
        where = drv_st.location if drv_st else r.location
        return (
            (r, True, False)
            if self.decide(f"router {r.name}: driver {drv} is not evaluated", where)
            else None
        )

    def redirect(self, r: EximDriver) -> tuple[EximDriver, bool, bool] | None:
        st = r.options.get("data") or r.options.get("file")
        if st is None:
            return None
        value = st.value.strip().strip('"')
        if st.name == "file":
            if self.decide(
                f"router {r.name}: file = {st.value} (a forward or filter file) not evaluated", st.location
            ):
                return (r, False, False)
            return None
        lk = re.fullmatch(
            r"\$\{lookup\{\$\{?local_part\}?\}\s*([\w*@-]+)\s*\{\s*([^}]+?)\s*\}\s*(\{[^{}]*\}\s*)*\}", value
        )
        if lk:
            kind, path = lk.group(1), lk.group(2)
            wild = bool(_WILD_LOOKUPS.fullmatch(kind))
            f = self.file_of(path)
            if f is not None and f.readable:
                if wild and f.wildcard_keys:
                    n, text = f.wildcard_keys[0]
                    if ":fail:" in text or ":blackhole:" in text:
                        return None
                    self.path.steps.append(Step(f"{f.resolved}:{n}: wildcard entry {text}", st.location))
                    return (r, False, True)
                return None
            base = re.sub(r"^partial\d?-", "", kind)
            if not wild and base in _EXACT_LOOKUPS:
                return None  # no entry for a random local part in an exact-key lookup
            if self.decide(f"router {r.name}: {kind} lookup in {path}, a file not given", st.location):
                return (r, False, True)
            return None
        if "$" not in value and "{" not in value:
            if value.startswith(":fail:") or value.startswith(":defer:"):
                return None
            return (r, False, value.startswith(":blackhole:") is False)
        expanded = self.expand(value)
        if expanded is not None:
            if not expanded.strip():
                return None
            return (r, False, True)
        if self.decide(f"router {r.name}: data = {st.value} not evaluated", st.location):
            return (r, False, True)
        return None


class _Defer(Exception):
    def __init__(self, loc: Location) -> None:
        self.loc = loc


class _Unevaluable(Exception):
    pass


class _Expander:
    """``$var``, ``${var}``, ``${if COND {yes}{no}}``, ``${eval:…}``, ``exists``/``def``/comparisons."""

    def __init__(self, rp: _Replay) -> None:
        self.rp = rp
        self.vars = rp.variables()

    def string(self, s: str, i: int, stop: str) -> tuple[str, int]:
        out: list[str] = []
        while i < len(s):
            ch = s[i]
            if ch in stop:
                return "".join(out), i
            if ch == "\\" and i + 1 < len(s):
                out.append(s[i + 1])
                i += 2
                continue
            if ch == "$":
                val, i = self.dollar(s, i)
                out.append(val)
                continue
            out.append(ch)
            i += 1
        return "".join(out), i

    def var(self, name: str) -> str:
        if name not in self.vars or self.vars[name] is None:
            raise _Unevaluable(name)
        v = self.vars[name]
        assert v is not None
        return v

    def dollar(self, s: str, i: int) -> tuple[str, int]:
        m = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)").match(s, i)
        if m:
            return self.var(m.group(1)), m.end()
        if s.startswith("${", i):
            m = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").match(s, i)
            if m:
                return self.var(m.group(1)), m.end()
            if s.startswith("${if", i) and s[i + 4 : i + 5] in (" ", "\t", "\n", "!"):
                return self.if_(s, i + 4)
            m = re.compile(r"\$\{eval(?:10)?:").match(s, i)
            if m:
                expr, j = self.string(s, m.end(), "}")
                return str(_arith(expr)), j + 1
        raise _Unevaluable(s[i : i + 20])

    def braced(self, s: str, i: int) -> tuple[str, int]:
        i = _skip(s, i)
        if i >= len(s) or s[i] != "{":
            raise _Unevaluable("brace")
        depth_out, j = self.string(s, i + 1, "}")
        return depth_out, j + 1

    def if_(self, s: str, i: int) -> tuple[str, int]:
        cond, i = self.cond(s, i)
        i = _skip(s, i)
        if i < len(s) and s[i] == "}":
            return ("true" if cond else ""), i + 1
        yes, i = self.raw_braced(s, i)
        i = _skip(s, i)
        no: str | None = ""
        if i < len(s) and s[i] == "{":
            no, i = self.raw_braced(s, i)
        elif s.startswith("fail", i):
            no, i = None, i + 4
        i = _skip(s, i)
        if i >= len(s) or s[i] != "}":
            raise _Unevaluable("if")
        chosen = yes if cond else no
        if chosen is None:
            return "\0fail", i + 1
        out, _ = self.string(chosen, 0, "")
        return out, i + 1

    def raw_braced(self, s: str, i: int) -> tuple[str, int]:
        i = _skip(s, i)
        if i >= len(s) or s[i] != "{":
            raise _Unevaluable("brace")
        depth, j = 0, i
        while j < len(s):
            if s[j] == "\\":
                j += 2
                continue
            if s[j] == "{":
                depth += 1
            elif s[j] == "}":
                depth -= 1
                if depth == 0:
                    return s[i + 1 : j], j + 1
            j += 1
        raise _Unevaluable("unbalanced")

    def cond(self, s: str, i: int) -> tuple[bool, int]:
        i = _skip(s, i)
        if s.startswith("!", i):
            c, i = self.cond(s, i + 1)
            return not c, i
        m = re.compile(r"(and|or|exists|def:|eqi|eq|==|>=|<=|>|<|bool)").match(s, i)
        if not m:
            raise _Unevaluable("condition")
        op, i = m.group(1), m.end()
        if op in ("and", "or"):
            i = _skip(s, i)
            if s[i : i + 1] != "{":
                raise _Unevaluable("and/or")
            i += 1
            results = []
            while True:
                i = _skip(s, i)
                if s[i : i + 1] == "}":
                    i += 1
                    break
                sub, i = self.raw_braced(s, i)
                results.append(self.cond(sub, 0)[0])
            return (all(results) if op == "and" else any(results)), i
        if op == "def:":
            m2 = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(s, i)
            if not m2:
                raise _Unevaluable("def")
            name = m2.group()
            if name.startswith("h_") or name.startswith("header_"):
                raise _Unevaluable("header")
            return bool(self.var(name)), m2.end()
        if op == "exists":
            path, i = self.braced(s, i)
            f = self.rp.file_of(path)
            if f is None or f.exists is None:
                raise _Unevaluable("exists")
            return bool(f.exists), i
        if op == "bool":
            a, i = self.braced(s, i)
            return a.strip().lower() in ("yes", "true", "1"), i
        a, i = self.braced(s, i)
        b, i = self.braced(s, i)
        if op == "eq":
            return a == b, i
        if op == "eqi":
            return a.lower() == b.lower(), i
        x, y = _arith(a), _arith(b)
        return {"==": x == y, ">=": x >= y, "<=": x <= y, ">": x > y, "<": x < y}[op], i


def _skip(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t\n\\":
        i += 1
    return i


def _arith(expr: str) -> int:
    e = expr.strip()
    if not re.fullmatch(r"[0-9+\-*/%() \t]+", e or "x"):
        raise _Unevaluable("arith")
    try:
        return int(eval(e.replace("/", "//"), {"__builtins__": {}}, {}))  # digits and operators only
    except (SyntaxError, ZeroDivisionError, ValueError):
        raise _Unevaluable("arith") from None


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")


def _is_plain_domain(item: str) -> bool:
    return bool(_PLAIN.fullmatch(item))


@functools.lru_cache(maxsize=64)
def _plain_domains(value: str) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    """A domain list's plain names and its other items, when it has no negation (order cannot matter)."""
    items = split_list(value)
    if any(i.startswith("!") for i in items):
        return None, ()
    return frozenset(i.lower() for i in items if _is_plain_domain(i)), tuple(
        i for i in items if not _is_plain_domain(i)
    )


def split_list(value: str) -> list[str]:
    """An Exim list: ':'-separated (``::`` is a literal colon), or ``<X`` to choose the separator."""
    sep = ":"
    m = re.match(r"\s*<\s*(\S)", value)
    if m:
        sep, value = m.group(1), value[m.end() :]
    parts = value.replace(sep * 2, "\0").split(sep)
    items = [p.replace("\0", sep).strip() for p in parts]
    if len(items) > 1 and items[-1] == "":
        items.pop()
    return items


# --- running the replay -------------------------------------------------------------------------


def replay(
    cfg: EximConfig, acl: EximAcl, dom: Dom, primary_down: bool = False
) -> tuple[list[Path], list[str], bool]:
    """Every path of the RCPT ACL for the random address at ``dom``; (paths, assumptions, complete)."""
    paths: list[Path] = []
    assumptions: list[str] = []
    todo: list[dict[tuple[str, int, str], bool]] = [{}]
    complete = True
    while todo:
        choices = todo.pop()
        rp = _Replay(cfg, dom, choices, primary_down)
        try:
            out = rp.run_acl(acl)
        except _Fork as fork:
            if len(choices) >= MAX_UNKNOWN_BRANCHES:
                complete = False
                rp.path.unknowns.append((fork.reason, fork.location))
                rp.path.outcome = Outcome.DEFER
                paths.append(rp.path)
                continue
            todo.append({**choices, fork.key: False})
            todo.append({**choices, fork.key: True})
            continue
        except _Defer as d:
            out = Outcome.DEFER
            rp.path.decided_by = d.loc
        rp.path.outcome = out
        paths.append(rp.path)
        assumptions += [a for a in dict.fromkeys(rp.assumptions) if a not in assumptions]
    return paths, assumptions, complete


# --- which domains, which listener --------------------------------------------------------------


def _domains(cfg: EximConfig, names: tuple[str, ...]) -> list[Dom]:
    out: list[Dom] = []
    for name in names:
        nl = cfg.lists.get(name)
        if nl is None:
            continue
        concrete = []
        symbolic = False
        for item in split_list(nl.value):
            it = item.strip()
            if not it or it.startswith("!"):
                continue
            if it == "@":
                primary = cfg.value("primary_hostname")
                out.append(Dom(primary or "(primary host name)", primary.lower() or None, "@", name))
            elif it.startswith("@mx_"):
                out.append(Dom(f"{it} (domains this host is an MX for)", None, "@mx_any"))
            elif re.fullmatch(r"[A-Za-z0-9.-]+", it) and "." in it and not it.startswith("."):
                if it.lower() not in ("localhost", "localhost.localdomain") and not it.endswith(".localhost"):
                    concrete.append(it.lower())
            elif it != "localhost":
                symbolic = True
        out += [Dom(d, d, "", name) for d in concrete[:MAX_DOMAINS_PER_LIST]]
        if symbolic:
            out.append(Dom(f"a domain in +{name}", None, name, name))
    seen: set[str] = set()
    uniq = []
    for d in out:
        if d.label not in seen:
            seen.add(d.label)
            uniq.append(d)
    return uniq


def _loopback_only(cfg: EximConfig) -> bool:
    v = cfg.value("local_interfaces")
    if not v.strip():
        return False
    addrs = [
        re.sub(r"\.\d+$", "", a.strip().strip("[]")) if a.count(".") == 4 else a.strip().strip("[]")
        for a in split_list(v)
    ]
    addrs = [a for a in addrs if a]
    return bool(addrs) and all(
        a.startswith("127.") or a in ("::1", "0000:0000:0000:0000:0000:0000:0000:0001") for a in addrs
    )


def _rcpt_acl(cfg: EximConfig) -> tuple[EximAcl | None, str]:
    st = cfg.option("acl_smtp_rcpt")
    if st is None or not st.value.strip():
        return None, "acl_smtp_rcpt is not set: Exim refuses every recipient from SMTP clients"
    acl = cfg.acl(st.value.strip())
    if acl is None:
        return (
            None,
            f"acl_smtp_rcpt = {st.value}: no ACL of that name (a file or an inline ACL is not evaluated)",
        )
    return acl, ""


def _ev(summary: str, loc: Location | None) -> Evidence:
    return Evidence(summary=summary, location=loc)


def _relay_names(cfg: EximConfig) -> tuple[str, ...]:
    names = [
        n for n, nl in cfg.lists.items() if nl.type == "domain" and n != "local_domains" and "relay" in n
    ]
    return tuple(names)


def _verdict(
    r: Rule, cfg: EximConfig, acl: EximAcl, dom: Dom, local: bool, severity_fail: Severity
) -> Finding:
    target = f"{cfg.target} {acl.name} {dom.label}"
    paths, assumptions, complete = replay(cfg, acl, dom)
    accepted = [p for p in paths if p.outcome in (Outcome.ACCEPT,)]
    refused = [p for p in paths if p.outcome not in (Outcome.ACCEPT,)]
    note = "; ".join(assumptions[:6])
    if cfg.templates:
        toks = ", ".join(sorted({f"{t.token} ({t.location})" for t in cfg.templates})[:5])
        note = (note + "; " if note else "") + f"unrendered placeholders: {toks}"
    if accepted and refused:
        unknowns: dict[tuple[str, int | None], tuple[str, Location]] = {}
        for p in paths:
            for reason, loc in p.unknowns:
                unknowns.setdefault((loc.path, loc.line), (reason, loc))
        ev = [_ev(f"not evaluated: {reason}", loc) for reason, loc in unknowns.values()]
        return r.inconclusive(
            target,
            f"whether {RANDOM_LOCAL_PART}@{dom.label} is accepted depends on what the linter cannot "
            "evaluate: " + "; ".join(f"{loc}: {reason}" for reason, loc in list(unknowns.values())[:3]),
            ev,
            note=note + ("" if complete else "; too many undecided conditions to replay every path"),
        )
    if not accepted:
        primary_down_paths: list[Path] = []
        if not local:
            primary_down_paths = [
                p for p in replay(cfg, acl, dom, primary_down=True)[0] if p.outcome is Outcome.ACCEPT
            ]
        if primary_down_paths:
            p = primary_down_paths[0]
            return r.fail(
                target,
                f"recipients of {dom.label} are checked by a callout with defer_ok: while the next hop "
                f"cannot be reached, {RANDOM_LOCAL_PART}@{dom.label} is accepted and later bounced",
                [_ev(f"accepted by {acl.name} while the next hop is down", p.decided_by)],
                severity=Severity.HIGH,
                remediation=_fix(cfg, acl, dom, local, p, defer_ok=True),
                note=note,
            )
        p = paths[0]
        what = ", ".join(dict.fromkeys(c.split(":", 1)[0] for c in p.checks)) or "an ACL statement"
        return r.passed(
            target,
            f"{RANDOM_LOCAL_PART}@{dom.label} is refused at RCPT time ({what})",
            [_ev(f"decided by {acl.name}", p.decided_by)],
            note=note,
        )
    p = accepted[0]
    ev = [_ev(f"{acl.name} accepts {RANDOM_LOCAL_PART}@{dom.label} here", p.decided_by)]
    catch = [c for c in p.checks if c.startswith("catch-all:")]
    route = [c for c in p.checks if c.startswith("routability:") or c.startswith("local:")]
    if catch:
        _, name, where = catch[0].split(":", 2)
        msg = (
            f"verify = recipient succeeds for any local part of {dom.label}: router {name} ({where}) "
            "accepts a random local part (catch-all)"
        )
    elif route and not local:
        _, name, where = route[0].split(":", 2)
        msg = (
            f"{RANDOM_LOCAL_PART}@{dom.label} is accepted: verify = recipient only proves the address routes "
            f"to the next hop (router {name}, {where}), not that the mailbox exists"
        )
    elif route:
        _, name, where = route[0].split(":", 2)
        msg = (
            f"{RANDOM_LOCAL_PART}@{dom.label} is accepted: router {name} ({where}) accepts it in verify mode"
        )
    else:
        msg = f"{RANDOM_LOCAL_PART}@{dom.label} is accepted with no recipient verification on the way"
    for unknown_reason, loc in p.unknowns[:3]:
        ev.append(_ev(f"assumed: {unknown_reason}", loc))
    return r.fail(
        target,
        msg,
        ev,
        severity=severity_fail,
        remediation=_fix(cfg, acl, dom, local, p),
        note=note,
    )


def _fix(
    cfg: EximConfig, acl: EximAcl, dom: Dom, local: bool, p: Path, defer_ok: bool = False
) -> Remediation:
    """The ACL line to add, and where: before the statement that accepts the random address."""
    loc = p.decided_by or acl.location
    at = f"{loc.path}:{loc.line}" if loc.line else loc.path
    domains = f"+{dom.list_name}" if dom.list_name else (dom.literal or "@mx_any")
    if local:
        lines = (f"  require domains = {domains}", "          verify = recipient")
        text = (
            f"In ACL {acl.name}, insert this statement before the one at {at}, so it runs before anything "
            "accepts; and remove any catch-all (`*:`) alias or redirect router for local domains."
        )
        return Remediation(text=text, commands=_acl_lines(lines, at, acl))
    if defer_ok:
        text = (
            f"In ACL {acl.name} ({at}), drop defer_ok from the callout so an unreachable primary defers "
            "(4xx) instead of accepting; better, check a recipient list:\n"
            f"  deny    domains    = {domains}\n"
            f"          !recipients = lsearch;/etc/exim4/relay_recipients"
        )
        return Remediation(
            text=text,
            commands=(
                FixCommand(
                    line="verify = recipient/callout=30s",
                    changes=f"replaces the callout with defer_ok of the statement at {at} (ACL {acl.name})",
                ),
            ),
        )
    text = (
        f"In ACL {acl.name}, insert this statement before the one at {at}: the callout asks the next hop "
        "(the primary MX) whether the mailbox exists. Where a list of valid recipients can be exported, "
        "check it instead (`!recipients = lsearch;<file of valid addresses>` in place of the verify line)."
    )
    return Remediation(
        text=text,
        commands=_acl_lines(
            (f"  deny    domains = {domains}", "          !verify = recipient/callout=30s"), at, acl
        ),
    )


def _acl_lines(lines: tuple[str, ...], at: str, acl: EximAcl) -> tuple[FixCommand, ...]:
    """One ACL statement to insert, a line per condition (Exim reads one condition per line)."""
    return tuple(
        FixCommand(line=ln, changes=f"insert before {at} (ACL {acl.name}), line {i} of {len(lines)}")
        for i, ln in enumerate(lines, 1)
    )


def _rcpt_rule(obs: Observations, r: Rule, local: bool) -> Iterator[Finding]:
    for cfg in obs.of(EximConfig):
        names = ("local_domains",) if local else _relay_names(cfg)
        acl, why = _rcpt_acl(cfg)
        st = cfg.option("acl_smtp_rcpt")
        if acl is None:
            loc = st.location if st else Location(cfg.main_file)
            if st is None:
                yield r.passed(cfg.target, why, [_ev("acl_smtp_rcpt not set", loc)])
            else:
                yield r.inconclusive(cfg.target, why, [_ev(f"acl_smtp_rcpt = {st.value}", loc)])
            continue
        if _loopback_only(cfg):
            li = cfg.option("local_interfaces")
            yield r.not_applicable(
                cfg.target,
                f"Exim listens on loopback only (local_interfaces = {li.value if li else ''}): no MX",
                [_ev("local_interfaces", li.location if li else None)],
            )
            continue
        doms = _domains(cfg, names)
        if not local:
            doms += _acl_mx_domains(cfg, acl)
        if not doms:
            what = "+local_domains" if local else "relay domains (relay_to_domains)"
            nl = cfg.lists.get(names[0]) if names else None
            yield r.not_applicable(
                cfg.target,
                f"no {what} that Internet clients send to",
                [_ev(f"domainlist {nl.name} = {nl.value}", nl.location)] if nl else [],
            )
            continue
        for dom in doms:
            yield _verdict(r, cfg, acl, dom, local, Severity.CRITICAL)


def _acl_mx_domains(cfg: EximConfig, acl: EximAcl) -> list[Dom]:
    for stmt in acl.statements:
        for c in stmt.conditions:
            if c.name == "domains" and "@mx_" in c.value:
                return [Dom("@mx_any (domains this host is an MX for)", None, "@mx_any")]
    return []


@rule(
    "EXIM-RCPT-001",
    title="Exim relay/backup domains verified for routability only",
    family="exim",
    cause="relay-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(EximConfig,),
    remediation=(
        "In acl_smtp_rcpt, before any statement that accepts relay domains, refuse recipients the next "
        "hop does not know: `deny domains = +relay_to_domains` with `!verify = recipient/callout=30s`, "
        "or better a list of valid recipients (`!recipients = lsearch;/etc/exim4/relay_recipients`, or "
        "an LDAP lookup). Avoid callout `defer_ok`: it accepts everything while the primary is down."
    ),
    references=(_REF_VERIFY, _REF_ACL, "Exim src/configure.default (acl_check_rcpt)"),
)
def exim_relay_routability(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A domain Exim relays for (a backup MX's `relay_to_domains`, `@mx_any`) whose random
    recipients get through `acl_smtp_rcpt`: accepted with no check, or after `verify = recipient`
    without a callout. The ACL is replayed in order for `bsa-nobody-…@domain` from an unlisted,
    unauthenticated client; an `accept` before the check ends the ACL.

    ## Why it causes backscatter
    For a remote domain `verify = recipient` only runs the routers: a `dnslookup` or
    `manualroute` router finds the next hop, so every local part "verifies". The backup MX
    queues the spam, the primary refuses the unknown user, and the backup bounces it to the
    forged sender.

    ## Example
    ```
    domainlist relay_to_domains = example.org
    acl_check_rcpt:
      accept  domains = +relay_to_domains
              verify  = recipient
    ```
    """
    yield from _rcpt_rule(obs, r, local=False)


@rule(
    "EXIM-RCPT-002",
    title="Exim local domains accepted without verify = recipient",
    family="exim",
    cause="local-recipients",
    controls=("RFC5321-6.1",),
    severity=Severity.CRITICAL,
    needs=(EximConfig,),
    remediation=(
        "Put `require verify = recipient` for `+local_domains` in acl_smtp_rcpt before any `accept` "
        "that local recipients reach, and remove catch-all aliases (`*: user` with lsearch*/wildlsearch) "
        "and redirect routers whose data is not a per-user lookup."
    ),
    references=(_REF_VERIFY, _REF_ACL, "Exim src/configure.default (acl_check_rcpt)"),
)
def exim_local_unverified(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A local domain (`+local_domains`) whose random recipients get through `acl_smtp_rcpt`: an
    `accept domains = +local_domains` with no `verify = recipient`, an `accept` reached before
    the verify, or a verify that succeeds because a router takes any local part (a catch-all
    alias, a redirect whose data is not a per-user lookup).

    ## Why it causes backscatter
    Exim then accepts mail for users that do not exist; routing fails after the SMTP session,
    and Exim sends the bounce to the envelope sender, who for spam is a forged third party.

    ## Example
    ```
    acl_check_rcpt:
      accept  domains = +local_domains
      require verify  = recipient      # never reached for local domains
    ```
    """
    yield from _rcpt_rule(obs, r, local=True)


# --- EXIM-CF-001 --------------------------------------------------------------------------------


def _acl_content_checks(cfg: EximConfig) -> list[tuple[EximAclStatement, EximCondition]]:
    out = []
    for opt in ("acl_smtp_data", "acl_smtp_mime", "acl_smtp_data_prdr"):
        name = cfg.value(opt).strip()
        acl = cfg.acl(name) if name else None
        if acl is None:
            continue
        for stmt in acl.statements:
            for c in stmt.conditions:
                if c.name in ("spam", "malware") and stmt.verb in ("deny", "drop", "defer"):
                    out.append((stmt, c))
    return out


@rule(
    "EXIM-CF-001",
    title="Exim content scanning decided after acceptance",
    family="exim",
    cause="in-session-filtering",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=(EximConfig,),
    remediation=(
        "Reject spam and malware in the DATA ACL (`deny malware = *`, `deny spam = nobody:true` with a "
        "score condition) so the refusal is a 5xx in the session. After acceptance, never `fail` on a "
        "scanning result: use `seen finish` / `:blackhole:` or deliver to a quarantine."
    ),
    references=(_REF_CONTENT, _REF_FILTER),
)
def exim_content_after_acceptance(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    A router, or the system filter, that fails (bounces) a message because of a spam or virus
    verdict: a redirect router whose condition reads a scanner's header or variable and whose
    data is `:fail:`, a system filter with a `fail` command. Deciding in the DATA ACL (`deny
    malware`, `deny spam`) passes.

    ## Why it causes backscatter
    An ACL deny is a 5xx in the SMTP session: the sender's own server tells its user. A router or
    filter `fail` runs after Exim has accepted the message, so Exim itself writes a bounce to the
    envelope sender, which for spam and viruses is forged.

    ## Example
    ```
    spam_bounce:
      driver    = redirect
      condition = ${if def:h_X-Spam-Flag: {yes}{no}}
      allow_fail
      data      = :fail: message looks like spam
    ```
    """
    for cfg in obs.of(EximConfig):
        fails: list[Evidence] = []
        undecided: list[Evidence] = []
        for rt in cfg.routers:
            if rt.driver != "redirect":
                continue
            data = rt.get("data")
            text = " ".join(s.value for n, s in rt.options.items() if n in ("condition", "senders", "data"))
            if ":fail:" in data and _SPAM_WORDS.search(text):
                st = rt.options["data"]
                fails.append(
                    _ev(f"router {rt.name}: fails (bounces) on a scanning result: data = {data}", st.location)
                )
        sf = cfg.option("system_filter")
        if sf and sf.value.strip():
            f = cfg.file(sf.value.strip())
            if f is None or not f.readable:
                undecided.append(
                    _ev(
                        f"system_filter = {sf.value}: the filter file was not given "
                        f"({f.error if f else 'not read'})",
                        sf.location,
                    )
                )
            else:
                for n, line in ((n, ln.strip()) for n, ln in f.lines):
                    if re.match(r"(?i)(if\b.*\bthen\s+)?fail\b", line) or re.search(
                        r"(?i)\bthen\s+fail\b", line
                    ):
                        fails.append(
                            _ev(
                                f"system filter fails (bounces) a message: {line[:120]}",
                                Location(f.resolved or f.path, n),
                            )
                        )
        checks = _acl_content_checks(cfg)
        scanners = [cfg.option(o) for o in ("av_scanner", "spamd_address") if cfg.option(o)]
        if fails:
            yield r.fail(
                cfg.target,
                "spam/virus decisions bounce after acceptance: " + "; ".join(e.summary for e in fails[:3]),
                fails,
                remediation=Remediation(
                    text=(
                        "Move the decision into acl_smtp_data, e.g.:\n  deny  malware = *\n"
                        "  deny  spam = nobody:true\n        condition = ${if >{$spam_score_int}{100}}\n"
                        "and replace the `:fail:` / `fail` after acceptance by `:blackhole:` or "
                        "`seen finish`."
                    ),
                    commands=tuple(
                        FixCommand(line="deny malware = *", changes=f"{e.location} -> acl_smtp_data")
                        for e in fails[:1]
                    ),
                ),
            )
            continue
        if undecided:
            yield r.inconclusive(cfg.target, undecided[0].summary, undecided)
            continue
        if checks:
            yield r.passed(
                cfg.target,
                "content is judged in the SMTP session: " + "; ".join(f"{s.verb} {c}" for s, c in checks[:3]),
                [_ev(f"{s.verb} {c}", c.location) for s, c in checks[:3]],
            )
            continue
        if scanners:
            yield r.passed(
                cfg.target,
                "a scanner is configured and nothing bounces on its verdict after acceptance",
                [_ev(f"{s.name} = {s.value}", s.location) for s in scanners if s],
            )
            continue
        yield r.not_applicable(
            cfg.target,
            "no content scanning configured (no spam/malware ACL condition, scanner, or system filter)",
        )
