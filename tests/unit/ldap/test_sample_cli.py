"""Sample controls for probes and maps, and the `directory` command's input handling (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli import main
from auditor.collect.ldap import LdapSettings
from auditor.collect.ldap.connect import parse_url
from auditor.collect.ldap.sample import map_samples, sample_addresses
from auditor.model import InputError
from auditor.observations.directory import AddressRef, DirectoryRecipients, DisabledEntry, DuplicateAddress

OBS = DirectoryRecipients(
    target="ldap://x",
    complete=True,
    accepted_domains=("a.test", "b.test"),
    recipients={
        "a.test": {"a1@a.test": "cn=1", "a2@a.test": "cn=2", "gone@a.test": "cn=g", "dup@a.test": "cn=1"},
        "b.test": {"b1@b.test": "cn=3"},
    },
    examples=(
        AddressRef("a1@a.test", "cn=1", "mail"),
        AddressRef("a1.alias@a.test", "cn=1", "mailLocalAddress"),
    ),
    disabled=(DisabledEntry("cn=g", 514, ("gone@a.test",)),),
    duplicates=(DuplicateAddress("dup@a.test", ("cn=1", "cn=9")),),
)


def test_sample_addresses_skip_ambiguous_and_spread() -> None:
    got = sample_addresses(OBS, 10)
    assert got[0] == "a1@a.test"
    assert "gone@a.test" not in got and "dup@a.test" not in got
    assert "b1@b.test" in got
    assert len(got) == len(set(got))
    assert sample_addresses(OBS, 2) == got[:2]
    assert sample_addresses(OBS, 0) == []


def test_map_samples() -> None:
    kinds = map_samples(OBS)
    assert [k for k, _ in kinds] == ["known", "alias", "random", "catchall", "catchall", "metachar"]
    assert dict(kinds)["known"] == "a1@a.test" and dict(kinds)["alias"] == "a1.alias@a.test"
    assert [a for k, a in kinds if k == "catchall"] == ["@a.test", "@b.test"]
    only = map_samples(None, ("c.test", "hash:/x"))
    assert [k for k, _ in only] == ["random", "catchall", "metachar"]
    assert only[0][1].endswith("@c.test") and only[1][1] == "@c.test"


@pytest.mark.parametrize("url", ["http://x", "ldap://", "ldap://h:notaport", "ldaps//h"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(InputError):
        parse_url(url)


def test_settings_repr_hides_password() -> None:
    assert "hunter2" not in repr(LdapSettings(("ldap://x",), bind_dn="cn=a", password="hunter2"))


def test_cli_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["directory"]) == 2
    base = ["directory", "--ldap-url", "ldap://127.0.0.1:1"]
    assert main([*base, "--bind-dn", "cn=a", "--password-file", str(tmp_path / "missing")]) == 2
    assert main([*base, "--filter", "(mail=*"]) == 2
    assert main([*base, "--ca-file", str(tmp_path / "no.pem"), "--start-tls"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "missing" in err and "malformed LDAP filter" in err and "CA file" in err


def test_cli_password_file_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pw = tmp_path / "pw"
    pw.write_text("Sup3r-Secret\n")
    args = ["directory", "--ldap-url", "ldap://127.0.0.1:1", "--bind-dn", "cn=a", "--password-file", str(pw)]
    rc = main([*args, "--timeout", "1", "-f", "json"])
    out, err = capsys.readouterr()
    assert rc == 3
    assert "Sup3r-Secret" not in out + err
