"""probes/*.toml: the shipped scenarios load, and every kind of mistake names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.collect.smtp.scenarios import default_dir, load, parse
from auditor.model import InputError

GOOD = """\
name = "x"
description = "d"
role = "unknown"
steps = ["MAIL FROM:<{mail_from}>", "RCPT TO:<{random}@{domain}>"]
expect = "5xx"
feeds = ["SMTP-RCPT-001"]
"""


def test_shipped_scenarios() -> None:
    got = {s.name: s for s in load()}
    assert set(got) == {"null-sender", "postmaster", "unknown-recipient", "subdomain", "relay"}
    assert got["null-sender"].null_sender and got["null-sender"].recipient == "postmaster@{domain}"
    assert not got["unknown-recipient"].null_sender
    assert got["relay"].enabled == "relay_test_domain"
    assert [s.order for s in load()] == sorted(s.order for s in load())
    assert (default_dir() / "README.md").exists()


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (GOOD.replace('expect = "5xx"', 'expect = "maybe"'), "expect must be", 5),
        (GOOD.replace('expect = "5xx"', 'safe = "5xx"'), "unknown key 'safe'", 5),
        (GOOD.replace('feeds = ["SMTP-RCPT-001"]', "feeds = []"), "feeds must be a non-empty list", 6),
        (GOOD.replace('"SMTP-RCPT-001"', '"rcpt one"'), "is not a rule id", 6),
        (GOOD.replace('role = "unknown"', 'role = "control"'), "role must be", 3),
        (GOOD + "colour = 1\n", "unknown key 'colour'", 7),
        (GOOD.replace("{random}", "{victim}"), "unknown placeholder", 4),
        (GOOD.replace("RCPT TO:<{random}@{domain}>", "DATA"), "steps must be", 4),
        (GOOD.replace("{mail_from}", ""), "only the null-postmaster role", 4),
        (GOOD.replace('role = "unknown"', 'role = "spam"'), "role must be", 3),
        ('name = "x"\nsteps = [\n', "not valid TOML", None),
    ],
)
def test_bad_scenario_is_input_error_with_place(
    tmp_path: Path, text: str, message: str, line: int | None
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        parse(path)
    assert message in err.value.message
    assert err.value.path == str(path)
    if line is not None:
        assert err.value.line == line


def test_folder_without_unknown_scenario_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pm.toml").write_text(
        GOOD.replace('role = "unknown"', 'role = "postmaster"').replace("{random}", "postmaster")
    )
    with pytest.raises(InputError, match="role 'unknown'"):
        load(tmp_path)


def test_duplicate_names_refused(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "b.toml").write_text(GOOD)
    with pytest.raises(InputError, match="duplicate"):
        load(tmp_path)


def test_every_feed_is_a_rule_that_reads_probe_answers() -> None:
    from auditor.observations.smtp import ProbeResult
    from auditor.rules import load_all

    rules = load_all()
    for sc in load():
        for rid in sc.feeds:
            assert rid in rules, (sc.path, rid)
            assert ProbeResult in rules[rid].needs, (sc.path, rid)
