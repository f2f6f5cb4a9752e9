"""The probe engine: plan sessions per MX address from DNS, run them politely, collect the answers.

Politeness and safety (DESIGN.md "Live probing"): only the domains given and the MX hosts DNS
gives for them; external MX hosts only with consent; one session per host at a time; a delay
between sessions to the same host; a session never carries more than
``max_rejections_per_session`` (9) refused commands, because Postfix slows down after its
``smtpd_soft_error_limit`` (10); a 421 stops the host, with one retry after a back-off; everything
bounded by per-stage and whole-audit timeouts. Many domains share one MAIL transaction (fewer
transactions = no Postfix ``in_flow_delay``), and a session carries as many transactions, RSET
between them, as its error budget and its junk-command budget (RSET, EHLO) allow: fewer sessions.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import secrets
import string
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from auditor.collect.dns import normalize_domain
from auditor.collect.smtp import identity as identity_check
from auditor.collect.smtp import vantage
from auditor.collect.smtp.client import ProbeError, SmtpClient
from auditor.collect.smtp.scenarios import Scenario
from auditor.model import InputError
from auditor.observations.dns import FAILED as DNS_FAILED
from auditor.observations.dns import DnsMx
from auditor.observations.smtp import (
    Expect,
    Identity,
    Outcome,
    ProbeResult,
    ProbeSettings,
    RcptOutcome,
    Reason,
    Reply,
    Role,
    TlsInfo,
)

_ALNUM = string.ascii_lowercase + string.digits
Progress = Callable[[str], None]


def random_local_part(prefix: str, length: int = 20) -> str:
    """Recognisable prefix + lowercase letters/digits (rules.md §11.2: 16–24 chars, no + - . _)."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(max(length - len(prefix), 8)))


Stop = tuple[Reason | None, str]  # why a session ended: (None, "") when it ended as planned


@dataclass
class Item:
    """One RCPT to ask: in a null-sender transaction of its own, or in the shared transaction."""

    domain: str
    role: Role
    recipient: str
    scenario: str
    null_sender: bool = False
    expect: Expect = Expect.REFUSE  # what a safe site answers (the scenario's ``expect``; controls: 2xx)
    feeds: tuple[str, ...] = ()

    @property
    def expect_accept(self) -> bool:
        return self.expect is Expect.ACCEPT

    @property
    def key(self) -> tuple[str, str]:
        return (self.role, self.recipient)

    def blank(self) -> RcptOutcome:
        return RcptOutcome(self.role, self.recipient, self.scenario, expect=self.expect, feeds=self.feeds)


@dataclass
class Acc:
    """What one (domain, address) gathered so far (mutable while the sessions run)."""

    domain: str
    host: str
    address: str
    port: int
    preference: int
    primary: bool
    outcomes: dict[tuple[str, str], RcptOutcome] = field(default_factory=dict)
    banner: Reply | None = None
    ehlo: Reply | None = None
    extensions: tuple[str, ...] = ()
    tls: TlsInfo = field(default_factory=TlsInfo)
    transcript: list[str] = field(default_factory=list)
    sessions: int = 0
    reconnects: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    failure: Reason | None = None
    failure_detail: str = ""
    failure_in_retry: bool = False
    source: str = ""
    identity: Identity = field(default_factory=Identity)
    null_tested: bool = False

    def fail(self, reason: Reason, detail: str, retry: bool) -> None:
        """Keep the first failure (of the first pass: a retry failure never hides a first-pass one)."""
        if self.failure is None:
            self.failure, self.failure_detail, self.failure_in_retry = reason, detail, retry

    def result(self) -> ProbeResult:
        return ProbeResult(
            target=f"{self.domain} {self.host}[{self.address}]"
            if self.address
            else f"{self.domain} {self.host}",
            domain=self.domain,
            mx_host=self.host,
            address=self.address,
            port=self.port,
            preference=self.preference,
            primary=self.primary,
            failure=self.failure,
            detail=self.failure_detail,
            failure_in_retry=self.failure_in_retry,
            source_address=self.source,
            identity=self.identity,
            banner=self.banner,
            ehlo=self.ehlo,
            extensions=self.extensions,
            tls=self.tls,
            outcomes=tuple(self.outcomes.values()),
            null_sender_tested=self.null_tested,
            sessions=self.sessions,
            reconnects=self.reconnects,
            timings=dict(self.timings),
            transcript=tuple(self.transcript),
        )


