"""master.cf: services, -o overrides in every spelling, per-service expansion, stock fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.collect.postfix import PostfixConfig, collect
from auditor.model import InputError
from tests.unit.postfix.helpers import write_config

MAIN = "myhostname = mx.example.org\nsoft_bounce = no\ncompatibility_level = 3.6\n"
MASTER = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       y       -       -       smtpd
  -o soft_bounce=yes
  -o { smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, $myhostname }
#  -o commented_out=1
  -o receive_override_options=$soft_bounce
submission inet n       -       y       -       -       smtpd -osmtpd_tls_security_level=encrypt
127.0.0.1:10025 inet n  -  n  -  -  smtpd -o receive_override_options=no_unknown_recipient_checks
[::1]:10026 inet n  -       n       -       -       smtpd
pickup    unix  n       -       y       60      1       pickup
dovecot   unix  -       n       n       -       -       pipe
  flags=DRhu user=vmail argv=/usr/lib/dovecot/deliver -f ${sender} -d ${recipient}
"""


def parse(tmp_path: Path, master: str | None, main: str = MAIN) -> PostfixConfig:
    write_config(tmp_path, main, master)
    return collect(str(tmp_path), use_postconf=False)


def test_services_and_fields(tmp_path: Path) -> None:
    cfg = parse(tmp_path, MASTER)
    names = [(s.name, s.type) for s in cfg.services]
    assert names == [
        ("smtp", "inet"),
        ("submission", "inet"),
        ("127.0.0.1:10025", "inet"),
        ("[::1]:10026", "inet"),
        ("pickup", "unix"),
        ("dovecot", "unix"),
    ]
    smtp = cfg.services[0]
    assert (smtp.private, smtp.unpriv, smtp.chroot, smtp.wakeup, smtp.maxproc, smtp.command) == (
        "n",
        "-",
        "y",
        "-",
        "-",
        "smtpd",
    )
    assert smtp.location is not None and smtp.location.line == 2
    assert [s.name for s in cfg.public_smtpd_services()] == ["smtp", "submission"]
    assert cfg.services[2].is_loopback_only and cfg.services[3].is_loopback_only
    assert cfg.services[5].args[0] == "flags=DRhu"
    assert "${recipient}" in cfg.services[5].args


def test_overrides_expand_in_service_context(tmp_path: Path) -> None:
    cfg = parse(tmp_path, MASTER)
    smtp = cfg.services[0]
    assert smtp.overrides["soft_bounce"].value == "yes"
    assert smtp.overrides["soft_bounce"].source == "master.cf"
    assert smtp.overrides["soft_bounce"].location.line == 3
    srr = smtp.overrides["smtpd_recipient_restrictions"]
    assert srr.value == "permit_mynetworks, reject_unauth_destination, mx.example.org"
    assert srr.location.line == 4
    # $soft_bounce inside an override sees the service's own override, as postconf -P -x does
    assert smtp.overrides["receive_override_options"].value == "yes"
    assert "commented_out" not in smtp.overrides
    assert cfg.services[1].overrides["smtpd_tls_security_level"].value == "encrypt"
    assert cfg.param("soft_bounce", smtp).value == "yes"
    assert cfg.param("soft_bounce", cfg.services[1]).value == "no"


def test_glued_group_spelling(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "smtp inet n - y - - smtpd -o{relay_domains = a b} -o {x=1}\n")
    ov = cfg.services[0].overrides
    assert ov["relay_domains"].value == "a b"
    assert ov["x"].value == "1"
    assert any("'-o{'" in n for n in cfg.notes)


def test_last_override_wins(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "smtp inet n - y - - smtpd -o soft_bounce=yes -o soft_bounce=no\n")
    assert cfg.services[0].overrides["soft_bounce"].value == "no"


def test_no_master_cf_uses_stock_services(tmp_path: Path) -> None:
    cfg = parse(tmp_path, None)
    assert cfg.master_cf is None
    smtp = next(s for s in cfg.services if s.name == "smtp" and s.type == "inet")
    assert smtp.command == "smtpd" and smtp.location is None
    assert any("no master.cf" in n for n in cfg.notes)


@pytest.mark.parametrize(
    ("master", "line", "needle"),
    [
        ("smtp inet n - y - -\n", 1, "fields"),
        ("pickup unix n - y 60 1 pickup\nsmtp inet n - y - - smtpd -o { a = b\n", 2, "missing '}'"),
        ("smtp inet n - y - - smtpd\n  -o relay_domains=${oops\n", 2, "truncated"),
        ("pickup unix n - y 60 1 pickup\nsmtp inet n - y - abc smtpd\n", 2, "invalid process_limit"),
        ("smtp bogus n - y - - smtpd\n", 1, "invalid type"),
        ("smtp inet n - Y - - smtpd\n", 1, "invalid chroot"),
        ("smtp inet n - y 1x - smtpd\n", 1, "invalid wakeup"),
    ],
)
def test_bad_master_cf(tmp_path: Path, master: str, line: int, needle: str) -> None:
    with pytest.raises(InputError, match=needle) as err:
        parse(tmp_path, master)
    assert err.value.line == line
    assert err.value.path is not None and err.value.path.endswith("master.cf")


def test_override_without_equals_is_a_note(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "smtp inet n - y - - smtpd -o novalue\n")
    assert cfg.services[0].overrides == {}
    assert any("missing '='" in n for n in cfg.notes)


def test_templated_master_lines(tmp_path: Path) -> None:
    master = (
        "%{rspamd_enabled}smtp inet n - - - - smtpd\n"
        "%{amavis_enabled}  -o smtpd_proxy_filter=inet:[127.0.0.1]:10024\n"
        "[% IF pmg.filter %]\n"
        "[% pmg.port %] inet n - n - [% pmg.max %] smtpd -o content_filter={{ filter }}\n"
        "[% END %]\n"
        "{{ bad }} line\n"
    )
    cfg = parse(tmp_path, master)
    assert [s.name for s in cfg.services] == ["smtp", "[% pmg.port %]"]
    smtp = cfg.services[0]
    assert smtp.templated
    assert smtp.overrides["smtpd_proxy_filter"].value == "inet:[127.0.0.1]:10024"
    assert cfg.services[1].overrides["content_filter"].templated
    toks = {t.token for t in cfg.templates}
    want = {"%{rspamd_enabled}", "%{amavis_enabled}", "[% IF pmg.filter %]", "{{ filter }}", "{{ bad }}"}
    assert want <= toks
    cf = next(t for t in cfg.templates if t.token == "{{ filter }}")
    assert cf.parameter == "[% pmg.port %]/inet/content_filter" and cf.location.line == 4
