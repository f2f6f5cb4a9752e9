"""`lint amavis` on bad input and on the real Postfix corpus configurations that use amavis."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.collect.amavis import collect
from auditor.collect.postfix import collect as collect_postfix
from auditor.judge import evaluate
from auditor.model import InputError
from tests.conftest import CORPUS, need

FIX = Path(__file__).parent / "fixtures" / "debian"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"$final_spam_destiny = D_PASS;\n\x00\x01\x02\xff binary\n", 2),
        (b"$final_spam_destiny = D_PASS;\n$x = 'never closed;\n1;\n", 2),
        (b"$final_spam_destiny = D_PASS;\n@av_scanners = ( ['x', \\&ask_daemon;\n1;\n", 2),
        (b"my $h = <<EOT;\n$final_spam_destiny = D_BOUNCE;\n", 1),
        (
            b"#!/usr/bin/perl\nuse strict;\nmy $sum = 0;\nfor my $i (1..10) { $sum += $i }\nprint $sum;\n",
            None,
        ),
        (b"$final_spam_destiny = '" + b"x" * 10_000_000 + b"';\n", None),
    ],
    ids=["binary", "unterminated-string", "unclosed-bracket", "unterminated-heredoc", "not-amavis", "10MB"],
)
def test_one_line_error_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, line: int | None
) -> None:
    f = tmp_path / "amavisd.conf"
    f.write_bytes(content)
    assert main(["lint", "amavis", str(f), "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(f) in lines[0]
    if line is not None:
        assert f"{f}:{line}:" in lines[0], lines[0]


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        collect(str(tmp_path / "nope"))
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "x.conf").write_text("$final_spam_destiny = D_PASS;\n")  # run-parts skips it
    with pytest.raises(InputError, match="run-parts would run none"):
        collect(str(tmp_path / "conf.d"))


def test_hostile_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    f = tmp_path / "amavisd.conf"
    f.write_text("$final_spam_destiny = " + "[" * 5000 + "1" + "]" * 5000 + ";\n")
    with pytest.raises(InputError, match="nested too deeply"):
        collect(str(f))


def test_deep_but_legal_expression_is_unknown(tmp_path: Path) -> None:
    f = tmp_path / "amavisd.conf"
    f.write_text("$final_spam_destiny = " + "(" * 150 + "D_BOUNCE" + ")" * 150 + ";\n1;\n")
    cfg = collect(str(f))
    (s,) = [s for s in cfg.settings if s.variable == "$final_spam_destiny"]
    assert s.value.kind in ("number", "list", "unknown")


def test_single_upstream_style_file(tmp_path: Path) -> None:
    f = tmp_path / "amavisd.conf"
    f.write_text(
        "use strict;\n$max_servers = 2;\n$inet_socket_port = [10024, 10026];\n"
        "$final_virus_destiny = D_DISCARD;\n$final_banned_destiny = D_BOUNCE;\n"
        "$final_spam_destiny = D_DISCARD;\n$final_bad_header_destiny = D_PASS;\n1;\n"
    )
    found = {x.rule_id: x for x in evaluate([collect(str(f))])}
    assert found["CF-AMAVIS-001"].status.value == "fail"
    assert found["CF-AMAVIS-001"].severity.value == "medium"  # only banned mail bounces
    assert "banned D_BOUNCE" in found["CF-AMAVIS-001"].message


PF = CORPUS / "postfix"


def _corpus_postfix(tmp_path: Path, main_cf: str, master_cf: str, extra_main: str = "") -> Path:
    need(PF.is_dir(), f"the Postfix corpus {PF}")
    d = tmp_path / "pf"
    d.mkdir()
    (d / "main.cf").write_text((PF / main_cf).read_text() + extra_main)
    shutil.copy(PF / master_cf, d / "master.cf")
    return d


def _debian_with(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "amavis"
    shutil.copytree(FIX, root)
    (root / "etc/amavis/conf.d/50-user").write_text("use strict;\n" + body + "\n1;\n")
    return root


def test_iredmail_sample_has_amavis_on_submission_only(tmp_path: Path) -> None:
    # iRedMail's sample master.cf sends only submission/smtps to amavis (a PH_ placeholder); its
    # installer adds the MX content_filter later, so the sample alone hands no Internet mail to amavis.
    pf = _corpus_postfix(
        tmp_path, "iredmail+iRedMail__samples_postfix_main.cf", "iredmail+iRedMail__samples_postfix_master.cf"
    )
    obs = [
        collect(str(_debian_with(tmp_path, "$final_spam_destiny = D_REJECT;"))),
        collect_postfix(str(pf), use_postconf=False),
    ]
    f = next(x for x in evaluate(obs) if x.rule_id == "CF-AMAVIS-001")
    assert f.status.value == "inconclusive" and "no Internet mail" in f.message + f.note, f.message


def test_iredmail_with_its_installer_content_filter(tmp_path: Path) -> None:
    pf = _corpus_postfix(
        tmp_path,
        "iredmail+iRedMail__samples_postfix_main.cf",
        "iredmail+iRedMail__samples_postfix_master.cf",
        "\ncontent_filter = smtp-amavis:[127.0.0.1]:10024\n",
    )
    obs = [
        collect(str(_debian_with(tmp_path, "$final_spam_destiny = D_REJECT;"))),
        collect_postfix(str(pf), use_postconf=False),
    ]
    f = next(x for x in evaluate(obs) if x.rule_id == "CF-AMAVIS-001")
    assert f.status.value == "fail" and "after the queue" in f.message, f.message


def test_modoboa_proxy_filter_template(tmp_path: Path) -> None:
    # modoboa puts "-o smtpd_proxy_filter=inet:[127.0.0.1]:10024" behind a %{amavis_enabled} token.
    pf = _corpus_postfix(
        tmp_path,
        "modoboa+modoboa-installer__modoboa_installer_scripts_files_postfix_main.cf.tpl",
        "modoboa+modoboa-installer__modoboa_installer_scripts_files_postfix_master.cf.tpl",
    )
    obs = [
        collect(str(_debian_with(tmp_path, "$final_spam_destiny = D_REJECT;"))),
        collect_postfix(str(pf), use_postconf=False),
    ]
    f = next(x for x in evaluate(obs) if x.rule_id == "CF-AMAVIS-001")
    assert f.status.value in ("pass", "inconclusive"), (f.status, f.message)
    assert f.status.value != "fail"


def test_cli_joins_postfix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pf = tmp_path / "pf"
    pf.mkdir()
    (pf / "main.cf").write_text("compatibility_level = 3.6\ncontent_filter = smtp-amavis:[127.0.0.1]:10024\n")
    root = _debian_with(tmp_path, "$final_spam_destiny = D_REJECT;")
    rc = main(["lint", "amavis", str(root), "--postfix-dir", str(pf), "--format", "json"])
    out, _err = capsys.readouterr()
    assert rc == 1
    assert '"CF-AMAVIS-001"' in out and '"postfix.config"' in out and '"amavis.config"' in out
    doc = json.loads(out)
    [pf_filter] = [f for f in doc["findings"] if f["rule_id"] == "PF-FILTER-001"]
    assert pf_filter["status"] == "not-applicable" and "CF-AMAVIS-001" in pf_filter["message"]
