"""The one collector interface that ``audit`` and every single-source command share.

A collector is built from the site's settings (site.toml, or the same settings parsed from command
line arguments), touches the world once in :meth:`Collector.collect`, and returns observations.
Collectors run in order and may pass facts forward through one :class:`Context` (the directory's
sample of valid addresses becomes the probes' controls; the probes' MX addresses become the DATA
probes' targets).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from auditor.model import Observation
from auditor.observations.postfix import PostfixConfig


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class Context:
    """Facts one collector hands to the next, and where collectors report what they are doing."""

    controls: list[str] = field(default_factory=list)
    probe_results: list[Observation] = field(default_factory=list)
    trusted_networks: list[str] = field(default_factory=list)
    postfix_configs: list[PostfixConfig] = field(default_factory=list)
    progress: Callable[[str], None] = _stderr
    # Resources a collector opens before any probe is sent (a bounce sink), closed after the run.
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


class Collector:
    """Touch the world, return observations; never judge.

    ``name`` is what progress lines and gap findings call it; ``families`` the rule families it
    feeds (a collector that could not finish names them in its inconclusive gap finding).
    """

    name: str = ""
    families: tuple[str, ...] = ()

    def prepare(self, ctx: Context) -> None:
        """Checks and set-up before *any* collector runs (an error here sends no probe at all)."""

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        """Observations; ``remaining`` is the seconds left in the run's time bound."""
        raise NotImplementedError


class FunctionCollector(Collector):
    """A collector from a plain function of the seconds left (tests, one-off sources)."""

    def __init__(
        self, name: str, families: tuple[str, ...], run: Callable[[float], Sequence[Observation]]
    ) -> None:
        self.name, self.families, self._run = name, families, run

    def collect(self, ctx: Context, remaining: float) -> Sequence[Observation]:
        return self._run(remaining)
