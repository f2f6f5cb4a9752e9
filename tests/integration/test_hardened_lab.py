"""The real prober against the lab's hardened Postfix MX (issue 12 §2, auditor/lab/hardened.py).

Real postscreen (pregreet with a ``220-`` greeting, after-220 tests), a DNSBL served by the lab's
dnsmasq, HELO and sender checks, anvil's connection rate limit and a tarpit listener. Each test
probes from a vantage address of its own on the lab bridge (topology.VANTAGES): postscreen's
allowlist and anvil's counters are per client address, so every test starts as a stranger to the
MX. What a correct prober must conclude comes from the lab's data (LabInfo, auditor.lab.topology);
what the MX did is read back from its own maillog.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import dns.resolver
import pytest

from auditor.collect.smtp import ProbeResult, ProbeSettings, identity, probe_domains
from auditor.demo import lab_site_toml
from auditor.judge import evaluate
from auditor.lab import topology as topo
from auditor.model import Finding, Status
from auditor.observations.smtp import Reason
from auditor.rules.smtp_verdicts import Verdict, Why, classify
from tests.integration.conftest import assert_lab_routed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LOG_WAIT = 10.0  # postlogd writes the maillog a moment after the session; bounded poll
RCPT_RULES = ("SMTP-RCPT-001", "SMTP-RCPT-002", "SMTP-RCPT-003")


@pytest.fixture(autouse=True)
def _hardened_routed(lab: Any) -> None:
    """Network safety: the hardened MX is reached over the lab bridge, from the bridge's own aliases."""
    assert lab.hardened is not None, "the lab has no hardened MX"
    assert_lab_routed(lab)
    for address in lab.hardened.addresses:
        route = subprocess.run(
            ["ip", "-o", "route", "get", address], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        if f" dev {topo.BRIDGE} " not in f" {route} ":
            pytest.fail(f"hardened MX {address} is not routed via the lab bridge: {route.strip()!r}")
    on_bridge = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "dev", topo.BRIDGE],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    missing = [v.address for v in topo.VANTAGES if f" {v.address}/" not in on_bridge]
    if missing:
        pytest.fail(f"vantage address(es) {missing} are not on {topo.BRIDGE}: {on_bridge.strip()!r}")


def _settings(lab: Any, vantage: str, domain: str, **kw: Any) -> ProbeSettings:
    v = topo.vantage(vantage)
    controls = tuple(a for a in lab.domain(domain).valid_recipients if not a.startswith("postmaster@"))
    base: dict[str, Any] = {
        "nameservers": (str(lab.nameserver),),
        "controls": controls,
        "ehlo": v.hostname,
        "mail_from": f"{lab.probe_prefix}probe@{lab.sink_domain}",
        "source_address": v.address,
        "timeout": 10.0,
        "audit_timeout": 120.0,
        "session_delay": 0.2,
        "retry_after": 1.0,
        "reconnect_pause": 1.0,
        "backoff_421": 1.0,
    }
    base.update(kw)
    return ProbeSettings(**base)


def _probe(
    lab: Any, vantage: str, domain: str = topo.HARDENED_DOMAIN, **kw: Any
) -> tuple[ProbeResult, dict[str, Finding]]:
    obs = probe_domains([domain], _settings(lab, vantage, domain, **kw))
    [pr] = [o for o in obs if isinstance(o, ProbeResult)]
    assert pr.address in lab.hardened.addresses and pr.source_address == topo.vantage(vantage).address
    return pr, {f.rule_id: f for f in evaluate(obs) if f.target == pr.target}


