"""A Postfix queue snapshot from ``postqueue -j``: null-sender mail waiting is backscatter in flight.

``postqueue -j`` prints one JSON object per queued message (Postfix ≥ 3.1): ``queue_name``,
``queue_id``, ``arrival_time``, ``sender`` (the null sender as ``empty_address_recipient``, by
default ``MAILER-DAEMON``), ``recipients`` (``address``, ``delay_reason``). Read from
a file (``-`` for stdin) or run live with ``postqueue -c DIR -j`` under a timeout. A line that is
not such an object is counted and reported, never fatal.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Iterable

from auditor.collect.logs.files import Input, LineReader
from auditor.model import InputError
from auditor.observations.logs import LogLine, PostfixQueueSnapshot, QueuedNotification

MAX_EXAMPLES = 10
MAX_SKIPPED = 20
DOMAIN_CAP = 200
MAX_QUEUE_LINE = 1 << 20
POSTQUEUE_TIMEOUT = 60.0
# showq prints the null sender as empty_address_recipient (default MAILER-DAEMON), not as "".
NULL_SENDER_NAME = "MAILER-DAEMON"


def _domain(address: str) -> str:
    at = address.rfind("@")
    return address[at + 1 :].lower() if at >= 0 else "(no domain)"


def _snapshot(
    lines: Iterable[tuple[int, bytes]],
    source: str,
    *,
    complete: bool,
    error: str = "",
    null_senders: frozenset[str] = frozenset(("", NULL_SENDER_NAME)),
) -> PostfixQueueSnapshot:
    messages = null_all = null_deferred = skipped = 0
    skipped_examples: list[LogLine] = []
    by_domain: dict[str, int] = {}
    domains: set[str] = set()
    domains_overflow = False
    oldest = 0
    examples: list[QueuedNotification] = []
    for lineno, raw in lines:
        if not raw.strip():
            continue
        try:
            if len(raw) >= MAX_QUEUE_LINE:
                raise ValueError("line too long")
            doc = json.loads(raw)
            if not isinstance(doc, dict) or not isinstance(doc.get("queue_id"), str):
                raise ValueError("not a postqueue -j message object")
            sender = doc.get("sender", None)
            rcpts = doc.get("recipients") or []
            if not isinstance(sender, str) or not isinstance(rcpts, list):
                raise ValueError("sender or recipients missing")
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            skipped += 1
            if len(skipped_examples) < MAX_SKIPPED:
                skipped_examples.append(LogLine(source, lineno, str(exc)[:120]))
            continue
        messages += 1
        if sender not in null_senders:
            continue
        null_all += 1
        if doc.get("queue_name") != "deferred":
            continue
        null_deferred += 1
        addrs = [
            r.get("address", "") for r in rcpts if isinstance(r, dict) and isinstance(r.get("address"), str)
        ]
        for a in addrs:
            d = _domain(a)
            if len(domains) < 100_000:
                domains.add(d)
            else:
                domains_overflow = True
            if d in by_domain:
                by_domain[d] += 1
            elif len(by_domain) < DOMAIN_CAP:
                by_domain[d] = 1
            else:
                by_domain["other"] = by_domain.get("other", 0) + 1
        arrival = doc.get("arrival_time")
        if isinstance(arrival, int) and arrival > 0 and (oldest == 0 or arrival < oldest):
            oldest = arrival
        if len(examples) < MAX_EXAMPLES:
            first = rcpts[0] if rcpts and isinstance(rcpts[0], dict) else {}
            examples.append(
                QueuedNotification(
                    queue_id=str(doc["queue_id"]),
                    queue_name="deferred",
                    arrival_time=arrival if isinstance(arrival, int) else 0,
                    recipients=tuple(addrs[:5]),
                    reason=str(first.get("delay_reason", ""))[:300],
                )
            )
    note = " (at least; too many to count exactly)" if domains_overflow else ""
    return PostfixQueueSnapshot(
        target=source,
        source=source,
        complete=complete,
        error=error + note,
        messages=messages,
        null_sender_messages=null_all,
        null_sender_deferred=null_deferred,
        null_sender_domains=len(domains),
        by_domain=dict(sorted(by_domain.items(), key=lambda kv: (-kv[1], kv[0]))),
        oldest_arrival=oldest,
        taken_at=int(time.time()),
        skipped_lines=skipped,
        skipped_examples=tuple(skipped_examples),
        examples=tuple(sorted(examples, key=lambda e: e.arrival_time)),
    )


def collect_postfix_queue(
    path: str | None = None, *, live_dir: str | None = None, timeout: float = POSTQUEUE_TIMEOUT
) -> PostfixQueueSnapshot:
    """Read ``postqueue -j`` output from PATH (``-``: stdin), or run it against LIVE_DIR."""
    if live_dir is not None:
        cmd = ["postqueue", "-c", live_dir, "-j"]
        source = f"postqueue -c {live_dir} -j"
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise InputError("postqueue is not installed (needed for --queue-live)") from None
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            return _snapshot(
                enumerate(out.splitlines(), 1),
                source,
                complete=False,
                error=f"postqueue timed out after {timeout:.0f} s",
            )
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            return _snapshot(
                [], source, complete=False, error=f"postqueue exit {proc.returncode}: {' '.join(err)[:300]}"
            )
        return _snapshot(enumerate(proc.stdout.splitlines(), 1), source, complete=True)
    if path is None:
        raise InputError("no queue snapshot given")
    if path != "-" and not os.path.isfile(path):
        raise InputError("not a readable file", path)
    reader = LineReader(Input(path, None), max_line=MAX_QUEUE_LINE)
    snap = _snapshot(reader, "stdin" if path == "-" else path, complete=True)
    if reader.error:
        return dataclasses.replace(snap, complete=False, error=reader.error)
    return snap
