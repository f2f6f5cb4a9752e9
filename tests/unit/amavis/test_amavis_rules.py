"""amavisd-new lint, table-driven on Debian's shipped conf.d plus one file per trap.

Each case copies the Debian 12 amavisd-new conf.d (tests/unit/amavis/fixtures, see its README),
adds the files of the case, optionally a Postfix main.cf/master.cf, runs the real collectors and
the real rules, and checks the status of CF-AMAVIS-001, CF-AMAVIS-002 and CF-QUAR-001 and words
of their messages.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from auditor.collect.amavis import collect
from auditor.collect.postfix import collect as collect_postfix
from auditor.judge import evaluate
from auditor.model import Finding, Observation, Status

FIX = Path(__file__).parent / "fixtures" / "debian"
AFTER = "content_filter = smtp-amavis:[127.0.0.1]:10024\n"
MASTER_BEFORE = (
    "smtp inet n - y - - smtpd\n  -o smtpd_proxy_filter=127.0.0.1:10024\n"
    "127.0.0.1:10025 inet n - n - - smtpd\n  -o content_filter=\n"
    "pickup unix n - y 60 1 pickup\ncleanup unix n - y - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n"
)
MASTER_STOCK = (
    "smtp inet n - y - - smtpd\n"
    "submission inet n - y - - smtpd\n  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
    "  -o content_filter=smtp-amavis:[127.0.0.1]:10026\n"
    "smtp-amavis unix - - n - 2 smtp\n"
    "127.0.0.1:10025 inet n - n - - smtpd\n  -o content_filter=\n"
    "pickup unix n - y 60 1 pickup\ncleanup unix n - y - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n"
)
USER = "etc/amavis/conf.d/50-user"


@dataclass
class Case:
    id: str
    files: dict[str, str] = field(default_factory=dict)  # relative path -> content (replaces or adds)
    main_cf: str | None = None
    master_cf: str | None = None
    want: dict[str, str] = field(default_factory=dict)  # rule id -> status
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)  # rule id -> words in message+note


def _user(body: str) -> dict[str, str]:
    return {USER: "use strict;\n" + body + "\n1;  # ensure a defined return\n"}


CASES = [
    Case(
        "debian-stock",
        want={"CF-AMAVIS-001": "pass", "CF-AMAVIS-002": "pass", "CF-QUAR-001": "pass"},
        words={"CF-AMAVIS-001": ("spam D_PASS", "virus D_DISCARD", "banned D_DISCARD")},
    ),
    Case(
        "spam-bounce-no-postfix",
        _user("$final_spam_destiny = D_BOUNCE;"),
        want={"CF-AMAVIS-001": "fail", "CF-AMAVIS-002": "fail"},
        words={"CF-AMAVIS-001": ("spam D_BOUNCE", "unknown position"), "CF-AMAVIS-002": ("6.31 to 10",)},
    ),
    Case(
        "spam-reject-no-postfix",
        _user("$final_spam_destiny = D_REJECT;"),
        want={"CF-AMAVIS-001": "inconclusive"},
        words={"CF-AMAVIS-001": ("--postfix-dir",)},
    ),
    Case(
        "spam-reject-after-queue",
        _user("$final_spam_destiny = D_REJECT;"),
        main_cf=AFTER,
        want={"CF-AMAVIS-001": "fail"},
        words={"CF-AMAVIS-001": ("after the queue", "content_filter = smtp-amavis:[127.0.0.1]:10024")},
    ),
    Case(
        "spam-reject-before-queue",
        _user("$final_spam_destiny = D_REJECT;"),
        main_cf="compatibility_level = 3.6\n",
        master_cf=MASTER_BEFORE,
        want={"CF-AMAVIS-001": "pass"},
        words={"CF-AMAVIS-001": ("before the queue", "in-session reject")},
    ),
    Case(
        "spam-bounce-before-queue",
        _user("$final_spam_destiny = D_BOUNCE;"),
        main_cf="compatibility_level = 3.6\n",
        master_cf=MASTER_BEFORE,
        want={"CF-AMAVIS-001": "fail"},
        words={"CF-AMAVIS-001": ("before the queue",)},
    ),
    Case(
        "last-assignment-wins-across-files",
        {
            "etc/amavis/conf.d/40-site": "$final_spam_destiny = D_BOUNCE;\n1;\n",
            **_user("$final_spam_destiny = D_DISCARD;"),
        },
        want={"CF-AMAVIS-001": "pass"},
        words={"CF-AMAVIS-001": ("spam D_DISCARD",)},
    ),
    Case(
        "later-file-bounces",
        {"etc/amavis/conf.d/60-site": "$final_virus_destiny = D_BOUNCE;\n1;\n"},
        want={"CF-AMAVIS-001": "fail", "CF-AMAVIS-002": "pass"},
        words={
            "CF-AMAVIS-001": ("virus D_BOUNCE",),
            "CF-AMAVIS-002": ("every virus as sender-faking", "EICAR"),
        },
    ),
    Case(
        "run-parts-skips-dotted-names",
        {
            "etc/amavis/conf.d/60-local.conf": "$final_spam_destiny = D_BOUNCE;\n1;\n",
            "etc/amavis/conf.d/50-user.dpkg-old": "$final_spam_destiny = D_BOUNCE;\n1;\n",
        },
        want={"CF-AMAVIS-001": "pass"},
    ),
    Case(
        "numeric-minus-2-is-bounce",
        _user("$final_spam_destiny = -2;"),
        want={"CF-AMAVIS-001": "fail"},
    ),
    Case(
        "numeric-2-is-no-constant",
        _user("$final_spam_destiny = 2;"),
        main_cf=AFTER,
        want={"CF-AMAVIS-001": "fail"},
        words={"CF-AMAVIS-001": ("not a D_* constant", "D_BOUNCE is -2")},
    ),
    Case(
        "quoted-constant-is-a-string",
        _user("$final_spam_destiny = 'D_BOUNCE';"),
        want={"CF-AMAVIS-001": "pass"},
        words={"CF-AMAVIS-001": ("quoted string",)},
    ),
    Case(
        "commented-pod-string-heredoc",
        _user(
            "#$final_spam_destiny = D_BOUNCE;\n"
            "my $doc = '$final_spam_destiny = D_BOUNCE;';\n"
            "my $h = <<'EOT';\n$final_virus_destiny = D_BOUNCE;\nEOT\n"
            "=pod\n\n$final_banned_destiny = D_BOUNCE;\n\n=cut\n"
        ),
        want={"CF-AMAVIS-001": "pass"},
    ),
    Case(
        "inbound-policy-bank-overrides",
        _user(
            "$interface_policy{'10024'} = 'INET';\n"
            "$policy_bank{'INET'} = { final_spam_destiny => D_BOUNCE, };\n"
            "$interface_policy{'10026'} = 'ORIGINATING';\n"
            "$policy_bank{'ORIGINATING'} = { originating => 1, final_virus_destiny => D_BOUNCE };"
        ),
        main_cf=AFTER,
        master_cf=MASTER_STOCK,
        want={"CF-AMAVIS-001": "fail"},
        words={"CF-AMAVIS-001": ("policy bank INET", "spam D_BOUNCE", "'ORIGINATING'", "10026")},
    ),
    Case(
        "bank-for-other-port-not-judged",
        _user(
            "$interface_policy{'10026'} = 'ORIGINATING';\n"
            "$policy_bank{'ORIGINATING'} = { originating => 1, final_spam_destiny => D_BOUNCE };"
        ),
        main_cf=AFTER,
        master_cf=MASTER_STOCK,
        want={"CF-AMAVIS-001": "pass"},
        words={"CF-AMAVIS-001": ("final_spam_destiny = D_BOUNCE", "does not use for Internet mail")},
    ),
    Case(
        "conditional-assignment",
        _user("$final_spam_destiny = D_BOUNCE if -e '/etc/amavis/bounce';"),
        want={"CF-AMAVIS-001": "inconclusive"},
        words={"CF-AMAVIS-001": ("50-user:2", "assigned only if")},
    ),
    Case(
        "if-block",
        _user("if ($mydomain eq 'example.com') {\n  $final_spam_destiny = D_BOUNCE;\n}"),
        want={"CF-AMAVIS-001": "inconclusive"},
        words={"CF-AMAVIS-001": ("50-user:3",)},
    ),
    Case(
        "destiny-map-bareword-trap",
        _user("$final_destiny_maps_by_ccat{CC_SPAM} = D_BOUNCE;"),
        want={"CF-AMAVIS-001": "pass"},
        words={"CF-AMAVIS-001": ("is the string, not the constant",)},
    ),
    Case(
        "destiny-map-constant-key",
        _user("$final_destiny_maps_by_ccat{+CC_SPAM} = D_BOUNCE;"),
        want={"CF-AMAVIS-001": "fail"},
        words={"CF-AMAVIS-001": ("spam D_BOUNCE",)},
    ),
    Case(
        "warnbannedsender-turns-discard-into-bounce",
        _user("$warnbannedsender = 1;"),
        want={"CF-AMAVIS-001": "fail", "CF-AMAVIS-002": "fail", "CF-QUAR-001": "fail"},
        words={
            "CF-AMAVIS-001": ("banned D_BOUNCE (D_DISCARD + $warnbannedsender",),
            "CF-QUAR-001": ("banned",),
        },
    ),
    Case(
        "retired-warnvirussender",
        _user("$warnvirussender = 1;\n$warnspamsender = 1;"),
        want={"CF-AMAVIS-002": "pass", "CF-QUAR-001": "pass"},
        words={"CF-AMAVIS-002": ("retired since amavisd-new 2.7.0",)},
    ),
    Case(
        "virus-bounce-vtfs-emptied",
        _user("$final_virus_destiny = D_BOUNCE;\n@viruses_that_fake_sender_maps = ();"),
        want={"CF-AMAVIS-001": "fail", "CF-AMAVIS-002": "fail"},
        words={"CF-AMAVIS-002": ("viruses it does not list get a DSN",)},
    ),
    Case(
        "spam-bounce-cutoff-below-kill",
        _user("$final_spam_destiny = D_BOUNCE;\n$sa_dsn_cutoff_level = 6;"),
        want={"CF-AMAVIS-001": "fail", "CF-AMAVIS-002": "pass"},
    ),
    Case(
        "spam-bounce-cutoff-undef",
        _user("$final_spam_destiny = D_BOUNCE;\n$sa_dsn_cutoff_level = undef;"),
        want={"CF-AMAVIS-002": "fail"},
        words={"CF-AMAVIS-002": ("every spam gets a DSN",)},
    ),
    Case(
        "include-not-read",
        _user("include_config_files('/nonexistent/amavis-extra.conf');"),
        want={"CF-AMAVIS-001": "inconclusive"},
        words={"CF-AMAVIS-001": ("50-user:2", "not read")},
    ),
    Case(
        "include-followed",
        {
            **_user("include_config_files('extra.pl');"),
            "etc/amavis/conf.d/extra.pl": "$final_spam_destiny = D_BOUNCE;\n1;\n",
        },
        want={"CF-AMAVIS-001": "fail"},
    ),
    Case(
        "variable-reference",
        _user("my $d = D_BOUNCE;\n$final_banned_destiny = $d;"),
        want={"CF-AMAVIS-001": "fail"},
        words={"CF-AMAVIS-001": ("banned",)},
    ),
    Case(
        "spam-not-set-version-default",
        {"etc/amavis/conf.d/20-debian_defaults": "$final_virus_destiny = D_DISCARD;\n1;\n"},
        want={"CF-AMAVIS-001": "inconclusive"},
        words={"CF-AMAVIS-001": ("2.7.0",)},
    ),
    Case(
        "amavis-not-on-internet-path",
        _user("$final_spam_destiny = D_REJECT;"),
        main_cf="compatibility_level = 3.6\n",
        master_cf=MASTER_STOCK,
        want={"CF-AMAVIS-001": "inconclusive"},
        words={"CF-AMAVIS-001": ("hands no Internet mail to amavis",)},
    ),
]


def _observations(tmp_path: Path, case: Case) -> list[Observation]:
    root = tmp_path / "root"
    shutil.copytree(FIX, root)
    for rel, text in case.files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    obs: list[Observation] = [collect(str(root))]
    if case.main_cf is not None or case.master_cf is not None:
        pf = tmp_path / "postfix"
        pf.mkdir()
        (pf / "main.cf").write_text(case.main_cf or "")
        if case.master_cf is not None:
            (pf / "master.cf").write_text(case.master_cf)
        obs.append(collect_postfix(str(pf), use_postconf=False))
    return obs


def _by_rule(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.rule_id, []).append(f)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(tmp_path: Path, case: Case) -> None:
    found = _by_rule(evaluate(_observations(tmp_path, case)))
    for rid, status in case.want.items():
        got = found.get(rid, [])
        assert got, f"{rid} produced no finding"
        worst = next(
            (s for s in ("fail", "inconclusive", "pass") if any(f.status.value == s for f in got)), ""
        )
        assert worst == status, [(f.status.value, f.message, f.note) for f in got]
    for rid, words in case.words.items():
        text = " ".join(f"{f.message} {f.note} {f.target}" for f in found.get(rid, []))
        for w in words:
            assert w in text, (w, text)


def _apply_fixes(tmp_path: Path, case: Case, rule_id: str) -> list[Finding]:
    """Run the fix commands of the failing finding for real (they append to a copy), then judge again."""
    obs = _observations(tmp_path, case)
    f = next(x for x in evaluate(obs) if x.rule_id == rule_id)
    assert f.status is Status.FAIL
    for cmd in f.remediation.commands:
        assert str(tmp_path) in cmd.line  # it edits the linted copy, nothing else
        subprocess.run(["sh", "-c", cmd.line], check=True, timeout=10)
    again = [collect(str(tmp_path / "root")), *obs[1:]]
    return [f, *(x for x in evaluate(again) if x.rule_id == rule_id)]


def test_fix_commands_append_to_the_last_file_and_work(tmp_path: Path) -> None:
    case = Case("fix", _user("$final_spam_destiny = D_BOUNCE;"), main_cf=AFTER)
    before, after = _apply_fixes(tmp_path, case, "CF-AMAVIS-001")
    (cmd,) = before.remediation.commands
    assert "'$final_spam_destiny = D_DISCARD;'" in cmd.line and cmd.line.endswith("50-user")
    assert (
        before.location is not None and before.location.path.endswith("50-user") and before.location.line == 2
    )
    assert after.status is Status.PASS, after.message


def test_fix_in_policy_bank_works(tmp_path: Path) -> None:
    case = Case(
        "bankfix",
        _user(
            "$interface_policy{'10024'} = 'INET';\n$policy_bank{'INET'} = { final_spam_destiny => D_BOUNCE };"
        ),
        main_cf=AFTER,
    )
    before, after = _apply_fixes(tmp_path, case, "CF-AMAVIS-001")
    assert '$policy_bank{"INET"}{final_spam_destiny} = D_DISCARD;' in before.remediation.commands[0].line
    assert after.status is Status.PASS, after.message


def test_fix_before_queue_uses_reject(tmp_path: Path) -> None:
    case = Case(
        "beforefix",
        _user("$final_spam_destiny = D_BOUNCE;"),
        main_cf="compatibility_level = 3.6\n",
        master_cf=MASTER_BEFORE,
    )
    before, after = _apply_fixes(tmp_path, case, "CF-AMAVIS-001")
    assert "D_REJECT" in before.remediation.commands[0].line
    assert after.status is Status.PASS, after.message


def test_skipped_files_are_recorded(tmp_path: Path) -> None:
    case = Case("skip", {"etc/amavis/conf.d/60-local.conf": "$final_spam_destiny = D_BOUNCE;\n1;\n"})
    cfg = _observations(tmp_path, case)[0]
    skipped = [f for f in cfg.files if f.status == "skipped"]  # type: ignore[attr-defined]
    assert [Path(f.path).name for f in skipped] == ["60-local.conf"]
    read = [Path(f.path).name for f in cfg.files if f.status == "read"]  # type: ignore[attr-defined]
    # /usr/share/amavis/conf.d first, then /etc/amavis/conf.d, each in byte order (run-parts)
    assert read == [
        "10-debian_scripts",
        "20-package",
        "01-debian",
        "15-content_filter_mode",
        "20-debian_defaults",
        "25-amavis_helpers",
        "50-user",
    ]
