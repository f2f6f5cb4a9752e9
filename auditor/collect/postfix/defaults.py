"""Built-in Postfix defaults, from the data file scripts/gen_postfix_defaults.py wrote (``postconf -d``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from auditor import resources


@dataclass(frozen=True)
class Defaults:
    version: str
    values: dict[str, str]  # raw default expressions, e.g. "$myhostname, localhost.$mydomain, localhost"
    raw_parameters: frozenset[str]  # parameters Postfix does not $-expand (luser_relay, mailbox_command…)
    computed: frozenset[str]  # host-dependent defaults (myhostname, mydomain, mynetworks)
    stock_master_cf: tuple[str, ...]  # service lines of the stock master.cf


@lru_cache(maxsize=1)
def load_defaults() -> Defaults:
    text = resources.read_text("auditor.collect.postfix", "postfix_defaults.json")
    data = json.loads(text)
    return Defaults(
        version=str(data["postfix_version"]),
        values={str(k): str(v) for k, v in data["defaults"].items()},
        raw_parameters=frozenset(data["raw_parameters"]),
        computed=frozenset(data["computed"]),
        stock_master_cf=tuple(data["stock_master_cf"]),
    )