@dataclass
class Target:
    """One MX address and the domains it serves in this run."""

    host: str
    address: str
    port: int
    accs: dict[str, Acc] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.host}[{self.address}]:{self.port}"


@dataclass
class Plan:
    targets: list[Target]
    skipped: list[Acc]  # (domain, host) pairs not probed: external, no address


def make_plan(
    mx: Sequence[DnsMx], settings: ProbeSettings, scenarios: Sequence[Scenario], domains: Sequence[str]
) -> Plan:
    """Targets (one per MX address) with the RCPT items of every domain they serve."""
    settings = identity_check.resolve(settings)
    scope = [normalize_domain(d) for d in domains]
    check_settings(settings)
    controls: dict[str, list[str]] = {}
    for c in settings.controls:
        # A control is only ever sent to its own domain's MX: one outside the scope is never used
        # (the CLI refuses it up front; the audit may pass directory addresses of other domains).
        controls.setdefault(c.rpartition("@")[2].lower(), []).append(c)
    relay = (
        normalize_domain(settings.relay_test_domain, "--relay-test-domain")
        if settings.relay_test_domain
        else ""
    )
    if relay and relay in scope:
        raise InputError("--relay-test-domain must be a domain this site does NOT serve (and that you own)")
    active = [s for s in scenarios if _enabled(s, settings)]
    targets: dict[str, Target] = {}
    skipped: list[Acc] = []
    for rec in mx:
        if rec.target not in scope or rec.null_mx or rec.non_mail:
            continue
        best = min((h.preference for h in rec.hosts), default=0)
        rand, label = random_local_part(settings.random_prefix), random_local_part(settings.random_prefix, 14)
        values = {"domain": rec.target, "random": rand, "label": label, "relay_domain": relay}
        for h in rec.hosts:
            primary = h.preference == best
            if h.external and not settings.allow_external_mx:
                acc = Acc(rec.target, h.name, "", settings.port, h.preference, primary)
                acc.fail(
                    Reason.EXTERNAL,
                    f"{h.name} is outside the domains in scope; use --allow-external-mx",
                    False,
                )
                skipped.append(acc)
                continue
            if not h.addresses:
                # A lookup that failed (timeout, SERVFAIL) hides an MX we could not measure: that is
                # inconclusive. Only a host that really has no address is "not probed".
                lookup_failed = h.status in DNS_FAILED
                acc = Acc(rec.target, h.name, "", settings.port, h.preference, primary)
                acc.fail(
                    Reason.TIMEOUT if lookup_failed else Reason.NO_ADDRESS,
                    h.detail or ("address lookup failed" if lookup_failed else "no A/AAAA record"),
                    False,
                )
                skipped.append(acc)
                continue
            for addr in h.addresses:
                t = targets.setdefault(addr, Target(h.name, addr, settings.port))
                if rec.target in t.accs:
                    continue
                t.accs[rec.target] = Acc(rec.target, h.name, addr, settings.port, h.preference, primary)
                t.items.extend(_items(rec.target, active, values, controls.get(rec.target, []), t, settings))
    for t in targets.values():
        t.items.sort(key=_item_rank)  # stable: domains keep their order within each rank
    return Plan(list(targets.values()), skipped)


# Postfix's cleanup(8) takes one in_flow_delay token per transaction that gets an accepted recipient
# (smtpd opens the queue file then); a quiet server refills them only on the queue manager's scan,
# so past ~100 such transactions each one waits 1 s. Hence the order: every recipient expected to be
# accepted (controls, postmaster@ of all domains) goes into the first shared transaction, where it
# costs no error budget; the ones a safe site refuses follow, and the later sessions' transactions
# then hold no accepted recipient at all on a validating server.
def _item_rank(it: Item) -> int:
    if it.null_sender:
        return 0
    return 1 if it.expect_accept else 2


def check_settings(settings: ProbeSettings) -> None:
    """Everything from the user that ends up in an SMTP command, checked before any network use.

    An empty EHLO name or sender is not the user's: it becomes this machine's FQDN at run time.
    """
    if settings.ehlo:
        check_smtp_token(settings.ehlo, "EHLO name (--ehlo)")
    if settings.mail_from:
        check_address(settings.mail_from, "probe sender (--mail-from)")
    for c in settings.controls:
        check_address(c, "--control")
    if settings.relay_test_domain:
        normalize_domain(settings.relay_test_domain, "--relay-test-domain")
    if not 0 < settings.port < 65536:
        raise InputError(f"--port {settings.port}: must be 1-65535")


