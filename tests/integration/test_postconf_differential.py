"""Differential test: the file-only parser against the real ``postconf`` on generated configs.

Hypothesis writes main.cf/master.cf files that combine the syntax features (expansions in every
form, conditionals, relational and ``<level`` expressions, continuation lines, comments, ``{}``
groups, compatibility levels, repeated assignments, ``-o`` overrides in both spellings), then the
parser's effective values must equal ``postconf -c DIR -x -h NAME…`` for every rule parameter, and
its overrides must equal ``postconf -c DIR -P -x``. When postconf refuses a config (macro error,
reference loop), the parser must refuse it too (InputError), and the other way round.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.collect.postfix import RULE_PARAMETERS, PostfixConfig, collect
from auditor.collect.postfix.parse import normalize
from auditor.model import InputError
from tests.conftest import CORPUS, need_tool

pytestmark = [pytest.mark.postfix, pytest.mark.integration]

HOST_COMPUTED = ("mynetworks",)  # postconf computes it from this machine's interfaces when unset
TARGETS = [
    "mydestination",
    "relay_domains",
    "relay_recipient_maps",
    "virtual_alias_maps",
    "virtual_mailbox_domains",
    "smtpd_recipient_restrictions",
    "smtpd_relay_restrictions",
    "soft_bounce",
    "luser_relay",  # a raw parameter: postconf does not expand it
    "mydomain",
    "alias_maps",
    "mynetworks_style",
    "unknown_local_recipient_reject_code",
    "receive_override_options",
    "bsa_var1",
    "bsa_var2",
]
# Not config_directory: ``postconf -c DIR`` reports DIR, the parser the server's own (default) value.
REFS = [*TARGETS, "myhostname", "compatibility_level", "myorigin", "bsa_undefined"]
WORDS = [
    "example.org",
    "permit_mynetworks",
    "reject_unauth_destination",
    "hash:/etc/postfix/relay_recipients",
    "550",
    "yes",
    "no",
    "x",
    "",
]
LEVELS = [None, "0", "1", "1.5", "2", "3.6", "3.10"]

names = st.sampled_from(REFS)
words = st.sampled_from(WORDS)


@st.composite
def atom(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 9 if depth == 0 else 4))
    n = draw(names)
    w = draw(words)
    if kind == 0:
        return w
    if kind == 1:
        return f"${n}"
    if kind == 2:
        return f"${{{n}}}" if draw(st.booleans()) else f"${{ {n} }}"
    if kind == 3:
        return f"$({n})"
    if kind == 4:
        return f"$${w or 'z'}"
    inner = draw(atom(depth + 1))
    other = draw(atom(depth + 1))
    if kind == 5:
        return f"${{{n}?{inner}}}" if "}" not in inner and ":" not in inner else f"${{{n}?{{{inner}}}}}"
    if kind == 6:
        return f"${{{n}:{{{inner}}}}}"
    if kind == 7:
        return f"${{{n} ? {{{inner}}} : {{{other}}}}}"
    if kind == 8:
        op = draw(st.sampled_from(["==", "!="]))
        return f"${{{{${n}}} {op} {{{w}}} ? {{{inner}}} : {{{other}}}}}"
    level = draw(st.sampled_from(["1", "2", "3.6"]))
    op = draw(st.sampled_from(["<level", ">=level"]))
    return f"${{{{$compatibility_level}} {op} {{{level}}} ? {{{inner}}} : {{{other}}}}}"


@st.composite
def value(draw: st.DrawFn) -> str:
    parts = draw(st.lists(atom(), min_size=1, max_size=4))
    sep = draw(st.sampled_from([" ", ", ", ","]))
    text = sep.join(parts)
    if draw(st.booleans()) and "{" not in text:
        text = "{ " + text + " }"
    return text


@st.composite
def main_cf(draw: st.DrawFn) -> str:
    lines = ["# generated", "myhostname = mx.test.example"]
    level = draw(st.sampled_from(LEVELS))
    if level is not None:
        lines.append(f"compatibility_level = {level}")
    for _ in range(draw(st.integers(1, 7))):
        name = draw(st.sampled_from(TARGETS))
        val = draw(value())
        style = draw(st.integers(0, 3))
        if style == 1 and " " in val:  # continuation line, with a comment line and a blank line inside
            head, tail = val.split(" ", 1)
            lines += [f"{name} = {head}", "  # comment inside a continued line", "", f"    {tail}"]
        elif style == 2:
            lines.append(f"{name}={val}")
        else:
            lines.append(f"{name} = {val}")
        if draw(st.booleans()):
            lines.append("# " + draw(words))
    eol = draw(st.sampled_from(["\n", "\n", "\r\n"]))  # files edited on Windows exist
    return eol.join(lines) + eol


@st.composite
def master_cf(draw: st.DrawFn) -> str:
    lines = ["smtp      inet  n       -       y       -       -       smtpd"]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(TARGETS[:14]))
        val = draw(value())
        spelling = draw(st.integers(0, 2))
        if spelling == 0:
            lines.append(f"  -o {{ {name} = {val} }}")
        elif spelling == 1:  # a group continued on the next line
            lines += [f"  -o {{ {name} =", f"      {val} }}"]
        else:
            lines.append(f"  -o {name}={val.replace(' ', '')}")
    lines.append(
        "127.0.0.1:10025 inet n - n - - smtpd -o receive_override_options=no_unknown_recipient_checks"
    )
    lines.append("pickup    unix  n       -       y       60      1       pickup")
    return "\n".join(lines) + "\n"


def _write(d: Path, main: str, master: str | None) -> None:
    (d / "main.cf").write_text(main)
    if master is not None:
        (d / "master.cf").write_text(master)
    past = time.time() - 60  # postconf waits ~2 s before reading a file modified this second
    for p in d.iterdir():
        os.utime(p, (past, past))


def _postconf(binary: str, d: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, "-c", str(d), *args], capture_output=True, text=True, timeout=30)


def _compare(binary: str, d: Path) -> None:
    names = list(RULE_PARAMETERS)
    truth = _postconf(binary, d, "-x", "-h", *names)
    # postconf sleeps 1 s before exiting on a fatal error: skip the second call when the first failed
    has_master = (d / "master.cf").exists() and truth.returncode == 0
    overrides = _postconf(binary, d, "-P", "-x") if has_master else truth
    refused = truth.returncode != 0 or overrides.returncode != 0
    try:
        cfg = collect(str(d), use_postconf=False)
    except InputError as err:
        assert refused, f"parser refused ({err}) but postconf accepted:\n{truth.stdout}"
        return
    why = (truth.stderr + overrides.stderr).strip()[-300:]
    assert not refused, f"postconf refused ({why}) but the parser accepted"
    got = truth.stdout.split("\n")
    for name, expected in zip(names, got, strict=False):
        if name in HOST_COMPUTED and not cfg.params[name].explicit:
            continue
        assert cfg.value(name) == normalize(expected), (
            f"{name}: parser {cfg.value(name)!r} != postconf {expected!r}"
        )
    _compare_overrides(binary, d, cfg)


def _compare_overrides(binary: str, d: Path, cfg: PostfixConfig) -> None:
    if cfg.master_cf is None:
        return
    truth = _postconf(binary, d, "-P", "-x")
    assert truth.returncode == 0, truth.stderr
    expected: dict[tuple[str, str, str], str] = {}
    for line in truth.stdout.splitlines():
        key, _, val = line.partition(" =")
        svc, typ, name = key.rsplit("/", 2)
        expected[(svc, typ, name)] = normalize(val)
    mine = {(s.name, s.type, n): pv.value for s in cfg.services for n, pv in s.overrides.items()}
    assert mine == expected
    _compare_services(binary, d, cfg)


def _compare_services(binary: str, d: Path, cfg: PostfixConfig) -> None:
    """The 8 master.cf fields of every service against ``postconf -F``."""
    truth = _postconf(binary, d, "-F")
    assert truth.returncode == 0, truth.stderr
    fields: dict[tuple[str, str], dict[str, str]] = {}
    for line in truth.stdout.splitlines():
        key, _, val = line.partition(" = ")
        svc, typ, field = key.rsplit("/", 2)
        fields.setdefault((svc, typ), {})[field] = val
    expected = {
        k: (
            f["private"],
            f["unprivileged"],
            f["chroot"],
            f["wakeup"],
            f["process_limit"],
            f["command"].split()[0],
        )
        for k, f in fields.items()
    }
    mine = {
        (s.name, s.type): (s.private, s.unpriv, s.chroot, s.wakeup, s.maxproc, s.command)
        for s in cfg.services
    }
    assert mine == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(main=main_cf(), master=st.one_of(st.none(), master_cf()))
def test_parser_matches_postconf(main: str, master: str | None) -> None:
    binary = need_tool("postconf")
    with tempfile.TemporaryDirectory(prefix="bsa-diff-") as tmp:
        _write(Path(tmp), main, master)
        _compare(binary, Path(tmp))


FIXED_MAIN = [
    "docker-mailserver+docker-mailserver__target_postfix_main.cf",
    "mailcow+mailcow-dockerized__data_conf_postfix_main.cf",
]
FIXED_MASTER = [
    "docker-mailserver+docker-mailserver__target_postfix_master.cf",
    "mailcow+mailcow-dockerized__data_conf_postfix_master.cf",
    "sovereign+sovereign__roles_mailserver_files_etc_postfix_master.cf",
    "YunoHost+yunohost__conf_postfix_plain_master.cf",
]


@pytest.mark.parametrize("main", FIXED_MAIN)
def test_corpus_main_cf_matches_postconf(tmp_path: Path, main: str) -> None:
    binary = need_tool("postconf")
    src = CORPUS / "postfix" / main
    text = src.read_text()
    if "\nmyhostname" not in "\n" + text:
        text += "myhostname = mx.corpus.example\n"  # else postconf would use this machine's name
    partner = next((CORPUS / "postfix").glob(main.split("__")[0] + "__*master.cf"), None)
    _write(tmp_path, text, partner.read_text() if partner else None)
    _compare(binary, tmp_path)


@pytest.mark.parametrize("master", FIXED_MASTER)
def test_corpus_master_cf_matches_postconf(tmp_path: Path, master: str) -> None:
    binary = need_tool("postconf")
    _write(tmp_path, "myhostname = mx.corpus.example\n", (CORPUS / "postfix" / master).read_text())
    cfg = collect(str(tmp_path), use_postconf=False)
    assert cfg.templates == ()
    _compare_overrides(binary, tmp_path, cfg)


def test_collect_through_postconf_keeps_locations(tmp_path: Path) -> None:
    binary = need_tool("postconf")
    _write(
        tmp_path,
        "myhostname = mx.example.org\ncompatibility_level = 2\nsoft_bounce = yes\n",
        "smtp inet n - y - - smtpd\n  -o soft_bounce=no\n",
    )
    cfg = collect(str(tmp_path))
    assert cfg.source == "postconf"
    version = _postconf(binary, tmp_path, "-h", "mail_version").stdout.strip()
    assert version and cfg.params["mail_version"].value == version
    assert cfg.mail_version == ""  # not the live config: the installed version says nothing about it
    sb = cfg.params["soft_bounce"]
    assert (sb.value, sb.source, sb.explicit) == ("yes", "postconf", True)
    assert sb.location is not None and sb.location.line == 3
    assert cfg.services[0].overrides["soft_bounce"].value == "no"
    assert cfg.services[0].overrides["soft_bounce"].location.line == 2
    assert cfg.value("relay_domains") == ""


@pytest.mark.parametrize(
    "main",
    ["myhostname = x\nmydestination = ${broken\n", "myhostname = x\nnot an assignment\n"],
)
def test_bad_input_is_an_input_error_in_postconf_mode(tmp_path: Path, main: str) -> None:
    need_tool("postconf")
    _write(tmp_path, main, None)
    with pytest.raises(InputError) as err:
        collect(str(tmp_path), use_postconf=True)
    assert err.value.line == 2


def test_missing_main_cf_in_postconf_mode(tmp_path: Path) -> None:
    need_tool("postconf")
    with pytest.raises(InputError, match=r"no main\.cf"):
        collect(str(tmp_path), use_postconf=True)
