"""Hostile input costs bounded work: expansion bombs, backtracking patterns, non-regular files.

A hang here would be the bug; pytest-timeout (the suite's bound) turns one into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.collect.postfix import LookupTable, PostfixConfig, collect, postconf
from auditor.collect.postfix.expand import Budget, Expander, ExpansionLimit
from auditor.model import InputError, Status
from tests.conftest import need_tool
from tests.unit.postfix.helpers import write_config
from tests.unit.rules_postfix.builder import run

MODES = [False, None]  # parse-only, and the real postconf where installed
HASH_MAIN = (
    "myhostname = mx.example.test\nrelay_domains = example.com\n"
    "relay_recipient_maps = hash:/etc/postfix/rcpt\n"
)


def _bomb(levels: int = 40) -> str:
    lines = ["lol0 = xxxxxxxxxx"] + [f"lol{i} = $lol{i - 1} $lol{i - 1}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _mode(use_postconf: bool | None) -> bool | None:
    if use_postconf is None:
        need_tool("postconf")
    return use_postconf


@pytest.mark.parametrize("use_postconf", MODES)
def test_unused_expansion_bomb_costs_bounded_work(tmp_path: Path, use_postconf: bool | None) -> None:
    main_cf = "myhostname = mx.example.test\nrelay_domains = example.test\n" + _bomb()
    cfg = collect(str(write_config(tmp_path, main_cf)), use_postconf=_mode(use_postconf))
    assert cfg.value("relay_domains") == "example.test"
    assert not cfg.params["relay_domains"].unresolved
    assert any("lol40" in n and "more than" in n for n in cfg.notes)


@pytest.mark.parametrize("use_postconf", MODES)
def test_used_expansion_bomb_is_inconclusive(tmp_path: Path, use_postconf: bool | None) -> None:
    main_cf = "myhostname = mx.example.test\nrelay_domains = example.test\nrelay_recipient_maps = $lol40\n"
    d = write_config(tmp_path, main_cf + _bomb(), "smtp inet n - n - - smtpd\n  -o relay_domains=$lol39\n")
    cfg = collect(str(d), use_postconf=_mode(use_postconf))
    rrm = cfg.params["relay_recipient_maps"]
    assert rrm.unresolved and rrm.templated and rrm.value == "$lol40"
    assert cfg.services[0].overrides["relay_domains"].unresolved
    assert cfg.value("relay_domains") == "example.test"
    found = [f for f in run("PF-RCPT-004", cfg) if "relay_recipient_maps" in f.target + f.message]
    assert [f.status for f in found] == [Status.INCONCLUSIVE]
    assert "main.cf:3" in (found[0].note or "") and "not judged" in (found[0].note or "")


def test_expander_budget() -> None:
    table = {"a": "$b $b", "b": "$c $c", "c": "x" * 1000}
    with pytest.raises(ExpansionLimit):
        Expander(table.get, Budget(value_chars=3000)).expand("$a")
    assert len(Expander(table.get, Budget(value_chars=5000)).expand("$a")) == 4003
    # references are computed once: a wide fan-out is cheap in steps
    budget = Budget(steps=100)
    wide = {f"v{i}": f"$v{i + 1} $v{i + 1}" for i in range(30)} | {"v30": "y"}
    with pytest.raises(ExpansionLimit, match="characters"):
        Expander(wide.get, budget).expand("$v0")
    assert budget.steps > 0


def test_postconf_gives_up_then_parser_values_stand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A postconf that runs out of memory is not a verdict on the config: the parser's view is used."""
    need_tool("postconf")
    monkeypatch.setattr(postconf, "MEMORY_KB", 20_000)  # too little for postconf to start
    d = write_config(tmp_path, "myhostname = mx.example.test\nrelay_domains = example.test\n")
    cfg = collect(str(d), use_postconf=None)
    assert cfg.source == "parser" and cfg.value("relay_domains") == "example.test"
    assert any("postconf ran out of memory" in n for n in cfg.notes)


# --- regexp/pcre tables ---------------------------------------------------------------------


def _table(cfg: PostfixConfig) -> LookupTable:
    (t,) = cfg.tables_for("relay_recipient_maps")
    return t


def _rcpt_table(tmp_path: Path, table: str) -> Path:
    main_cf = (
        "myhostname = mx.example.test\nrelay_domains = example.com\n"
        "relay_recipient_maps = regexp:/etc/postfix/rcpt\n"
    )
    return write_config(tmp_path, main_cf, rcpt=table)


@pytest.fixture
def no_postmap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditor.collect.postfix.tables._find_postmap", lambda: None)


def test_catastrophic_pattern_is_not_evaluated_and_the_rule_inconclusive(
    tmp_path: Path, no_postmap: None
) -> None:
    d = _rcpt_table(tmp_path, "/^alice@example\\.com$/ OK\n/^(.|.)*Z$/ OK\n")
    cfg = collect(str(d), use_postconf=False)
    t = _table(cfg)
    assert [(e.key, e.location.line if e.location else 0) for e in t.unevaluated] == [("/^(.|.)*Z$/", 2)]
    assert "more than" in t.unevaluated[0].note and not t.match_all_entries
    (f,) = run("PF-RCPT-004", cfg)
    assert f.status is Status.INCONCLUSIVE
    assert f"{d / 'rcpt'}:2" in (f.note or "")


def test_nested_quantifier_catch_all_is_found(tmp_path: Path, no_postmap: None) -> None:
    d = _rcpt_table(tmp_path, "/^(.+)+@example\\.com$/ OK\n")
    cfg = collect(str(d), use_postconf=False)
    (f,) = run("PF-RCPT-004", cfg)
    assert f.status is Status.FAIL  # it matches every address of the domain: a catch-all