def check_smtp_token(value: str, what: str) -> None:
    """Text that goes into an SMTP command line: printable ASCII, no spaces or angle brackets."""
    if not value or any(not (33 <= ord(ch) <= 126) or ch in "<>" for ch in value):
        raise InputError(f"{what} {value!r}: must be printable ASCII without spaces or <>")


def check_address(value: str, what: str) -> None:
    check_smtp_token(value, what)
    local, at, domain = value.rpartition("@")
    if not at or not local:
        raise InputError(f"{what} {value!r}: not a mail address")
    normalize_domain(domain, f"{what} domain")


def _enabled(s: Scenario, settings: ProbeSettings) -> bool:
    if s.enabled == "subdomain_probe":
        return settings.subdomain_probe
    if s.enabled == "relay_test_domain":
        return bool(settings.relay_test_domain)
    return True


# --control addresses judge nothing themselves; every rule that needs an accepted address reads them.
CONTROL_FEEDS: tuple[str, ...] = ()


def _items(
    domain: str,
    active: Sequence[Scenario],
    values: dict[str, str],
    controls: Sequence[str],
    t: Target,
    settings: ProbeSettings,
) -> list[Item]:
    out: list[Item] = []
    nulls_here = sum(1 for i in t.items if i.null_sender)
    for s in active:
        if s.null_sender and nulls_here < settings.null_sender_per_address:
            out.append(Item(domain, s.role, s.recipient_for(**values), s.name, True, s.expect, s.feeds))
            t.accs[domain].null_tested = True
    out.extend(
        Item(domain, Role.CONTROL, c, "control", expect=Expect.ACCEPT, feeds=CONTROL_FEEDS) for c in controls
    )
    out.extend(
        Item(domain, s.role, s.recipient_for(**values), s.name, expect=s.expect, feeds=s.feeds)
        for s in active
        if not s.null_sender
    )
    return out


def describe(plan: Plan, settings: ProbeSettings) -> list[str]:
    """Human-readable list of the sessions a run would open (``--dry-run``)."""
    settings = identity_check.resolve(settings)
    lines: list[str] = [f"identity: EHLO {settings.ehlo}, MAIL FROM:<{settings.mail_from}>"]
    for t in plan.targets:
        nulls = [i for i in t.items if i.null_sender]
        rcpts = [i for i in t.items if not i.null_sender]
        lines.append(
            f"{t.label}: {len(t.accs)} domain(s), {len(nulls)} null-sender transaction(s), "
            f"{len(rcpts)} RCPT(s) in shared MAIL FROM:<{settings.mail_from}> transactions "
            f"(at most {settings.max_rcpts_per_transaction} per transaction; a new session before the "
            f"{settings.max_rejections_per_session + 1}th refused command)"
        )
        for i in t.items:
            sender = "<>" if i.null_sender else f"<{settings.mail_from}>"
            lines.append(f"    {i.domain}: MAIL FROM:{sender} RCPT TO:<{i.recipient}>  ({i.scenario})")
    for a in plan.skipped:
        lines.append(f"not probed: {a.domain} via {a.host} ({a.failure}: {a.failure_detail})")
    if not plan.targets:
        lines.append("no MX address to probe")
    return lines


def after220_deferral(reply: Reply) -> bool:
    """postscreen's answer to a client that just passed its after-220 tests: come back (reconnect).

    postscreen cannot hand a live connection to smtpd, so it defers every RCPT of that first session
    with this reply; the next connection goes straight through (postscreen(8) "after 220 greeting").
    """
    return reply.code == 450 and "service currently unavailable" in reply.text.lower()


