"""main.cf syntax, defaults, compatibility levels and bad input (file parser only)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from auditor.collect.postfix import RULE_PARAMETERS, PostfixConfig, collect
from auditor.collect.postfix.defaults import load_defaults
from auditor.model import InputError
from tests.unit.postfix.helpers import write_config


def parse(tmp_path: Path, main: str | bytes, master: str | None = None) -> PostfixConfig:
    write_config(tmp_path, main, master)
    return collect(str(tmp_path), use_postconf=False)


def values(tmp_path: Path, main: str, *names: str) -> list[str]:
    cfg = parse(tmp_path, main)
    return [cfg.value(n) for n in names]


def test_comments_continuations_last_wins(tmp_path: Path) -> None:
    main = (
        "# a comment\n"
        "mydomain = first.example\n"
        "myhostname = mx.example.org # not a comment\n"
        "mydestination = a,\n"
        "   # an indented comment line is skipped\n"
        "\n"
        "    b, c\n"
        "mydomain = second.example\n"
    )
    cfg = parse(tmp_path, main)
    assert cfg.value("myhostname") == "mx.example.org # not a comment"
    assert cfg.value("mydestination") == "a, b, c"
    assert cfg.value("mydomain") == "second.example"
    pv = cfg.params["mydomain"]
    assert pv.explicit and pv.source == "main.cf" and pv.location is not None
    assert pv.location.line == 8 and pv.location.path.endswith("main.cf")
    assert cfg.params["mydestination"].location.line == 4


def test_every_rule_parameter_present(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "myhostname = mx.example.org\n")
    for name in RULE_PARAMETERS:
        assert name in cfg.params, name
    assert cfg.params["soft_bounce"].value == "no"
    assert cfg.params["soft_bounce"].source == "default"
    assert not cfg.params["soft_bounce"].explicit
    assert cfg.defaults_version == load_defaults().version


def test_defaults_expand_against_linted_host(tmp_path: Path) -> None:
    mydest, mydom, lrm = values(
        tmp_path,
        "myhostname = mx.example.org\nalias_maps = hash:/etc/aliases\n",
        "mydestination",
        "mydomain",
        "local_recipient_maps",
    )
    assert mydest == "mx.example.org, localhost.example.org, localhost"
    assert mydom == "example.org"  # derived from myhostname like Postfix
    assert lrm == "proxy:unix:passwd.byname hash:/etc/aliases"


def test_mydomain_without_dot_is_localdomain(tmp_path: Path) -> None:
    assert values(tmp_path, "myhostname = mx\n", "mydomain") == ["localdomain"]


def test_unset_hostname_is_noted_not_invented(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "mydomain = example.org\n")
    assert cfg.value("myhostname") == ""
    assert any("myhostname is not set" in n for n in cfg.notes)


@pytest.mark.parametrize(
    ("level", "relay_domains", "style", "relay_restrictions"),
    [
        (None, "mx.example.org, localhost.example.org, localhost", "subnet", ""),
        ("0", "mx.example.org, localhost.example.org, localhost", "subnet", ""),
        ("1", "mx.example.org, localhost.example.org, localhost", "subnet", "permit_mynetworks"),
        ("1.5", "mx.example.org, localhost.example.org, localhost", "subnet", "permit_mynetworks"),
        ("2", "", "host", "permit_mynetworks"),
        ("3.6", "", "host", "permit_mynetworks"),
        ("3.10", "", "host", "permit_mynetworks"),
    ],
)
def test_compatibility_level_defaults(
    tmp_path: Path, level: str | None, relay_domains: str, style: str, relay_restrictions: str
) -> None:
    main = "myhostname = mx.example.org\n" + (f"compatibility_level = {level}\n" if level else "")
    rd, ms, srr = values(tmp_path, main, "relay_domains", "mynetworks_style", "smtpd_relay_restrictions")
    assert rd == relay_domains
    assert ms == style
    assert srr.split(",")[0] == relay_restrictions


def test_bad_compatibility_level_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="compatibility level") as err:
        parse(tmp_path, "myhostname = x\ncompatibility_level = abc\n")
    assert err.value.line == 2


def test_raw_parameters_are_not_expanded(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "luser_relay = $user@example.org\nmailbox_command = /bin/x -a $recipient\n")
    assert cfg.value("luser_relay") == "$user@example.org"
    assert cfg.value("mailbox_command") == "/bin/x -a $recipient"


def test_grouped_and_conditional_values(tmp_path: Path) -> None:
    main = (
        "myhostname = mx.example.org\n"
        "mydestination = { $myhostname, localhost }\n"
        "relay_domains = ${relay_list?{$relay_list}:{none}}\n"
        "virtual_alias_domains = ${{$myhostname} == {mx.example.org} ? {yes.example} : {no.example}}\n"
    )
    assert values(tmp_path, main, "mydestination", "relay_domains", "virtual_alias_domains") == [
        "{ mx.example.org, localhost }",
        "none",
        "yes.example",
    ]


def test_user_defined_parameters_expand(tmp_path: Path) -> None:
    main = "my_maps = hash:/etc/postfix/a, hash:/etc/postfix/b\nvirtual_alias_maps = $my_maps\n"
    cfg = parse(tmp_path, main)
    assert cfg.value("virtual_alias_maps") == "hash:/etc/postfix/a, hash:/etc/postfix/b"
    assert cfg.params["my_maps"].explicit


def test_broken_unused_parameter_is_a_note(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "my_unused = ${oops\nmyhostname = x\n")
    assert cfg.params["my_unused"].value == "${oops"
    assert any("my_unused" in n and "kept raw" in n for n in cfg.notes)


def test_whitespace_first_line_is_dropped_with_note(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "   soft_bounce = yes\nmyhostname = x\n")
    assert cfg.value("soft_bounce") == "no"
    assert any("must not start with whitespace" in n for n in cfg.notes)


@pytest.mark.parametrize(
    ("main", "line", "needle"),
    [
        ("myhostname = x\nthis line has no equals\n", 2, "missing '='"),
        ("myhostname = x\n= value\n", 2, "missing attribute name"),
        ("myhostname = x\nrelay_domains = ${unterminated\n", 2, "truncated"),
        ("myhostname = x\nmydestination = a $ b\n", 2, "empty macro name"),
        ("alias_maps = $a1\na1 = $a2\na2 = $a1\n", 1, "recursive"),
        ("myhostname = x\nmydomain = ok\n\x00binary\n", 3, "binary"),
        (b"myhostname = x\nmydomain = \xff\xfe\n", 2, "undecodable"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, main: str | bytes, line: int, needle: str) -> None:
    with pytest.raises(InputError, match=needle) as err:
        parse(tmp_path, main)
    assert err.value.line == line
    assert err.value.path is not None and err.value.path.endswith("main.cf")


def test_missing_directory_and_main_cf(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        collect(str(tmp_path / "nope"), use_postconf=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no main\.cf"):
        collect(str(tmp_path / "empty"), use_postconf=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        collect(str(tmp_path / "file"), use_postconf=False)
    (tmp_path / "dirmain" / "main.cf").mkdir(parents=True)
    with pytest.raises(InputError, match=r"main\.cf"):
        collect(str(tmp_path / "dirmain"), use_postconf=False)


def test_ten_megabyte_line_is_fast(tmp_path: Path) -> None:
    big = "mydestination = " + "a.example, " * 900_000 + "\nmyhostname = x\n"
    assert len(big) > 9_000_000
    t0 = time.perf_counter()
    cfg = parse(tmp_path, big)
    assert time.perf_counter() - t0 < 20
    assert cfg.value("mydestination").startswith("a.example, a.example")
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="missing '='"):
        parse(tmp_path, "x" * 10_000_000 + "\n")
    assert time.perf_counter() - t0 < 10


def test_templates_are_recorded_and_marked(tmp_path: Path) -> None:
    main = (
        "myhostname = {{ mail_hostname }}\n"
        "mydestination = $myhostname, localhost\n"
        "{% if relay %}\n"
        "relay_domains = [% relay.domains %]\n"
        "{% endif %}\n"
        "queue_directory = PH_QUEUE_DIRECTORY\n"
        "virtual_alias_maps = proxy:%{db_driver}:/etc/postfix/sql-aliases.cf\n"
        "soft_bounce = no\n"
    )
    cfg = parse(tmp_path, main)
    tokens = {t.token: t for t in cfg.templates}
    want = {"{{ mail_hostname }}", "{% if relay %}", "[% relay.domains %]", "PH_QUEUE_DIRECTORY"}
    assert want <= set(tokens)
    assert tokens["{{ mail_hostname }}"].parameter == "myhostname"
    assert tokens["{{ mail_hostname }}"].location.line == 1
    assert tokens["{% if relay %}"].parameter is None and tokens["{% if relay %}"].location.line == 3
    assert cfg.params["myhostname"].templated
    assert cfg.params["mydestination"].templated  # depends on a templated value
    assert cfg.params["relay_domains"].templated
    assert cfg.params["virtual_alias_maps"].templated
    assert not cfg.params["soft_bounce"].templated


def test_postfix_conditional_is_not_a_jinja_template(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "relay_domains = ${{$mydomain} == {x} ? {a} : {b}}\nmydomain = y\n")
    assert cfg.templates == ()
    assert cfg.value("relay_domains") == "b"


def test_json_round_trip(tmp_path: Path) -> None:
    from auditor.serialize import from_jsonable, to_jsonable

    main = "myhostname = mx.example.org\nsoft_bounce = yes\n"
    cfg = parse(tmp_path, main, "smtp inet n - y - - smtpd -o a=b\n")
    back = from_jsonable(PostfixConfig, to_jsonable(cfg))
    assert back == cfg
