"""The text view fits the terminal: no line longer than the width, at 80 and 60 columns, for the
golden report, the committed demo report and a 2,000-domain one; long targets are cut in the middle;
folded shell commands run exactly as the originals (checked with the real bash)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.model import Report, Severity
from auditor.render import text
from auditor.render._fit import cut_middle, fold_shell, wrap
from auditor.render._options import RenderOptions
from auditor.serialize import load_report
from tests.unit.render.fixtures import golden_report, hosting_report

EXAMPLE = Path(__file__).resolve().parents[3] / "reports" / "examples" / "report.json"


def _reports() -> dict[str, Report]:
    return {"golden": golden_report(), "example": load_report(str(EXAMPLE)), "hosting": hosting_report(300)}


REPORTS = _reports()


@pytest.mark.parametrize("width", [80, 60])
@pytest.mark.parametrize("name", sorted(REPORTS))
@pytest.mark.parametrize("mode", ["default", "verbose", "quiet", "color"])
def test_no_line_is_wider_than_the_terminal(name: str, width: int, mode: str) -> None:
    opts = RenderOptions(width=width, verbose=mode == "verbose", quiet=mode == "quiet", color=mode == "color")
    out = text.render(REPORTS[name], opts)
    plain = out.replace("\033[0m", "")
    for code in ("\033[31m", "\033[33m", "\033[32m", "\033[2m", "\033[1;31m", "\033[1;33m", "\033[1;32m"):
        plain = plain.replace(code, "")
    long = [line for line in plain.splitlines() if len(line) > width]
    assert not long, f"{len(long)} lines over {width}: {long[:3]}"
    assert ("\033[" in out) == (mode == "color")


def test_the_hosting_report_at_80_columns_keeps_every_failure() -> None:
    report = hosting_report(2000)
    out = text.render(report, RenderOptions(width=80))
    assert max(len(line) for line in out.splitlines()) <= 80
    fails = [f for f in report.findings if f.status.value == "fail"]
    assert fails and all(f.target in out or cut_middle(f.target, 40)[:10] in out for f in fails)


def test_targets_are_cut_in_the_middle() -> None:
    assert cut_middle("mx1.example.com[192.0.2.1]", 20) == "mx1.examp…192.0.2.1]"
    assert cut_middle("short", 20) == "short"
    cut = cut_middle("uid=old.user,ou=people,dc=example,dc=com", 21)
    assert len(cut) == 21 and cut.startswith("uid=old.u") and cut.endswith("dc=com")


def test_wrap_keeps_line_breaks_and_breaks_long_words() -> None:
    lines = wrap("a\n" + "x" * 50, 20, "> ", "  ")
    assert lines[0] == "> a" and all(len(line) <= 20 for line in lines) and "".join(lines).count("x") == 50


def test_quiet_shows_the_verdict_and_failures_only() -> None:
    out = text.render(golden_report(), RenderOptions(quiet=True))
    assert out.startswith("verdict: FAIL")
    assert "PF-RCPT-003" in out and "SMTP-NULL-001" not in out  # inconclusive is not a failure
    assert "How to fix" not in out and "summary:" not in out


def test_verbose_shows_evidence_and_transcripts() -> None:
    out = text.render(golden_report(), RenderOptions(verbose=True))
    assert "| C: RCPT TO:<bsa-9f3k2q7z@example.com>" in out
    assert "\\x1b[2J" in out and "\033[2J" not in out  # the hostile reply stays inert
    assert "evidence:" not in text.render(golden_report())


def test_min_severity_hides_lower_findings_and_says_so() -> None:
    out = text.render(golden_report(), RenderOptions(min_severity=Severity.HIGH))
    assert "DNS-NULLMX-001" not in out and "PF-DSN-001" not in out
    assert "PF-RCPT-003" in out and "LDAP-SYNC-001" in out
    assert "3 findings below high not shown" in out


COMMANDS = [
    "postconf -c etc/postfix-backup -e 'relay_recipient_maps = lmdb:<table>'",
    'postmap -q "bsa-nobody-x@example.com" lmdb:/etc/postfix/relay_recipients  # must print nothing',
    'printf \'%s|\' a\\ b "dq \\"x\\" long-long-long-long-long-long-long-long-long-long" '
    "$'ansi\\tc long long long long long long long long' 'single quoted string with spaces and more words'",
    "echo " + "x" * 100,
]


def _args(command: str) -> str:
    bash = shutil.which("bash")
    assert bash, "bash is needed to check folded commands"
    script = "f() { printf '<%s>' \"$@\"; }; f " + command.split(" ", 1)[1]
    return subprocess.run([bash, "-c", script], capture_output=True, text=True, check=True, timeout=10).stdout


@pytest.mark.parametrize("width", [30, 50, 80])
@pytest.mark.parametrize("command", COMMANDS)
def test_folded_commands_run_unchanged(command: str, width: int) -> None:
    lines = fold_shell(command, width, indent="         ")
    assert all(len(line) <= width for line in lines)
    pasted = "\n".join([lines[0][len("         $ ") :], *lines[1:]])
    assert _args(pasted) == _args(command)


def test_report_diff_text_fits_and_is_inert() -> None:
    import dataclasses

    from auditor.model import Finding, Status
    from auditor.render.diff import diff_reports, render_diff_text
    from tests.unit.render.fixtures import judged

    old = golden_report()
    evil = Finding(
        "SMTP-RELAY-001",
        Status.FAIL,
        Severity.CRITICAL,
        "mx9." + "x" * 90 + ".example",
        "\x1b[2J" + "y " * 80,
    )
    new = judged((*old.findings, evil), dataclasses.replace(old.run))
    for width in (80, 60):
        out = render_diff_text(diff_reports(old, new), RenderOptions(width=width))
        assert max(len(line) for line in out.splitlines()) <= width
        assert "\x1b" not in out and "\\x1b[2J" in out
