"""amavisd-new rules: CF-AMAVIS-001 (destinies), CF-AMAVIS-002 (DSN cut-offs), CF-QUAR-001 (sender notices).

They read the amavis observation and, when the same run has one, the Postfix configuration, to
know where amavis sits: after the queue (``content_filter`` in main.cf or ``-o content_filter=``
on a listener that takes Internet mail), before it (``smtpd_proxy_filter``, an amavis milter), or
not on the Internet path at all. Mail from the Internet gets amavis's global settings overlaid by
the policy bank of the port it arrives on (``$interface_policy{PORT}``); that view is judged, and
the banks that apply to other traffic (MYNETS, ORIGINATING, other ports) are named, not judged.

Facts from amavisd-new 2.13 (Amavis/Conf.pm, Amavis.pm, Amavis/Notify.pm, RELEASE_NOTES):
D_TEMPFAIL=-4, D_REJECT=-3, D_BOUNCE=-2, D_DISCARD=0, D_PASS=1; an undefined destiny passes, any
other value blocks with a 554; ``$warnvirussender``/``$warnspamsender`` were retired in 2.7.0 (their
value is ignored); ``$final_banned_destiny``/``$final_bad_header_destiny`` = D_DISCARD plus
``$warnbannedsender``/``$warnbadhsender`` is turned into D_BOUNCE at start-up; before 2.7.0 spam
and banned mail defaulted to D_BOUNCE; the spam DSN cut-off only suppresses amavis's own DSNs.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

from auditor.model import Evidence, Finding, FixCommand, Location, Remediation, Severity
from auditor.observations.amavis import (
    CCATS,
    DESTINIES,
    DESTINY_NAMES,
    AmavisConfig,
    AmavisSetting,
    PerlValue,
    Resolved,
)
from auditor.observations.postfix import PostfixConfig, split_list
from auditor.rules.base import Observations, Rule, rule
from auditor.rules.postfix_common import Role, evidence, read, scopes, service_label

_REF_CONF = "amavisd-new amavisd.conf-sample / amavisd.conf-default (final_*_destiny, D_REJECT vs D_BOUNCE)"
_REF_NOTES = "amavisd-new RELEASE_NOTES 2.7.0 (defaults, retired $warnvirussender/$warnspamsender)"
_REF_FILTER = "https://www.postfix.org/FILTER_README.html"
D_BOUNCE, D_REJECT, D_TEMPFAIL = DESTINIES["D_BOUNCE"], DESTINIES["D_REJECT"], DESTINIES["D_TEMPFAIL"]
D_DISCARD, D_PASS = DESTINIES["D_DISCARD"], DESTINIES["D_PASS"]
_CATCHALL_RE = {".*", ".", "^", ".+", "", "^.*$", "(?:)"}


# --- where amavis sits ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """One Internet-facing Postfix path and how it hands mail to amavis."""

    where: str  # "after" | "before" | "none" | "unknown"
    how: str
    port: str  # the amavis port (or "SOCK" for an amavis milter); "" when none
    target: str
    evidence: tuple[Evidence, ...] = ()


def amavis_ports(cfg: AmavisConfig) -> list[str]:
    """The TCP ports amavis listens on ($inet_socket_port), [] when not set or not known."""
    v = cfg.lookup("$inet_socket_port").value
    if v is None or not v.known:
        return []
    vals = v.items if v.kind == "list" else (v,)
    return [k for k in (x.as_key() for x in vals) if k]


def _port_of(spec: str) -> str:
    m = re.search(r":(\d+)\s*$", spec)
    return m.group(1) if m else ""


def placements(obs: Observations, cfg: AmavisConfig) -> list[Placement] | None:
    """How each Internet-facing Postfix path reaches amavis; None when the run has no Postfix config."""
    pfs = obs.of(PostfixConfig)
    if not pfs:
        return None
    ports = amavis_ports(cfg) or ["10024"]
    out: list[Placement] = []
    names = ("content_filter", "smtpd_proxy_filter", "smtpd_milters")
    for pf in pfs:
        for sc in scopes(pf, names):
            if sc.role is not Role.MX:
                continue
            vals = read(pf, sc.service, names)
            ev = tuple(evidence(pf, p) for p in vals.params.values() if p.value.strip() or p.explicit)
            if sc.service is not None and sc.service.location is not None:
                ev += (Evidence(f"master.cf service {service_label(sc.service)}", sc.service.location),)
            if vals.undecidable is not None:
                p = vals.undecidable
                out.append(Placement("unknown", f"{p.name} is templated ({p.raw})", "", sc.target, ev))
                continue
            proxy = vals["smtpd_proxy_filter"].strip()
            milters = split_list(vals["smtpd_milters"])
            cf = vals["content_filter"].strip()
            transport = cf.partition(":")[0]
            if proxy and _port_of(proxy) in ports:
                out.append(
                    Placement("before", f"smtpd_proxy_filter = {proxy}", _port_of(proxy), sc.target, ev)
                )
            elif any("amavis" in m.lower() for m in milters):
                m = next(m for m in milters if "amavis" in m.lower())
                out.append(Placement("before", f"smtpd_milters = {m}", "SOCK", sc.target, ev))
            elif any(_port_of(m) in ports for m in milters if m.startswith("inet:")):
                m = next(m for m in milters if m.startswith("inet:") and _port_of(m) in ports)
                out.append(Placement("before", f"smtpd_milters = {m}", _port_of(m), sc.target, ev))
            if cf and (_port_of(cf) in ports or "amavis" in transport.lower()):
                out.append(
                    Placement("after", f"content_filter = {cf}", _port_of(cf) or ports[0], sc.target, ev)
                )
            if not any(p.target == sc.target for p in out):
                out.append(
                    Placement(
                        "none", "no content_filter, smtpd_proxy_filter or milter to amavis", "", sc.target, ev
                    )
                )
    return out


# --- which settings Internet mail gets -------------------------------------------------------------


@dataclass
class View:
    """The settings one inbound path gets: the global ones overlaid by ``bank`` ("" = none)."""

    bank: str
    port: str
    placement: list[Placement]
    why: str
    target: str
    notes: list[str] = field(default_factory=list)


def _bank_for_port(cfg: AmavisConfig, port: str) -> tuple[str, AmavisSetting | None]:
    r = cfg.lookup("%interface_policy", key=port)
    s = r.setting
    if s is None:
        return "", None
    v = _hash_entry(s, port) if s.key == "" else s.value
    if v is None:
        return "", s
    return (v.string or "") if v.kind == "string" else "?", s


def _hash_entry(s: AmavisSetting, key: str) -> PerlValue | None:
    if s.value.kind not in ("hash", "list"):
        return None
    for k, v in reversed(s.value.pairs()):
        if k.as_key() == key:
            return v
    return None


def views(obs: Observations, cfg: AmavisConfig) -> tuple[list[View], list[Placement] | None]:
    places = placements(obs, cfg)
    ports = amavis_ports(cfg)
    if places is None:
        port = ports[0] if ports else ""
        bank, s = _bank_for_port(cfg, port) if port else ("", None)
        why = (
            "no Postfix configuration in this run: mail from the Internet is assumed to arrive on "
            f"amavis's first "
            f"port ({port or 'none set'})"
        )
        v = View(bank, port, [], why, _target(cfg, bank, port))
        if s is not None and bank == "?":
            v.notes.append(f"{s.location}: $interface_policy{{'{port}'}} is not a literal bank name")
        return [v], None
    inbound = [p for p in places if p.where in ("after", "before")]
    out: dict[str, View] = {}
    for p in inbound:
        bank, s = _bank_for_port(cfg, p.port)
        key = f"{bank}|{p.port}"
        if key not in out:
            on = "its AM.PDP socket" if p.port == "SOCK" else "port " + p.port
            why = f"mail from the Internet reaches amavis on {on}"
            if bank:
                why += f", where $interface_policy{{'{p.port}'}} loads policy bank {bank!r}"
            out[key] = View(bank, p.port, [], why, _target(cfg, bank, p.port))
        out[key].placement.append(p)
    if not out:
        port = ports[0] if ports else ""
        bank, _ = _bank_for_port(cfg, port) if port else ("", None)
        unknown = [p for p in places if p.where == "unknown"]
        why = (
            "the Postfix configuration's Internet path to amavis depends on a template placeholder"
            if unknown
            else "the Postfix configuration in this run hands no Internet mail to amavis"
        )
        out["none"] = View(
            bank, port, unknown or [p for p in places if p.where == "none"], why, _target(cfg, bank, port)
        )
    return list(out.values()), places


def _target(cfg: AmavisConfig, bank: str, port: str) -> str:
    if bank and bank != "?":
        return f"{cfg.target} policy bank {bank}"
    return cfg.target


def other_banks(cfg: AmavisConfig, judged: set[str], places: list[Placement] | None) -> list[str]:
    """Why each policy bank that is not judged does not apply to Internet mail (or that we cannot tell)."""
    inbound_ports = {p.port for p in places or [] if p.where in ("after", "before")}
    port_of_bank: dict[str, list[str]] = {}
    for s in cfg.settings:
        if s.variable == "%interface_policy" and s.key and s.value.kind == "string" and s.value.string:
            port_of_bank.setdefault(s.value.string, []).append(s.key)
    out: list[str] = []
    for name in cfg.bank_names():
        if name in judged:
            continue
        reset = cfg.bank_reset(name)
        originating = reset is not None and any(
            k.as_key() == "originating" and v.truthy() for k, v in reset.value.pairs()
        )
        protocol = next(
            (
                v.string
                for k, v in (reset.value.pairs() if reset is not None else [])
                if k.as_key() == "protocol"
            ),
            None,
        )
        ports = port_of_bank.get(name, [])
        if name == "MYNETS":
            why = "loaded for clients in @mynetworks (your own hosts), not for Internet mail"
        elif protocol == "AM.PDP" and not set(ports) & inbound_ports:
            why = "an AM.PDP socket (amavisd-release, amavisd-milter)"
        elif ports and places is not None and not set(ports) & inbound_ports:
            why = (
                f"used on port {', '.join(ports)}, which the Postfix configuration does not use for "
                "Internet mail"
            )
        elif ports and places is None:
            why = (
                f"used on port {', '.join(ports)}: could not attribute without the Postfix configuration "
                "(--postfix-dir)"
            )
        elif originating:
            why = "marks mail from your own users (originating)"
        else:
            why = "could not attribute: no $interface_policy entry the reader saw loads it"
        bad = [
            f"{s.variable[1:]} = {s.value.show()} ({s.location})"
            for s in cfg.settings
            if s.bank == name and s.variable.startswith("$final_") and _destiny(s.value)[0] in (D_BOUNCE,)
        ]
        out.append(f"policy bank {name!r}: {why}" + (f"; it sets {', '.join(bad)}" if bad else ""))
    return out


# --- destinies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Category:
    label: str
    variable: str
    ccat: str
    severity: Severity
    warn: str = ""  # the live $warn*sender of this category


CATEGORIES: tuple[Category, ...] = (
    Category("spam", "$final_spam_destiny", "CC_SPAM", Severity.HIGH),
    Category("virus", "$final_virus_destiny", "CC_VIRUS", Severity.HIGH),
    Category("banned", "$final_banned_destiny", "CC_BANNED", Severity.MEDIUM, "$warnbannedsender"),
    Category("bad-header", "$final_bad_header_destiny", "CC_BADH", Severity.MEDIUM, "$warnbadhsender"),
    Category("unchecked", "$final_unchecked_destiny", "CC_UNCHECKED", Severity.MEDIUM),
)
# Built-in defaults of amavisd-new 2.7.0 and later; None where they changed in 2.7.0 (spam, banned).
_DEFAULTS = {"virus": D_DISCARD, "bad-header": D_PASS, "unchecked": D_PASS, "spam": None, "banned": None}


@dataclass
class Destiny:
    values: set[int]  # possible destinies (one unless per-recipient lookup tables)
    shown: str
    location: Location | None
    unknown: str = ""  # why it cannot be known ("" = known)
    notes: list[str] = field(default_factory=list)
    setting: AmavisSetting | None = None
    source: str = ""  # the variable (or hash entry) the value came from


def _destiny(v: PerlValue) -> tuple[int | None, str]:
    """The destiny a scalar value means to amavis, and a note when Perl reads it surprisingly."""
    if v.kind == "undef":
        return D_PASS, "undef: amavis passes the mail"
    if v.kind == "number" and v.number is not None:
        n = v.number
        if n in DESTINY_NAMES:
            return int(n), ""
        return (
            D_REJECT,
            f"{n:g} is not a D_* constant (D_BOUNCE is -2): amavis blocks the mail with a 554, like D_REJECT",
        )
    if v.kind == "string":
        sn = v.numeric()
        if sn is not None and sn in DESTINY_NAMES:
            n = sn
            note = (
                f"the quoted string {v.string!r} is not the constant: Perl reads it as {n:g} "
                f"({DESTINY_NAMES[int(n)]})"
                if n == 0 and (v.string or "").strip() not in ("0", "")
                else ""
            )
            return int(n), note
        if sn is not None:
            n = sn
            return D_REJECT, f"{v.string!r} is {n:g}, not a D_* constant: amavis blocks the mail with a 554"
    return None, ""


def _collect_destinies(v: PerlValue, out: set[int], depth: int = 0) -> bool:
    """Destinies a by-recipient lookup list can return; False when some entry cannot be read."""
    if depth > 8:
        return False
    if v.kind in ("number", "undef", "string"):
        d, _ = _destiny(v)
        if d is None:
            return False
        out.add(d)
        return True
    if v.kind == "list":
        return all(_collect_destinies(i, out, depth + 1) for i in v.items)
    if v.kind == "hash":
        return all(_collect_destinies(val, out, depth + 1) for _k, val in v.pairs())
    return False


def _from_value(v: PerlValue, s: AmavisSetting, source: str) -> Destiny:
    if not v.known:
        return Destiny(
            set(),
            v.text or "?",
            s.location,
            f"{s.location}: {source} cannot be evaluated ({v.reason})",
            setting=s,
        )
    d, note = _destiny(v)
    if d is not None:
        return Destiny({d}, v.show(), s.location, notes=[note] if note else [], setting=s, source=source)
    if v.kind in ("list", "hash"):
        found: set[int] = set()
        if _collect_destinies(v, found) and found:
            shown = "per recipient: " + ", ".join(DESTINY_NAMES.get(x, str(x)) for x in sorted(found))
            return Destiny(found, shown, s.location, setting=s, source=source)
    return Destiny(
        set(),
        v.show(),
        s.location,
        f"{s.location}: {source} = {v.show()} is a lookup the reader does not evaluate",
        setting=s,
    )


def _opaque_note(r: Resolved) -> str:
    o = r.after[0]
    return f"{o.location}: {o.reason} — it may change this setting"


def destiny(cfg: AmavisConfig, cat: Category, bank: str) -> Destiny:
    ccat = str(CCATS[cat.ccat])
    notes: list[str] = []
    for s in cfg.settings:
        if s.variable == "%final_destiny_maps_by_ccat" and s.key in CCATS:
            notes.append(
                f"{s.location}: key {s.key!r} is the string, not the constant {s.key}() "
                "(Perl quotes a bareword in "
                "{} and before =>): amavis never uses this entry"
            )
    r = cfg.lookup("%final_destiny_maps_by_ccat", key=ccat, bank=bank)
    if r.setting is not None:
        s = r.setting
        entry = s.value if s.key else (_hash_entry(s, ccat) or _hash_entry(s, "0"))
        if not s.value.known:
            return Destiny(
                set(),
                "?",
                s.location,
                f"{s.location}: %final_destiny_maps_by_ccat cannot be evaluated ({s.value.reason})",
                notes,
            )
        if entry is None:
            d = Destiny({D_PASS}, "no entry (amavis passes)", s.location, notes=notes, setting=s)
            d.notes.append(
                f"{s.location}: %final_destiny_maps_by_ccat has no {cat.ccat} or CC_CATCHALL entry"
            )
            return d
        if entry.kind != "code" or cat.variable[1:] not in entry.text:
            d = _from_value(entry, s, f"%final_destiny_maps_by_ccat {{{cat.ccat}}}")
            d.notes = notes + d.notes
            if r.after:
                d.unknown = d.unknown or _opaque_note(r)
            return d
    r = cfg.lookup(cat.variable, bank=bank)
    if r.setting is None:
        dflt = _DEFAULTS[cat.label]
        if r.after:
            return Destiny(set(), "not set", None, _opaque_note(r), notes)
        if dflt is None:
            return Destiny(
                set(),
                "not set",
                None,
                f"{cat.variable} is not set in the files read: amavis's built-in default is "
                f"{'D_PASS' if cat.label == 'spam' else 'D_DISCARD'} since amavisd-new 2.7.0 "
                "but was D_BOUNCE "
                "before; set it explicitly",
                notes,
            )
        d = Destiny(
            {dflt}, f"{DESTINY_NAMES[dflt]} (built-in default)", None, notes=notes, source=cat.variable
        )
    else:
        d = _from_value(r.setting.value, r.setting, cat.variable)
        d.notes = notes + d.notes
        if r.after and not d.unknown:
            d.unknown = _opaque_note(r)
    # Amavis::Conf::supply_after_defaults: global D_DISCARD + $warn*sender becomes D_BOUNCE
    if cat.warn and d.values == {D_DISCARD} and not (r.setting is not None and r.from_bank):
        w = cfg.lookup(cat.warn).value
        if w is not None and w.truthy():
            ws = cfg.lookup(cat.warn).setting
            d.values = {D_BOUNCE}
            d.shown = f"D_BOUNCE (D_DISCARD + {cat.warn} = {w.show()} at {ws.location if ws else '?'})"
            d.notes.append(f"amavis turns {cat.variable} = D_DISCARD into D_BOUNCE when {cat.warn} is true")
    return d


# --- fixes -----------------------------------------------------------------------------------------


def _last_file(cfg: AmavisConfig) -> str:
    read = cfg.files_read()
    return read[-1].path if read else cfg.target


def _append(cfg: AmavisConfig, perl: str, changes: str) -> FixCommand:
    f = _last_file(cfg)
    return FixCommand(
        line=f"printf '%s\\n' {shlex.quote(perl)} >> {shlex.quote(f)}",
        changes=f"{f} {changes}",
        directory=f.rsplit("/", 1)[0] if "/" in f else "",
    )


def _set_line(cat_var: str, value: str, bank: str, source: str) -> str:
    if source.startswith("%final_destiny_maps_by_ccat"):
        m = re.search(r"\{(CC_\w+)\}", source)
        cc = m.group(1) if m else "CC_SPAM"
        if bank:
            return f'$policy_bank{{"{bank}"}}{{final_destiny_maps_by_ccat}}{{+{cc}}} = {value};'
        return f"$final_destiny_maps_by_ccat{{+{cc}}} = {value};"
    if bank:
        return f'$policy_bank{{"{bank}"}}{{{cat_var[1:]}}} = {value};'
    return f"{cat_var} = {value};"


# --- CF-AMAVIS-001 ---------------------------------------------------------------------------------


def _position(view: View, places: list[Placement] | None) -> str:
    if places is None:
        return "unknown"
    wh = {p.where for p in view.placement}
    if "after" in wh:
        return "after"
    if "before" in wh:
        return "before"
    return "unknown-templated" if "unknown" in wh else "none"


@rule(
    "CF-AMAVIS-001",
    title="amavis bounces or rejects after the queue",
    family="content-filter",
    cause="in-session-filtering",
    controls=("RFC5321-6.1",),
    severity=Severity.HIGH,
    needs=(AmavisConfig,),
    remediation=(
        "After the queue, discard and quarantine instead of bouncing: $final_spam_destiny, "
        "$final_virus_destiny, $final_banned_destiny and $final_bad_header_destiny = D_DISCARD (or D_PASS "
        "with tagging for spam), also in the policy bank that Internet mail gets. If amavis must "
        "refuse mail, "
        "run it before the queue (smtpd_proxy_filter or amavisd-milter) and use D_REJECT, which is then an "
        "in-session 5xx."
    ),
    references=(_REF_CONF, _REF_NOTES, _REF_FILTER),
)
def amavis_destinies(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    The destiny amavis gives spam, viruses, banned attachments, bad headers and unchecked mail that
    arrives from the Internet: the last assignment of `$final_*_destiny` across every file in load
    order, overridden by `%final_destiny_maps_by_ccat` and by the policy bank of the port the mail
    arrives on. `D_BOUNCE` fails wherever amavis sits. `D_REJECT` (and `D_TEMPFAIL`, or a number
    that is no D_* constant) fails after the queue, passes before it, and is `inconclusive` when the
    run has no Postfix configuration to tell (`lint amavis PATH --postfix-dir DIR`). A value the
    reader cannot evaluate, a setting left to the version-dependent built-in default, or an include
    it could not read makes the finding `inconclusive`, naming file and line. Policy banks for other
    traffic (MYNETS, ORIGINATING, other ports) are listed in the note, not judged.

    ## Why it causes backscatter
    With `D_BOUNCE` amavis mails a DSN to the envelope sender itself; after the queue a `D_REJECT`
    is a 554 to Postfix's smtp client, and Postfix bounces the message to the envelope sender. For
    spam and viruses that sender is forged. Only before the queue does a reject reach the real
    SMTP client.

    ## Example
    ```
    # main.cf: content_filter = smtp-amavis:[127.0.0.1]:10024
    # /etc/amavis/conf.d/50-user
    $final_spam_destiny = D_BOUNCE;
    ```
    """
    for cfg in obs.of(AmavisConfig):
        vs, places = views(obs, cfg)
        judged = {v.bank for v in vs if v.bank}
        others = other_banks(cfg, judged, places)
        for view in vs:
            yield _judge_destinies(r, cfg, view, places, others)


