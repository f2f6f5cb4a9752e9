"""Secrets a Postfix config may hold never reach an observation, a report, a note or an error.

Each secret below is planted in one of the forms Postfix accepts; every output format of `lint
postfix` (through the CLI, with the real postconf and in parse-only mode) is searched for each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli import main
from auditor.collect.postfix import collect
from auditor.collect.postfix.ldap_table import check_map, parse_ldap_table
from auditor.collect.postfix.redact import redact_dnsbl, redact_map_list
from tests.conftest import need_tool
from tests.unit.postfix.helpers import write_config

FORMATS = ["text", "json", "sarif", "junit", "markdown", "html", "csv"]
DQS_KEY = "k3yk3yk3yk3yk3yk3yk3yk3yk3"  # 26 characters, the shape of a Spamhaus DQS key
DQS_KEY2 = "q9q9q9q9q9q9q9q9q9q9q9q9q9"
OTHER_KEY = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"

SECRETS = {
    "nested inline, second entry": "NestedSecret2",
    "nested inline, first entry": "NestedSecret1",
    "proxy:inline nested, second entry": "ProxySecret2",
    "indirection through a parameter": "IndirectSecret3",
    "legacy bind_pw with $!": "Secret4",  # notes quote the tail after "$!"
    "LDAP URL userinfo in main.cf": "UrlSecret5",
    "glued -o{...}": "GluedSecret6",
    "-o name=inline:{ ... } split by spaces": "SplitSecret7",
    "DQS key in reject_rbl_client": DQS_KEY,
    "DQS key in postscreen_dnsbl_sites": DQS_KEY2,
    "key-shaped label in postscreen_dnsbl_sites": OTHER_KEY,
    "classic bind_pw": "Sup3rS3cret-main",
}

MAIN_CF = f"""\
compatibility_level = 3.6
myhostname = mx.example.test
relay_domains = example.test
relay_recipient_maps = hash:/etc/postfix/relay_recipients
smtp_sasl_auth_enable = yes
lmtp_sasl_password_maps = inline:{{ {{[a.example.test]:587 = u1:NestedSecret1}},
    {{[b.example.test]:587 = u2:NestedSecret2}} }}
relay_creds = static:relayuser:IndirectSecret3
smtp_sasl_password_maps = $relay_creds
ldapsource_server_host = ldap://admin:UrlSecret5@127.0.0.1/
ldapsource_bind_dn = cn=postfix,dc=example,dc=test
ldapsource_bind_pw = Bind$!Secret4
other_bind_pw = Sup3rS3cret-main
alias_maps = $other_bind_pw
smtpd_recipient_restrictions = permit_mynetworks,
    reject_rbl_client {DQS_KEY}.zen.dq.spamhaus.net=127.0.0.[2..11],
    reject_unauth_destination
postscreen_dnsbl_sites = {DQS_KEY2}.zen.dq.spamhaus.net*3, {OTHER_KEY}.combined.mail.abusix.zone*2,
    zen.spamhaus.org*1
"""
MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
relay     unix  -       -       n       -       -       smtp
  -o{smtp_sasl_password_maps=static:u:GluedSecret6}
relay2    unix  -       -       n       -       -       smtp
  -o { lmtp_sasl_password_maps = proxy:inline:{ {[a]:587 = u1:ProxySecret1}, {[b]:587 = u2:ProxySecret2} } }
relay3    unix  -       -       n       -       -       smtp
  -o smtp_sasl_password_maps=inline:{ [smarthost]:587=user:SplitSecret7 }
"""
# A template line makes even a postconf run fall back to the parser: a directory of its own.
TEMPLATED_MAIN = """\
myhostname = mx.example.test
smtp_sasl_password_maps = static:{{ relay_user }}:TemplSecret8
"""
SECRETS_TEMPLATED = {"templated user": "TemplSecret8"}

# Inputs the parser refuses, each naming file, line and parameter but never the value.
ERRORS = {
    "missing '='": (
        "compatibility_level = 3.6\nmyhostname = x.example\nsmtp_sasl_password_maps static:user:EqSecret9\n",
        None,
        "main.cf:3:",
        "EqSecret9",
    ),
    "unclosed -o {": (
        "myhostname = x.example\n",
        "smtp inet n - n - - smtpd\nrelay unix - - n - - smtp\n"
        "  -o { smtp_sasl_password_maps = static:u:BraceSecret10\n",
        "master.cf:2:",
        "BraceSecret10",
    ),
    "truncated $(": (
        "myhostname = x.example\nsmtp_sasl_password_maps = static:u:$(TruncSecret11\n",
        None,
        "main.cf:2:",
        "TruncSecret11",
    ),
    "truncated $( in a flow parameter": (
        "myhostname = x.example\ncreds = static:u:${TruncSecret12\nsmtp_sasl_password_maps = $creds\n",
        None,
        "main.cf:",
        "TruncSecret12",
    ),
}


def _argv(d: Path, fmt: str, mode: str) -> list[str]:
    argv = ["lint", "postfix", str(d), "--format", fmt]
    return [*argv, "--no-postconf"] if mode == "parser" else argv


