"""The PF rules on configurations read through the real ``postconf`` binary (skips on a box without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.collect.postfix import collect
from auditor.judge import evaluate
from auditor.model import Finding, Status
from tests.conftest import need_tool

pytestmark = pytest.mark.postfix

MASTER = """\
smtp      inet  n       -       n       -       -       smtpd
  -o receive_override_options=no_unknown_recipient_checks
127.0.0.1:10025 inet n  -       n       -       -       smtpd
  -o content_filter=
  -o local_recipient_maps=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
amavis    unix  -       -       n       -       2       smtp
"""


def _judge(tmp_path: Path, main_cf: str) -> tuple[str, list[Finding]]:
    need_tool("postconf")
    (tmp_path / "main.cf").write_text(main_cf)
    (tmp_path / "master.cf").write_text(MASTER)
    (tmp_path / "header_checks").write_text("/^X-Virus: yes/ DISCARD\n/^Subject: .*free money/ REJECT no\n")
    cfg = collect(str(tmp_path), use_postconf=True)
    assert cfg.source == "postconf"
    return str(tmp_path), evaluate([cfg])


def _status(findings: list[Finding], rule_id: str, target: str) -> Status:
    found = [f.status for f in findings if f.rule_id == rule_id and f.target == target]
    assert len(found) == 1, (rule_id, target, found)
    return found[0]


def test_sloppy_gateway_through_postconf(tmp_path: Path) -> None:
    d, findings = _judge(
        tmp_path,
        "compatibility_level = 3.6\n"
        "myhostname = mx.example.net\n"
        "mydestination = $myhostname, example.net, localhost\n"
        "local_recipient_maps =\n"
        "relay_domains = example.org\n"
        "content_filter = amavis:[127.0.0.1]:10024\n"
        "unverified_recipient_defer_code = 250\n"
        "header_checks = regexp:/etc/postfix/header_checks\n",
    )
    svc = f"{d} service 127.0.0.1:10025/inet"
    smtp = f"{d} service smtp/inet"
    assert _status(findings, "PF-RCPT-001", d) is Status.FAIL
    assert _status(findings, "PF-RCPT-001", svc) is Status.PASS
    assert _status(findings, "PF-RCPT-003", d) is Status.FAIL
    assert _status(findings, "PF-RCPT-008", smtp) is Status.FAIL
    assert _status(findings, "PF-RCPT-008", svc) is Status.PASS
    assert _status(findings, "PF-FILTER-001", d) is Status.INCONCLUSIVE  # the filter's settings decide
    assert _status(findings, "PF-FILTER-004", svc) is Status.PASS  # no_header_body_checks is there
    assert _status(findings, "PF-FILTER-004", f"{d} service pickup/unix") is Status.FAIL
    pickup = next(f for f in findings if f.rule_id == "PF-FILTER-004" and f.target.endswith("pickup/unix"))
    assert pickup.location is not None and pickup.location.line == 2  # the REJECT line of header_checks
    assert "with 1 REJECT rule" in pickup.message  # not 3: mime_/nested_header_checks = $header_checks
    assert _status(findings, "PF-VERIFY-001", d) is Status.FAIL
    # postconf supplies the 3.6 defaults: relay restrictions end in defer_unauth_destination
    assert _status(findings, "PF-RELAY-001", d) is Status.PASS
    assert _status(findings, "PF-COMPAT-001", d) is Status.PASS


def test_unset_compatibility_level_through_postconf(tmp_path: Path) -> None:
    d, findings = _judge(tmp_path, "myhostname = mx.example.net\nmydestination = $myhostname, example.net\n")
    compat = [f for f in findings if f.rule_id == "PF-COMPAT-001" and f.target == d]
    assert len(compat) == 1 and compat[0].status is Status.FAIL
    assert "relay_domains" in compat[0].message
    # implicit relay_domains = $mydestination, no relay_recipient_maps
    assert _status(findings, "PF-RCPT-003", d) is Status.FAIL