def _judge_destinies(
    r: Rule, cfg: AmavisConfig, view: View, places: list[Placement] | None, others: list[str]
) -> Finding:
    pos = _position(view, places)
    where = {
        "after": "after the queue (" + "; ".join(dict.fromkeys(p.how for p in view.placement)) + ")",
        "before": "before the queue (" + "; ".join(dict.fromkeys(p.how for p in view.placement)) + ")",
        "none": "not on the Internet path of the Postfix configuration given",
        "unknown-templated": "at a position that depends on a Postfix template placeholder",
        "unknown": "at an unknown position (no Postfix configuration in this run)",
    }[pos]
    fails: list[tuple[Category, Destiny, str]] = []
    unsure: list[tuple[Category, Destiny, str]] = []
    fine: list[str] = []
    notes: list[str] = [view.why, *view.notes]
    ev: list[Evidence] = []
    for cat in CATEGORIES:
        d = destiny(cfg, cat, view.bank)
        notes += d.notes
        if d.location is not None:
            ev.append(Evidence(f"{d.source or cat.variable} = {d.shown}", d.location))
        if d.unknown:
            unsure.append((cat, d, d.unknown))
            continue
        bad_bounce = D_BOUNCE in d.values
        rejecting = d.values & {D_REJECT, D_TEMPFAIL}
        if bad_bounce:
            fails.append(
                (cat, d, f"{cat.label} {d.shown}: amavis mails a DSN to the (forged) envelope sender")
            )
        elif rejecting and pos == "after":
            fails.append(
                (cat, d, f"{cat.label} {d.shown}: after the queue Postfix turns amavis's 5xx into a bounce")
            )
        elif rejecting and pos == "before":
            fine.append(f"{cat.label} {d.shown} (an in-session reject)")
        elif rejecting:
            hint = (
                "give the Postfix configuration with --postfix-dir to tell"
                if pos == "unknown"
                else "a reject after the queue becomes a bounce, before it an in-session 5xx"
            )
            unsure.append((cat, d, f"{cat.label} {d.shown}: {hint}"))
        else:
            fine.append(f"{cat.label} {d.shown}")
    if pos == "none":
        notes.append(
            "if another path (transport_maps, another MTA) feeds amavis, these destinies apply to it"
        )
    notes += others
    note = "; ".join(dict.fromkeys(n for n in notes if n))
    if fails:
        sev = max((c.severity for c, _, _ in fails), key=lambda s: s.rank)
        value = "D_REJECT" if pos == "before" else "D_DISCARD"
        cmds = tuple(
            _append(
                cfg,
                _set_line(
                    c.variable, value, view.bank if d.setting is not None and d.setting.bank else "", d.source
                ),
                c.variable,
            )
            for c, d, _ in fails
        )
        text = (
            f"Set {', '.join(c.variable for c, _, _ in fails)} to {value}"
            + (
                " (amavis is before the queue: a reject is an in-session 5xx)"
                if pos == "before"
                else " and keep the quarantine"
            )
            + f"; the lines go at the end of {_last_file(cfg)}, the last file amavis reads, "
            "or edit the assignment in place."
        )
        msg = f"amavis sits {where}: " + "; ".join(m for _, _, m in fails)
        if unsure:
            msg += "; also undecided: " + "; ".join(m for _, _, m in unsure)
        return r.fail(view.target, msg, ev, severity=sev, remediation=Remediation(text, cmds), note=note)
    if unsure:
        sev = max((c.severity for c, _, _ in unsure), key=lambda s: s.rank)
        msg = f"amavis sits {where}: " + "; ".join(m for _, _, m in unsure)
        if fine:
            msg += "; " + ", ".join(fine)
        return r.inconclusive(view.target, msg, ev, severity=sev, note=note)
    return r.passed(
        view.target, f"amavis sits {where}: " + ", ".join(fine) + ": nothing is bounced", ev, note=note
    )