@pytest.mark.parametrize("mode", ["parser", "postconf"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_no_secret_in_any_format(
    tmp_path: Path, fmt: str, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if mode == "postconf":
        need_tool("postconf")
    d = write_config(tmp_path / "a", MAIN_CF, MASTER_CF, relay_recipients="u@example.test OK\n")
    t = write_config(tmp_path / "t", TEMPLATED_MAIN)
    for directory, planted in ((d, SECRETS), (t, SECRETS_TEMPLATED)):
        code = main(_argv(directory, fmt, mode))
        out, err = capsys.readouterr()
        assert code in (0, 1, 3), err
        assert out.strip()
        leaked = [form for form, secret in planted.items() if secret in out + err]
        assert leaked == []
        if fmt == "json" and directory == d:
            assert '"source": "postconf"' in out if mode == "postconf" else '"source": "parser"' in out
            assert "<redacted>" in out  # the parameters are still there, only their values are hidden
            assert "<redacted>.zen.dq.spamhaus.net" in out and "zen.spamhaus.org" in out


@pytest.mark.parametrize("mode", ["parser", "postconf"])
@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_name_the_place_not_the_secret(
    tmp_path: Path, case: str, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if mode == "postconf":
        need_tool("postconf")
    main_cf, master_cf, where, secret = ERRORS[case]
    d = write_config(tmp_path, main_cf, master_cf)
    assert main(_argv(d, "json", mode)) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert where in err and ("sasl_password_maps" in err or "creds" in err)
    assert secret not in err


def test_the_observation_keeps_structure_not_values(tmp_path: Path) -> None:
    d = write_config(tmp_path, MAIN_CF, MASTER_CF, relay_recipients="u@example.test OK\n")
    cfg = collect(str(d), use_postconf=False)
    assert cfg.value("lmtp_sasl_password_maps") == "inline:<redacted>"
    assert cfg.params["relay_creds"].value == "<redacted>"  # it flows into a password map
    assert cfg.value("smtp_sasl_password_maps") == "static:<redacted>"
    assert cfg.value("ldapsource_server_host") == "ldap://<redacted>@127.0.0.1/"
    services = {s.name: s for s in cfg.services}
    assert services["relay"].args == ("-o{ smtp_sasl_password_maps = static:<redacted> }",)
    assert services["relay2"].overrides["lmtp_sasl_password_maps"].value == "proxy:inline:<redacted>"
    assert cfg.value("relay_domains") == "example.test"  # ordinary values untouched


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("hash:/etc/postfix/sasl_passwd", "hash:/etc/postfix/sasl_passwd"),
        ("static:user:pw", "static:<redacted>"),
        ("inline:{ {[a]:587 = u:p1}, {[b]:587 = u:p2} }", "inline:<redacted>"),
        ("proxy:inline:{ {[a]:587 = u:p1}, {[b]:587 = u:p2} }, hash:/x", "proxy:inline:<redacted>, hash:/x"),
        ("static:{{ relay_user }}:pw", "static:<redacted>"),
        ("unionmap:{ static:u:pw, hash:/x }", "unionmap:<redacted>"),
        ("inline:{ a = b", "inline:<redacted>"),  # unclosed: the rest of the value is hidden
        ("$relay_creds", "$relay_creds"),  # a reference: its target is hidden where it is set
    ],
)
def test_password_map_lists(value: str, want: str) -> None:
    assert redact_map_list(value)[0] == want


def test_dnsbl_keys() -> None:
    text = f"reject_rbl_client {DQS_KEY}.zen.dq.spamhaus.net, reject_rbl_client zen.spamhaus.org"
    value, keys = redact_dnsbl("smtpd_client_restrictions", text)
    assert keys == [DQS_KEY] and DQS_KEY not in value and "zen.spamhaus.org" in value
    # a zone label is not a key: nothing hidden
    assert redact_dnsbl("postscreen_dnsbl_sites", "zen.spamhaus.org*3, b.barracudacentral.org")[1] == []


def test_ldap_server_url_with_password(tmp_path: Path) -> None:
    f = tmp_path / "users.cf"
    f.write_text(
        "server_host = ldap://admin:LdapUrlSecret@127.0.0.1:9/ ldaps://h2.example.test\n"
        "search_base = dc=example,dc=com\nbind = no\ntimeout = 2\n"
    )
    table = parse_ldap_table(str(f))
    assert table.server_hosts == ("ldap://127.0.0.1:9/", "ldaps://h2.example.test")
    assert table.notes and "users.cf:1" in table.notes[0] and "LdapUrlSecret" not in table.notes[0]
    # a lookup through it (loopback, closed port): the observation names the problem, not the secret
    (check,) = check_map(str(f), [("random", "x@example.com")], use_postmap=False)
    assert "LdapUrlSecret" not in repr(check) and "user name and password" in check.note


def test_ldap_url_password_not_in_directory_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "users.cf"
    f.write_text("server_host = ldap://admin:LdapUrlSecret@127.0.0.1:9/\nbind = no\ntimeout = 2\n")
    main(["directory", "--postfix-map", str(f), "--format", "json"])
    out, err = capsys.readouterr()
    assert out.strip() and "LdapUrlSecret" not in out + err
