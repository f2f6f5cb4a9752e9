"""Suppressions (TOML), expiry with a fixed day, errors with file and line, baselines."""

from __future__ import annotations

import argparse
import datetime as dt
import glob
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.cli.common import add_report_options, apply_report_options
from auditor.model import Finding, InputError, ReportVerdict, Severity, Status
from auditor.suppress import (
    Suppression,
    _Index,
    add_suppression_options,
    apply_suppressions,
    baseline_text,
    known_rule_ids,
    load_suppressions,
    normalise_target,
    parse_suppressions,
    write_baseline,
)
from tests.unit.render.fixtures import golden_report

TODAY = dt.date(2026, 11, 26)

GOOD = """\
# accepted risks
[[suppress]]
rule = "pf-rcpt-003"
target = "etc/postfix-backup/*"
reason = "backup MX retired in January"
expires = 2027-01-31

[[suppress]]
rule = "SMTP-RCPT-002"
target = "mx2.example.com[192.0.2.25]"
reason = "same backup MX"

[[suppress]]
rule = "DNS-NULLMX-001"
target = "example.net"
reason = "old exception"
expires = 2026-11-25

[[suppress]]
rule = "SMTP-NULL-001"
target = "*"
reason = "MX throttles our probe address"
"""


def _f(rule: str, target: str, status: Status = Status.FAIL) -> Finding:
    return Finding(rule, status, Severity.HIGH, target, "m")


def test_apply_suppressions_with_globs_exact_brackets_and_expiry() -> None:
    sups = parse_suppressions(GOOD, "s.toml")
    assert [s.line for s in sups] == [2, 8, 13, 19]
    out = {f.key: f for f in apply_suppressions(golden_report().findings, sups, TODAY)}
    pf = out[("PF-RCPT-003", "etc/postfix-backup/main.cf")]
    assert pf.status is Status.SUPPRESSED and pf.note == "backup MX retired in January"
    # "[192.0.2.25]" would be a glob character class: exact match comes first
    assert out[("SMTP-RCPT-002", "mx2.example.com[192.0.2.25]")].status is Status.SUPPRESSED
    expired = out[("DNS-NULLMX-001", "example.net")]
    assert expired.status is Status.FAIL
    assert "expired 2026-11-25" in expired.note and "s.toml:13" in expired.note
    inc = out[("SMTP-NULL-001", "mx1.example.com[192.0.2.10]")]
    assert inc.status is Status.SUPPRESSED and "was inconclusive" in inc.note
    # pass / not-applicable findings are never touched; unmatched fails stay fails
    assert out[("SMTP-PM-001", "example.com")].status is Status.PASS
    assert out[("LDAP-SYNC-001", "uid=old.user,ou=people,dc=example,dc=com")].status is Status.FAIL
    assert len(out) == len(golden_report().findings)


def test_expiry_day_is_inclusive() -> None:
    sups = parse_suppressions(GOOD, "s.toml")
    f = _f("PF-RCPT-003", "etc/postfix-backup/main.cf")
    assert apply_suppressions([f], sups, dt.date(2027, 1, 31))[0].status is Status.SUPPRESSED
    assert apply_suppressions([f], sups, dt.date(2027, 2, 1))[0].status is Status.FAIL


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            '[[suppress]]\nrule = "X-Y-001"\ntarget = "t"\nreason = "r"\nexpire = 2027-01-01\n',
            5,
            "unknown key",
        ),
        ('[[suppress]]\nrule = "X-Y-001"\ntarget = "t"\n', 1, "needs 'reason'"),
        ('[[suppress]]\nrule = "X-Y-001"\ntarget = 3\nreason = "r"\n', 3, "non-empty string"),
        ('[[suppress]]\nrule = "X"\ntarget = "t"\nreason = "r"\nexpires = "soon"\n', 5, "date like"),
        (
            '[[suppress]]\nrule = "X"\ntarget = "t"\nreason = "r"\nexpires = 2027-01-01T10:00:00\n',
            5,
            "date like",
        ),
        (
            '[[suppress]]\nrule = "X"\ntarget = "t"\nreason = "r"\n\n[[supress]]\nrule = "Y"\n',
            6,
            "unknown key",
        ),
        ('[[suppress]]\nrule = "X"\ntarget = "t\nreason = "r"\n', 3, "not valid TOML"),
        ('suppress = "everything"\n', 1, "array of tables"),
    ],
)
def test_bad_files_name_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(InputError) as err:
        parse_suppressions(text, "bad.toml")
    assert err.value.path == "bad.toml" and err.value.line == line, str(err.value)
    assert words in err.value.message


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_suppressions(str(tmp_path / "nope.toml"))