class Engine:
    """Runs a plan: first pass, then (with ``retry_after``) the greylisting retry of 4xx answers."""

    def __init__(self, settings: ProbeSettings, progress: Progress | None = None) -> None:
        self.s = identity_check.resolve(settings)
        self.progress = progress or (lambda _m: None)
        self._host_locks: dict[str, asyncio.Semaphore] = {}
        self._last_session: dict[str, float] = {}
        self._trusted = vantage.parse_networks(settings.trusted_networks)
        self._retry_pending: dict[str, list[Item]] = {}
        self._identity: dict[str, Identity] = {}  # per source address
        self._scope: set[str] = set()

    async def run(self, plan: Plan) -> list[ProbeResult]:
        pending: dict[str, list[Item]] = {t.address: list(t.items) for t in plan.targets}
        self._scope = {d for t in plan.targets for d in t.accs}
        try:
            async with asyncio.timeout(self.s.audit_timeout):
                await self._pass(plan.targets, pending, retry=False)
                await self._retry_pass(plan.targets)
        except TimeoutError:
            self.progress(f"probe: audit time bound of {self.s.audit_timeout:g} s reached")
            for t in plan.targets:
                for it in pending.get(t.address, []):
                    self._error(t, it, Reason.AUDIT_TIMEOUT, "not asked before the audit's time bound", False)
                for it in self._retry_pending.get(t.address, []):
                    self._error(
                        t, it, Reason.AUDIT_TIMEOUT, "not asked again before the audit's time bound", True
                    )
                for acc in t.accs.values():
                    acc.fail(Reason.AUDIT_TIMEOUT, "the audit's time bound was reached", False)
        results = [a.result() for t in plan.targets for a in t.accs.values()]
        results.extend(a.result() for a in plan.skipped)
        return results

    async def _pass(self, targets: Sequence[Target], pending: dict[str, list[Item]], retry: bool) -> None:
        gate = asyncio.Semaphore(max(1, self.s.concurrency))

        async def one(t: Target) -> None:
            lock = self._host_locks.setdefault(t.host, asyncio.Semaphore(max(1, self.s.per_host_concurrency)))
            async with gate, lock:
                await self._run_target(t, pending[t.address], retry)

        await asyncio.gather(*(one(t) for t in targets if pending.get(t.address)))

    async def _retry_pass(self, targets: Sequence[Target]) -> None:
        """Ask every 4xx'd recipient (and its domain's controls) again, same sender, same client."""
        if self.s.retry_after <= 0:
            return
        pending: dict[str, list[Item]] = {}
        for t in targets:
            domains = {
                a.domain
                for a in t.accs.values()
                for o in a.outcomes.values()
                if o.reply is not None and o.reply.klass == 4 and o.reply.code != 421
            }
            items = [i for i in t.items if i.domain in domains and self._answered(t, i)]
            if items:
                pending[t.address] = items
        if not pending:
            return
        self._retry_pending = pending
        self.progress(f"probe: waiting {self.s.retry_after:g} s to retry 4xx answers (greylisting check)")
        await asyncio.sleep(self.s.retry_after)
        await self._pass([t for t in targets if t.address in pending], pending, retry=True)

    def _answered(self, t: Target, it: Item) -> bool:
        o = t.accs[it.domain].outcomes.get(it.key)
        return o is not None and o.reply is not None

    async def _identity_for(self, source: str) -> Identity:
        """The sender/EHLO DNS check, once per source address; its warnings go to the progress line."""
        known = self._identity.get(source)
        if known is not None:
            return known
        ident = await asyncio.to_thread(identity_check.check, self.s, source, self._scope)
        self._identity[source] = ident
        for w in ident.warnings:
            self.progress(f"probe: warning: {w}")
        return ident

    async def _run_target(self, t: Target, items: list[Item], retry: bool) -> None:
        # pyroute2's synchronous API runs its own event loop: keep it off ours.
        source = await asyncio.to_thread(vantage.source_address, t.address, t.port, self.s.source_address)
        net = vantage.trusted(source, self._trusted)
        ident = await self._identity_for(source) if self.s.check_identity else Identity()
        for acc in t.accs.values():
            acc.source = source
            acc.identity = ident
        if net is not None:
            for acc in t.accs.values():
                acc.fail(
                    Reason.TRUSTED, f"our source address {source} is inside the trusted network {net}", retry
                )
            items.clear()
            return
        if items:  # progress: which MX, which stage (the audit shows it as its live line on a terminal)
            stage = "retrying 4xx answers" if retry else "probing"
            self.progress(f"probe: {stage} {t.label}: {len({it.domain for it in items})} domain(s)")
        backed_off = reconnected = False
        reason: Reason | None = None
        detail = ""
        for _ in range(len(items) + 3):  # every normal session consumes at least one item
            if not items:
                return
            await self._polite_wait(t.host)
            before = list(items)
            reason, detail = await self._session(t, items, retry)
            self._last_session[t.host] = time.monotonic()
            if not reconnected and self._after220(t, before, items, retry):
                # postscreen's after-220 tests passed: it defers this session, the next goes through.
                reconnected = True
                self.progress(f"probe: {t.label} deferred us after its 220 tests; reconnecting once")
                await asyncio.sleep(self.s.reconnect_pause)
                continue
            if reason is Reason.R421 and not backed_off:
                backed_off = True
                self.progress(f"probe: {t.label} answered 421; backing off {self.s.backoff_421:g} s")
                await asyncio.sleep(self.s.backoff_421)
                continue
            if reason is not None:
                break
            if len(items) == len(before):
                reason, detail = Reason.ERROR_BUDGET, "no progress within one session"
                break
        else:
            reason, detail = Reason.ERROR_BUDGET, "session limit reached"
        for it in list(items):
            self._error(t, it, reason, detail, retry)
        items.clear()

    def _after220(self, t: Target, before: list[Item], items: list[Item], retry: bool) -> bool:
        """Every RCPT answered in the session was postscreen's deferral: forget them, ask again."""
        asked = [it for it in before if it not in items]
        answers = [self._last_reply(t, it, retry) for it in asked]
        if not asked or not all(r is not None and after220_deferral(r) for r in answers):
            return False
        for it in asked:
            acc = t.accs[it.domain]
            old = acc.outcomes[it.key]
            acc.outcomes[it.key] = (
                dataclasses.replace(
                    old, retried=False, retry_outcome=Outcome.NOT_ASKED, retry=None, retry_mail_reply=None
                )
                if retry
                else it.blank()
            )
            acc.reconnects += 1
            acc.transcript.append("*: deferred by an after-220 test (postscreen): reconnecting once")
        rank = {id(it): i for i, it in enumerate(before)}
        items[:] = sorted([*items, *asked], key=lambda it: rank[id(it)])
        return True

    def _last_reply(self, t: Target, it: Item, retry: bool) -> Reply | None:
        o = t.accs[it.domain].outcomes.get(it.key)
        if o is None:
            return None
        return o.retry if retry else o.reply

    async def _polite_wait(self, host: str) -> None:
        last = self._last_session.get(host)
        if last is not None:
            wait = last + self.s.session_delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    def _error(self, t: Target, it: Item, reason: Reason, detail: str, retry: bool) -> None:
        acc = t.accs[it.domain]
        old = acc.outcomes.get(it.key) or it.blank()
        if retry:
            acc.outcomes[it.key] = dataclasses.replace(
                old, retried=True, retry_error=old.retry_error or reason
            )
        else:
            acc.outcomes[it.key] = dataclasses.replace(old, error=old.error or reason)
        acc.fail(reason, detail, retry)

    def _record(
        self, t: Target, it: Item, reply: Reply, mail: Reply | None, elapsed: float, retry: bool
    ) -> None:
        acc = t.accs[it.domain]
        old = acc.outcomes.get(it.key)
        if retry:
            old = old or it.blank()
            acc.outcomes[it.key] = dataclasses.replace(
                old, retried=True, retry_outcome=Outcome.ANSWERED, retry=reply, retry_mail_reply=mail
            )
        elif old is None:  # the usual case: the constructor is cheaper than replace()
            acc.outcomes[it.key] = RcptOutcome(
                it.role,
                it.recipient,
                it.scenario,
                expect=it.expect,
                feeds=it.feeds,
                outcome=Outcome.ANSWERED,
                reply=reply,
                elapsed=round(elapsed, 3),
                mail_reply=mail,
            )
        else:
            acc.outcomes[it.key] = dataclasses.replace(
                old, outcome=Outcome.ANSWERED, reply=reply, mail_reply=mail, elapsed=round(elapsed, 3)
            )

    def _record_mail_refused(self, t: Target, it: Item, mail: Reply, retry: bool) -> None:
        acc = t.accs[it.domain]
        old = acc.outcomes.get(it.key) or it.blank()
        if retry:
            acc.outcomes[it.key] = dataclasses.replace(
                old,
                retried=True,
                retry_outcome=Outcome.MAIL_REFUSED,
                retry_error=Reason.MAIL_REJECTED,
                retry_mail_reply=mail,
            )
        else:
            acc.outcomes[it.key] = dataclasses.replace(
                old, outcome=Outcome.MAIL_REFUSED, error=Reason.MAIL_REJECTED, mail_reply=mail
            )

    async def _session(self, t: Target, items: list[Item], retry: bool) -> Stop:
        """One SMTP session; answered items are removed from ``items``."""
        c = SmtpClient(
            timeout=self.s.timeout, max_lines=self.s.max_reply_lines, max_line_length=self.s.max_line_length
        )
        if retry:
            c.note(f"retry after {self.s.retry_after:g} s (same client, sender and recipients)")
        at_start = {i.domain for i in items}
        touched: set[str] = set()
        t0 = time.monotonic()
        reason: Reason | None = None
        detail = ""
        try:
            reason, detail = await self._converse(c, t, items, retry, touched)
        except ProbeError as exc:
            reason, detail = exc.reason, exc.detail
            c.note(f"session ended: {exc}")
        except Exception as exc:  # a server must never crash the audit: record it, move on
            reason, detail = Reason.PROTOCOL, f"unexpected {type(exc).__name__}: {exc}"[:300]
            c.note(f"session ended: {detail}")
        finally:
            if reason is not None and reason is not Reason.R421:
                c.abort()
            else:
                await c.quit()  # a no-op when the last group already carried QUIT
        elapsed = time.monotonic() - t0
        share = touched | (at_start if reason is not None else set())
        views = _domain_views(c.lines, share)
        for d in share:
            acc = t.accs[d]
            acc.sessions += 1
            acc.timings.setdefault("first_session_s", round(elapsed, 3))
            acc.transcript.append(f"*: session {acc.sessions} to {t.label}")
            acc.transcript.extend(views[d])
            if reason is not None and not retry:
                acc.fail(reason, detail, retry)
        return reason, detail

    async def _converse(
        self, c: SmtpClient, t: Target, items: list[Item], retry: bool, touched: set[str]
    ) -> Stop:
        s = self.s
        t0 = time.monotonic()
        banner = await c.connect(t.address, t.port, s.source_address)
        banner_s = time.monotonic() - t0
        fresh = [a for a in t.accs.values() if a.banner is None]
        for a in fresh:
            a.banner = banner
            a.timings["banner_s"] = round(banner_s, 3)
        if banner.code != 220:
            reason = (
                Reason.BANNER_554
                if banner.code == 554
                else Reason.R421
                if banner.code == 421
                else Reason.BANNER
            )
            return reason, f"greeting {banner}"
        # Never pipeline before EHLO, and never speak before the last line of the greeting.
        ehlo = await c.ehlo(s.ehlo)
        stop = _greeting_stop(ehlo, "EHLO")
        if stop is not None:
            for a in fresh:
                a.ehlo = ehlo
            return stop
        tls = TlsInfo(offered="STARTTLS" in c.extensions)
        if tls.offered:
            reply, tls = await c.starttls()  # a failed handshake raises ProbeError(Reason.TLS)
            if reply.code == 421:
                return Reason.R421, f"STARTTLS answered {reply}"
            if tls.ok:
                ehlo = await c.ehlo(s.ehlo)
                stop = _greeting_stop(ehlo, "EHLO after STARTTLS")
                if stop is not None:
                    return stop
        for a in fresh:
            a.ehlo, a.extensions, a.tls = ehlo, tuple(sorted(c.extensions)), tls
        tally = _Tally(s.max_rejections_per_session, junk=_greetings_sent(c))
        session = _Session(self, c, t, items, tally, retry, touched, "PIPELINING" in c.extensions)
        return await session.run()


