"""Arbitrary text as main.cf/master.cf/table: a config or an InputError, never a traceback or hang."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.collect.postfix import collect
from auditor.model import InputError
from tests.unit.postfix.helpers import write_config

SYNTAX = st.text(alphabet="ab_${}()?:=<>!#%@/\\[]-o,. \t\n\r1x", max_size=300)


@settings(max_examples=300, deadline=None)
@given(main=SYNTAX, master=st.one_of(st.none(), SYNTAX), table=SYNTAX)
def test_arbitrary_text_never_crashes(main: str, master: str | None, table: str) -> None:
    main += "\nrelay_recipient_maps = regexp:/etc/postfix/t, hash:t\nmyhostname = h.example\n"
    with tempfile.TemporaryDirectory() as tmp:
        write_config(Path(tmp), main, master, t=table)
        try:
            cfg = collect(tmp, use_postconf=False)
        except InputError as err:
            assert err.path is not None and tmp in err.path
            assert "\n" not in str(err)
            return
        for pv in cfg.params.values():
            assert isinstance(pv.value, str) and "\n" not in pv.value
