"""Last resort for bounces in no known format: "failed recipients" text heuristics.

A message counts as a bounce when at least two independent signs agree (a mail-system sender, a
bounce subject, a bounce phrase in the body). The failed recipients are then the addresses the
report text names in recipient-like positions, less the addresses of the sender and the system.
"""

from __future__ import annotations

import re

from auditor.bounces.caseless import Caseless
from auditor.bounces.detectors.base import (
    ADDRESS,
    DELAY,
    SYSTEM_LOCALS,
    Context,
    Detection,
    addresses,
    per_address_blocks,
    recipient,
)

FAMILY = "generic"

BOUNCE_SUBJECT = Caseless(
    r"undeliver|undelivered|delivery (status notification|failure|failed|problem|error|notification)|"
    r"failure notice|returned mail|mail delivery (failed|failure|problem|system|error)|"
    r"could not be delivered|non[- ]?delivery|nondeliverable|return(?:ed|ing) to sender|not delivered|"
    r"mail failed|"
    r"delivery[ _]failure|mail system error|permanent error|unzustellbar|non remis|no entregado|"
    r"niet bezorgd|non recapitabile|mail failure|bounce|rejected|failed delivery|message blocked|"
    r"delivery report|unable to deliver|could not send|returned message|delivery notification|"
    r"message you sent|mail returned|nicht zustellbar|error sending",
)
BOUNCE_BODY = Caseless(
    r"could not be delivered|was not delivered|wasn'?t delivered|has not been delivered|"
    r"permanent (error|failure|fatal)|delivery to the following recipients? (failed|was unsuccessful)|"
    r"unable to deliver|couldn'?t be delivered|following address(es)? failed|did not reach|"
    r"undeliverable|delivery has failed|user unknown|unknown user|no such user|"
    r"not able to deliver|wasn'?t able to deliver|could not deliver|cannot be delivered|"
    r"delivery failed|failed to deliver|message was rejected|rejected your message|"
    r"error delivering|recipient address rejected|mailbox (is )?(full|unavailable)|"
    r"returned to (the )?sender|delivery (attempt|problem)|transcript of session|"
    r"no longer (active|valid|available)|does not exist|blocked|refused|failed addresses|"
    r"this is an automatically generated delivery status notification|"
    r"mail delivery (software|system|subsystem)|message could not be sent|"
    r"konnte nicht zugestellt|non (è|e) stato (possibile )?recapit|ne peut pas|n'a pas pu|"
    r"no se pudo entregar|не может быть доставлено|送信できません|届きません",
)
_MAX_LINE = 2000  # characters of one line searched for addresses (bounds the regex work)
_HEADERISH = re.compile(r"^\s*(to|from|cc|bcc|sender|reply-to|return-path|subject|date|message-id)\s*:", re.I)
_A = ADDRESS.pattern
_STRONG = (
    re.compile(rf"^\s*[<\"']?({_A})[>\"']?\s*:?\s*$"),
    re.compile(rf"^\s*<({_A})>"),
    re.compile(rf"^\s*(?:\d+\.\s*|\*\s*|-\s*)?({_A})\b(?:\s*(?:\(|\.\.\.|:|on |<|\[|-|was|is|has))"),
    re.compile(rf"RCPT TO:?\s*<?({_A})", re.I),
    re.compile(
        rf"\b(?:to|for|recipient|recipients|address|addressee|user|mailbox)\b:?\s*[<\"'(\[]?({_A})", re.I
    ),
    re.compile(rf"<({_A})>\.\.\.", re.I),
)


# Phrases only bounces use: one of them counts as two signs.
STRONG_BODY = Caseless(
    r"could not be delivered to|following address(?:es)? failed|wasn'?t able to deliver your message|"
    r"did not reach the following recipient|delivery to the following recipients? failed permanently|"
    r"error has occurred while attempting to deliver|permanent fatal errors|"
    r"message could not be delivered to|unable to deliver your message to the following|"
    r"undeliverable to the following|delivery has failed to these recipients",
)


def is_system(addr: str) -> bool:
    """The mail system's own address (never the failed recipient; postmaster@ can be one)."""
    local = addr.split("@", 1)[0]
    return local.startswith("mailer-daemon") or local in ("mailer_daemon", "mail-daemon", "mailerdaemon")


def signals(ctx: Context) -> int:
    score = 0
    frm = ctx.from_.lower()
    if ctx.from_local in SYSTEM_LOCALS or any(
        w in frm for w in ("mailer-daemon", "mailer daemon", "mail delivery", "postmaster", "post_master")
    ):
        score += 1
    if BOUNCE_SUBJECT.search(ctx.subject):
        score += 1
    head = ctx.report[:20000]
    if STRONG_BODY.search(head):
        score += 2
    elif BOUNCE_BODY.search(head):
        score += 1
    return score


def candidates(ctx: Context, text: str) -> list[str]:
    """Failed-recipient addresses named in recipient-like positions of the report text."""
    strong: list[str] = []
    for line in text.splitlines()[:3000]:
        line = line[:_MAX_LINE]
        if "@" not in line or _HEADERISH.match(line):
            continue
        for pattern in _STRONG:
            for m in pattern.finditer(line):
                a = m.group(1).strip(".").lower()
                if a not in strong and not is_system(a):
                    strong.append(a)
    # The sender's own addresses are named in bounces too ("your message from …"); drop them unless
    # they are all there is (a message someone sent to themselves).
    others = [a for a in strong if a not in ctx.exclude]
    return others or strong


def extract(ctx: Context, text: str, permanent: bool | None = True) -> list[tuple[str, str]]:
    """(address, its diagnostic lines) pairs for the candidates of a report text."""
    failed = [a.strip().lower() for a in addresses(ctx.header("x-failed-recipients"))]
    found = failed or candidates(ctx, text)
    if not found:
        found = [a for a in addresses(text[:20000]) if a not in ctx.exclude and not is_system(a)]
    if not found and ctx.original_to:
        # Nothing named in the report: the returned original's To is the best remaining guess.
        found = [a for a in addresses(ctx.original_to) if not is_system(a)][:20]
    if not found:
        return []
    blocks = dict(per_address_blocks(text, found))
    return [(a, blocks.get(a, "")) for a in found]


def detect(ctx: Context) -> Detection | None:
    if signals(ctx) < 2:
        return None
    pairs = extract(ctx, ctx.report)
    if not pairs:
        return None
    delay = bool(DELAY.search(ctx.subject))
    recips = [recipient(a, diag or ctx.report[:3000], permanent=not delay) for a, diag in pairs]
    return Detection(family=FAMILY, recipients=recips, kind="delay" if delay else "failure")