def test_unsupported_pattern_makes_the_rule_inconclusive(tmp_path: Path, no_postmap: None) -> None:
    d = _rcpt_table(tmp_path, "/^(alice@example\\.com$/ OK\n")  # not a valid pattern
    cfg = collect(str(d), use_postconf=False)
    (f,) = run("PF-RCPT-004", cfg)
    assert f.status is Status.INCONCLUSIVE and "rcpt:1" in (f.note or "")


def test_postmap_answer_decides_when_it_ran(tmp_path: Path) -> None:
    need_tool("postmap")
    d = _rcpt_table(tmp_path, "/^alice@example\\.com$/ OK\n/^(.|.)*Z$/ OK\n")
    cfg = collect(str(d), use_postconf=False)
    t = _table(cfg)
    assert t.looked_up_with == "postmap" and t.random_lookup is None
    assert run("PF-RCPT-004", cfg)[0].status is Status.PASS  # Postfix itself evaluated every entry


# --- files that are not regular files ------------------------------------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize("mode", ["--no-postconf", "postconf"])
@pytest.mark.parametrize("name", ["main.cf", "master.cf"])
@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_config_file_that_is_not_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, name: str, kind: str
) -> None:
    if mode == "postconf":
        need_tool("postconf")
    d = write_config(tmp_path, "myhostname = mx.example.test\n" if name == "master.cf" else None)
    if kind == "fifo":
        _fifo(d / name)
    else:
        (d / name).symlink_to("/dev/zero")
    argv = ["lint", "postfix", str(d), "--format", "json"]
    assert main([*argv, mode] if mode != "postconf" else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{d / name}: not a regular file" in err[0]


def test_postconf_is_never_given_a_non_regular_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(postconf, "run_postconf", lambda *a: calls.append(a) or ("", []))
    d = write_config(tmp_path, "myhostname = mx.example.test\n", "smtp inet n - n - - smtpd\n")
    parsed = __import__("auditor.collect.postfix.parse", fromlist=["parse_files"]).parse_files(str(d))
    (d / "master.cf").unlink()
    (d / "master.cf").symlink_to("/dev/zero")  # swapped after the parser read it
    with pytest.raises(InputError, match="not a regular file"):
        postconf.apply_postconf(parsed, "/usr/sbin/postconf")
    assert calls == []


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_table_that_is_not_a_regular_file_is_inconclusive(tmp_path: Path, kind: str) -> None:
    d = write_config(
        tmp_path,
        HASH_MAIN,
    )
    if kind == "fifo":
        _fifo(d / "rcpt")
    else:
        (d / "rcpt").symlink_to("/dev/zero")
    cfg = collect(str(d), use_postconf=False)
    t = _table(cfg)
    assert not t.readable and "not a regular file" in t.error
    assert any("not a regular file" in n for n in cfg.notes)
    (f,) = run("PF-RCPT-004", cfg)
    assert f.status is Status.INCONCLUSIVE and "not a regular file" in (f.note or "")


def test_table_over_the_size_cap(tmp_path: Path) -> None:
    d = write_config(
        tmp_path,
        HASH_MAIN,
    )
    with open(d / "rcpt", "wb") as fh:  # sparse: 1.7 GB on paper, nothing on disk
        fh.truncate(1_700_000_000)
    cfg = collect(str(d), use_postconf=False)
    t = _table(cfg)
    assert not t.readable and "too large" in t.error


def test_many_wildcards_are_kept_bounded(tmp_path: Path, no_postmap: None) -> None:
    from auditor.observations.postfix import MAX_CONTENTS

    table = "".join(f"@d{i}.example OK\n" for i in range(MAX_CONTENTS + 100))
    d = write_config(
        tmp_path,
        HASH_MAIN.replace("example.com", "d1.example"),
        rcpt=table,
    )
    t = _table(collect(str(d), use_postconf=False))
    assert t.entries == MAX_CONTENTS + 100 and len(t.wildcard_entries) == MAX_CONTENTS
    assert t.random_lookup == "OK"


@pytest.mark.parametrize("use_postconf", MODES)
def test_value_over_the_cap_is_not_judged(tmp_path: Path, use_postconf: bool | None) -> None:
    from auditor.collect.postfix.expand import VALUE_CHARS

    domains = "".join(f" d{i}.example.test,\n" for i in range(VALUE_CHARS // 18 + 10))
    d = write_config(tmp_path, f"myhostname = mx.example.test\nrelay_domains ={domains}mydestination = x\n")
    cfg = collect(str(d), use_postconf=_mode(use_postconf))
    rd = cfg.params["relay_domains"]
    assert rd.unresolved.startswith("not judged: a value of") and rd.templated
    assert len(rd.value) < 2000 and len(rd.raw) < 2000  # not carried into every report
    assert cfg.value("mydestination") == "x"


# --- password files (auditor.secrets): bounded reads, no content in messages --------------------


def test_password_file_reads_are_bounded(tmp_path: Path) -> None:
    from auditor.secrets import read_secret

    good = tmp_path / "pw"
    good.write_text("s3cret-pw\nignored\n")
    assert read_secret(str(good), "BSA_TEST_UNSET") == "s3cret-pw"
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    with pytest.raises(InputError, match=r"NUL|longer") as err:
        read_secret(str(zero), "BSA_TEST_UNSET")
    assert err.value.path == str(zero)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\xff\xfepw-secret\n")
    with pytest.raises(InputError, match="not UTF-8") as err:
        read_secret(str(bad), "BSA_TEST_UNSET")
    assert "pw-secret" not in str(err.value)