def _greeting_stop(reply: Reply, what: str) -> Stop | None:
    """EHLO/HELO needs a 250: a 421 stops the host, a 5xx is a refusal, anything else a desync."""
    if reply.code == 250:
        return None
    if reply.code == 421:
        return Reason.R421, f"{what} answered {reply}"
    if reply.klass in (4, 5):
        return Reason.EHLO_REFUSED, f"{what}/HELO refused: {reply}"
    return Reason.PROTOCOL, f"{what} answered {reply}: not a greeting reply (replies out of step?)"


def _lockstep_stop(line: str, reply: Reply) -> bool:
    """In lock-step, stop the group after a 421 or a refused MAIL (its RCPTs would only get 503s)."""
    return reply.code == 421 or (line.startswith("MAIL") and reply.klass != 2)


@dataclass
class _Session:
    """The transactions of one session, in one code path; PIPELINING only changes how a group is sent.

    A group is a list of commands that the server's error budget affords even if every one of them
    is refused: (RSET,) MAIL and RCPTs. With PIPELINING (RFC 2920) a group goes out at once; in
    lock-step one command at a time, and the group ends early after a refused MAIL or a 421.
    """

    engine: Engine
    c: SmtpClient
    t: Target
    items: list[Item]
    tally: _Tally
    retry: bool
    touched: set[str]
    pipelining: bool

    async def run(self) -> Stop:
        tally = self.tally
        # Null-sender transactions: one RCPT each (Postfix reject_multi_recipient_bounce).
        for it in [i for i in self.items if i.null_sender]:
            if not tally.affords(rcpts=1):
                break
            self.c.tag = it.domain
            stop = await self._transaction("MAIL FROM:<>", [it], null=True)
            if stop is not None:
                return stop
        # Shared transactions, as many per session as the budgets allow, RSET between them.
        # RFC 5321 §4.5.3.1.8: servers must take at least 100 recipients per transaction.
        mail_line = f"MAIL FROM:<{self.engine.s.mail_from}>"
        while tally.affords(rcpts=1):
            shared = [i for i in self.items if not i.null_sender][: self.engine.s.max_rcpts_per_transaction]
            if not shared:
                break
            self.c.tag = None
            before = tally.transactions
            stop = await self._transaction(mail_line, shared, null=False)
            if stop is not None:
                return stop
            if tally.transactions == before:  # nothing could be sent: never loop without progress
                break
        self.c.tag = None
        return await self._close()

    async def _send(self, cmds: list[tuple[str | None, str]]) -> tuple[list[Reply], ProbeError | None]:
        try:
            return await self.c.exchange(cmds, pipelining=self.pipelining, stop=_lockstep_stop), None
        except ProbeError as exc:
            return exc.partial, exc

    async def _transaction(self, mail_line: str, batch: list[Item], null: bool) -> Stop | None:
        """One MAIL transaction for ``batch``, in groups within the error budget.

        The group that spends the last of the budget, when its few RCPTs are all expected to be
        refused, also carries RSET and QUIT: the session ends with it (one round trip less).
        Returns None to go on with the session, else why it ended.
        """
        tally = self.tally
        mail: Reply | None = None
        queue = list(batch)
        while queue:
            lead = tally.lead(mail_line) if mail is None else []
            group = queue[: max(tally.max_errors - tally.errors - len(lead), 0)]
            if not group:
                break
            last = (
                not null
                and len(group) <= _LAST_GROUP_MAX
                and tally.errors + len(lead) + len(group) >= tally.max_errors
                and not any(it.expect_accept for it in group)
            )
            tag = group[0].domain if null else None
            cmds: list[tuple[str | None, str]] = [(tag, line) for _t, line in lead]
            cmds += [(it.domain, f"RCPT TO:<{it.recipient}>") for it in group]
            if last:
                cmds += [(None, "RSET"), (None, "QUIT")]
            replies, failure = await self._send(cmds)
            latencies = self.c.latencies
            pos = 0
            if mail is None:
                got = replies[: len(lead)]
                pos = len(got)
                stop = tally.took_lead(got, shared=not null)
                if stop is not None:
                    return stop
                if len(got) < len(lead):
                    if failure is not None:
                        raise failure
                    return Reason.PROTOCOL, "no answer to MAIL FROM"
                mail = got[-1]
                if mail.klass != 2:
                    tally.errors += sum(r.klass >= 4 for r in replies[pos:])  # 503s after the refused MAIL
                    if last:
                        await self.c.close()
                    return self._mail_refused(group if null else batch, mail, null)
            for i, (it, r) in enumerate(zip(group, replies[pos:], strict=False)):
                self.touched.add(it.domain)
                if r.code == 421:
                    return Reason.R421, f"RCPT answered {r}"
                took = latencies[pos + i] if pos + i < len(latencies) else 0.0
                self.engine._record(self.t, it, r, mail, took, self.retry)
                self.items.remove(it)
                queue.remove(it)
                tally.errors += r.klass >= 4
            if failure is not None:
                raise failure
            if last:
                rest = replies[pos + len(group) :]
                rset = rest[0] if rest else None
                tally.junk += 1
                tally.errors += rset is not None and rset.klass >= 4
                tally.rset_due = False
                await self.c.close()
                return None, ""  # QUIT is said: the rest waits for the next session
            if len(replies) < len(cmds):
                return Reason.PROTOCOL, "the server stopped answering mid-group"
        return None

    def _mail_refused(self, batch: list[Item], mail: Reply, null: bool) -> Stop | None:
        """A refused MAIL FROM is the answer for its recipients only in the session's first shared
        transaction (or for a null-sender one); a later refusal (a per-session message limit) just
        ends the session, and its recipients wait for the next one."""
        if null or self.tally.shared == 1:
            for it in batch:
                self.touched.add(it.domain)
                self.engine._record_mail_refused(self.t, it, mail, self.retry)
                self.items.remove(it)
        return None if null else (None, "")

    async def _close(self) -> Stop:
        """End the last transaction (RSET) and the session (QUIT), as one group when pipelining."""
        if not self.tally.rset_due:
            return None, ""
        self.tally.rset_due = False
        try:
            replies = await self.c.exchange([(None, "RSET"), (None, "QUIT")], pipelining=self.pipelining)
        except ProbeError as exc:
            # Every answer is already recorded: a goodbye that fails costs nothing (as in quit()).
            self.c.note(f"while closing: {exc}")
            replies = exc.partial
        await self.c.close()
        return (Reason.R421, "RSET answered 421") if replies and replies[0].code == 421 else (None, "")