def test_baseline_round_trip_suppresses_exactly_todays_fails(tmp_path: Path) -> None:
    findings = (
        *golden_report().findings,
        _f("SMTP-RCPT-001", 'weird "target" *?[x]\x7f'),
    )
    path = tmp_path / "baseline.toml"
    write_baseline(findings, str(path), TODAY)
    sups = load_suppressions(str(path), known_rule_ids(findings))  # the fixture has rules of its own
    fails = [f for f in findings if f.status is Status.FAIL]
    assert len(sups) == len(fails)
    assert all(s.reason == "baseline 2026-11-26" and s.expires is None for s in sups)
    out = apply_suppressions(findings, sups, TODAY)
    assert not [f for f in out if f.status is Status.FAIL]
    # a new failure is not covered; a glob-looking target matches only itself
    later = apply_suppressions([_f("SMTP-RCPT-001", "weird x target"), _f("PF-RCPT-001", "x")], sups, TODAY)
    assert [f.status for f in later] == [Status.FAIL, Status.FAIL]
    assert baseline_text([], TODAY).count("[[suppress]]") == 0


def test_cli_options_apply_and_write_baseline(tmp_path: Path) -> None:
    sfile = tmp_path / "s.toml"
    sfile.write_text(GOOD, encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_report_options(parser)
    base = tmp_path / "base.toml"
    args = parser.parse_args(["--suppressions", str(sfile), "--write-baseline", str(base)])
    report = apply_report_options(golden_report(), args, today=TODAY)
    statuses = {f.key: f.status for f in report.findings}
    assert statuses[("PF-RCPT-003", "etc/postfix-backup/main.cf")] is Status.SUPPRESSED
    assert report.findings[0].status is Status.FAIL  # still in the judge's order: fails first
    # judged again: the plan and the compliance table follow the suppressions
    planned = {r.rule_id for item in report.plan for r in item.findings}
    assert "PF-RCPT-003" not in planned and "SMTP-RCPT-002" not in planned and "LDAP-SYNC-001" in planned
    assert report.assessment.by_status[Status.SUPPRESSED] == 4
    # the baseline is written from the findings as judged, before suppressions
    assert len(load_suppressions(str(base), known_rule_ids(golden_report().findings))) == 5
    untouched = apply_report_options(golden_report(), parser.parse_args([]), today=TODAY)
    assert untouched == golden_report()
    add_suppression_options(parser)  # idempotent: no argparse conflict


def test_everything_suppressed_is_not_a_failure() -> None:
    parser = argparse.ArgumentParser()
    add_report_options(parser)
    sups = [Suppression(f.rule_id, f.target, "accepted") for f in golden_report().findings]
    report = apply_report_options(golden_report(), parser.parse_args([]), suppressions=sups, today=TODAY)
    assert report.assessment.exit_code == 0 and report.plan == ()
    assert report.assessment.verdict is ReportVerdict.PASS  # SMTP-PM-001 passed


_TEXT = st.text(alphabet="ab*?[]!.-", max_size=6)


@settings(max_examples=200, deadline=None)
@given(targets=st.lists(_TEXT, max_size=6), patterns=st.lists(_TEXT, max_size=6), escape=st.booleans())
def test_indexed_matching_equals_naive_matching(
    targets: list[str], patterns: list[str], escape: bool
) -> None:
    sups = [
        Suppression("PF-RCPT-003", glob.escape(p) if escape else p, f"r{i}") for i, p in enumerate(patterns)
    ]
    index = _Index(sups)
    for t in targets:
        f = _f("PF-RCPT-003", t)
        assert index.matching(f) == [s for s in sups if s.matches(f)]


_TOMLISH = st.lists(
    st.sampled_from(
        [
            "[[suppress]]",
            "[suppress]",
            'rule = "PF-RCPT-003"',
            'target = "*"',
            'reason = "r"',
            "expires = 2027-01-31",
            "expires = 12",
            'expires = "2027-13-01"',
            "rule = [1, 2]",
            "other = 1",
            "suppress = 3",
            '"rule" = "x"',
            "[[suppress.sub]]",
            "= broken",
            "",
        ]
    ),
    max_size=12,
).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(text=_TOMLISH | st.text(max_size=200))
def test_any_text_parses_or_is_one_input_error(text: str) -> None:
    try:
        sups = parse_suppressions(text, "f.toml")
    except InputError as err:
        assert err.path == "f.toml" and err.message
    else:
        assert all(s.rule and s.target and s.reason for s in sups)


def test_unknown_rule_id_is_an_error_with_file_line_and_a_hint() -> None:
    text = '[[suppress]]\nrule = "PF-RCPT-003"\ntarget = "t"\nreason = "r"\n\n[[suppress]]\nreason = "r"\n'
    text += 'target = "t"\nrule = "PF-RCTP-003"\n'
    with pytest.raises(InputError) as err:
        parse_suppressions(text, "s.toml")
    assert (err.value.path, err.value.line) == ("s.toml", 9)
    assert "unknown rule id 'PF-RCTP-003' (did you mean PF-RCPT-003?)" in err.value.message
    # ids are case-insensitive; an id known to the caller (a saved report's own rule) is accepted
    assert parse_suppressions(text.replace("PF-RCTP-003", "pf-rcpt-001"), "s.toml")[1].rule == "pf-rcpt-001"
    other = parse_suppressions(
        text.replace("PF-RCTP-003", "X-NEW-001"), "s.toml", {"PF-RCPT-003", "X-NEW-001"}
    )
    assert other[1].rule == "X-NEW-001"
    with pytest.raises(InputError, match="unknown rule id 'X-NEW-001'"):
        parse_suppressions(text.replace("PF-RCTP-003", "X-NEW-001"), "s.toml")


@pytest.mark.parametrize(
    ("written", "found"),
    [
        ("./postfix/main.cf", "postfix/main.cf"),
        ("postfix/main.cf", "./postfix/main.cf"),
        ("postfix//main.cf", "{cwd}/postfix/main.cf"),
        ("{cwd}/postfix/main.cf", "postfix/main.cf"),
        ("postfix/", "postfix"),
        ("./postfix/ service smtp/inet", "postfix service smtp/inet"),
        ("postfix service smtp/inet", "{cwd}/postfix/ service smtp/inet"),
        ("postfix/*", "./postfix/main.cf"),  # a glob is normalised too
        ("*/main.cf", "{cwd}/postfix/main.cf"),  # a leading wildcard already matches any spelling
    ],
)
def test_a_path_target_matches_whatever_spelling_the_finding_uses(
    written: str, found: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cwd = str(tmp_path)
    s = Suppression("PF-RCPT-003", written.format(cwd=cwd), "accepted")
    f = _f("PF-RCPT-003", found.format(cwd=cwd))
    assert s.matches(f)
    (out,) = apply_suppressions([f], [s], TODAY)
    assert out.status is Status.SUPPRESSED
    assert s.target == written.format(cwd=cwd)  # the file keeps what was written


@pytest.mark.parametrize(
    ("written", "found"),
    [
        ("./postfix/main.cf", "postfix2/main.cf"),
        ("./postfix/main.cf", "other/postfix/main.cf"),
        ("postfix/*", "postfix2/main.cf"),
        ("postfix/ service smtp/inet", "postfix service submission/inet"),
    ],
)
def test_another_path_or_another_target_after_it_is_not_matched(
    written: str, found: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert not Suppression("PF-RCPT-003", written, "r").matches(_f("PF-RCPT-003", found))
    assert not _Index([Suppression("PF-RCPT-003", written, "r")]).matching(_f("PF-RCPT-003", found))


def test_targets_that_are_not_paths_compare_as_before() -> None:
    for t in ("ldaps://dir.x/o=a", "hash:/etc/postfix/virtual", "smtp:[10.0.0.5]", "*.example.com"):
        assert normalise_target(t) == t
    # domains, MX addresses and DNs are spelled one way on both sides: still distinct, still globbable
    names = ["example.com", "example.net", "mx2.example.com[192.0.2.25]", "uid=a,ou=people,dc=x"]
    assert len({normalise_target(t) for t in names}) == len(names)
    assert Suppression("SMTP-RCPT-002", "mx2.*", "r").matches(
        _f("SMTP-RCPT-002", "mx2.example.com[192.0.2.25]")
    )
    assert not Suppression("SMTP-RCPT-002", "mx2.*", "r").matches(_f("SMTP-RCPT-002", "mx1.example.com"))


def test_baseline_from_one_spelling_covers_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "baseline.toml"
    write_baseline([_f("PF-RCPT-003", "./postfix service smtp/inet")], str(path), TODAY)
    (s,) = load_suppressions(str(path))
    assert s.target == "./postfix service smtp/inet"
    later = [
        _f("PF-RCPT-003", f"{tmp_path}/postfix/ service smtp/inet"),
        _f("PF-RCPT-003", "postfix/main.cf"),
    ]
    assert [f.status for f in apply_suppressions(later, [s], TODAY)] == [Status.SUPPRESSED, Status.FAIL]
