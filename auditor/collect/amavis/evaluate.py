"""Evaluate the assignments of amavis configuration statements, in order, the way Perl would.

Supported: scalar, array, hash and element assignments (``$h{+CC_SPAM}``, ``$policy_bank{'X'}{k}``),
chained ``$a = $b = ...``, ``||=`` / ``//=`` / ``.=`` / ``+=``, ``push``/``unshift``, ``my``/``our``,
constants (``D_BOUNCE``, ``&D_BOUNCE``, ``D_BOUNCE()``, ``Amavis::Conf::D_BOUNCE``, ``CC_*``),
numbers, strings with ``$var`` interpolation, lists, array and hash constructors, ``\\$ref``,
``qr``, ``new_RE(...)`` and other calls (kept as calls), ``sub {...}`` (kept as code),
``||``/``//``/``&&`` and arithmetic on known values, includes of other config files.
Perl's quoting of barewords (``{CC_SPAM}`` and ``CC_SPAM => ...`` are the *string* 'CC_SPAM')
is reproduced. Anything else that touches a tracked variable is recorded as ``unknown`` with the
reason; statement modifiers and ``if`` blocks make an assignment conditional (``unknown``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from auditor.collect.amavis.perl import Statement, Token
from auditor.model import Location
from auditor.observations.amavis import (
    ALIASES,
    CCATS,
    DESTINIES,
    TRACKED,
    AmavisOpaque,
    AmavisSetting,
    PerlValue,
)

_TRACKED = frozenset(TRACKED)
# Settings a policy bank may hold, by bank key → variable with sigil.
BANK_KEYS: dict[str, str] = {v[1:]: v for v in TRACKED if v not in ("%policy_bank", "%interface_policy")}
# Well-known amavis variables: a file that sets none of them is not an amavis configuration.
KNOWN_AMAVIS = _TRACKED | frozenset(
    {
        "$myhostname",
        "$mydomain",
        "$MYHOME",
        "$TEMPBASE",
        "$QUARANTINEDIR",
        "$daemon_user",
        "$daemon_group",
        "$max_servers",
        "$max_requests",
        "$child_timeout",
        "@local_domains_acl",
        "@local_domains_maps",
        "$local_domains_re",
        "@bypass_spam_checks_maps",
        "@bypass_virus_checks_maps",
        "$sa_tag_level_deflt",
        "$sa_tag2_level_deflt",
        "$sa_spam_subject_tag",
        "$banned_filename_re",
        "@av_scanners",
        "@av_scanners_backup",
        "$X_HEADER_LINE",
        "$virus_admin",
        "$spam_admin",
        "$DO_SYSLOG",
        "$log_level",
        "$notify_method",
        "$forward_method",
        "$enable_dkim_verification",
        "$pid_file",
        "$lock_file",
        "$db_home",
        "$path",
        "$file",
        "$gzip",
        "$bzip2",
        "$unrar",
        "$arc",
        "$enable_db",
        "$enable_global_cache",
        "$virus_quarantine_to",
        "$spam_quarantine_to",
        "$banned_quarantine_to",
        "$bad_header_quarantine_to",
        "$quarantine_subdir_levels",
        "$sa_mail_body_size_limit",
        "$sa_local_tests_only",
        "$MAXLEVELS",
        "$MAXFILES",
        "@keep_decoded_original_maps",
        "@score_sender_maps",
        "$syslog_facility",
        "$syslog_ident",
        "$log_recip_templ",
        "$inet_socket_bind",
        "$final_unchecked_destiny",
        "@lookup_sql_dsn",
        "@storage_sql_dsn",
        "$sql_select_policy",
        "$enable_ldap",
        "$helpers_home",
        "$undecipherable_subject_tag",
        "$mailfrom_notify_admin",
        "$mailfrom_notify_recip",
        "$mailfrom_notify_spamadmin",
        "$hdrfrom_notify_sender",
        "@addr_extension_spam_maps",
        "$recipient_delimiter",
        "$addr_extension_spam",
        "%banned_rules",
        "@banned_filename_maps",
        "$defang_spam",
        "@whitelist_sender_maps",
        "@blacklist_sender_maps",
        "$penpals_bonus_score",
        "$policy_bank",
        "$inet_acl",
        "@inet_acl",
        "$myauthservid",
        "$soft_bounce",
        "$sa_quarantine_cutoff_level",
        "$bounce_killer_score",
        "@decoders",
        "$unix_socketname",
    }
)
_INCLUDES = frozenset({"include_config_files", "include_optional_config_files"})
_MODIFIERS = frozenset({"if", "unless", "while", "until", "for", "foreach"})
_ASSIGN_OPS = frozenset(
    {"=", "||=", "//=", "&&=", "+=", "-=", "*=", "/=", ".=", "x=", "|=", "&=", "**=", "%="}
)
_MAX_ITEMS = 64  # elements kept per list/hash value in the observation
_MAX_DEPTH = 60
_PKG_RE = re.compile(r"^([$@%&])(?:main::|::|Amavis::Conf::)")
_INTERP_RE = re.compile(r"\\.|\$\{(\w+)\}|\$(\w+)|@(\w+)")


def unknown(reason: str, text: str = "") -> PerlValue:
    return PerlValue("unknown", text=text[:200], reason=reason)


def _num(n: float, text: str = "", name: str = "") -> PerlValue:
    return PerlValue("number", text=text[:200], number=n, name=name)


def _str(s: str, text: str = "") -> PerlValue:
    return PerlValue("string", text=text[:200], string=s[:2000])


def _short(v: PerlValue) -> PerlValue:
    if len(v.items) <= _MAX_ITEMS:
        return v
    return PerlValue(v.kind, v.text, v.number, v.string, v.name, v.items[:_MAX_ITEMS], "truncated")


def _canon(var: str) -> str:
    var = _PKG_RE.sub(r"\1", var)
    return ALIASES.get(var, var)


def _join(tokens: Sequence[Token], limit: int = 200) -> str:
    out = " ".join(t.raw or t.value for t in tokens)
    return out if len(out) <= limit else out[: limit - 1] + "…"


@dataclass
class Include:
    """An include_config_files(...) / do FILE the reader was asked to follow."""

    paths: list[str]
    optional: bool
    location: Location
    text: str


@dataclass
class Evaluator:
    """Walks statements in order with an environment of variable values."""

    follow: Callable[[Include], bool]  # read the included files (True) or not (False)
    env: dict[str, PerlValue] = field(default_factory=dict)
    settings: list[AmavisSetting] = field(default_factory=list)
    opaque: list[AmavisOpaque] = field(default_factory=list)
    recognised: int = 0
    banks: list[str] = field(default_factory=list)
    seq: int = 0
    path: str = ""

    # --- recording --------------------------------------------------------------------------
    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def record(
        self, var: str, value: PerlValue, line: int, st: str, *, key: str = "", bank: str = "", op: str = "="
    ) -> None:
        if var in KNOWN_AMAVIS or bank:
            self.recognised += 1
        if bank or var in _TRACKED:
            self.settings.append(
                AmavisSetting(
                    var, _short(value), Location(self.path, line), self._next(), key, bank, op, st[:200]
                )
            )

    def add_opaque(self, text: str, line: int, reason: str) -> None:
        self.opaque.append(AmavisOpaque(text[:200], Location(self.path, line), reason, self._next()))

    # --- statements --------------------------------------------------------------------------
    def run(self, statements: Sequence[Statement], path: str, condition: str = "") -> int:
        """Evaluate statements of one file; return how many simple statements were seen."""
        old = self.path
        self.path = path
        count = 0
        try:
            for st in statements:
                count += self._statement(st, condition)
        finally:
            self.path = old
        return count

    def _statement(self, st: Statement, condition: str) -> int:
        if st.is_block:
            if st.skipped:
                return 0
            cond = condition or st.condition
            return sum(self._statement(s, cond) for s in st.block)
        toks = st.tokens
        if not toks:
            return 0
        cond = condition
        # a statement modifier: "EXPR if COND"
        depth = 0
        for i, t in enumerate(toks):
            if t.type == "op" and t.value in ("(", "[", "{"):
                depth += 1
            elif t.type == "op" and t.value in (")", "]", "}"):
                depth -= 1
            elif depth == 0 and i > 0 and t.type == "ident" and t.value in _MODIFIERS:
                cond = cond or _join(toks[i:], 120)
                toks = toks[:i]
                break
        try:
            self._simple(toks, st.line, cond, st.text())
        except RecursionError:
            self._touches(toks, st.line, st.text(), "expression nested too deeply")
        return 1

    def _simple(self, toks: list[Token], line: int, cond: str, text: str) -> None:
        first = toks[0]
        if first.type == "ident" and first.value in ("use", "no", "package", "require", "return", "1"):
            if first.value == "require" and len(toks) > 1 and toks[1].type == "str":
                self._include([toks[1]], False, line, text, cond, "require")
            return
        if first.type == "ident" and first.value in ("my", "our", "local"):
            toks = toks[1:]
            if not toks:
                return
            first = toks[0]
        if first.type == "ident" and first.value == "chomp":
            inner = toks[1:]
            if inner and inner[0].value == "(" and inner[-1].value == ")":
                inner = inner[1:-1]
            if inner and inner[0].type == "ident" and inner[0].value in ("my", "our", "local"):
                inner = inner[1:]
            if inner:
                self._simple(inner, line, cond, text)
            return
        if first.type == "ident" and first.value in _INCLUDES:
            args = toks[1:]
            if args and args[0].value == "(" and args[-1].value == ")":
                args = args[1:-1]
            self._include(args, first.value.startswith("include_optional"), line, text, cond, first.value)
            return
        if first.type == "ident" and first.value == "do" and len(toks) > 1 and toks[1].value != "{":
            self._include(toks[1:], False, line, text, cond, "do")
            return
        if first.type == "ident" and first.value == "eval" and not (len(toks) > 1 and toks[1].value == "{"):
            self.add_opaque(text, line, "eval of a string: it may set anything")
            return
        if first.type == "ident" and first.value in ("push", "unshift"):
            self._push(first.value, toks[1:], line, cond, text)
            return
        # assignments: split on depth-0 assignment operators
        parts: list[list[Token]] = [[]]
        ops: list[str] = []
        depth = 0
        for t in toks:
            if t.type == "op" and t.value in ("(", "[", "{"):
                depth += 1
            elif t.type == "op" and t.value in (")", "]", "}"):
                depth -= 1
            if depth == 0 and t.type == "op" and t.value in _ASSIGN_OPS:
                ops.append(t.value)
                parts.append([])
                continue
            parts[-1].append(t)
        if not ops:
            self._touches(toks, line, text, "not an assignment the reader understands")
            return
        rhs_toks = parts[-1]
        targets = {_canon(p[0].value) for p in parts[:-1] if p and p[0].type == "var"}
        if targets and all(t[0] in "@%" and t not in _TRACKED for t in targets) and len(parts) == 2:
            # an untracked list or hash (@av_scanners, %banned_rules): its value is never read here
            value = unknown("not evaluated (no rule reads it)", text)
        else:
            value = self.expr(rhs_toks) if rhs_toks else unknown("empty right-hand side")
        for lhs, op in reversed(list(zip(parts[:-1], ops, strict=True))):
            value = self._assign(lhs, op, value, line, cond, text)

    def _include(self, args: list[Token], optional: bool, line: int, text: str, cond: str, how: str) -> None:
        v = self.expr(args) if args else unknown("no file named")
        items = v.items if v.kind == "list" else (v,)
        paths = [i.string for i in items if i.kind == "string" and i.string]
        if cond or not paths or len(paths) != len(items):
            self.add_opaque(
                text,
                line,
                f"{how}: the file to read is not a literal path" if not cond else f"{how} under {cond}",
            )
            return
        if not self.follow(Include(paths, optional, Location(self.path, line), text)):
            self.add_opaque(text, line, f"{how} {', '.join(paths)}: not read")

    def _push(self, fn: str, toks: list[Token], line: int, cond: str, text: str) -> None:
        if toks and toks[0].value == "(" and toks[-1].value == ")":
            toks = toks[1:-1]
        if not toks or toks[0].type != "var" or not toks[0].value.startswith("@"):
            self._touches(toks, line, text, f"{fn} on something other than a named array")
            return
        var = _canon(toks[0].value)
        rest = toks[1:]
        if rest and rest[0].value == ",":
            rest = rest[1:]
        add = self.expr(rest) if rest else PerlValue("list")
        add_items = add.items if add.kind == "list" else (add,)
        cur = self.env.get(var)
        if cond:
            new = unknown(f"{fn} under {cond}", text)
        elif cur is None:
            new = unknown(f"{fn} onto {var}, whose earlier value is amavis's built-in default", text)
        elif not cur.known or not add.known:
            new = unknown(cur.reason if not cur.known else add.reason, text)
        else:
            items = (*cur.items, *add_items) if fn == "push" else (*add_items, *cur.items)
            new = PerlValue("list", text=text[:200], items=items)
        self.env[var] = new
        self.record(var, new, line, text, op=fn)

    def _touches(self, toks: Sequence[Token], line: int, text: str, reason: str) -> None:
        """A statement the reader cannot evaluate: any tracked variable in it becomes unknown."""
        for t in toks:
            if t.type != "var":
                continue
            name = _canon(t.value)
            # "$x{...}" is an element of %x, "$x[...]" of @x
            for cand in (name, "%" + name[1:], "@" + name[1:]):
                if cand in _TRACKED:
                    self.env[cand] = unknown(reason, text)
                    self.record(cand, unknown(reason, text), line, text, op="?")
                    break

    # --- assignment targets ------------------------------------------------------------------
    def _assign(
        self, lhs: list[Token], op: str, value: PerlValue, line: int, cond: str, text: str
    ) -> PerlValue:
        if lhs and lhs[0].type == "ident" and lhs[0].value in ("my", "our", "local"):
            lhs = lhs[1:]
        if not lhs:
            return value
        if lhs[0].value == "(":
            self._touches(lhs, line, text, "list assignment")
            return unknown("list assignment", text)
        head = lhs[0]
        if head.type != "var":
            self._touches(lhs, line, text, "assignment to an expression")
            return unknown("assignment to an expression", text)
        name = _canon(head.value)
        subs = lhs[1:]
        if cond:
            value = unknown(f"assigned only {cond}", text)
        if not subs:
            if name.startswith("%") and value.kind == "list":
                value = PerlValue("hash", value.text, items=value.items)
            value = self._combine(name, op, value, text)
            self.env[name] = value
            self.record(name, value, line, text, op=op)
            return value
        keys = self._subscripts(subs)
        if keys is None:
            self._touches(lhs, line, text, "element assignment the reader cannot follow")
            return unknown("element assignment", text)
        kind, key_vals = keys
        if kind == "[":
            self._touches(lhs, line, text, "array element assignment")
            return unknown("array element assignment", text)
        hname = "%" + name[1:]
        k0 = key_vals[0]
        if hname == "%policy_bank" and k0 is not None:
            return self._bank_assign(k0, key_vals[1:], op, value, line, text)
        if k0 is None:
            if hname in _TRACKED:
                self._touches(lhs, line, text, "hash key not known")
            return unknown("hash key not known", text)
        if len(key_vals) == 1:
            cur = self._element(hname, k0)
            value = self._combine_values(cur, op, value, text)
            self._set_element(hname, k0, value)
            self.record(hname, value, line, text, key=k0, op=op)
            return value
        if hname in _TRACKED:
            self.record(hname, unknown("nested element assignment", text), line, text, key=k0, op="?")
        return unknown("nested element", text)

    def _bank_assign(
        self, bank: str, rest: list[str | None], op: str, value: PerlValue, line: int, text: str
    ) -> PerlValue:
        if bank not in self.banks:
            self.banks.append(bank)
        if not rest:
            if op != "=":
                value = unknown(f"{op} on a whole policy bank", text)
            if value.kind == "list":
                value = unknown("a policy bank must be a hash reference {...}", text)
            self.record("%policy_bank", value, line, text, key=bank, op=op)
            self.env.setdefault("%policy_bank", PerlValue("hash"))
            if value.kind == "hash":
                for k, v in value.pairs():
                    key = k.as_key()
                    var = BANK_KEYS.get(key or "")
                    if var is not None:
                        self.record(var, v, line, text, bank=bank)
            return value
        key = rest[0]
        if key is None or len(rest) > 1:
            self.add_opaque(text, line, f"policy bank {bank!r}: element the reader cannot follow")
            return unknown("policy bank element", text)
        var = BANK_KEYS.get(key)
        if var is not None:
            self.record(var, value, line, text, bank=bank, op=op)
        else:
            self.recognised += 1
        return value

    def _subscripts(self, subs: list[Token]) -> tuple[str, list[str | None]] | None:
        """Keys of ``{k}{k2}`` / ``->{k}`` / ``[i]`` subscripts; None when not subscripts."""
        keys: list[str | None] = []
        kind = ""
        i = 0
        while i < len(subs):
            t = subs[i]
            if t.type == "op" and t.value == "->":
                i += 1
                continue
            if t.type != "op" or t.value not in ("{", "["):
                return None
            close = "}" if t.value == "{" else "]"
            depth = 0
            j = i
            while j < len(subs):
                if subs[j].type == "op" and subs[j].value in ("{", "[", "("):
                    depth += 1
                elif subs[j].type == "op" and subs[j].value in ("}", "]", ")"):
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(subs) or subs[j].value != close:
                return None
            kind = kind or t.value
            keys.append(self._key(subs[i + 1 : j]) if t.value == "{" else None)
            i = j + 1
        return (kind, keys) if keys else None

    def _key(self, toks: list[Token]) -> str | None:
        if len(toks) == 1 and toks[0].type == "ident":
            return toks[0].value  # Perl quotes a lone bareword in {}: $h{CC_SPAM} is $h{'CC_SPAM'}
        v = self.expr(toks)
        return v.as_key()

    def _element(self, hname: str, key: str) -> PerlValue | None:
        h = self.env.get(hname)
        if h is None or h.kind != "hash":
            return None
        for k, v in reversed(h.pairs()):
            if k.as_key() == key:
                return v
        return None

    def _set_element(self, hname: str, key: str, value: PerlValue) -> None:
        h = self.env.get(hname)
        items = h.items if h is not None and h.kind == "hash" else ()
        self.env[hname] = PerlValue("hash", items=(*items[-2 * _MAX_ITEMS :], _str(key), value))

    def _combine(self, name: str, op: str, value: PerlValue, text: str) -> PerlValue:
        return self._combine_values(self.env.get(name), op, value, text)

    def _combine_values(self, cur: PerlValue | None, op: str, value: PerlValue, text: str) -> PerlValue:
        if op == "=":
            return value
        if cur is None:
            return unknown(f"{op} on a setting whose earlier value is amavis's built-in default", text)
        if not cur.known:
            return unknown(cur.reason, text)
        if op == "||=":
            return cur if cur.truthy() else value
        if op == "//=":
            return cur if cur.kind != "undef" else value
        if op == "&&=":
            return value if cur.truthy() else cur
        a, b = cur.numeric(), value.numeric()
        if op in ("+=", "-=", "*=") and a is not None and b is not None and value.known:
            return _num(a + b if op == "+=" else a - b if op == "-=" else a * b, text)
        if op == ".=" and cur.kind in ("string", "number") and value.kind in ("string", "number"):
            return _str(_scalar_str(cur) + _scalar_str(value), text)
        return unknown(f"operator {op}", text)

    # --- expressions -------------------------------------------------------------------------
    def expr(self, toks: Sequence[Token], depth: int = 0) -> PerlValue:
        """A comma-separated list (one value when there is no comma)."""
        if depth > _MAX_DEPTH:
            return unknown("expression nested too deeply")
        items: list[list[Token]] = [[]]
        quoted: list[bool] = [False]
        d = 0
        for t in toks:
            if t.type == "op" and t.value in ("(", "[", "{"):
                d += 1
            elif t.type == "op" and t.value in (")", "]", "}"):
                d -= 1
            if d == 0 and t.type == "op" and t.value in (",", "=>"):
                if t.value == "=>":
                    quoted[-1] = True
                items.append([])
                quoted.append(False)
                continue
            items[-1].append(t)
        if len(items) == 1:
            return self._scalar(items[0], depth)
        out: list[PerlValue] = []
        for part, q in zip(items, quoted, strict=True):
            if not part:
                continue
            if q and len(part) == 1 and part[0].type == "ident":
                out.append(_str(part[0].value, part[0].value))  # CC_SPAM => ... is the string 'CC_SPAM'
                continue
            if q and len(part) == 2 and part[0].value == "-" and part[1].type == "ident":
                out.append(_str("-" + part[1].value))
                continue
            v = self._scalar(part, depth)
            out.extend(v.items if v.kind == "list" and not _is_arrayref(v) else (v,))
        return PerlValue("list", text=_join(toks), items=tuple(out))

    def _scalar(self, toks: Sequence[Token], depth: int) -> PerlValue:
        text = _join(toks)
        if not toks:
            return PerlValue("list", text="()")
        if not _has_top_operator(toks):
            return self._term(list(toks), depth, text)
        # lowest precedence: "or"/"and", then ?:, then || // &&
        for ops in (("or", "xor"), ("and",)):
            i = _find_op(toks, ops, ident=True)
            if i is not None:
                return self._logical(toks[:i], toks[i].value, toks[i + 1 :], depth, text)
        if _find_op(toks, ("?",)) is not None:
            return unknown("conditional expression (?:)", text)
        for ops in (("||", "//"), ("&&",)):
            i = _find_op(toks, ops)
            if i is not None:
                return self._logical(toks[:i], toks[i].value, toks[i + 1 :], depth, text)
        i = _find_op(toks, ("==", "!=", "<=>", "<", ">", "<=", ">=", "=~", "!~", "..", "..."))
        if (
            i is not None
            or _find_op(toks, ("eq", "ne", "lt", "gt", "le", "ge", "not", "x"), ident=True) is not None
        ):
            return unknown("comparison or operator the reader does not evaluate", text)
        i = _find_op(toks, ("+", "-", "."), binary=True)
        if i is not None:
            return self._arith(toks[:i], toks[i].value, toks[i + 1 :], depth, text)
        i = _find_op(toks, ("*", "/", "%"), binary=True)
        if i is not None:
            return self._arith(toks[:i], toks[i].value, toks[i + 1 :], depth, text)
        return self._term(list(toks), depth, text)

    def _logical(
        self, left: Sequence[Token], op: str, right: Sequence[Token], depth: int, text: str
    ) -> PerlValue:
        a = self._scalar(left, depth + 1)
        if not a.known:
            return unknown(a.reason, text)
        t = a.truthy()
        if op in ("||", "or"):
            return (
                a
                if t
                else self._scalar(right, depth + 1)
                if t is False
                else unknown("|| on a non-scalar", text)
            )
        if op == "//":
            return a if a.kind != "undef" else self._scalar(right, depth + 1)
        if op in ("&&", "and"):
            return (
                self._scalar(right, depth + 1)
                if t
                else a
                if t is False
                else unknown("&& on a non-scalar", text)
            )
        return unknown(f"operator {op}", text)

    def _arith(
        self, left: Sequence[Token], op: str, right: Sequence[Token], depth: int, text: str
    ) -> PerlValue:
        a = self._scalar(left, depth + 1)
        b = self._scalar(right, depth + 1)
        if not a.known or not b.known:
            return unknown(a.reason or b.reason, text)
        if op == ".":
            if a.kind in ("string", "number", "undef") and b.kind in ("string", "number", "undef"):
                return _str(_scalar_str(a) + _scalar_str(b), text)
            return unknown("concatenation of non-scalars", text)
        x, y = a.numeric(), b.numeric()
        if x is None or y is None:
            return unknown(f"arithmetic on non-scalars ({op})", text)
        if op == "+":
            return _num(x + y, text)
        if op == "-":
            return _num(x - y, text)
        if op == "*":
            return _num(x * y, text)
        if y == 0:
            return unknown("division by zero", text)
        return _num(x / y if op == "/" else float(int(x) % int(y)), text)

    def _term(self, toks: list[Token], depth: int, text: str) -> PerlValue:
        t = toks[0]
        rest = toks[1:]
        if t.type == "op" and t.value in ("-", "+") and rest:
            v = self._term(rest, depth + 1, text)
            if v.kind == "number" and v.number is not None:
                return _num(
                    -v.number if t.value == "-" else v.number,
                    text,
                    ("-" if t.value == "-" else "") + v.name if v.name else "",
                )
            if t.value == "+":
                return v
            if v.kind == "string" and v.string is not None and re.fullmatch(r"[A-Za-z_]\w*", v.string):
                return _str("-" + v.string, text)
            return unknown("unary minus on a non-number", text)
        if t.type == "op" and t.value == "!" and rest:
            v = self._term(rest, depth + 1, text)
            tv = v.truthy()
            return (
                unknown("! of an unknown value", text)
                if tv is None
                else (_str("", text) if tv else _num(1, text))
            )
        if t.type == "op" and t.value == "\\" and rest:
            if len(rest) == 1 and rest[0].type == "var":
                return PerlValue("ref", text=text, name=_canon(rest[0].value))
            inner = self._term(rest, depth + 1, text)
            return PerlValue("ref", text=text, items=(inner,))
        if t.type == "op" and t.value == "(":
            close = _matching(toks, 0)
            inner = self.expr(toks[1:close], depth + 1)
            if close == len(toks) - 1:
                return inner if inner.kind == "list" else PerlValue("list", text=text, items=(inner,))
            return unknown("subscript or call on a list", text)
        if t.type == "op" and t.value == "[":
            close = _matching(toks, 0)
            if close != len(toks) - 1:
                return unknown("subscript on an array constructor", text)
            inner = self.expr(toks[1:close], depth + 1)
            items = inner.items if inner.kind == "list" else (inner,)
            return PerlValue("list", text=text, name="[]", items=items)
        if t.type == "op" and t.value == "{":
            close = _matching(toks, 0)
            if close != len(toks) - 1:
                return unknown("subscript on a hash constructor", text)
            inner = self.expr(toks[1:close], depth + 1)
            items = inner.items if inner.kind == "list" else (inner,)
            if not inner.known or any(not i.known for i in items):
                bad = next((i for i in items if not i.known), inner)
                return PerlValue("hash", text=text, items=items, reason=bad.reason)
            return PerlValue("hash", text=text, items=items)
        if len(toks) > 1 and not (
            t.type == "ident" or t.type == "var" or (t.type == "op" and t.value == "&")
        ):
            return unknown("expression the reader does not evaluate", text)
        if t.type == "num":
            if rest:
                return unknown("number followed by more tokens", text)
            return _num(_perl_number(t.value), text)
        if t.type == "str":
            if rest:
                return unknown("string followed by more tokens", text)
            return self._string(t, text)
        if t.type == "qw":
            return PerlValue("list", text=text, items=tuple(_str(w, w) for w in t.value.split()))
        if t.type == "regex":
            return PerlValue("regexp", text=text, string=t.value[:500])
        if t.type == "cmd":
            return unknown("output of a shell command", text)
        if t.type == "op" and t.value == "&" and rest and rest[0].type == "ident":
            return self._term(rest, depth + 1, text)
        if t.type == "ident":
            return self._ident(t, rest, depth, text)
        if t.type == "var":
            if rest:
                return unknown(f"{t.value} with a subscript or call", text)
            name = _canon(t.value)
            if name.startswith("&"):
                return unknown(f"call of {name}", text)
            cur = self.env.get(name)
            if cur is None:
                return unknown(f"{name} has no value set in the files read (amavis's built-in default)", text)
            if not cur.known:
                return unknown(cur.reason, text)
            return cur
        return unknown("expression the reader does not evaluate", text)

    def _ident(self, t: Token, rest: list[Token], depth: int, text: str) -> PerlValue:
        w = t.value.rsplit("::", 1)[-1] if "::" in t.value else t.value
        args: list[Token] | None = None
        if rest and rest[0].value == "(":
            close = _matching(rest, 0)
            if close != len(rest) - 1:
                return unknown("call followed by more tokens", text)
            args = rest[1:close]
        elif rest:
            if w == "sub" and rest[0].value == "{":
                return PerlValue("code", text=text)
            args = rest  # a list operator call: new_RE qr/x/
        if w in DESTINIES and not args:
            return _num(DESTINIES[w], text, w)
        if w in CCATS and not args:
            return _num(CCATS[w], text, w)
        if w == "undef" and not args:
            return PerlValue("undef", text=text)
        if w == "sub":
            return PerlValue("code", text=text)
        if w in ("lc", "uc") and args is not None:
            v = self.expr(args, depth + 1)
            if v.kind == "string" and v.string is not None:
                return _str(v.string.lower() if w == "lc" else v.string.upper(), text)
            return unknown(f"{w} of a non-string", text)
        if args is None:
            if w in ("__FILE__", "__LINE__"):
                return unknown(w, text)
            return _str(t.value, text)  # a bareword is a string under "no strict"
        inner = self.expr(args, depth + 1) if args else PerlValue("list")
        items = inner.items if inner.kind == "list" else (inner,)
        return PerlValue("call", text=text, name=w, items=items)

    def _string(self, t: Token, text: str) -> PerlValue:
        if not t.interpolate:
            return _str(t.value, text)
        missing: list[str] = []

        def sub(m: re.Match[str]) -> str:
            if m.group(0).startswith("\\"):
                ch = m.group(0)[1]
                return {"n": "\n", "t": "\t"}.get(ch, ch)
            name = m.group(1) or m.group(2)
            sigil = "$" if name else "@"
            name = name or m.group(3)
            v = self.env.get(sigil + name)
            if v is not None and v.kind in ("string", "number"):
                return _scalar_str(v)
            missing.append(sigil + name)
            return m.group(0)

        s = _INTERP_RE.sub(sub, t.value)
        if missing:
            return PerlValue(
                "string", text=text, string=s[:2000], reason=f"interpolates {', '.join(missing)}"
            )
        return _str(s, text)


def _scalar_str(v: PerlValue) -> str:
    if v.kind == "string":
        return v.string or ""
    if v.kind == "number":
        return v.as_key() or ""
    return ""


def _perl_number(text: str) -> float:
    s = text.replace("_", "")
    if s[:2].lower() == "0x":
        return float(int(s[2:] or "0", 16))
    if s[:2].lower() == "0b":
        return float(int(s[2:] or "0", 2))
    if len(s) > 1 and s[0] == "0" and s.isdigit():
        return float(int(s, 8))
    try:
        return float(s)
    except ValueError:
        return 0.0


def _matching(toks: Sequence[Token], i: int) -> int:
    depth = 0
    for j in range(i, len(toks)):
        v = toks[j].value if toks[j].type == "op" else ""
        if v in ("(", "[", "{"):
            depth += 1
        elif v in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def _is_arrayref(v: PerlValue) -> bool:
    return v.kind == "list" and v.name == "[]"


_OPERATOR_WORDS = frozenset({"or", "xor", "and", "eq", "ne", "lt", "gt", "le", "ge", "not", "x"})
_OPERATOR_OPS = frozenset(
    {
        "?",
        "||",
        "//",
        "&&",
        "==",
        "!=",
        "<=>",
        "<",
        ">",
        "<=",
        ">=",
        "=~",
        "!~",
        "..",
        "...",
        "+",
        "-",
        ".",
        "*",
        "/",
        "%",
    }
)


def _has_top_operator(toks: Sequence[Token]) -> bool:
    """Does a depth-0 operator occur after the first token (else the tokens are one term)?"""
    depth = 0
    for i, t in enumerate(toks):
        if t.type == "op":
            if t.value in ("(", "[", "{"):
                depth += 1
            elif t.value in (")", "]", "}"):
                depth -= 1
            elif depth == 0 and t.value in _OPERATOR_OPS and (i > 0 or t.value not in ("-", "+")):
                return True
        elif depth == 0 and t.type == "ident" and t.value in _OPERATOR_WORDS:
            return True
    return False


def _find_op(
    toks: Sequence[Token], ops: Sequence[str], *, ident: bool = False, binary: bool = False
) -> int | None:
    """Index of the last depth-0 occurrence of one of ``ops`` (left associativity), else None."""
    depth = 0
    found: int | None = None
    for i, t in enumerate(toks):
        if t.type == "op" and t.value in ("(", "[", "{"):
            depth += 1
        elif t.type == "op" and t.value in (")", "]", "}"):
            depth -= 1
        elif depth == 0 and t.value in ops and (t.type == "ident" if ident else t.type == "op"):
            if binary:
                # a binary operator follows an operand: "-2" at the start or after an operator is unary
                if i == 0:
                    continue
                p = toks[i - 1]
                if p.type == "op" and p.value not in (")", "]", "}"):
                    continue
            found = i
    return found
