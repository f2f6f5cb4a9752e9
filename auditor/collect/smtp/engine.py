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
from auditor.collect.smtp import vantage
from auditor.collect.smtp.client import ProbeError, SmtpClient
from auditor.collect.smtp.scenarios import Scenario
from auditor.model import InputError
from auditor.observations.dns import FAILED as DNS_FAILED
from auditor.observations.dns import DnsMx
from auditor.observations.smtp import (
    R_421,
    R_AUDIT_TIMEOUT,
    R_BANNER,
    R_BANNER_554,
    R_ERROR_BUDGET,
    R_EXTERNAL,
    R_MAIL_REJECTED,
    R_NO_ADDRESS,
    R_PROTOCOL,
    R_TIMEOUT,
    R_TRUSTED,
    ProbeResult,
    ProbeSettings,
    RcptOutcome,
    Reply,
    TlsInfo,
    Verdict,
)
from auditor.rules.smtp_verdicts import classify

_ALNUM = string.ascii_lowercase + string.digits
Progress = Callable[[str], None]


def random_local_part(prefix: str, length: int = 20) -> str:
    """Recognisable prefix + lowercase letters/digits (rules.md §11.2: 16–24 chars, no + - . _)."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(max(length - len(prefix), 8)))


@dataclass
class Item:
    """One RCPT to ask: in a null-sender transaction of its own, or in the shared transaction."""

    domain: str
    role: str
    recipient: str
    scenario: str
    null_sender: bool = False
    expect_accept: bool = False  # a safe site answers 2xx (the scenario's ``safe``; controls)


@dataclass
class Acc:
    """What one (domain, address) gathered so far (mutable while the sessions run)."""

    domain: str
    host: str
    address: str
    preference: int
    primary: bool
    outcomes: dict[tuple[str, str], RcptOutcome] = field(default_factory=dict)
    banner: Reply | None = None
    ehlo: Reply | None = None
    extensions: tuple[str, ...] = ()
    tls: TlsInfo = field(default_factory=TlsInfo)
    transcript: list[str] = field(default_factory=list)
    sessions: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    failure: str = ""
    failure_detail: str = ""
    source: str = ""
    skip: str = ""  # not probed: R_EXTERNAL / R_NO_ADDRESS / R_TRUSTED
    null_tested: bool = False

    def result(self) -> ProbeResult:
        pr = ProbeResult(
            target=f"{self.domain} {self.host}[{self.address}]"
            if self.address
            else f"{self.domain} {self.host}",
            domain=self.domain,
            mx_host=self.host,
            address=self.address,
            preference=self.preference,
            primary=self.primary,
            source_address=self.source,
            banner=self.banner,
            ehlo=self.ehlo,
            extensions=self.extensions,
            tls=self.tls,
            outcomes=tuple(self.outcomes.values()),
            null_sender_tested=self.null_tested,
            sessions=self.sessions,
            timings=dict(self.timings),
            transcript=tuple(self.transcript),
        )
        if self.skip:
            verdict = Verdict.INCONCLUSIVE if self.skip in (R_TRUSTED, R_TIMEOUT) else Verdict.NOT_PROBED
            return dataclasses.replace(pr, verdict=verdict, reason=self.skip, detail=self.failure_detail)
        verdict, reason, detail = classify(pr, self.failure, self.failure_detail)
        return dataclasses.replace(pr, verdict=verdict, reason=reason, detail=detail)


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
                acc = Acc(rec.target, h.name, "", h.preference, primary, skip=R_EXTERNAL)
                acc.failure_detail = f"{h.name} is outside the domains in scope; use --allow-external-mx"
                skipped.append(acc)
                continue
            if not h.addresses:
                # A lookup that failed (timeout, SERVFAIL) hides an MX we could not measure: that is
                # inconclusive. Only a host that really has no address is "not probed".
                lookup_failed = h.status in DNS_FAILED
                acc = Acc(
                    rec.target,
                    h.name,
                    "",
                    h.preference,
                    primary,
                    skip=R_TIMEOUT if lookup_failed else R_NO_ADDRESS,
                )
                acc.failure_detail = h.detail or (
                    "address lookup failed" if lookup_failed else "no A/AAAA record"
                )
                skipped.append(acc)
                continue
            for addr in h.addresses:
                t = targets.setdefault(addr, Target(h.name, addr, settings.port))
                if rec.target in t.accs:
                    continue
                t.accs[rec.target] = Acc(rec.target, h.name, addr, h.preference, primary)
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
    """Everything from the user that ends up in an SMTP command, checked before any network use."""
    check_smtp_token(settings.ehlo, "EHLO name")
    check_address(settings.mail_from, "probe sender (--mail-from)")
    for c in settings.controls:
        check_address(c, "--control")
    if settings.relay_test_domain:
        normalize_domain(settings.relay_test_domain, "--relay-test-domain")


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
            out.append(Item(domain, s.role, s.recipient_for(**values), s.name, True))
            t.accs[domain].null_tested = True
    out.extend(Item(domain, "control", c, "control", expect_accept=True) for c in controls)
    out.extend(
        Item(domain, s.role, s.recipient_for(**values), s.name, expect_accept=s.safe == "2xx")
        for s in active
        if not s.null_sender
    )
    return out


def describe(plan: Plan, settings: ProbeSettings) -> list[str]:
    """Human-readable list of the sessions a run would open (``--dry-run``)."""
    lines: list[str] = []
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
        lines.append(f"not probed: {a.domain} via {a.host} ({a.skip}: {a.failure_detail})")
    if not plan.targets:
        lines.append("no MX address to probe")
    return lines


class Engine:
    """Runs a plan: first pass, then (with ``retry_after``) the greylisting retry of 4xx answers."""

    def __init__(self, settings: ProbeSettings, progress: Progress | None = None) -> None:
        self.s = settings
        self.progress = progress or (lambda _m: None)
        self._host_locks: dict[str, asyncio.Semaphore] = {}
        self._last_session: dict[str, float] = {}
        self._trusted = vantage.parse_networks(settings.trusted_networks)
        self._retry_pending: dict[str, list[Item]] = {}

    async def run(self, plan: Plan) -> list[ProbeResult]:
        pending: dict[str, list[Item]] = {t.address: list(t.items) for t in plan.targets}
        try:
            async with asyncio.timeout(self.s.audit_timeout):
                await self._pass(plan.targets, pending, retry=False)
                await self._retry_pass(plan.targets)
        except TimeoutError:
            self.progress(f"probe: audit time bound of {self.s.audit_timeout:g} s reached")
            for t in plan.targets:
                for it in pending.get(t.address, []):
                    self._error(t, it, R_AUDIT_TIMEOUT, "not asked before the audit's time bound", False)
                for it in self._retry_pending.get(t.address, []):
                    self._error(t, it, R_AUDIT_TIMEOUT, "", True)
                for acc in t.accs.values():
                    acc.failure = acc.failure or R_AUDIT_TIMEOUT
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
        o = t.accs[it.domain].outcomes.get((it.role, it.recipient))
        return o is not None and o.reply is not None

    async def _run_target(self, t: Target, items: list[Item], retry: bool) -> None:
        # pyroute2's synchronous API runs its own event loop: keep it off ours.
        source = await asyncio.to_thread(vantage.source_address, t.address, t.port, self.s.source_address)
        net = vantage.trusted(source, self._trusted)
        for acc in t.accs.values():
            acc.source = source
        if net is not None:
            for acc in t.accs.values():
                acc.skip = R_TRUSTED
                acc.failure_detail = f"our source address {source} is inside the trusted network {net}"
            items.clear()
            return
        if items:  # progress: which MX, which stage (the audit shows it as its live line on a terminal)
            stage = "retrying 4xx answers" if retry else "probing"
            self.progress(f"probe: {stage} {t.label}: {len({it.domain for it in items})} domain(s)")
        backed_off = False
        for _ in range(len(items) + 2):  # every normal session consumes at least one item
            if not items:
                return
            await self._polite_wait(t.host)
            before = len(items)
            reason, detail = await self._session(t, items, retry)
            self._last_session[t.host] = time.monotonic()
            if reason == R_421 and not backed_off:
                backed_off = True
                self.progress(f"probe: {t.label} answered 421; backing off {self.s.backoff_421:g} s")
                await asyncio.sleep(self.s.backoff_421)
                continue
            if reason:
                break
            if len(items) == before:
                reason, detail = R_ERROR_BUDGET, "no progress within one session"
                break
        else:
            reason, detail = R_ERROR_BUDGET, "session limit reached"
        for it in list(items):
            self._error(t, it, reason, detail, retry)
        items.clear()

    async def _polite_wait(self, host: str) -> None:
        last = self._last_session.get(host)
        if last is not None:
            wait = last + self.s.session_delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    def _error(self, t: Target, it: Item, reason: str, detail: str, retry: bool) -> None:
        acc = t.accs[it.domain]
        key = (it.role, it.recipient)
        old = acc.outcomes.get(key) or RcptOutcome(it.role, it.recipient, it.scenario)
        if retry:
            acc.outcomes[key] = dataclasses.replace(old, retry_error=old.retry_error or reason)
        else:
            acc.outcomes[key] = dataclasses.replace(old, error=old.error or reason)
            if not acc.failure:
                acc.failure, acc.failure_detail = reason, detail

    def _record(
        self, t: Target, it: Item, reply: Reply, mail: Reply | None, elapsed: float, retry: bool
    ) -> None:
        acc = t.accs[it.domain]
        key = (it.role, it.recipient)
        old = acc.outcomes.get(key)
        if retry:
            old = old or RcptOutcome(it.role, it.recipient, it.scenario)
            acc.outcomes[key] = dataclasses.replace(old, retry=reply)
        elif old is None:  # the usual case: the constructor is cheaper than replace()
            acc.outcomes[key] = RcptOutcome(
                it.role, it.recipient, it.scenario, reply=reply, elapsed=round(elapsed, 3), mail_reply=mail
            )
        else:
            acc.outcomes[key] = dataclasses.replace(
                old, reply=reply, mail_reply=mail, elapsed=round(elapsed, 3)
            )

    async def _session(self, t: Target, items: list[Item], retry: bool) -> tuple[str, str]:
        """One SMTP session; answered items are removed from ``items``. Returns (reason, detail)."""
        c = SmtpClient(
            timeout=self.s.timeout, max_lines=self.s.max_reply_lines, max_line_length=self.s.max_line_length
        )
        if retry:
            c.note(f"retry after {self.s.retry_after:g} s (same client, sender and recipients)")
        at_start = {i.domain for i in items}
        touched: set[str] = set()
        t0 = time.monotonic()
        reason, detail = "", ""
        try:
            reason, detail = await self._converse(c, t, items, retry, touched)
        except ProbeError as exc:
            reason, detail = exc.reason, exc.detail
            c.note(f"session ended: {exc}")
        except Exception as exc:  # a server must never crash the audit: record it, move on
            reason, detail = R_PROTOCOL, f"unexpected {type(exc).__name__}: {exc}"[:300]
            c.note(f"session ended: {detail}")
        finally:
            if reason and reason not in (R_421,):
                c.abort()
            else:
                await c.quit()  # a no-op when the last pipelined group already carried QUIT
        elapsed = time.monotonic() - t0
        share = touched | (at_start if reason else set())
        views = _domain_views(c.lines, share)
        for d in share:
            acc = t.accs[d]
            acc.sessions += 1
            acc.timings.setdefault("first_session_s", round(elapsed, 3))
            acc.transcript.append(f"*: session {acc.sessions} to {t.label}")
            acc.transcript.extend(views[d])
            if reason and not acc.failure and not retry:
                acc.failure, acc.failure_detail = reason, detail
        return reason, detail

    async def _converse(
        self, c: SmtpClient, t: Target, items: list[Item], retry: bool, touched: set[str]
    ) -> tuple[str, str]:
        s = self.s
        t0 = time.monotonic()
        banner = await c.connect(t.address, t.port, s.source_address)
        banner_s = time.monotonic() - t0
        fresh = [a for a in t.accs.values() if a.banner is None]
        for a in fresh:
            a.banner = banner
            a.timings["banner_s"] = round(banner_s, 3)
        if banner.code != 220:
            reason = R_BANNER_554 if banner.code == 554 else R_421 if banner.code == 421 else R_BANNER
            return reason, f"greeting {banner}"
        ehlo = await c.ehlo(s.ehlo)
        if ehlo.code == 421:
            return R_421, f"EHLO answered {ehlo}"
        if ehlo.klass != 2:
            return R_PROTOCOL, f"EHLO/HELO refused: {ehlo}"
        tls = TlsInfo(offered="STARTTLS" in c.extensions)
        if tls.offered:
            reply, tls = await c.starttls()  # a failed handshake raises ProbeError(R_TLS)
            if reply.code == 421:
                return R_421, f"STARTTLS answered {reply}"
            if tls.ok:
                ehlo = await c.ehlo(s.ehlo)
                if ehlo.klass != 2:
                    return (R_421 if ehlo.code == 421 else R_PROTOCOL), f"EHLO after STARTTLS: {ehlo}"
        for a in fresh:
            a.ehlo, a.extensions, a.tls = ehlo, tuple(sorted(c.extensions)), tls
        tally = _Tally(s.max_rejections_per_session, junk=_greetings_sent(c))
        pipelining = "PIPELINING" in c.extensions
        # Null-sender transactions: one RCPT each (Postfix reject_multi_recipient_bounce).
        for it in [i for i in items if i.null_sender]:
            if not tally.affords(rcpts=1):
                break
            stop = await self._null_transaction(c, t, items, it, tally, retry, touched, pipelining)
            if stop is not None:
                return stop
        # Shared transactions, as many per session as the budgets allow, RSET between them.
        # RFC 5321 §4.5.3.1.8: servers must take at least 100 recipients per transaction.
        mail_line = f"MAIL FROM:<{s.mail_from}>"
        run = self._shared_pipelined if pipelining else self._shared_lockstep
        while tally.affords(rcpts=1):
            shared = [i for i in items if not i.null_sender][: s.max_rcpts_per_transaction]
            if not shared:
                break
            c.tag = None
            before = tally.transactions
            stop = await run(c, t, items, shared, tally, retry, touched, mail_line)
            if stop is not None:
                return stop
            if tally.transactions == before:  # nothing could be sent: never loop without progress
                break
        c.tag = None
        return await self._close(c, tally, pipelining)

    async def _null_transaction(
        self,
        c: SmtpClient,
        t: Target,
        items: list[Item],
        it: Item,
        tally: _Tally,
        retry: bool,
        touched: set[str],
        pipelining: bool,
    ) -> tuple[str, str] | None:
        """MAIL FROM:<> + one RCPT (RSET first when a transaction is open): one group when pipelining."""
        c.tag = it.domain
        touched.add(it.domain)
        rcpt_line = f"RCPT TO:<{it.recipient}>"
        t1 = time.monotonic()
        if pipelining:
            lead = [(it.domain, line) for _tag, line in tally.lead("MAIL FROM:<>")]  # this domain's lines
            replies = await c.pipeline([*lead, (it.domain, rcpt_line)])
            stop = tally.took_lead(replies[: len(lead)])
            if stop is not None:
                return stop
            mail, r = replies[len(lead) - 1], replies[-1]
            if mail.klass != 2:
                tally.errors += r.klass >= 4  # the RCPT after a refused MAIL is a 503 error too
        else:
            if tally.rset_due and await self._rset(c, tally):
                return R_421, "RSET answered 421"
            mail = await c.command("MAIL FROM:<>")
            stop = tally.took_mail(mail)
            if stop is not None:
                return stop
            r = await c.command(rcpt_line) if mail.klass == 2 else mail
        if mail.klass != 2:
            self._record_mail_refused(t, it, mail, retry)
            items.remove(it)
            return None
        return self._take_rcpt(t, it, r, mail, time.monotonic() - t1, retry, items, tally)

    async def _shared_lockstep(
        self,
        c: SmtpClient,
        t: Target,
        items: list[Item],
        shared: list[Item],
        tally: _Tally,
        retry: bool,
        touched: set[str],
        mail_line: str,
    ) -> tuple[str, str] | None:
        if tally.rset_due and await self._rset(c, tally):
            return R_421, "RSET answered 421"
        if not tally.affords(rcpts=1):
            return "", ""
        mail = await c.command(mail_line)
        stop = tally.took_mail(mail, shared=True)
        if stop is not None:
            return stop
        if mail.klass != 2:
            return self._shared_mail_refused(t, items, shared, mail, tally, retry, touched)
        for it in shared:
            if tally.errors >= tally.max_errors:
                break
            c.tag = it.domain
            touched.add(it.domain)
            t1 = time.monotonic()
            r = await c.command(f"RCPT TO:<{it.recipient}>")
            stop = self._take_rcpt(t, it, r, mail, time.monotonic() - t1, retry, items, tally)
            if stop is not None:
                return stop
        return None

    async def _shared_pipelined(
        self,
        c: SmtpClient,
        t: Target,
        items: list[Item],
        shared: list[Item],
        tally: _Tally,
        retry: bool,
        touched: set[str],
        mail_line: str,
    ) -> tuple[str, str] | None:
        """RFC 2920 groups sized so that even if every command is refused we stay within budget.

        The first group carries the RSET ending the previous transaction and the MAIL FROM. The
        group that spends the last of the budget, when its few RCPTs are all expected to be
        refused, also carries RSET and QUIT: the session ends with it (one round trip less).
        """
        mail: Reply | None = None
        queue = list(shared)
        while queue:
            lead = tally.lead(mail_line) if mail is None else []
            group = queue[: max(tally.max_errors - tally.errors - len(lead), 0)]
            if not group:
                break
            last = (
                len(group) <= _LAST_GROUP_MAX
                and tally.errors + len(lead) + len(group) >= tally.max_errors
                and not any(it.expect_accept for it in group)
            )
            cmds = [*lead, *((it.domain, f"RCPT TO:<{it.recipient}>") for it in group)]
            if last:
                cmds += [(None, "RSET"), (None, "QUIT")]
            t1 = time.monotonic()
            try:
                replies = await c.pipeline(cmds)
            except ProbeError as exc:
                if not any(r.code == 421 for r in exc.partial):
                    raise
                # Postfix under stress answers 421 and hangs up mid-group: keep what was answered.
                return self._pipelined_421(
                    t, items, queue, group, lead, exc.partial, mail, retry, touched, t1
                )
            each = (time.monotonic() - t1) / len(replies)
            if last:
                replies, rset = replies[:-2], replies[-2]
                tally.junk += 1
                tally.errors += rset.klass >= 4
                await c.close()
            if mail is None:
                stop = tally.took_lead(replies[: len(lead)], shared=True)
                if stop is not None:
                    return stop
                mail, replies = replies[len(lead) - 1], replies[len(lead) :]
                if mail.klass != 2:
                    tally.errors += sum(r.klass >= 4 for r in replies)  # 503s after the refused MAIL
                    return self._shared_mail_refused(t, items, shared, mail, tally, retry, touched)
            for it, r in zip(group, replies, strict=True):
                touched.add(it.domain)
                stop = self._take_rcpt(t, it, r, mail, each, retry, items, tally)
                if stop is not None:
                    return stop
                queue.remove(it)
            if last:
                tally.rset_due = False
                return "", ""  # QUIT is said: the rest waits for the next session
        return None

    def _pipelined_421(
        self,
        t: Target,
        items: list[Item],
        queue: list[Item],
        group: list[Item],
        lead: list[tuple[str | None, str]],
        got: list[Reply],
        mail: Reply | None,
        retry: bool,
        touched: set[str],
        t1: float,
    ) -> tuple[str, str]:
        """Record the RCPT answers that came before a 421 in a pipelined group; then stop on 421."""
        if mail is None:
            if len(got) < len(lead) or got[len(lead) - 1].klass != 2:
                return R_421, "answered 421 before the transaction began"
            mail, got = got[len(lead) - 1], got[len(lead) :]
        each = (time.monotonic() - t1) / max(len(got), 1)
        for it, r in zip(group, got, strict=False):
            touched.add(it.domain)
            stop = self._take_rcpt(t, it, r, mail, each, retry, items, None)
            if stop is not None:
                return stop
            queue.remove(it)
        return R_421, "the server answered 421 and closed the connection"

    def _take_rcpt(
        self,
        t: Target,
        it: Item,
        r: Reply,
        mail: Reply,
        elapsed: float,
        retry: bool,
        items: list[Item],
        tally: _Tally | None,
    ) -> tuple[str, str] | None:
        """One RCPT answer: a 421 stops the host; anything else is recorded and counted."""
        if r.code == 421:
            return R_421, f"RCPT answered {r}"
        self._record(t, it, r, mail, elapsed, retry)
        items.remove(it)
        if tally is not None:  # None: the session is over anyway (it ended in a 421)
            tally.errors += r.klass >= 4
        return None

    def _shared_mail_refused(
        self,
        t: Target,
        items: list[Item],
        shared: list[Item],
        mail: Reply,
        tally: _Tally,
        retry: bool,
        touched: set[str],
    ) -> tuple[str, str]:
        """The shared sender was refused: that is the answer for these recipients only when it
        happened in the session's first transaction; a later refusal (a per-session message limit)
        just ends the session, and its recipients wait for the next one. Either way the session ends."""
        if tally.shared == 1:
            for it in shared:
                touched.add(it.domain)
                self._record_mail_refused(t, it, mail, retry)
                items.remove(it)
        return "", ""

    async def _close(self, c: SmtpClient, tally: _Tally, pipelining: bool) -> tuple[str, str]:
        """End the last transaction (RSET) and the session (QUIT): one group when pipelining."""
        if not tally.rset_due:
            return "", ""
        if not pipelining:
            return (R_421, "RSET answered 421") if await self._rset(c, tally) else ("", "")
        tally.rset_due = False
        try:
            replies = await c.pipeline([(None, "RSET"), (None, "QUIT")])
        except ProbeError as exc:
            # Every answer is already recorded: a goodbye that fails costs nothing (as in quit()).
            c.note(f"while closing: {exc}")
            replies = []
        await c.close()
        return (R_421, "RSET answered 421") if replies and replies[0].code == 421 else ("", "")

    def _record_mail_refused(self, t: Target, it: Item, mail: Reply, retry: bool) -> None:
        acc = t.accs[it.domain]
        key = (it.role, it.recipient)
        old = acc.outcomes.get(key) or RcptOutcome(it.role, it.recipient, it.scenario)
        if retry:
            acc.outcomes[key] = dataclasses.replace(old, retry_error=R_MAIL_REJECTED)
        else:
            acc.outcomes[key] = dataclasses.replace(old, error=R_MAIL_REJECTED, mail_reply=mail)

    async def _rset(self, c: SmtpClient, tally: _Tally) -> bool:
        """RSET (lock-step); True when the server answered 421 (stop)."""
        r = await c.command("RSET")
        tally.rset_due = False
        tally.junk += 1
        tally.errors += r.klass >= 4
        return r.code == 421


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
        """The shared commands that open a transaction (RFC 2920 lets RSET lead a group)."""
        return [(None, "RSET"), (None, mail_line)] if self.rset_due else [(None, mail_line)]

    def took_lead(self, replies: Sequence[Reply], shared: bool = False) -> tuple[str, str] | None:
        """Count the replies to :meth:`lead`'s commands; (reason, detail) to stop on a 421."""
        if self.rset_due:
            rset, replies = replies[0], replies[1:]
            self.rset_due = False
            self.junk += 1
            self.errors += rset.klass >= 4
            if rset.code == 421:
                return R_421, "RSET answered 421"
        return self.took_mail(replies[0], shared)

    def took_mail(self, mail: Reply, shared: bool = False) -> tuple[str, str] | None:
        self.transactions += 1
        self.shared += shared
        if mail.code == 421:
            return R_421, f"MAIL FROM answered {mail}"
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
