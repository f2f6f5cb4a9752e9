"""Secrets a Postfix config may hold never reach an observation, a report or the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli import main
from tests.conftest import need_tool

MAIN_CF = """\
compatibility_level = 3.6
relay_domains = example.test
relay_recipient_maps = ldap:ldapsource
ldapsource_server_host = ldap.example.test
ldapsource_bind_dn = cn=postfix,dc=example,dc=test
ldapsource_bind_pw = Sup3rS3cret-main
smtp_sasl_password_maps = static:relayuser:Sup3rS3cret-static
# a secret referenced from another parameter is expanded into it: hidden there too
local_recipient_maps = $ldapsource_bind_pw
"""
MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
relay     unix  -       -       n       -       -       smtp
  -o smtp_sasl_password_maps=inline:{ [smarthost]:587=user:Sup3rS3cret-inline }
submission inet n       -       n       -       -       smtpd
  -o { ldapx_bind_pw = Sup3rS3cret-group }
"""


@pytest.mark.parametrize("mode", ["--no-postconf", "postconf"])
@pytest.mark.parametrize("fmt", ["json", "text", "sarif", "html", "markdown", "csv", "junit"])
def test_no_secret_in_any_format(
    tmp_path: Path, fmt: str, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if mode == "postconf":
        need_tool("postconf")
    (tmp_path / "main.cf").write_text(MAIN_CF)
    (tmp_path / "master.cf").write_text(MASTER_CF)
    argv = ["lint", "postfix", str(tmp_path), "--format", fmt]
    main([*argv, "--no-postconf"] if mode == "--no-postconf" else argv)
    out, err = capsys.readouterr()
    assert out.strip()
    assert "Sup3rS3cret" not in out + err
    if fmt == "json":
        assert "<redacted>" in out  # the parameters are still there, only their values are hidden