# At most this many RCPTs in a group that also says goodbye: if the server accepts them after all
# (they were expected to be refused), the session ends with this much error budget unused.
_LAST_GROUP_MAX = 2

# Postfix counts EHLO/HELO, RSET, NOOP, VRFY and ETRN as "junk" and, past smtpd_junk_command_limit
# (100; 1 under stress), adds an error for each; Exim drops a client past smtp_accept_max_nonmail
# (10) but does not count one RSET between messages. Half Postfix's default keeps a wide margin.
MAX_JUNK_PER_SESSION = 50


@dataclass
class _Tally:
    """What one session has spent of the server's patience (Postfix's per-session counters)."""

    max_errors: int  # refused commands allowed (max_rejections_per_session)
    junk: int = 0  # EHLO/HELO/RSET sent
    errors: int = 0  # 4xx/5xx replies so far
    rset_due: bool = False  # a MAIL was sent: RSET before the next MAIL and before QUIT
    transactions: int = 0  # MAIL commands sent
    shared: int = 0  # of which with the shared sender

    def affords(self, rcpts: int) -> bool:
        """Room for one more transaction: (RSET,) MAIL and ``rcpts`` RCPTs, all refused at worst."""
        worst = self.rset_due + 1 + rcpts
        return self.errors + worst <= self.max_errors and self.junk + self.rset_due < MAX_JUNK_PER_SESSION

    def lead(self, mail_line: str) -> list[tuple[str | None, str]]:
        """The commands that open a transaction (RFC 2920 lets RSET lead a group)."""
        return [(None, "RSET"), (None, mail_line)] if self.rset_due else [(None, mail_line)]

    def took_lead(self, replies: Sequence[Reply], shared: bool = False) -> Stop | None:
        """Count the replies to :meth:`lead`'s commands; why to stop on a 421."""
        if self.rset_due and replies:
            rset, replies = replies[0], replies[1:]
            self.rset_due = False
            self.junk += 1
            self.errors += rset.klass >= 4
            if rset.code == 421:
                return Reason.R421, "RSET answered 421"
        if not replies:
            return None
        mail = replies[0]
        self.transactions += 1
        self.shared += shared
        if mail.code == 421:
            return Reason.R421, f"MAIL FROM answered {mail}"
        self.errors += mail.klass >= 4
        self.rset_due = True  # also after a refused MAIL: harmless, and the server state is unknown
        return None


