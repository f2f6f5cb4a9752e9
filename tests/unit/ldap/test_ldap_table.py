"""ldap_table(5) parsing and Postfix-equivalent query expansion (no server)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.collect.ldap.collect import check_filter
from auditor.collect.postfix.ldap_table import (
    REDACTED,
    domain_allows,
    expand_template,
    format_result,
    lookup,
    parse_ldap_table,
    read_bind_pw,
)
from auditor.model import InputError
from auditor.observations.postfix import LdapMapCheck
from auditor.serialize import to_jsonable

MAP = """# relay recipients
server_host = ldap://ldap1.example.test:389
    ldaps://ldap2.example.test, ldap3.example.test:1389
search_base = ou=people,dc=example,dc=test
query_filter = (|(mail=%s)(mailLocalAddress=%s))
result_attribute = mail, maildrop
special_result_attribute = member
domain = example.test, example.org
scope = one
bind_dn = cn=postfix,dc=example,dc=test
bind_pw = S3cr3t-pw
start_tls = yes
version = 3
tls_require_cert = yes
frobnicate = 1
"""


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "ldap-relay.cf"
    p.write_text(text)
    return str(p)


def test_parse_fields_and_redaction(tmp_path: Path) -> None:
    path = _write(tmp_path, MAP)
    t = parse_ldap_table(path)
    assert t.server_hosts == (
        "ldap://ldap1.example.test:389",
        "ldaps://ldap2.example.test",
        "ldap3.example.test:1389",
    )
    assert t.result_attribute == ("mail", "maildrop")
    assert t.special_result_attribute == ("member",)
    assert t.domain == ("example.test", "example.org")
    assert (t.scope, t.start_tls, t.version, t.tls_require_cert) == ("one", True, 3, True)
    assert t.bind_pw == REDACTED
    assert t.unknown == ("frobnicate",)
    assert t.lines["query_filter"] == 5
    # the secret appears nowhere in the parsed object or its JSON
    assert "S3cr3t" not in repr(t)
    assert "S3cr3t" not in json.dumps(to_jsonable(LdapMapCheck(target="x", table=t)))
    assert read_bind_pw(path) == "S3cr3t-pw"


def test_defaults(tmp_path: Path) -> None:
    t = parse_ldap_table(_write(tmp_path, "search_base = dc=x\n"))
    assert t.server_hosts == ("localhost",)
    assert t.query_filter == "(mailacceptinggeneralid=%s)"
    assert t.result_attribute == ("maildrop",)
    assert t.version == 2 and t.bind_pw == ""


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("search_base = dc=x\nthis line has no equals\n", 2, "expected 'name = value'"),
        ("  leading continuation\n", 1, "continuation"),
        ("timeout = soon\n", 1, "not a number"),
        ("scope = everything\n", 1, "scope"),
        ("search_base = dc=x\nserver_host = ldap1 http://ldap2\n", 2, "server_host"),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as err:
        parse_ldap_table(path)
    assert err.value.path == path and err.value.line == line
    assert fragment in err.value.message


def test_missing_file() -> None:
    with pytest.raises(InputError):
        parse_ldap_table("/nonexistent/ldap.cf")


@pytest.mark.parametrize(
    ("template", "key", "expected"),
    [
        ("(mail=%s)", "alice@example.test", "(mail=alice@example.test)"),
        ("(uid=%u)", "alice@example.test", "(uid=alice)"),
        ("(uid=%u)", "alice", "(uid=alice)"),  # no domain: %u is the whole key
        ("(uid=%u)", "@example.test", None),  # empty local part: suppressed
        ("(dc=%d)", "alice", None),  # no domain: suppressed
        ("(dc=%d)", "alice@", None),
        ("(&(dc=%2)(dc=%1))", "a@example.test", "(&(dc=example)(dc=test))"),
        ("(dc=%3)", "a@example.test", None),  # too few labels
        ("(dc=%2)", "a@.test", None),  # empty label
        ("(mail=%S)(u=%U)(d=%D)", "a@b.test", "(mail=a@b.test)(u=a)(d=b.test)"),
        ("(mail=%s)100%%", "a@b.test", "(mail=a@b.test)100%"),
        ("(mail=%s)", "bsa-*)(x=*\\@b.test", "(mail=bsa-\\2a\\29\\28x=\\2a\\5c@b.test)"),
    ],
)
def test_expand_query(template: str, key: str, expected: str | None) -> None:
    assert expand_template(template, key) == expected


def test_expand_search_base_quotes_dn_specials() -> None:
    assert expand_template("uid=%u,ou=x", "a+b,c@x.test", "dn") == "uid=a\\2Bb\\2Cc,ou=x"


def test_invalid_template() -> None:
    with pytest.raises(ValueError):
        expand_template("(mail=%x)", "a@b")


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("%s", "alice@example.test", "alice@example.test"),
        ("%u", "alice@example.test", "alice"),
        ("%d", "alice", None),  # value without domain
        ("%u", "@example.test", None),
        ("OK", "anything", "OK"),
        ("%U via %s", "alice@x.test", "key via alice@x.test"),
        ("%s", "", None),
    ],
)
def test_result_format(fmt: str, value: str, expected: str | None) -> None:
    assert format_result(fmt, value, "key@k.test") == expected


def test_domain_restriction(tmp_path: Path) -> None:
    t = parse_ldap_table(_write(tmp_path, MAP))
    assert domain_allows(t, "a@example.test") is True
    assert domain_allows(t, "a@other.test") is False
    assert domain_allows(t, "@example.test") is False  # @domain keys are never queried
    assert domain_allows(t, "alice") is False
    r = lookup(t, "a@other.test", None)
    assert not r.queried and "domain" in r.note
    r = lookup(t, "A@Example.Test", None)  # key folded to lower case, then queried
    assert r.queried and r.filter == "(|(mail=a@example.test)(mailLocalAddress=a@example.test))"
    t2 = parse_ldap_table(_write(tmp_path, "search_base = dc=x\ndomain = hash:/etc/postfix/domains\n"))
    assert domain_allows(t2, "a@example.test") is None


@pytest.mark.parametrize(
    ("ours", "postmap", "err", "expected"),
    [
        (("a@x",), "a@x", "", True),
        (None, None, "", True),
        (("a@x",), None, "", False),
        (None, "a@x", "", False),
        (("a@x", "b@x"), "b@x,a@x", "", True),
        (("a@x",), "", "", None),  # postmap not run
        (("a@x",), "", "postmap timed out", None),
    ],
)
def test_agreement(
    ours: tuple[str, ...] | None, postmap: str | None, err: str, expected: bool | None
) -> None:
    c = LdapMapCheck(target="t", result=ours, postmap_result=postmap, postmap_error=err)
    assert c.agrees is expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_escaped_key_is_one_literal_filter_value(key: str) -> None:
    """Whatever the key holds (*, (, ), \\, NUL, …), the expanded filter is one equality match on it."""
    flt = expand_template("(mail=%s)", key)
    assert flt is not None
    assert flt.startswith("(mail=") and flt.endswith(")")
    body = flt[len("(mail=") : -1]
    assert not any(c in body for c in "*()\x00")  # every metacharacter is hex-escaped
    assert re.sub(r"\\([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), body) == key
    check_filter(flt)  # ldap3 accepts it as a well-formed filter


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([*"ab =#\n\t%sud@()*,:/.", "server_host", "bind_pw", "scope", "timeout"])))
def test_parser_never_crashes(parts: list[str]) -> None:
    text = "".join(parts)
    with tempfile.NamedTemporaryFile("w", suffix=".cf", delete=False) as fh:
        fh.write(text)
    try:
        parse_ldap_table(fh.name)
    except InputError as err:
        assert err.path == fh.name
    finally:
        os.unlink(fh.name)
