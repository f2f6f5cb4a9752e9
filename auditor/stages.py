"""Build the audit's stages from site.toml: which collectors run, with which settings.

The glue between the configuration and each collector's own API; no judgement here.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.audit import Stage
from auditor.config import SiteConfig
from auditor.model import Observation


def postfix_stage(cfg: SiteConfig) -> Stage | None:
    dirs = [cfg.resolve(d) for d in cfg.postfix.config_dirs]
    if not dirs:
        return None

    def run(_remaining: float) -> Sequence[Observation]:
        from auditor.collect.postfix import collect

        return [collect(d) for d in dirs]

    return Stage("postfix lint", ("postfix",), run)


def exchange_stage(cfg: SiteConfig) -> Stage | None:
    files = [cfg.resolve(f) for f in cfg.exchange.exports]
    if not files:
        return None

    def run(_remaining: float) -> Sequence[Observation]:
        from auditor.collect import exchange

        return exchange.collect(files)

    return Stage("exchange lint", ("exchange",), run)


def build_stages(cfg: SiteConfig) -> list[Stage]:
    builders = (postfix_stage, exchange_stage)
    return [s for s in (b(cfg) for b in builders) if s is not None]