def _log(lab: Any, pattern: str, at_least: int) -> list[str]:
    """Maillog lines matching ``pattern``, once there are ``at_least`` of them (or the wait is over)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + LOG_WAIT
    while True:
        lines = [
            ln for ln in Path(lab.hardened.maillog).read_text(errors="replace").splitlines() if rx.search(ln)
        ]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def _client(vantage: str) -> str:
    return re.escape(f"[{topo.vantage(vantage).address}]")


def _sessions_done(lab: Any, vantage: str, smtpd: int) -> None:
    """Wait until smtpd logged ``smtpd`` disconnects of this client: the log is complete for it."""
    assert len(_log(lab, rf"/smtpd\[\d+\]: disconnect from \S*{_client(vantage)}", smtpd)) >= smtpd


def _never_pass(found: dict[str, Finding]) -> None:
    judged = {rid: found[rid].status for rid in RCPT_RULES}
    assert judged["SMTP-RCPT-001"] is Status.INCONCLUSIVE, judged
    assert Status.PASS not in judged.values() and Status.FAIL not in judged.values(), judged


def test_right_identity_reconnects_once_after_postscreen_and_gets_the_real_verdict(lab: Any) -> None:
    """Cases (3) and (5): resolvable sender, EHLO = our own name, address not listed."""
    v = topo.vantage("good")
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port, r.lifetime = [lab.nameserver.host], lab.nameserver.port, 3
    with pytest.raises(dns.resolver.NXDOMAIN):
        r.resolve(topo.dnsbl_name(v.address), "A")  # not on the lab DNSBL

    pr, found = _probe(lab, "good")
    assert pr.identity.sender_domain_resolves and pr.identity.ehlo_matches_source, pr.identity
    assert not pr.identity.warnings, pr.identity.warnings
    j = classify(pr)
    assert j.verdict is Verdict.REJECTS_UNKNOWN and j.why is Why.NONE, j
    assert found["SMTP-RCPT-001"].status is Status.PASS, found["SMTP-RCPT-001"].message
    unknown = pr.outcome("unknown")
    assert unknown is not None and unknown.reply is not None and unknown.reply.code == 550
    assert "relay recipient table" in unknown.reply.text
    # The first session met postscreen: the multi-line pregreet greeting, then 450 4.3.2 to every RCPT.
    first = pr.transcript[: next(i for i, t in enumerate(pr.transcript) if t.startswith("*: session 2 "))]
    assert any(t.startswith("S: 220-") for t in first), first
    assert [t for t in first if t.startswith("S: 4")] and all(
        "450 4.3.2" in t for t in first if t.startswith("S: 4")
    ), first
    assert pr.sessions == 2 and pr.reconnects > 0
    # postscreen's own account: one new client passed, one reconnect handed to smtpd, nothing more.
    _sessions_done(lab, "good", 1)
    assert len(_log(lab, rf"postscreen\[\d+\]: PASS NEW {_client('good')}", 1)) == 1
    assert len(_log(lab, rf"postscreen\[\d+\]: PASS OLD {_client('good')}", 1)) == 1
    assert len(_log(lab, rf"postscreen\[\d+\]: CONNECT from {_client('good')}", 2)) == 2


@pytest.mark.parametrize(
    ("vantage", "ehlo", "unknown_code"),
    [
        # NXDOMAIN: reject_unknown_helo_hostname refuses every RCPT with 450 4.7.1.
        ("helo", "nx-helo.vantage.test", 450),
        # REFUSED (the lab DNS answers only its own zones): a temporary failure, which Postfix
        # defers only "if permit" (unknown_helo_hostname_tempfail_action = defer_if_permit): the
        # unknown recipient still gets its 550, the control the 450. Read alone, the 550 is a pass.
        ("unresolved", "prober.example.invalid", 550),
    ],
)
def test_unresolvable_helo_name_is_inconclusive_helo_refused(
    lab: Any, vantage: str, ehlo: str, unknown_code: int
) -> None:
    pr, found = _probe(lab, vantage, ehlo=ehlo)
    assert pr.identity.ehlo_resolves is not True, pr.identity
    unknown, control = pr.outcome("unknown"), pr.outcome("control")
    assert unknown is not None and unknown.reply is not None and unknown.reply.code == unknown_code
    assert control is not None and control.reply is not None, control
    assert control.reply.code == 450 and "Helo command rejected: Host not found" in control.reply.text
    j = classify(pr)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.HELO, j
    assert "Helo command rejected" in j.detail and "--ehlo" in j.fix, j
    _never_pass(found)
    assert "--ehlo" in found["SMTP-RCPT-001"].message


def test_unresolvable_sender_domain_is_inconclusive_sender_refused(lab: Any) -> None:
    pr, found = _probe(lab, "sender", mail_from=f"{lab.probe_prefix}probe@nx-sender.test")
    assert pr.identity.sender_domain_resolves is False, pr.identity
    j = classify(pr)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.SENDER, j
    assert "4.1.8" in j.detail and "Sender address rejected" in j.detail, j
    assert "--mail-from" in j.fix and "does not resolve" in j.fix
    _never_pass(found)


def test_default_identity_is_refused_for_its_helo_never_judged(lab: Any) -> None:
    """Case (1) as shipped: EHLO = this machine's FQDN, which no lab name resolves."""
    pr, found = _probe(lab, "default", ehlo="", mail_from="")
    fqdn = identity.machine_fqdn()
    assert pr.identity.ehlo == fqdn and pr.identity.mail_from == f"{identity.SENDER_LOCAL_PART}@{fqdn}"
    j = classify(pr)
    # HELO checks come before sender checks (smtpd_helo_restrictions, then smtpd_sender_restrictions).
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.HELO, (fqdn, j)
    assert fqdn in j.detail, j
    _never_pass(found)


