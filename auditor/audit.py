"""One audit, one report: run every collector site.toml configures, judge, and keep what was not measured.

Each collector is a *stage*. A stage that fails, is interrupted (Ctrl-C) or runs past the audit's time
bound does not lose the rest: it becomes an :class:`AuditGap` observation, the report is marked
partial, and the gap rule turns every gap into an ``inconclusive`` finding — never a silent pass.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from auditor.config import SiteConfig
from auditor.judge import build_report, now_iso
from auditor.model import InputError, Observation, Report
from auditor.observations.audit import AuditGap


@dataclass(frozen=True)
class Stage:
    name: str
    families: tuple[str, ...]  # rule families this stage feeds (named in the gap finding)
    run: Callable[[float], Sequence[Observation]]  # argument: seconds left in the audit


class Progress:
    """Progress on stderr: a live line on a terminal, plain lines otherwise (CI logs)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream: TextIO = stream or sys.stderr
        self.live = self.stream.isatty()
        self._width = 0

    def __call__(self, message: str) -> None:
        out = self.stream
        if self.live:
            text = f"\r[audit] {message}"[:200]
            pad = max(0, self._width - len(text))
            out.write(text + " " * pad)
            self._width = len(text)
        else:
            out.write(f"[audit] {message}\n")
        out.flush()

    def done(self) -> None:
        if self.live and self._width:
            self.stream.write("\n")
            self._width = 0


def _run_stage(stage: Stage, remaining: float) -> tuple[list[Observation], str]:
    """Run a stage in a worker thread bounded by ``remaining`` seconds: (observations, gap reason)."""
    result: list[Observation] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.extend(stage.run(remaining))
        except BaseException as exc:  # reported as a gap below; InputError is re-raised
            error.append(exc)

    worker = threading.Thread(target=work, name=f"stage-{stage.name}", daemon=True)
    worker.start()
    # Join in short slices: a Ctrl-C delivered to another thread is only seen when the main thread
    # wakes up, and the user should not wait for the whole stage to see it take effect.
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
    stages: Sequence[Stage],
    *,
    command: str,
    progress: Progress | None = None,
    time_bound: float | None = None,
) -> Report:
    """Run the stages in order within the time bound; Ctrl-C keeps what was measured."""
    progress = progress or Progress()
    started = now_iso()
    deadline = time.monotonic() + (time_bound if time_bound is not None else cfg.probe.audit_timeout)
    observations: list[Observation] = []
    notes: list[str] = []
    partial = False
    pending = list(stages)
    try:
        while pending:
            stage = pending[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            progress(f"{stage.name} …")
            t0 = time.monotonic()
            obs, gap = _run_stage(stage, remaining)
            observations.extend(obs)
            pending.pop(0)
            if gap:
                partial = True
                observations.append(AuditGap(stage.name, stage.name, gap, stage.families))
                progress(f"{stage.name}: not measured ({gap})")
            else:
                progress(f"{stage.name}: {len(obs)} observations in {time.monotonic() - t0:.1f} s")
    except KeyboardInterrupt:
        partial = True
        notes.append("interrupted by the user (Ctrl-C)")
        if pending:
            stage = pending.pop(0)
            observations.append(AuditGap(stage.name, stage.name, "interrupted by the user", stage.families))
    for stage in pending:
        partial = True
        reason = "interrupted before it ran" if notes else "the audit's time bound ran out before it ran"
        observations.append(AuditGap(stage.name, stage.name, reason, stage.families))
    progress.done()
    inputs = [*cfg.postfix.config_dirs, *cfg.exchange.exports, *cfg.ndr.paths]
    return build_report(
        observations,
        command=command,
        started=started,
        scope=cfg.site.domains,
        inputs=[cfg.path, *inputs],
        partial=partial,
        notes=notes,
    )