# --- CF-AMAVIS-002 ---------------------------------------------------------------------------------


def _maps_only_ref(cfg: AmavisConfig, var: str, scalar: str, bank: str) -> tuple[bool, Resolved]:
    """Is @var still the stock (\\$scalar) (or unset)?"""
    r = cfg.lookup(var, bank=bank)
    v = r.value
    if v is None:
        return True, r
    items = v.items if v.kind == "list" else (v,)
    return (v.known and len(items) == 1 and items[0].kind == "ref" and items[0].name == scalar), r


def _vtfs_catchall(cfg: AmavisConfig, v: PerlValue, depth: int = 0) -> tuple[bool | None, list[str]]:
    """Does this @viruses_that_fake_sender_maps answer true for any virus name? And the named exceptions."""
    if depth > 6 or not v.known:
        return None, []
    items = v.items if v.kind == "list" and v.name != "[]" else (v,)
    exceptions: list[str] = []
    for it in items:
        if it.kind in ("number", "string", "undef"):
            t = it.truthy()
            if t:
                return True, exceptions
            continue
        if it.kind == "ref" and it.name:
            ref = cfg.lookup(it.name).value
            if ref is None:
                continue  # an undefined $viruses_that_fake_sender_re matches nothing
            res, exc = _vtfs_catchall(cfg, ref, depth + 1)
            exceptions += exc
            if res is None or res:
                return res, exceptions
            continue
        if it.kind == "call" and it.name == "new_RE":
            for entry in it.items:
                if entry.kind == "regexp":
                    pat, val = entry.string or "", PerlValue("number", number=1)
                elif (
                    entry.kind == "list"
                    and entry.name == "[]"
                    and entry.items
                    and entry.items[0].kind == "regexp"
                ):
                    pat = entry.items[0].string or ""
                    val = entry.items[1] if len(entry.items) > 1 else PerlValue("number", number=1)
                else:
                    return None, exceptions
                t = val.truthy()
                if t is None:
                    return None, exceptions
                if pat.strip() in _CATCHALL_RE:
                    if t:
                        return True, exceptions
                    return False, exceptions
                if not t:
                    exceptions.append(pat)
            continue
        if it.kind == "hash":
            continue  # exact virus names only
        return None, exceptions
    return False, exceptions