def _greetings_sent(c: SmtpClient) -> int:
    """EHLO/HELO commands of this session so far (junk commands for Postfix)."""
    return sum(1 for _tag, text in c.lines if text.startswith(("C: EHLO", "C: HELO")))


def _domain_views(lines: Sequence[tuple[str | None, str]], domains: set[str]) -> dict[str, list[str]]:
    """Each domain's part of a session transcript: the shared lines (tag None) and its own, in order.

    One pass over the lines, then a merge per domain: a session can carry a thousand RCPTs of
    hundreds of domains, and filtering the whole transcript once per domain was quadratic.
    """
    at: list[int] = []  # positions of the shared lines
    shared: list[str] = []
    own: dict[str, list[tuple[int, str]]] = {d: [] for d in domains}
    for i, (tag, text) in enumerate(lines):
        if tag is None:
            at.append(i)
            shared.append(text)
        elif tag in own:
            own[tag].append((i, text))
    views: dict[str, list[str]] = {}
    for d, mine in own.items():
        view: list[str] = []
        done = 0
        for i, text in mine:  # a domain has a few lines of its own, the session many shared ones
            upto = bisect.bisect_left(at, i, lo=done)
            view.extend(shared[done:upto])
            view.append(text)
            done = upto
        view.extend(shared[done:])
        views[d] = view
    return views


def stderr_progress(message: str) -> None:
    print(f"backscatter-audit: {message}", file=sys.stderr, flush=True)
