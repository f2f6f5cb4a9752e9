"""A bad suppressions file or site.toml value stops `audit` and `probe` before any probe is sent:
one line naming file and line, exit 2, and the (scripted, loopback) SMTP server saw no connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli import main
from auditor.config import parse_site_config
from auditor.model import InputError
from tests.unit.dns.fakedns import serve
from tests.unit.smtp.fakes import Scripted
from tests.unit.smtp.test_cli import ZONE, smtp_in_thread

BAD = '[[suppress]]\nrule = "PF-RCPT-003"\ntarget = "*"\nreason = "ok"\n\n'
BAD += '[[suppress]]\nrule = "SMTP-RCTP-001"\ntarget = "*"\nreason = "typo"\n'


def _one_error_line(err: str, where: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and where in lines[0] and "Traceback" not in err, err
    assert "unknown rule id 'SMTP-RCTP-001' (did you mean SMTP-RCPT-001?)" in lines[0]


@pytest.mark.parametrize("via", ["site.toml", "--suppressions"])
def test_audit_refuses_an_unknown_rule_id_before_probing(
    via: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = tmp_path / "accepted.toml"
    sup.write_text(BAD, encoding="utf-8")
    srv = Scripted()
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        site = tmp_path / "site.toml"
        report = f'[report]\nsuppressions = "{sup.name}"\n' if via == "site.toml" else ""
        site.write_text(
            f'[site]\ndomains = ["example.test"]\n[dns]\nnameservers = ["{ns}"]\n'
            f"[probe]\nport = {port}\nsession_delay = 0\n{report}"
        )
        extra = ["--suppressions", str(sup)] if via == "--suppressions" else []
        assert main(["audit", "--config", str(site), "--output-dir", str(tmp_path / "out"), *extra]) == 2
    _one_error_line(capsys.readouterr().err, f"{sup}:7:")
    assert srv.connections == 0
    assert not (tmp_path / "out").exists()


def test_probe_refuses_an_unknown_rule_id_before_probing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = tmp_path / "accepted.toml"
    sup.write_text(BAD, encoding="utf-8")
    srv = Scripted()
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        args = ["probe", "example.test", "--nameserver", ns, "--port", str(port), "--suppressions", str(sup)]
        assert main(args) == 2
    _one_error_line(capsys.readouterr().err, f"{sup}:7:")
    assert srv.connections == 0


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('report.formats = ["no-such-format"]\n', 1),
        (
            'site.domains = ["a.test"]\n\nreport.fail_on = "low"\n'
            'report.formats = ["json", "no-such-format"]\n',
            4,
        ),
        ('[site]\ndomains = ["a.test"]\n[report]\nfail_on = "low"\nformats = ["no-such-format"]\n', 5),
        ('[report]\n"formats" = ["no-such-format"]\n', 2),
    ],
)
def test_an_unknown_report_format_names_its_own_line(text: str, line: int) -> None:
    with pytest.raises(InputError) as err:
        parse_site_config(text, "site.toml")
    assert (err.value.path, err.value.line) == ("site.toml", line)
    assert "unknown format 'no-such-format'" in err.value.message