@rule(
    "CF-AMAVIS-002",
    title="sender warnings and DSN cut-offs",
    family="content-filter",
    cause="in-session-filtering",
    controls=("OPERATOR-NO-BACKSCATTER",),
    severity=Severity.HIGH,
    needs=(AmavisConfig,),
    remediation=(
        "Where spam keeps D_BOUNCE, set $sa_dsn_cutoff_level at or below the kill level "
        "($sa_kill_level_deflt), or better make spam D_DISCARD; where viruses keep D_BOUNCE, keep "
        "@viruses_that_fake_sender_maps answering true for every virus name (the stock setting); turn off "
        "$warnbannedsender and $warnbadhsender, and delete the retired $warnvirussender and $warnspamsender."
    ),
    references=(_REF_CONF, _REF_NOTES, "amavisd-new README.policy-on-notifications"),
)
def amavis_dsn_cutoffs(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    For the settings Internet mail gets (global settings plus the policy bank of its port):
    spam that amavis bounces (`D_BOUNCE`) while `$sa_dsn_cutoff_level` is undefined or above the
    kill level, so DSNs go out for spam scoring between the two; viruses that amavis bounces while
    `@viruses_that_fake_sender_maps` does not answer true for every virus name (emptied, or only
    specific names); `$warnbannedsender` / `$warnbadhsender` set (sender warnings; the notice itself
    is judged by CF-QUAR-001). `$warnvirussender` and `$warnspamsender` were retired in amavisd-new
    2.7.0 and are ignored: setting them is reported in the note, not as a failure. Per-recipient
    cut-off maps or values the reader cannot evaluate make the finding `inconclusive`.

    ## Why it causes backscatter
    The cut-off and the virus list are amavis's only brakes on its own DSNs: below the cut-off, or
    for a virus not listed as faking its sender, a `D_BOUNCE` becomes a notification to the envelope
    sender, who for spam and viruses is forged. The stock virus list excludes the EICAR test
    signature, so an EICAR probe can be bounced while real viruses are not.

    ## Example
    ```
    $final_spam_destiny  = D_BOUNCE;
    $sa_kill_level_deflt = 6.31;
    $sa_dsn_cutoff_level = 10;     # spam scoring 6.31 to 10 is bounced
    @viruses_that_fake_sender_maps = ();
    ```
    """
    for cfg in obs.of(AmavisConfig):
        vs, _places = views(obs, cfg)
        for view in vs:
            yield _judge_cutoffs(r, cfg, view)


def _judge_cutoffs(r: Rule, cfg: AmavisConfig, view: View) -> Finding:
    bank = view.bank
    fails: list[str] = []
    unsure: list[str] = []
    fine: list[str] = []
    notes: list[str] = []
    ev: list[Evidence] = []

    def ev_of(res: Resolved, label: str) -> None:
        if res.setting is not None:
            ev.append(Evidence(f"{label} = {res.setting.value.show()}", res.setting.location))

    spam = destiny(cfg, CATEGORIES[0], bank)
    if spam.unknown:
        unsure.append(f"spam destiny unknown ({spam.unknown})")
    elif D_BOUNCE in spam.values:
        cut = cfg.lookup("$sa_dsn_cutoff_level", bank=bank)
        kill = cfg.lookup("$sa_kill_level_deflt", bank=bank)
        ev_of(cut, "$sa_dsn_cutoff_level")
        ev_of(kill, "$sa_kill_level_deflt")
        stock_cut, rc = _maps_only_ref(cfg, "@spam_dsn_cutoff_level_maps", "$sa_dsn_cutoff_level", bank)
        stock_kill, rk = _maps_only_ref(cfg, "@spam_kill_level_maps", "$sa_kill_level_deflt", bank)
        cv = cut.value
        cnum = None if cv is None or cv.kind == "undef" else cv.numeric()
        kv = kill.value
        knum = None if kv is None or kv.kind == "undef" else kv.numeric()
        if not stock_cut or not stock_kill:
            s = (rc if not stock_cut else rk).setting
            unsure.append(
                f"per-recipient spam levels ({s.location if s else '?'}): the cut-off cannot be compared"
            )
        elif (
            (cv is not None and not cv.known)
            or (kv is not None and not kv.known)
            or (cut.after or kill.after)
        ):
            unsure.append("the spam cut-off or kill level cannot be evaluated")
        elif cnum is None:
            fails.append(
                f"spam is bounced ({spam.shown}) and $sa_dsn_cutoff_level is undefined: every spam gets a DSN"
            )
        elif knum is None:
            unsure.append(
                "$sa_kill_level_deflt is not set: the cut-off cannot be compared with the kill level"
            )
        elif cnum > knum:
            fails.append(
                f"spam is bounced ({spam.shown}) and $sa_dsn_cutoff_level = {cnum:g} is above the kill level "
                f"{knum:g}: spam scoring {knum:g} to {cnum:g} gets a DSN"
            )
        else:
            fine.append(f"$sa_dsn_cutoff_level = {cnum:g} at or below the kill level {knum:g}")
            cred = cfg.lookup("$sa_crediblefrom_dsn_cutoff_level", bank=bank).value
            cr_n = None if cred is None or cred.kind == "undef" else cred.numeric()
            if cr_n is None or cr_n > knum:
                notes.append(
                    "senders amavis deems credible (DKIM, whitelists) use $sa_crediblefrom_dsn_cutoff_level"
                    + (" (not set: no cut-off)" if cr_n is None else f" = {cr_n:g}")
                )
    else:
        fine.append(f"spam is not bounced by amavis ({spam.shown}): the DSN cut-off does not apply")
    virus = destiny(cfg, CATEGORIES[1], bank)
    vres = cfg.lookup("@viruses_that_fake_sender_maps", bank=bank)
    ev_of(vres, "@viruses_that_fake_sender_maps")
    vv = vres.value
    catch: bool | None = True
    exc: list[str] = []
    if vv is not None:
        catch, exc = _vtfs_catchall(cfg, vv)
    if virus.unknown:
        unsure.append(f"virus destiny unknown ({virus.unknown})")
    elif D_BOUNCE in virus.values:
        if vres.after or catch is None:
            unsure.append("@viruses_that_fake_sender_maps cannot be evaluated")
        elif not catch:
            fails.append(
                f"viruses are bounced ({virus.shown}) and @viruses_that_fake_sender_maps does not match "
                "every virus "
                "name: viruses it does not list get a DSN"
            )
        else:
            fine.append("@viruses_that_fake_sender_maps treats every virus as sender-faking (no virus DSN)")
            if exc:
                notes.append(
                    f"except {', '.join(exc)}: an EICAR test is bounced while real viruses are not "
                    "(CF-PROBE-002)"
                )
    else:
        fine.append(f"viruses are not bounced by amavis ({virus.shown})")
        if catch is False and vv is not None:
            notes.append(
                "@viruses_that_fake_sender_maps does not match every virus: it matters if viruses are "
                "ever bounced"
            )
    for var in ("$warnbannedsender", "$warnbadhsender"):
        w = cfg.lookup(var, bank=bank)
        if w.value is not None and w.value.truthy():
            ev_of(w, var)
            fails.append(f"{var} = {w.value.show()}: the sender is warned (see CF-QUAR-001)")
        elif w.value is not None and w.value.truthy() is None:
            unsure.append(f"{var} cannot be evaluated")
    for var in ("$warnvirussender", "$warnspamsender"):
        w = cfg.lookup(var, bank=bank)
        if w.value is not None and w.value.truthy() and w.setting is not None:
            ev_of(w, var)
            notes.append(
                f"{w.setting.location}: {var} is retired since amavisd-new 2.7.0 and ignored "
                "(amavis only logs a "
                "warning); on an older amavis it would notify senders: delete it"
            )
    note = "; ".join(dict.fromkeys(notes))
    if fails:
        return r.fail(view.target, "; ".join(fails + [f"undecided: {u}" for u in unsure]), ev, note=note)
    if unsure:
        return r.inconclusive(view.target, "; ".join(unsure + fine), ev, note=note)
    return r.passed(view.target, "; ".join(fine), ev, note=note)


# --- CF-QUAR-001 -----------------------------------------------------------------------------------


@rule(
    "CF-QUAR-001",
    title="quarantine notices / digests to senders",
    family="content-filter",
    cause="in-session-filtering",
    controls=("OPERATOR-NO-BACKSCATTER",),
    severity=Severity.HIGH,
    needs=(AmavisConfig,),
    remediation=(
        "Notify recipients or admins only: set $warnbannedsender and $warnbadhsender to 0 (globally and in "
        "the policy bank Internet mail gets) and leave %warnsender_by_ccat at its default."
    ),
    references=(_REF_CONF, "RFC 3834 §3.2.1", "RFC 5321 §6.2"),
)
def amavis_sender_notices(obs: Observations, r: Rule) -> Iterator[Finding]:
    """## What it flags
    amavis settings that mail a notice about banned or bad-header content to the envelope sender
    of Internet mail: `$warnbannedsender` or `$warnbadhsender` true (global or in the policy bank
    of the port Internet mail arrives on), or a changed `%warnsender_by_ccat`. With the destiny
    `D_DISCARD` (mail quarantined) amavis turns the warning into a bounce; with `D_PASS` the sender
    is warned while the mail is delivered. Values the reader cannot evaluate are `inconclusive`.

    ## Why it causes backscatter
    The sender of mail with banned attachments or broken headers is, for spam and malware,
    forged: each notice lands on an innocent third party, just like a bounce.

    ## Example
    ```
    $final_banned_destiny = D_DISCARD;   # quarantined ...
    $warnbannedsender = 1;               # ... and the "sender" is told
    ```
    """
    for cfg in obs.of(AmavisConfig):
        vs, _places = views(obs, cfg)
        for view in vs:
            fails: list[str] = []
            unsure: list[str] = []
            ev: list[Evidence] = []
            for cat in CATEGORIES:
                if not cat.warn:
                    continue
                w = cfg.lookup(cat.warn, bank=view.bank)
                if w.setting is not None:
                    ev.append(Evidence(f"{cat.warn} = {w.setting.value.show()}", w.setting.location))
                t = w.value.truthy() if w.value is not None else False
                if w.after:
                    unsure.append(f"{cat.warn}: {_opaque_note(w)}")
                elif t is None:
                    unsure.append(f"{cat.warn} cannot be evaluated ({w.value.reason if w.value else ''})")
                elif t:
                    d = destiny(cfg, cat, view.bank)
                    how = (
                        "quarantined mail is bounced to its sender"
                        if D_BOUNCE in d.values and "D_DISCARD +" in d.shown
                        else "the sender gets a notice"
                    )
                    fails.append(
                        f"{cat.warn} = {w.value.show() if w.value else '?'}: {cat.label} mail — {how}"
                    )
            wsb = cfg.lookup("%warnsender_by_ccat", bank=view.bank)
            if wsb.setting is not None:
                ev.append(Evidence(f"%warnsender_by_ccat = {wsb.setting.value.show()}", wsb.setting.location))
                vals = (
                    [v for _k, v in wsb.setting.value.pairs()] if not wsb.setting.key else [wsb.setting.value]
                )
                if any(v.kind == "code" or v.truthy() is None for v in vals):
                    unsure.append("%warnsender_by_ccat is changed and cannot be evaluated")
                elif any(v.truthy() for v in vals):
                    fails.append("%warnsender_by_ccat turns sender warnings on")
            if fails:
                yield r.fail(view.target, "; ".join(fails), ev, note=view.why)
            elif unsure:
                yield r.inconclusive(view.target, "; ".join(unsure), ev, note=view.why)
            else:
                yield r.passed(
                    view.target,
                    "no sender warnings: $warnbannedsender and $warnbadhsender are off "
                    "(the virus and spam ones "
                    "were retired in amavisd-new 2.7.0)",
                    ev,
                    note=view.why,
                )


__all__ = ["Placement", "amavis_ports", "placements", "views"]
