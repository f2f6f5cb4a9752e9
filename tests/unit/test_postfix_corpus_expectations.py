"""What a careful auditor says about real-world Postfix configurations (corpus/postfix).

Each main.cf/master.cf pair from /work/shared/corpus/postfix is copied into a temporary directory,
read by the real collector (``auditor.collect.postfix.collect``) and judged by the real engine.
Every expectation says why, from the file's own lines.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.collect.postfix import collect
from auditor.judge import evaluate
from auditor.model import Finding, Status
from tests.conftest import CORPUS, need, need_tool

PF = CORPUS / "postfix"

PAIRS: dict[str, tuple[str, str]] = {
    "mailu": ("Mailu+Mailu__core_postfix_conf_main.cf", "Mailu+Mailu__core_postfix_conf_master.cf"),
    "proxmox": ("proxmox+pmg-api__src_templates_main.cf.in", "proxmox+pmg-api__src_templates_master.cf.in"),
    "iredmail": (
        "iredmail+iRedMail__samples_postfix_main.cf",
        "iredmail+iRedMail__samples_postfix_master.cf",
    ),
    "mailcow": (
        "mailcow+mailcow-dockerized__data_conf_postfix_main.cf",
        "mailcow+mailcow-dockerized__data_conf_postfix_master.cf",
    ),
    "dms": (
        "docker-mailserver+docker-mailserver__target_postfix_main.cf",
        "docker-mailserver+docker-mailserver__target_postfix_master.cf",
    ),
    "frjo": (
        "frjo+ansible-roles__mailrelay_templates_etc_postfix_main.cf.j2",
        "frjo+ansible-roles__mailrelay_templates_etc_postfix_master.cf.j2",
    ),
    "modoboa": (
        "modoboa+modoboa-installer__modoboa_installer_scripts_files_postfix_main.cf.tpl",
        "modoboa+modoboa-installer__modoboa_installer_scripts_files_postfix_master.cf.tpl",
    ),
    "sovereign": (
        "sovereign+sovereign__roles_mailserver_templates_etc_postfix_main.cf.j2",
        "sovereign+sovereign__roles_mailserver_files_etc_postfix_master.cf",
    ),
    "yunohost": (
        "YunoHost+yunohost__conf_postfix_main.cf",
        "YunoHost+yunohost__conf_postfix_plain_master.cf",
    ),
}


def _judge(tmp_path: Path, name: str, *, use_postconf: bool | None = False) -> tuple[str, list[Finding]]:
    need(PF.is_dir(), f"the Postfix corpus {PF}")
    main, master = PAIRS[name]
    d = tmp_path / name
    d.mkdir()
    shutil.copy(PF / main, d / "main.cf")
    shutil.copy(PF / master, d / "master.cf")
    cfg = collect(str(d), use_postconf=use_postconf)
    findings = [f for f in evaluate([cfg]) if f.rule_id.startswith("PF-")]
    return str(d), findings


Judge = Callable[..., tuple[str, list[Finding]]]


@pytest.fixture
def judge(tmp_path: Path) -> Judge:
    return lambda name, **kw: _judge(tmp_path, name, **kw)


def one(findings: list[Finding], rule_id: str, target: str) -> Finding:
    found = [f for f in findings if f.rule_id == rule_id and f.target == target]
    assert len(found) == 1, (
        f"{rule_id} {target}: {[(f.target, f.status.value) for f in findings if f.rule_id == rule_id]}"
    )
    return found[0]


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_every_pair_is_judged_without_rule_errors(judge: Judge, name: str) -> None:
    _d, findings = judge(name)
    assert findings
    assert not [f for f in findings if f.target == "(rule error)"]
    keys = [f.key for f in findings]
    assert len(keys) == len(set(keys)), "one finding per rule and target"
    ids = {f.rule_id for f in findings}
    assert {"PF-RCPT-001", "PF-RCPT-002", "PF-RELAY-001", "PF-DSN-001"} <= ids


def test_mailu_listener_10025_does_not_reject_unlisted_recipients(judge: Judge) -> None:
    # master.cf line 12: -o smtpd_reject_unlisted_recipient={% if REJECT_UNLISTED_RECIPIENT %}…{% else %}no
    # on "10025 inet ... smtpd": all interfaces, no reject for unauthenticated clients (its client
    # restrictions end in "permit"), so anonymous mail for hosted domains is accepted there. With the
    # variable unset (Mailu's default) the template renders "no". The port-25 "smtp inet" entry has
    # no override and keeps the default "yes".
    d, findings = judge("mailu")
    f = one(findings, "PF-RCPT-002", f"{d} service 10025/inet")
    assert f.status is Status.FAIL
    assert f.location is not None and f.location.line == 12
    assert "options unset" in f.note
    assert one(findings, "PF-RCPT-002", d).status is Status.PASS


def test_mailu_relayed_domains_have_no_recipient_list(judge: Judge) -> None:
    # main.cf: "relay_domains = ${podop}transport" and no relay_recipient_maps: every recipient of
    # a relayed domain is accepted and the downstream server's rejects become bounces.
    d, findings = judge("mailu")
    assert one(findings, "PF-RCPT-003", d).status is Status.FAIL


def test_proxmox_gateway_relays_without_recipient_list(judge: Judge) -> None:
    # main.cf: "relay_domains = hash:/etc/pmg/domains", no relay_recipient_maps, and
    # reject_unverified_recipient only inside "[% IF pmg.mail.verifyreceivers %]" (off by default).
    # The public path is postscreen ("[% pmg.mail.ext_port %] inet ... postscreen") -> "smtpd pass",
    # which inherits main.cf.
    d, findings = judge("proxmox")
    f = one(findings, "PF-RCPT-003", d)
    assert f.status is Status.FAIL
    assert "hash:/etc/pmg/domains" in f.message
    assert "reject_unverified_recipient only inside a template conditional" in f.note
    assert one(findings, "PF-VERIFY-002", d).status is Status.FAIL


def test_proxmox_after_queue_filter_on_the_public_path(judge: Judge) -> None:
    # master.cf: "smtpd pass ... -o content_filter=scan:127.0.0.1:10024" (the after-queue branch, the
    # default) with the "scan unix ... lmtp" transport and the 127.0.0.1:10025 re-injection listener.
    d, findings = judge("proxmox")
    # Whether "scan" rejects is set in pmg's own filter configuration, not in these files.
    f = one(findings, "PF-FILTER-001", f"{d} service smtpd/pass")
    assert f.status is Status.INCONCLUSIVE and "scan filter's settings" in f.note
    assert "scan:127.0.0.1:10024" in f.message and "127.0.0.1:10025/inet" in f.message


@pytest.mark.parametrize(
    ("name", "listeners"),
    [
        ("proxmox", ["127.0.0.1:10025/inet"]),
        (
            "iredmail",
            [
                "PH_LOCAL_ADDRESS:PH_POSTFIX_MAIL_REINJECT_PORT/inet",
                "PH_LOCAL_ADDRESS:PH_POSTFIX_MLMMJ_REINJECT_PORT/inet",
            ],
        ),
    ],
)
def test_reinjection_listeners_are_not_flagged(judge: Judge, name: str, listeners: list[str]) -> None:
    # These listeners carry "-o local_recipient_maps=", "-o relay_recipient_maps=" and
    # "receive_override_options=no_unknown_recipient_checks" — correct after a content filter:
    # Proxmox's is bound to 127.0.0.1; iRedMail's address is a placeholder, but its
    # "smtpd_recipient_restrictions=permit_mynetworks,reject" admits only trusted clients.
    d, findings = judge(name)
    for label in listeners:
        target = f"{d} service {label}"
        for rid in ("PF-RCPT-001", "PF-RCPT-003", "PF-RCPT-008"):
            f = one(findings, rid, target)
            assert f.status is Status.PASS, (rid, label, f.message)
        assert "correct" in one(findings, "PF-RCPT-008", target).message


def test_docker_mailserver_submission_ports_are_not_mx(judge: Judge) -> None:
    # submission/submissions set "-o smtpd_reject_unlisted_recipient=no" but also
    # "smtpd_client_restrictions=permit_sasl_authenticated,reject": only authenticated senders.
    d, findings = judge("dms")
    for label in ("submission/inet", "submissions/inet"):
        f = one(findings, "PF-RCPT-002", f"{d} service {label}")
        assert f.status is Status.PASS and "authenticated" in f.message
    assert one(findings, "PF-RCPT-002", d).status is Status.PASS


@pytest.mark.postfix
def test_docker_mailserver_through_real_postconf(judge: Judge) -> None:
    # Same expectation when the real postconf reads the (template-free) files.
    need_tool("postconf")
    d, findings = judge("dms", use_postconf=True)
    assert one(findings, "PF-RCPT-002", f"{d} service submission/inet").status is Status.PASS
    assert one(findings, "PF-RELAY-001", d).status is Status.PASS


def test_iredmail_unset_compatibility_level_relays_mydestination_subdomains(judge: Judge) -> None:
    # main.cf sets neither compatibility_level nor relay_domains: Postfix falls back to
    # relay_domains = $mydestination ($myhostname, localhost, localhost.localdomain).
    d, findings = judge("iredmail")
    f = one(findings, "PF-COMPAT-001", d)
    assert f.status is Status.FAIL and "relay_domains" in f.message


def test_lmtp_delivery_without_quota_check(judge: Judge) -> None:
    # sovereign: "virtual_transport = lmtp:unix:private/dovecot-lmtp" and its recipient
    # restrictions call no policy service: if Dovecot enforces quota (its configuration is not in
    # the Postfix folder), over-quota is decided after the queue.
    d, findings = judge("sovereign")
    f = one(findings, "PF-QUOTA-001", d)
    assert f.status is Status.INCONCLUSIVE and "quota plugin" in f.note
    # its only NDR source is undecided, so the NDR size rule is too (low), naming it
    dsn = one(findings, "PF-DSN-001", d)
    assert dsn.status is Status.INCONCLUSIVE and dsn.severity.value == "low" and "PF-QUOTA-001" in dsn.message


def test_modoboa_verifies_relay_recipients(judge: Judge) -> None:
    # relay_domains = proxy:%{db_driver}:... (a template, but certainly non-empty) and
    # smtpd_recipient_restrictions has reject_unverified_recipient: not a PF-RCPT-003 failure.
    d, findings = judge("modoboa")
    assert one(findings, "PF-RCPT-003", d).status is Status.PASS


def test_frjo_relay_has_a_list_but_local_map_is_empty(judge: Judge) -> None:
    # "relay_recipient_maps = hash:/etc/postfix/relay_recipients": validated relay.
    # "local_recipient_maps =" with "mydestination = {{ ansible_fqdn }}, ...": the host's FQDN
    # is a placeholder, so the finding cannot pass.
    d, findings = judge("frjo")
    assert one(findings, "PF-RCPT-003", d).status is Status.PASS
    f = one(findings, "PF-RCPT-001", d)
    assert f.status is Status.INCONCLUSIVE and "ansible_fqdn" in f.note


def test_yunohost_pipes_are_reachable_and_their_exit_codes_decide(judge: Judge) -> None:
    # main.cf: "mailbox_command = procmail -a ..." runs in local(8). "mydestination = localhost" is
    # refused to outside clients by reject_non_fqdn_recipient, but user@[IP] address literals of the
    # listening addresses are local too (postconf(5) mydestination), and "smtp inet ... smtpd" on
    # inet_interfaces = all takes anonymous mail: reachable. "virtual_transport = dovecot" (master.cf
    # "dovecot unix ... pipe argv=/usr/lib/dovecot/deliver") serves virtual_mailbox_domains = a file
    # of hosted domains: reachable. Whether either bounces is in procmail's recipes and Dovecot's
    # quota settings, not in these files: inconclusive, saying which exit codes to check.
    d, findings = judge("yunohost")
    f = one(findings, "PF-PIPE-001", f"{d} mailbox_command")
    assert f.status is Status.INCONCLUSIVE and f.severity.value == "medium"
    assert "procmail" in f.message and "user@[IP] address literals on smtp/inet" in f.message
    assert "75 (EX_TEMPFAIL)" in f.note and "67 (EX_NOUSER)" in f.note
    g = one(findings, "PF-PIPE-001", f"{d} service dovecot/unix")
    assert g.status is Status.INCONCLUSIVE and g.severity.value == "low"
    assert "virtual_mailbox_domains (/etc/postfix/virtual-mailbox-domains)" in g.message
    # the unused maildrop/uucp/... pipes pass; the NDR size rule is undecided, no longer failed
    assert one(findings, "PF-PIPE-001", d).status is Status.PASS
    dsn = one(findings, "PF-DSN-001", d)
    assert dsn.status is Status.INCONCLUSIVE and "PF-PIPE-001" in dsn.message


def test_yunohost_as_a_loopback_only_null_client_reaches_no_pipe(tmp_path: Path) -> None:
    # The same files with "inet_interfaces = loopback-only": no anonymous client reaches smtpd, so
    # neither pipe can bounce forged mail, and PF-DSN-001 does not count them as NDR sources.
    need(PF.is_dir(), f"the Postfix corpus {PF}")
    main, master = PAIRS["yunohost"]
    text = (PF / main).read_text()
    assert "\ninet_interfaces = all\n" in text
    (tmp_path / "main.cf").write_text(
        text.replace("\ninet_interfaces = all\n", "\ninet_interfaces = loopback-only\n")
    )
    shutil.copy(PF / master, tmp_path / "master.cf")
    findings = [
        f for f in evaluate([collect(str(tmp_path), use_postconf=False)]) if f.rule_id.startswith("PF-")
    ]
    d = str(tmp_path)
    for target in (f"{d} mailbox_command", f"{d} service dovecot/unix"):
        f = one(findings, "PF-PIPE-001", target)
        assert f.status is Status.PASS and "loopback only (inet_interfaces = loopback-only)" in f.message
    assert "PF-PIPE-001" not in one(findings, "PF-DSN-001", d).message


def test_mailcow_header_checks_belong_to_its_submission_cleanup(judge: Judge) -> None:
    # master.cf line 113-114: "smtp_sender_cleanup unix ... cleanup -o header_checks=$smtp_header_checks",
    # used only by the listeners with "-o cleanup_service_name=smtp_sender_cleanup". pickup (line 86)
    # uses the plain "cleanup" service, which has no header checks: nothing to bounce there.
    d, findings = judge("mailcow")
    f = one(findings, "PF-FILTER-004", f"{d} service pickup/fifo")
    assert f.status is Status.PASS and "no header/body checks apply" in f.message


def test_frjo_mime_header_checks_table_is_not_in_the_corpus(judge: Judge) -> None:
    # main.cf line 81: "mime_header_checks = pcre:/etc/postfix/mime_header_checks": the table is not
    # shipped beside main.cf, so whether it REJECTs is unknown for pickup (master.cf line 41).
    d, findings = judge("frjo")
    f = one(findings, "PF-FILTER-004", f"{d} service pickup/unix")
    assert f.status is Status.INCONCLUSIVE and f.severity.value == "low"
    assert "mime_header_checks" in f.note


def test_frjo_mime_header_checks_with_a_reject_line_fail_for_pickup(tmp_path: Path) -> None:
    need(PF.is_dir(), f"the Postfix corpus {PF}")
    main, master = PAIRS["frjo"]
    shutil.copy(PF / main, tmp_path / "main.cf")
    shutil.copy(PF / master, tmp_path / "master.cf")
    (tmp_path / "mime_header_checks").write_text("/name=[^>]*\\.(exe|scr)/ REJECT no executables\n")
    cfg = collect(str(tmp_path), use_postconf=False)
    f = one(
        [f for f in evaluate([cfg]) if f.rule_id == "PF-FILTER-004"],
        "PF-FILTER-004",
        f"{tmp_path} service pickup/unix",
    )
    assert f.status is Status.FAIL and f.location is not None
    assert f.location.path == str(tmp_path / "mime_header_checks") and f.location.line == 1


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_no_recipient_failure_on_listeners_closed_to_anonymous_clients(judge: Judge, name: str) -> None:
    # Across the corpus: submission (SASL-only) and loopback listeners never get a PF-RCPT fail.
    _d, findings = judge(name)
    closed = (
        "submission/",
        "submissions/",
        "smtps/",
        "465/",
        "127.0.0.1:",
        "PH_LOCAL_ADDRESS:",
        "10587/",
        "10465/",
    )
    for f in findings:
        if f.rule_id.startswith("PF-RCPT") and " service " in f.target:
            label = f.target.split(" service ", 1)[1]
            if label.startswith(closed):
                assert f.status is not Status.FAIL, (f.rule_id, label, f.message)
