"""DATA probes: prove accept-then-bounce end to end (opt-in; refused without a sink).

Per MX address: one short, clearly labelled test message to a random unknown recipient, with
MAIL FROM ``bsa-<token>@<sink domain>``. A site that rejects the recipient at RCPT never sees DATA
(nothing is sent); one that accepts it and bounces later sends the NDR to our token address, where
the bounce sink (or a Maildir, mbox or IMAP folder the user points us at) catches it. The NDR is
tied to its probe by the token (envelope recipient, Original-Envelope-Id, returned headers).

The header From is a *second* token address: an NDR or auto-reply that arrives there went to the
forgeable header instead of the envelope sender (SMTP-NDR-002).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from auditor.bounces import CapturedNdr, analyse_bytes, correlate, iter_messages
from auditor.collect.sink import BounceSink, TokenStore, new_token, token_address
from auditor.collect.smtp import identity
from auditor.collect.smtp.client import ProbeError, SmtpClient
from auditor.model import InputError, Observation
from auditor.observations.smtp import DataOutcome, DataProbeResult, ProbeResult, ProbeSettings, Reason, Reply

# Once every envelope NDR is in, how long to keep watching for notifications to the header From
# (responders that answer it usually do so together with, or instead of, the envelope sender).
HEADER_FROM_GRACE = 10.0


@dataclass
class _Pending:
    result: DataProbeResult
    tokens: set[str] = field(default_factory=set)


def _message(token: str, env_from: str, header_from: str, rcpt: str, ehlo: str) -> str:
    """A small, plain, clearly labelled test message; the token is in Subject, Message-ID and body."""
    msgid = f"<bsa-{token}.{secrets.token_hex(4)}@{ehlo}>"
    return (
        f"From: Backscatter Auditor <{header_from}>\r\n"
        f"To: <{rcpt}>\r\n"
        f"Subject: Backscatter audit test bsa-{token} (please ignore)\r\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
        f"Message-ID: {msgid}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is an automated test message of a backscatter audit that the operator of this\r\n"
        "mail site requested. It was sent to an address that should not exist, to check that\r\n"
        "the site rejects unknown recipients during the SMTP session instead of bouncing later.\r\n"
        f"Probe token: bsa-{token}\r\n"
        f"Envelope sender: {env_from}\r\n"
    )


# The industry test strings (GTUBE: SpamAssassin's test pattern; EICAR: the anti-virus test file).
# Scanners recognise them by design; they are harmless text. Built from parts so this source file
# is not itself flagged by a scanner.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CONTENT_PROBES = ("gtube", "eicar")


def _content_message(kind: str, token: str, header_from: str, rcpt: str, ehlo: str) -> str:
    """A labelled content-filter test message for the test mailbox the user named."""
    head = _message(token, f"bsa-{token}", header_from, rcpt, ehlo).split("\r\n\r\n", 1)[0]
    head = head.replace("Backscatter audit test", f"Backscatter audit {kind.upper()} test")
    intro = (
        f"This is an automated {kind.upper()} content-filter test of a backscatter audit the operator of\r\n"
        "this mail site requested. A safe site rejects it during the SMTP session or quarantines it\r\n"
        f"silently; it must never send a notice back. Probe token: bsa-{token}\r\n"
    )
    if kind == "gtube":
        return head + "\r\n\r\n" + intro + "\r\n" + GTUBE + "\r\n"
    head = head.replace(
        "Content-Type: text/plain; charset=us-ascii", 'Content-Type: multipart/mixed; boundary="bsa"'
    )
    return (
        head
        + "\r\n\r\n--bsa\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + intro
        + '\r\n--bsa\r\nContent-Type: application/octet-stream; name="eicar.com"\r\n'
        + 'Content-Disposition: attachment; filename="eicar.com"\r\n\r\n'
        + EICAR
        + "\r\n--bsa--\r\n"
    )


def _refusal(reply: Reply, refused: DataOutcome, expect: int) -> DataOutcome | None:
    """None when the reply lets the conversation go on (``expect``: a class, 2, or the code 354).

    Only a 5xx is a refusal and a 4xx a deferral; any other answer (250 to DATA, a 3xx to RCPT,
    a 354 after the final dot) is a protocol error: the server is not measured, never "refused".
    """
    if (expect == 354 and reply.code == 354) or (expect == 2 and reply.klass == 2):
        return None
    if reply.klass == 5:
        return refused
    if reply.klass == 4:
        return DataOutcome.DEFERRED
    return DataOutcome.PROTOCOL_ERROR


async def _greet(client: SmtpClient, target: ProbeResult, settings: ProbeSettings) -> None:
    """Connect, EHLO (a 250, nothing else), STARTTLS when offered (plain-text reconnect if broken)."""
    for attempt in range(2):
        banner = await client.connect(target.address, settings.port, settings.source_address)
        if banner.code != 220:
            raise ProbeError(Reason.BANNER, str(banner))
        ehlo = await client.ehlo(settings.ehlo)
        if ehlo.code != 250:
            raise ProbeError(
                Reason.EHLO_REFUSED if ehlo.klass in (4, 5) else Reason.PROTOCOL, f"EHLO answered {ehlo}"
            )
        if attempt or "STARTTLS" not in client.extensions:
            return
        try:
            _reply, tls = await client.starttls()
            if not tls.ok:
                return  # STARTTLS refused: go on in plain text on this connection
            ehlo = await client.ehlo(settings.ehlo)
            if ehlo.code != 250:
                raise ProbeError(Reason.PROTOCOL, f"EHLO after STARTTLS answered {ehlo}")
            return
        except ProbeError as exc:
            if exc.reason is not Reason.TLS:
                raise
            # A broken TLS stack must not stop the probe: reconnect in plain text.
            await client.close()


async def _probe_one(
    target: ProbeResult,
    sink_domain: str,
    settings: ProbeSettings,
    register: Callable[[str], None],
    probe: str = "unknown-recipient",
    mailbox: str = "",
) -> _Pending:
    settings = identity.resolve(settings)
    token, header_token = new_token(), new_token()
    register(token)
    register(header_token)
    env_from = token_address(token, sink_domain)
    header_from = token_address(header_token, sink_domain)
    rcpt = (
        mailbox
        if probe in CONTENT_PROBES
        else f"{settings.random_prefix}{secrets.token_hex(8)}@{target.domain}"
    )
    client = SmtpClient(
        timeout=settings.timeout,
        max_lines=settings.max_reply_lines,
        max_line_length=settings.max_line_length,
    )
    base = DataProbeResult(
        target=f"{target.domain}@{target.address}" + ("" if probe == "unknown-recipient" else f" {probe}"),
        domain=target.domain,
        mx_host=target.mx_host,
        address=target.address,
        primary=target.primary,
        probe=probe,
        token=token,
        envelope_from=env_from,
        header_from=header_from,
        recipient=rcpt,
    )
    outcome: DataOutcome | None = DataOutcome.ERROR
    reply: Reply | None = None
    error, accepted_at = "", 0.0
    try:
        await _greet(client, target, settings)
        dsn = "DSN" in client.extensions
        # No RET=: the server's default is exactly what NDR-FMT-002 judges (full body or headers).
        mail = f"MAIL FROM:<{env_from}>" + (f" ENVID=bsa-{token}" if dsn else "")
        reply = await client.command(mail)
        if reply.klass != 2:
            raise ProbeError(Reason.MAIL_REJECTED, str(reply))
        rcpt_cmd = f"RCPT TO:<{rcpt}>" + (f" NOTIFY=FAILURE,DELAY ORCPT=rfc822;{rcpt}" if dsn else "")
        reply = await client.command(rcpt_cmd)
        outcome = _refusal(reply, DataOutcome.REJECTED_AT_RCPT, expect=2)
        if outcome is None:
            reply = await client.command("DATA")
            outcome = _refusal(reply, DataOutcome.REJECTED_AT_DATA, expect=354)
            if outcome is None:
                client.note(f"sending the labelled {probe} test message (token bsa-{token})")
                if probe in CONTENT_PROBES:
                    text = _content_message(probe, token, header_from, rcpt, settings.ehlo)
                else:
                    text = _message(token, env_from, header_from, rcpt, settings.ehlo)
                reply = await client.send_message(text)
                outcome = _refusal(reply, DataOutcome.REJECTED_AFTER_DATA, expect=2)
                if outcome is None:
                    outcome, accepted_at = DataOutcome.ACCEPTED, time.time()
        await client.quit()
    except ProbeError as exc:
        error = str(exc)
        client.abort()
    transcript = tuple(line for _, line in client.lines)
    result = replace(
        base,
        outcome=outcome or DataOutcome.ERROR,
        reply=reply,
        error=error,
        accepted_at=accepted_at,
        transcript=transcript,
    )
    return _Pending(result, {token, header_token})


def _arrival(path: str) -> float:
    """When a bounce arrived: its file's mtime (a poll may read it seconds later), else now."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return time.time()