def test_listed_address_is_inconclusive_dnsbl_naming_the_list(lab: Any) -> None:
    pr, found = _probe(lab, "listed")
    assert pr.identity.ehlo_matches_source and pr.identity.sender_domain_resolves  # only the listing is wrong
    j = classify(pr)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.DNSBL, j
    assert f"blocked using {topo.DNSBL_ZONE}" in j.detail and topo.DNSBL_TEXT in j.detail, j
    assert "blocklist" in j.fix and topo.vantage("listed").address in j.fix
    _never_pass(found)
    assert topo.DNSBL_ZONE in found["SMTP-RCPT-001"].message and "blocklist" in found["SMTP-RCPT-001"].message
    _sessions_done(lab, "listed", 1)
    assert _log(lab, rf"reject: RCPT from \S*{_client('listed')}: 554 5.7.1 .*blocked using", 1)


def test_connection_rate_limit_is_named_without_a_retry_storm(lab: Any) -> None:
    """anvil allows HARDENED_CONNECTION_RATE smtpd connections a minute; the next run is refused."""
    limit = topo.HARDENED_CONNECTION_RATE
    verdicts = []
    for _ in range(limit):
        pr, _found = _probe(lab, "rate", retry_after=0.0)  # one smtpd connection per run
        verdicts.append(classify(pr).verdict)
    assert verdicts == [Verdict.REJECTS_UNKNOWN] * limit
    pr, found = _probe(lab, "rate", retry_after=0.0)
    j = classify(pr)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.RATE, j
    assert "421 4.7.0" in j.detail and "too many connections" in j.detail, j
    assert "--session-delay" in j.fix
    _never_pass(found)
    # The refused run tried twice (the one retry after backoff_421), then left the MX alone.
    _sessions_done(lab, "rate", limit + 2)
    refused = _log(lab, rf"Connection rate limit exceeded: \d+ from \S*{_client('rate')}", 2)
    assert len(refused) == 2, refused
    assert len(_log(lab, rf"/smtpd\[\d+\]: connect from \S*{_client('rate')}", limit + 2)) == limit + 2


def test_tarpit_within_the_stage_timeout_gives_the_real_verdict(lab: Any) -> None:
    pr, found = _probe(lab, "tarpit", topo.TARPIT_DOMAIN)
    j = classify(pr)
    assert j.verdict is Verdict.REJECTS_UNKNOWN, j
    assert found["SMTP-RCPT-001"].status is Status.PASS
    assert pr.failure is None, (pr.failure, pr.detail)
    # It was a tarpit: after the first 550 smtpd slept before each reply (the pipelined replies
    # arrive together, so the wait shows in the session, not in one RCPT's latency).
    assert pr.timings["first_session_s"] >= topo.TARPIT_SLEEP_S, pr.timings


def test_tarpit_beyond_the_stage_timeout_is_inconclusive_tarpit_not_a_verdict(lab: Any) -> None:
    pr, found = _probe(lab, "tarpit", topo.TARPIT_DOMAIN, timeout=topo.TARPIT_SLEEP_S / 2)
    # smtpd holds the replies to a pipelined group until all are written, its error sleep
    # included: the whole group (RSET, MAIL, RCPTs) goes unanswered within our timeout.
    assert pr.failure is Reason.TIMEOUT and pr.detail.startswith(("RSET", "MAIL", "RCPT")), pr.detail
    j = classify(pr)
    assert j.verdict is Verdict.INCONCLUSIVE and j.why is Why.TARPIT, j
    assert "--timeout" in j.fix
    _never_pass(found)
    assert "--timeout" in found["SMTP-RCPT-001"].message


def test_hardened_mx_stays_out_of_the_demo_site(lab: Any) -> None:
    """The demo audits the lab site as its site.toml describes it: the hardened MX is not part of it."""
    site = lab_site_toml(lab)
    for s in topo.HARDENED_SCENARIOS:
        assert s.domain not in lab.scope() and s.domain not in site
    assert lab.hardened.config_dir not in site and lab.hardened.name not in {p.name for p in lab.postfix}


def test_hardened_config_is_what_postfix_reads(lab: Any) -> None:
    """Every hardening parameter is one Postfix knows (postconf warns of unused ones) and in force."""
    out = subprocess.run(
        ["postconf", "-c", lab.hardened.config_dir, "-n"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "warning" not in out.stderr, out.stderr
    conf = dict(line.split(" = ", 1) for line in out.stdout.splitlines() if " = " in line)
    assert conf["smtpd_client_restrictions"] == f"reject_rbl_client {topo.DNSBL_ZONE}"
    for test in ("pipelining", "non_smtp_command", "bare_newline"):
        assert conf[f"postscreen_{test}_enable"] == "yes"
    assert conf["postscreen_greet_action"] == "enforce"
    assert conf["smtpd_client_connection_rate_limit"] == str(topo.HARDENED_CONNECTION_RATE)
    services = subprocess.run(
        ["postconf", "-c", lab.hardened.config_dir, "-M"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert re.search(rf"^{re.escape(topo.HARDENED_IP)}:smtp\s+inet\b.*\bpostscreen\b", services, re.M), (
        services
    )
    assert re.search(r"^smtpd\s+pass\b.*\bsmtpd\b", services, re.M), services
