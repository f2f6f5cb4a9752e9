"""One run, one report: run the collectors in order, judge, and keep what was not measured.

``audit`` and every single-source command run their collectors here. A collector that fails, is
interrupted (Ctrl-C, or SIGTERM from ``timeout``, CI cancellation or systemd) or runs past the time
bound does not lose the rest: it becomes an :class:`AuditGap` observation, the report is marked
partial, and the gap rule turns every gap into an ``inconclusive`` finding — never a silent pass.
After the first interrupt further ones are ignored until the partial report is written.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType

from auditor.collect.base import Collector, Context
from auditor.config import SiteConfig
from auditor.judge import build_report, now_iso
from auditor.model import InputError, Observation, Report
from auditor.observations.audit import AuditGap
from auditor.progress import Progress


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: stop collecting, keep what was measured."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "by the user (Ctrl-C)", signal.SIGTERM: "by SIGTERM"}


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    shield()  # a second Ctrl-C must not cut the partial report short
    raise Interrupted(_NAMES.get(signal.Signals(signum), f"by signal {signum}"))


@contextlib.contextmanager
def interrupts() -> Iterator[None]:
    """Within: SIGTERM acts like Ctrl-C; the handlers before are restored on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def shield() -> None:
    """Ignore Ctrl-C and SIGTERM from now on (the report is being written; :func:`interrupts` restores)."""
    if threading.current_thread() is threading.main_thread():
        for s in _SIGNALS:
            if signal.getsignal(s) is _on_signal:
                signal.signal(s, signal.SIG_IGN)


def _run_collector(collector: Collector, ctx: Context, remaining: float) -> tuple[list[Observation], str]:
    """Run a collector in a worker thread bounded by ``remaining`` seconds: (observations, gap reason)."""
    result: list[Observation] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.extend(collector.collect(ctx, remaining))
        except BaseException as exc:  # reported as a gap below; InputError is re-raised
            error.append(exc)

    worker = threading.Thread(target=work, name=f"collector-{collector.name}", daemon=True)
    worker.start()
    # Join in short slices: a Ctrl-C delivered to another thread is only seen when the main thread
    # wakes up, and the user should not wait for the whole collector to see it take effect.
    deadline = time.monotonic() + max(0.0, remaining)
    while worker.is_alive() and time.monotonic() < deadline:
        worker.join(timeout=min(0.25, max(0.0, deadline - time.monotonic())))
    if worker.is_alive():
        return result, f"not finished within the audit's time bound ({remaining:.0f} s left)"
    if error:
        exc = error[0]
        if isinstance(exc, (InputError, KeyboardInterrupt)):
            raise exc
        return result, f"{type(exc).__name__}: {exc}"
    return result, ""


def run_audit(
    cfg: SiteConfig,
    collectors: Sequence[Collector],
    *,
    command: str,
    progress: Progress | None = None,
    time_bound: float | None = None,
    scope: Sequence[str] | None = None,
    inputs: Sequence[str] | None = None,
    announce: bool = True,
) -> Report:
    """Prepare every collector, run them in order within the time bound; an interrupt keeps what was measured.

    ``scope`` and ``inputs`` (for the report's run metadata) default to site.toml's domains and
    files. Preparing happens before any collector runs, so a bad setting sends no probe at all.
    ``announce=False`` (single-source commands) leaves out the per-collector start and count lines;
    what was not measured is always said.
    """
    progress = progress or Progress()
    task = progress.task("audit", total=len(collectors)) if announce else None
    started = now_iso()
    deadline = time.monotonic() + (time_bound if time_bound is not None else cfg.probe.audit_timeout)
    ctx = Context(progress=progress)
    observations: list[Observation] = []
    notes: list[str] = []
    partial = False
    pending = list(collectors)
    with ctx.resources:
        for c in collectors:
            c.prepare(ctx)
        try:
            while pending:
                collector = pending[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if announce:
                    progress(f"{collector.name} …")
                t0 = time.monotonic()
                obs, gap = _run_collector(collector, ctx, remaining)
                observations.extend(obs)
                pending.pop(0)
                if gap:
                    partial = True
                    observations.append(AuditGap(collector.name, collector.name, gap, collector.families))
                    # Said whatever the progress setting: a gap is part of the result, not progress.
                    progress.done()
                    print(f"[audit] {collector.name}: not measured ({gap})", file=sys.stderr)
                elif announce:
                    progress(f"{collector.name}: {len(obs)} observations in {time.monotonic() - t0:.1f} s")
                if task is not None:
                    task.advance(1, collector.name)
        except KeyboardInterrupt as exc:
            shield()
            partial = True
            how = exc.how if isinstance(exc, Interrupted) else "by the user (Ctrl-C)"
            notes.append(f"interrupted {how}")
            if pending:
                c = pending.pop(0)
                observations.append(AuditGap(c.name, c.name, f"interrupted {how}", c.families))
        shield()  # from here on the report is built and written: interrupts wait
    for c in pending:
        partial = True
        reason = "interrupted before it ran" if notes else "the audit's time bound ran out before it ran"
        observations.append(AuditGap(c.name, c.name, reason, c.families))
    progress.done()
    if inputs is None:
        inputs = [cfg.path, *cfg.postfix.config_dirs, *cfg.exchange.exports, *cfg.ndr.paths]
    return build_report(
        observations,
        command=command,
        started=started,
        scope=cfg.site.domains if scope is None else scope,
        inputs=[i for i in inputs if i],
        partial=partial,
        notes=notes,
        site_name=cfg.site.name,
    )