def _sink_envelope_to(data: bytes) -> str:
    head = data[:4096].decode("latin-1")
    for line in head.splitlines():
        if not line:
            break
        if line.lower().startswith("x-bsa-envelope-to:"):
            return line.split(":", 1)[1].strip()
    return ""


def _from_sink(sink: BounceSink, seen: set[str]) -> Iterable[tuple[str, bytes]]:
    for path in list(sink.stats.paths):
        if path in seen:
            continue
        seen.add(path)
        try:
            with open(path, "rb") as fh:
                yield path, fh.read()
        except OSError:
            continue


BounceReader = Callable[[set[str]], Iterable[tuple[str, bytes]]]


def sink_reader(sink: BounceSink) -> BounceReader:
    return lambda seen: _from_sink(sink, seen)


def mailbox_reader(paths: Sequence[str]) -> BounceReader:
    """Poll a Maildir, mbox or folder the user's own MX delivers the sink domain's mail to."""

    def read(seen: set[str]) -> Iterable[tuple[str, bytes]]:
        for path, data in iter_messages(list(paths)):
            if path not in seen:
                seen.add(path)
                yield path, data

    return read


class SinkUnavailable(RuntimeError):
    """The bounce sink could not listen (port in use, no permission for port 25)."""


@contextlib.contextmanager
def bounce_source(
    sink_domain: str,
    tokens: TokenStore,
    *,
    sink_listen: str = "",
    sink_maildir: str = "bounces",
    mailbox: str = "",
    imap: BounceReader | None = None,
) -> Iterator[tuple[BounceReader, float]]:
    """Where the DATA probes' bounces come back, as (reader, poll interval).

    Our own sink listening on ``sink_listen`` (the sink domain's MX points here), else a Maildir or
    mbox the user's own MX delivers to, else an IMAP reader. Polls are cheap for the sink and kept
    rare for mailboxes (each IMAP poll is a login).
    """
    if sink_listen:
        host, sep, port = sink_listen.rpartition(":")
        if not sep or not port.isdigit():
            raise InputError(f"sink address must be ADDR:PORT, not {sink_listen!r}")
        sink = BounceSink(sink_domain, sink_maildir, host=host.strip("[]"), port=int(port), tokens=tokens)
        try:
            sink.start()
        except OSError as exc:
            # Not an input error: the probes measured so far are kept, the DATA probes are a gap.
            raise SinkUnavailable(
                f"cannot run the bounce sink on {sink_listen}: {exc.strerror or exc}"
            ) from None
        try:
            yield sink_reader(sink), 0.2
        finally:
            sink.stop()
    elif mailbox:
        if not os.path.exists(mailbox):
            raise InputError("no such Maildir or mbox to read bounces from", mailbox)
        yield mailbox_reader([mailbox]), 1.0
    elif imap is not None:
        yield imap, 5.0
    else:
        raise InputError("DATA probes need a way to receive bounces: a sink address, a mailbox or IMAP")


