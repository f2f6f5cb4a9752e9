"""Fuzz the Postfix readers: main.cf, master.cf, lookup tables and ldap_table(5) files.

Each parser takes arbitrary text built from the characters its syntax cares about and either
returns its result or raises InputError (one line, naming the file); nothing else escapes. Bounded:
a fixed number of examples per target, no example database written, inputs of a few hundred bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.collect.postfix.ldap_table import lookup, parse_ldap_table
from auditor.collect.postfix.maincf import parse_main_cf
from auditor.collect.postfix.mastercf import parse_master_cf
from auditor.collect.postfix.parse import parse_files
from auditor.collect.postfix.redact import Redactor, redact_dnsbl, redact_map_list
from auditor.collect.postfix.tables import _judge_rules, _read_indexed, _read_inline, _read_regex
from auditor.model import InputError

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MAIN_CHARS = "ab_=${}()?:!<>#%@/\\[]-.,x1 \t\n"
MASTER_CHARS = "abo_=-{}$ \t\n#%yn0123.:[]/"
TABLE_CHARS = "ab@./^$()[]|*+?{}!\\ix1 \t\n#"
LDAP_CHARS = "abs_=%()*,:/@ \t\n#0123"


def _text(chars: str, size: int = 400) -> st.SearchStrategy[str]:
    return st.text(alphabet=chars, max_size=size)


def _keywords(words: list[str], chars: str) -> st.SearchStrategy[str]:
    """Text that mixes real syntax words with noise, so the parsers get past their first checks."""
    piece = st.one_of(st.sampled_from(words), _text(chars, 12))
    return st.lists(piece, max_size=40).map("".join)


def _file(tmp: str, name: str, text: str) -> Path:
    path = Path(tmp) / name
    path.write_text(text, encoding="utf-8")
    return path


def _one_line(err: InputError, tmp: str) -> None:
    assert "\n" not in str(err)
    assert err.path is None or tmp in err.path or err.path.startswith(tmp)


MAIN_WORDS = [
    "relay_domains = ",
    "smtp_sasl_password_maps = inline:{ ",
    "static:",
    "x_bind_pw = ",
    "$relay_domains",
    "${a?{b}:{c}}",
    "${{$a} == {b}}",
    "$(",
    "\n  ",
    "\n",
    " = ",
    "reject_rbl_client ",
    ".dq.spamhaus.net",
]


@FUZZ
@given(text=_keywords(MAIN_WORDS, MAIN_CHARS))
def test_main_cf(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _file(tmp, "main.cf", text)
        try:
            main = parse_main_cf(path)
        except InputError as err:
            _one_line(err, tmp)
            return
        assert all("\n" not in a.raw for a in main.params.values())
        _file(tmp, "master.cf", "smtp inet n - n - - smtpd\n")
        try:
            parsed = parse_files(tmp)
        except InputError as err:
            _one_line(err, tmp)
            return
        redactor = Redactor(parsed.secret_flow)
        for pv in parsed.params.values():
            redactor.param(pv)


MASTER_WORDS = [
    "smtp inet n - n - - smtpd",
    "relay unix - - n - - smtp",
    " -o ",
    "-o{",
    "{ ",
    " }",
    "smtp_sasl_password_maps=static:u:p",
    "\n  ",
    "\n",
    "=",
]


@FUZZ
@given(text=_keywords(MASTER_WORDS, MASTER_CHARS))
def test_master_cf(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _file(tmp, "master.cf", text)
        try:
            master = parse_master_cf(path)
        except InputError as err:
            _one_line(err, tmp)
            return
        redactor = Redactor(set())
        for svc in master.services:
            assert len(svc.fields) == 8
            redactor.args(svc.args)


TABLE_WORDS = ["/^", "$/ OK\n", "@example.com OK\n", "if /", "endif\n", "(.+)+", "!/", "\n  ", "\n"]


@FUZZ
@given(text=_keywords(TABLE_WORDS, TABLE_CHARS))
def test_tables(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _file(tmp, "t", text)
        probes = [("bsa-0123456789abcdef@example.com", "example.com")]
        try:
            indexed = _read_indexed(path, text, True, "bsa-0123456789abcdef")
            regex = _read_regex(path, text, listed=True, evaluate=True)
        except InputError as err:
            _one_line(err, tmp)
            return
        assert indexed.count >= len(indexed.wildcards)
        verdict = _judge_rules(regex, probes)
        assert len(verdict.match_all) + len(verdict.unevaluated) <= len(regex.rules)
        _read_inline(text, True)
        redact_map_list(text)
        redact_dnsbl("postscreen_dnsbl_sites", text)


LDAP_WORDS = [
    "server_host = ",
    "ldap://u:p@h/",
    "query_filter = ",
    "(mail=%s)",
    "%u",
    "%d",
    "%1",
    "search_base = ",
    "domain = ",
    "scope = one",
    "timeout = 2",
    "\n  ",
    "\n",
]


@FUZZ
@given(text=_keywords(LDAP_WORDS, LDAP_CHARS))
def test_ldap_table(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _file(tmp, "ldap.cf", text)
        try:
            table = parse_ldap_table(str(path))
        except InputError as err:
            _one_line(err, tmp)
            return
        assert all("@" not in h.split("//", 1)[-1].split("/", 1)[0] for h in table.server_hosts if "://" in h)
        lookup(table, "user@example.com", None)  # no connection: only decides whether to query
