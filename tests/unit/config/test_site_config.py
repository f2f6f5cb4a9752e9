"""site.toml: the template parses; unknown keys, wrong types and missing files name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli import main
from auditor.config import SITE_TOML_TEMPLATE, load_site_config, parse_site_config
from auditor.model import InputError


def test_template_parses_to_defaults() -> None:
    cfg = parse_site_config(SITE_TOML_TEMPLATE, "site.toml")
    assert cfg.site.domains == ("example.com",)
    assert cfg.probe.data_probes is False
    assert cfg.report.formats == ("html", "markdown", "json")


def test_values_are_typed() -> None:
    cfg = parse_site_config(
        '[site]\ndomains=["a.test"]\n[probe]\ntimeout = 5\n'
        '[[mx_override]]\ndomain="a.test"\nhosts=["mx.a.test"]\n',
        "s.toml",
    )
    assert cfg.probe.timeout == 5.0 and isinstance(cfg.probe.timeout, float)
    assert cfg.mx_override[0].hosts == ("mx.a.test",)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ('[site]\ndomains = ["a.test"]\n\n[probe]\nalow_external_mx = true\n', 5, "unknown key 'probe.alow"),
        ('[site]\ndomains = "a.test"\n', 2, "site.domains must be a list of strings"),
        ("[probe]\nconcurrency = 1.5\n", 2, "probe.concurrency must be an integer"),
        ("[site]\n[[mx_override]]\ndomain = 'x'\nport = 25\n", 4, "unknown key 'mx_override.port'"),
        ("[report]\nfail_on = 'severe'\n", 2, "report.fail_on must be one of"),
        ("[site\n", 1, "invalid TOML"),
        ("[bogus]\nx = 1\n", None, "unknown key 'bogus'"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int | None, needle: str) -> None:
    with pytest.raises(InputError) as err:
        parse_site_config(text, "site.toml")
    assert needle in str(err.value)
    assert err.value.path == "site.toml"
    if line is not None:
        assert err.value.line == line


def test_missing_password_file_and_unreadable_export(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[directory]\nurls = ["ldap://127.0.0.1"]\npassword_file = "nope.pw"\n')
    with pytest.raises(InputError) as err:
        load_site_config(str(site))
    assert err.value.line == 3 and "nope.pw" in str(err.value)
    site.write_text('[exchange]\nexports = ["missing.json"]\n')
    with pytest.raises(InputError, match="no such file"):
        load_site_config(str(site))


def test_cli_reports_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[site]\ndomains = ['a.test']\nfoo = 1\n")
    assert main(["audit", "--config", str(site)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{site}:3:" in err[0]


def test_deeply_nested_inputs_are_input_errors(tmp_path: Path) -> None:
    """A hostile file nested a million deep is one clear error, not a RecursionError traceback."""
    from auditor.serialize import load_report
    from auditor.suppress import parse_suppressions

    deep_toml = "x = " + "[" * 100_000 + "]" * 100_000 + "\n"
    with pytest.raises(InputError, match=r"nested too deeply|invalid TOML"):
        parse_site_config(deep_toml, "site.toml")
    with pytest.raises(InputError, match=r"nested too deeply|not valid TOML"):
        parse_suppressions(deep_toml, "s.toml")
    deep_json = tmp_path / "r.json"
    deep_json.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match=r"nested too deeply|not JSON|not a backscatter"):
        load_report(str(deep_json))