def run_data_probes(
    targets: Sequence[ProbeResult],
    *,
    sink_domain: str,
    settings: ProbeSettings,
    register: Callable[[str], None],
    reader: BounceReader,
    wait: float,
    poll: float = 0.2,
    content_mailbox: str = "",
) -> list[Observation]:
    """DATA-probe each target address, then watch for bounces up to ``wait`` seconds after the last.

    With ``content_mailbox`` (a test mailbox the user named, in a domain in scope), each primary MX
    address of that domain also gets a GTUBE and an EICAR test message (CF-PROBE-001/002).
    """
    if not sink_domain:
        raise ValueError("DATA probes need a sink domain")
    content_domain = content_mailbox.rpartition("@")[2].lower()

    async def send_all() -> list[_Pending]:
        out = []
        for t in targets:  # one at a time: politeness, and the sessions are short
            out.append(await _probe_one(t, sink_domain, settings, register))
            if content_mailbox and t.primary and t.domain.lower() == content_domain:
                for kind in CONTENT_PROBES:
                    out.append(await _probe_one(t, sink_domain, settings, register, kind, content_mailbox))
            if settings.session_delay:
                await asyncio.sleep(min(settings.session_delay, 1.0))
        return out

    pending = asyncio.run(send_all())
    accepted = [p for p in pending if p.result.outcome is DataOutcome.ACCEPTED]
    by_token = {tok: p for p in accepted for tok in p.tokens}
    env_waiting = {p.result.token for p in accepted}
    found: dict[str, DataProbeResult] = {p.result.token: p.result for p in accepted}
    ndrs: list[Observation] = []
    seen: set[str] = set()
    t0 = time.monotonic()
    deadline = t0 + wait
    read_errors: list[str] = []
    grace_end: float | None = None  # once every envelope NDR is in, a short look for header-From ones
    while accepted and time.monotonic() < (grace_end or deadline):
        try:
            arrived = list(reader(seen))
        except Exception as exc:  # a mailbox or IMAP hiccup: keep waiting, the next poll may work
            read_errors.append(f"{type(exc).__name__}: {exc}")
            arrived = []
        for path, data in arrived:
            analysis = analyse_bytes(data, path)
            # The envelope recipient says which of a probe's two addresses the message went to;
            # the sink records it (X-BSA-Envelope-To), a mailbox may (Delivered-To).
            # Without either, the notice's own To: (an NDR is addressed to the envelope sender).
            rcpt = _sink_envelope_to(data) or analysis.delivered_to or analysis.header_to
            token = correlate(analysis, set(by_token), envelope_recipient=rcpt)
            if token is None:
                continue
            p = by_token.pop(token)
            r = found[p.result.token]
            if token == p.result.token:
                env_waiting.discard(token)
                r = replace(
                    r,
                    bounce_path=path,
                    bounce_seconds=round(_arrival(path) - p.result.accepted_at, 3),
                    bounce_kind=analysis.kind,
                )
            else:
                r = replace(r, bounce_to_header_from=True, bounce_path=r.bounce_path or path)
            found[p.result.token] = r
            ndrs.append(
                CapturedNdr.from_analysis(
                    analysis,
                    target=p.result.target,
                    envelope_recipient=rcpt or None,
                    probe_token=p.result.token,
                    probe_envelope_from=p.result.envelope_from,
                    probe_header_from=p.result.header_from,
                )
            )
        if not env_waiting and grace_end is None:
            grace_end = min(deadline, time.monotonic() + HEADER_FROM_GRACE)
        if not by_token:
            break
        time.sleep(poll)
    waited = round(time.monotonic() - t0, 3)
    note = (
        f"reading bounces failed {len(read_errors)} time(s), last: {read_errors[-1]}" if read_errors else ""
    )
    results: list[Observation] = []
    for p in pending:
        r = replace(found.get(p.result.token, p.result), waited=waited)
        if note and r.outcome is DataOutcome.ACCEPTED and r.bounce_seconds is None and not r.error:
            r = replace(r, error=note)  # a silence we may not have been able to hear
        results.append(r)
    return [*results, *ndrs]
