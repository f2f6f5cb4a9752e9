"""Every template syntax config generators use makes what depends on it inconclusive, never a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.collect.postfix import collect


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("<% $relay_domains %>", "<% $relay_domains %>"),  # Mason
        ("<& relay_domains.mc &>", "<& relay_domains.mc &>"),  # Mason component
        ("<%= @relay_domains.join(', ') %>", "<%= @relay_domains.join(', ') %>"),  # ERB
        ("{{ .RelayDomains }}", "{{ .RelayDomains }}"),  # Go text/template
        ("@RELAY_DOMAINS@", "@RELAY_DOMAINS@"),  # autoconf-style
        ("{{ relay_domains | join(', ') }}", "{{ relay_domains | join(', ') }}"),  # Jinja
    ],
)
def test_template_values_are_marked_with_file_and_line(tmp_path: Path, value: str, token: str) -> None:
    (tmp_path / "main.cf").write_text(f"myhostname = mx.example.com\nrelay_domains = {value}\n")
    cfg = collect(str(tmp_path), use_postconf=False)
    assert cfg.params["relay_domains"].templated
    [t] = [t for t in cfg.templates if t.token == token]
    assert t.parameter == "relay_domains" and t.location is not None and t.location.line == 2


def test_template_control_lines_are_not_parameters(tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text(
        "% if ($relay) {\n"  # Mason Perl line
        "relay_domains = example.com\n"
        "% }\n"
        "<% if @backup %>\n"  # ERB control
        "relay_recipient_maps =\n"
        "<% end %>\n"
    )
    cfg = collect(str(tmp_path), use_postconf=False)
    assert cfg.params["relay_domains"].value == "example.com"
    assert {t.location.line for t in cfg.templates if t.location} >= {1, 3, 4, 6}


@pytest.mark.parametrize("fmt", ["json"])
def test_a_templated_compatibility_level_gives_a_whole_report(
    tmp_path: Path, fmt: str, capsys: object
) -> None:
    """The defaults that depend on compatibility_level are unknown: inconclusive, not exit 2."""
    (tmp_path / "main.cf").write_text(
        "compatibility_level = {{ postfix_compat }}\n"
        "myhostname = mx.example.com\n"
        "relay_domains = example.com\n"
    )
    code = main(["lint", "postfix", str(tmp_path), "--no-postconf", "--format", fmt])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert code in (1, 3)
    doc = json.loads(out)
    compat = [f for f in doc["findings"] if f["rule_id"] == "PF-COMPAT-001"]
    assert compat and all(f["status"] == "inconclusive" for f in compat), compat
    assert "main.cf:1" in json.dumps(compat)
