"""Recipient-validation tables: resolution in a copied config, wildcards, match-all patterns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.collect.postfix import LookupTable, PostfixConfig, collect
from auditor.observations.postfix import split_list
from tests.conftest import need_tool
from tests.unit.postfix.helpers import write_config

MAIN = """\
myhostname = mx.example.org
mydestination = localhost
virtual_mailbox_domains = example.com, example.net
relay_domains = relay.example
relay_recipient_maps = hash:/etc/postfix/relay_recipients
virtual_alias_maps = proxy:hash:/etc/postfix/virtual, regexp:/etc/postfix/virtual.regexp,
    pcre:$config_directory/catchall.pcre
virtual_mailbox_maps = ldap:/etc/postfix/ldap-mailboxes.cf, static:OK,
    inline:{ a@example.com=ok, @example.net=b }
local_recipient_maps = proxy:unix:passwd.byname $alias_maps
smtpd_recipient_restrictions = check_recipient_access lmdb:/srv/elsewhere/rcpt_access, permit_mynetworks
"""
RELAY = "# relay recipients\nalice@relay.example OK\n@relay.example   OK\nbob@relay.example OK\n"
VIRTUAL = "info@example.com alice\n@example.com catchall@example.com\n"
REGEXP = "/^postmaster@/ postmaster\n/@example\\.net$/ everyone@example.net\nif /^x/\n/y/ z\nendif\n"
PCRE = "/^(a+)+$/ nested\n/^(.|.)*Z$/ risky\n/./ anything\n"
ACCESS = "spam@example.com REJECT\n"


def make(tmp_path: Path, main: str = MAIN) -> Path:
    return write_config(
        tmp_path,
        main,
        "smtp inet n - y - - smtpd -o relay_recipient_maps=texthash:/etc/postfix/relay_recipients\n",
        relay_recipients=RELAY,
        virtual=VIRTUAL,
        **{"virtual.regexp": REGEXP, "catchall.pcre": PCRE, "rcpt_access": ACCESS},
    )


def by_spec(cfg: PostfixConfig) -> dict[str, LookupTable]:
    return {t.spec: t for t in cfg.tables}


def test_tables_are_found_and_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditor.collect.postfix.tables._find_postmap", lambda: None)
    d = make(tmp_path)
    cfg = collect(str(d), use_postconf=False)
    t = by_spec(cfg)

    relay = t["hash:/etc/postfix/relay_recipients"]
    assert relay.readable and relay.entries == 3
    assert relay.resolved_path == str(d / "relay_recipients")
    assert [e.key for e in relay.wildcard_entries] == ["@relay.example"]
    assert relay.wildcard_entries[0].location.line == 3
    assert relay.random_lookup == "OK"  # the @domain wildcard answers for a random address
    assert relay.used_by == ("relay_recipient_maps",)

    virt = t["proxy:hash:/etc/postfix/virtual"]
    assert virt.type == "hash" and virt.entries == 2 and virt.random_lookup == "catchall@example.com"

    rx = t["regexp:/etc/postfix/virtual.regexp"]
    assert [e.key for e in rx.match_all_entries] == ["/@example\\.net$/"]
    assert rx.random_lookup == "everyone@example.net"

    pcre = t["pcre:/etc/postfix/catchall.pcre"]  # $config_directory expanded, then resolved
    assert [e.key for e in pcre.match_all_entries] == ["/./"]
    # every pattern runs with a time budget: (a+)+ is evaluated; one that backtracks for ever is not
    assert [(e.key, e.location.line) for e in pcre.unevaluated if e.location] == [("/^(.|.)*Z$/", 2)]
    assert "more than" in pcre.unevaluated[0].note and pcre.looked_up_with == "parser"
    assert any("not evaluated" in n and "(.|.)*Z" in n for n in cfg.notes)

    static = t["static:OK"]
    assert static.match_all_entries and static.random_lookup == "OK"

    inline = next(v for k, v in t.items() if k.startswith("inline:"))
    assert inline.entries == 2 and [e.key for e in inline.match_all_entries] == ["@example.net"]

    ldap = t["ldap:/etc/postfix/ldap-mailboxes.cf"]
    assert not ldap.readable and ldap.error == "" and ldap.random_lookup == ""

    access = t["lmdb:/srv/elsewhere/rcpt_access"]  # found by basename
    assert access.readable and access.used_by == ("smtpd_recipient_restrictions",)

    svc = t["texthash:/etc/postfix/relay_recipients"]
    assert svc.used_by == ("smtp/inet/relay_recipient_maps",)
    assert "proxy:unix:passwd.byname" in t and not t["proxy:unix:passwd.byname"].readable


def test_missing_table_source_is_an_error_not_a_pass(tmp_path: Path) -> None:
    write_config(tmp_path, "virtual_mailbox_maps = hash:/etc/postfix/nothere\nmyhostname = x\n")
    cfg = collect(str(tmp_path), use_postconf=False)
    (t,) = cfg.tables_for("virtual_mailbox_maps")
    assert not t.readable and "not found" in t.error and t.random_lookup == ""


def test_table_path_cannot_escape_the_directory(tmp_path: Path) -> None:
    outside = tmp_path / "secret_table"
    outside.write_text("x@y OK\n")
    d = write_config(tmp_path / "cfg", "relay_recipient_maps = hash:../secret_table\nmyhostname = x\n")
    cfg = collect(str(d), use_postconf=False)
    (t,) = cfg.tables_for("relay_recipient_maps")
    assert t.resolved_path is None or Path(t.resolved_path).resolve().parent == d.resolve()


def test_unreadable_table_source(tmp_path: Path) -> None:
    d = write_config(tmp_path, "relay_recipient_maps = hash:/etc/postfix/bin\nmyhostname = x\n")
    (d / "bin").write_bytes(b"\x00\x01binary")
    cfg = collect(str(d), use_postconf=False)
    (t,) = cfg.tables_for("relay_recipient_maps")
    assert not t.readable and "binary" in t.error


def test_postmap_lookup_on_a_copy(tmp_path: Path) -> None:
    need_tool("postmap")
    d = make(tmp_path)
    before = sorted(os.listdir(d))
    cfg = collect(str(d), use_postconf=False)
    assert sorted(os.listdir(d)) == before  # nothing written into the linted directory
    t = by_spec(cfg)
    assert t["hash:/etc/postfix/relay_recipients"].random_lookup == "OK"
    assert t["regexp:/etc/postfix/virtual.regexp"].random_lookup == "everyone@example.net"
    assert t["pcre:/etc/postfix/catchall.pcre"].random_lookup == "anything"
    strict = write_config(
        tmp_path / "strict",
        "relay_recipient_maps = hash:rr\nrelay_domains = r.example\n",
        rr="a@r.example OK\n",
    )
    (rr,) = collect(str(strict), use_postconf=False).tables_for("relay_recipient_maps")
    assert rr.readable and rr.random_lookup is None and rr.wildcard_entries == ()


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("a, b c,,d", ["a", "b", "c", "d"]),
        ("inline:{ a=1, b=2 }, hash:x", ["inline:{ a=1, b=2 }", "hash:x"]),
        ("", []),
    ],
)
def test_split_list(value: str, want: list[str]) -> None:
    assert split_list(value) == want
