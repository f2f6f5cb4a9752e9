"""`logs postfix` on logs the lab's real Postfix instances wrote (issue 13's acceptance).

The test makes the traffic itself and knows what happened: the DATA probes (the sloppy backup
accepts a random unknown recipient, the strict primary refuses it after the queue, the backup
bounces), more such messages from outside (one whose forged sender the sink refuses, so the notice
itself bounces), normal mail that is delivered, and local submissions on the backup (pickup) that
bounce at once (null MX) or expire in the queue (the tempfail listener answers 450 until the
lab's 30 s queue lifetime ends). The counts read from the real maillogs must equal that.
"""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from auditor.collect.dataprobe import mailbox_reader, run_data_probes
from auditor.collect.logs import collect_postfix_logs, collect_postfix_queue, parse_networks
from auditor.collect.sink import TokenStore, new_token, token_address
from auditor.collect.smtp import ProbeSettings, probe_domains
from auditor.judge import evaluate
from auditor.lab.procs import in_netns
from auditor.model import Status
from auditor.observations.smtp import DataOutcome, DataProbeResult, ProbeResult

pytestmark = pytest.mark.integration

SETTLE = 90.0  # bound on waiting for the queues (the lab's maximal_queue_lifetime is 30 s)


def _instance(lab: Any, name: str) -> Any:
    return next(p for p in lab.postfix if p.name == name)


def _postqueue(inst: Any) -> bytes:
    """`postqueue -j` of one instance, run in its namespace (its inet_interfaces are local only there)."""
    return subprocess.run(
        in_netns(inst.netns, ["postqueue", "-c", inst.config_dir, "-j"]),
        capture_output=True,
        timeout=20,
        check=True,
    ).stdout


def _queue_empty(inst: Any) -> bool:
    return not _postqueue(inst).strip()


def _wait_for_empty_queues(lab: Any) -> None:
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        if all(_queue_empty(p) for p in lab.postfix):
            return
        time.sleep(1)
    pytest.fail("the lab's queues did not drain", pytrace=False)


def _send(address: str, sender: str, rcpt: str, subject: str) -> None:
    with smtplib.SMTP(address, 25, "prober.lab.test", timeout=15) as s:
        s.sendmail(sender, [rcpt], f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n\r\nlab\r\n")


def _pickup(inst: Any, sender: str, rcpt: str) -> None:
    """A local submission on that instance: sendmail → postdrop → pickup (entry "pickup", inside)."""
    msg = f"From: <{sender}>\nTo: <{rcpt}>\nSubject: local\n\nlab\n".encode()
    subprocess.run(
        in_netns(inst.netns, ["sendmail", "-C", inst.config_dir, "-f", sender, rcpt]),
        input=msg,
        timeout=20,
        check=True,
        capture_output=True,
    )


def _tail(path: str, offset: int, out: Path) -> Path:
    with open(path, "rb") as src:
        src.seek(offset)
        out.write_bytes(src.read())
    return out


def _notice_lines(path: Path) -> int:
    return sum(1 for ln in path.read_bytes().splitlines() if b": sender " in ln and b" notification: " in ln)


def test_notifications_in_the_lab_logs_are_counted_exactly(lab: Any, tmp_path: Path) -> None:
    sloppy, strict = _instance(lab, "sloppy"), _instance(lab, "strict")
    _wait_for_empty_queues(lab)  # nothing of earlier tests still in flight: the log slice is ours
    offsets = {p.name: os.path.getsize(p.maillog) for p in (sloppy, strict)}
    tokens = TokenStore(lab.sink_token_dir)
    sink = lab.sink_domain

    # 1. The DATA probes: one accepted-then-bounced message on the backup, a reject at RCPT on the primary.
    settings = ProbeSettings(
        nameservers=(f"{lab.nameserver.host}:{lab.nameserver.port}",),
        ehlo="prober.lab.test",
        mail_from=f"probe@{sink}",
        timeout=10,
        session_delay=0,
    )
    probes = [o for o in probe_domains(["example.test"], settings) if isinstance(o, ProbeResult)]
    data = run_data_probes(
        probes,
        sink_domain=sink,
        settings=settings,
        register=tokens.add,
        reader=mailbox_reader([lab.bounce_maildir]),
        wait=30,
    )
    accepted = [o for o in data if isinstance(o, DataProbeResult) and o.outcome == DataOutcome.ACCEPTED]
    assert [o.address for o in accepted] == ["198.18.0.12"]

    # 2. Three more from outside to unknown recipients via the backup; senders the sink accepts.
    for _ in range(3):
        tok = new_token()
        tokens.add(tok)
        _send("198.18.0.12", token_address(tok, sink), f"nx-{tok}@example.test", "outside, unknown")
    # 3. One whose (forged) sender the sink refuses: the notice bounces too.
    forged = token_address(new_token(), sink)  # never registered
    _send("198.18.0.12", forged, f"nx-{new_token()}@example.test", "forged sender")
    # 4. Normal mail, delivered: two via the primary, one via the backup (relayed to the primary).
    for address in ("198.18.0.11", "198.18.0.11", "198.18.0.12"):
        _send(address, f"someone@{sink}", "alice@example.test", "normal")
    # 5. Local submissions on the backup: a null-MX domain bounces at once, tempfail.test expires.
    local_tokens = [new_token(), new_token()]
    for tok in local_tokens:
        tokens.add(tok)
    _pickup(sloppy, token_address(local_tokens[0], sink), "someone@nullmx.test")
    _pickup(sloppy, token_address(local_tokens[1], sink), f"nx-{new_token()}@tempfail.test")

    # 1 probe + 3 + 1 forged + 2 local = 7 sender notifications, all on the backup.
    expected_notices = 7
    deadline = time.monotonic() + SETTLE
    sloppy_log = tmp_path / "sloppy.maillog"
    while time.monotonic() < deadline:
        _tail(sloppy.maillog, offsets["sloppy"], sloppy_log)
        if _notice_lines(sloppy_log) >= expected_notices and all(_queue_empty(p) for p in lab.postfix):
            break
        time.sleep(1)
    strict_log = _tail(strict.maillog, offsets["strict"], tmp_path / "strict.maillog")

    ev = collect_postfix_logs([str(sloppy_log), str(strict_log)])
    assert ev.complete and ev.skipped_lines == 0, ev.skipped_examples
    assert set(ev.hosts) == {"mx1", "mx2"}
    assert ev.notifications == expected_notices
    assert ev.by_kind == {"non-delivery": expected_notices}
    assert ev.backscatter_notifications == 5  # the probe, three more, the forged one
    assert ev.by_zone == {"outside": 5, "inside": 2}
    assert ev.unattributed_notifications == 0
    assert ev.backscatter_by_cause == {"inside-server-reject": 5}
    assert ev.backscatter_by_domain == {sink: 5}
    assert ev.backscatter_by_entry == {"smtpd": 5}
    assert ev.backscatter_by_client == {f"unknown[{lab.prober_address}]": 5}
    assert ev.double_bounces == 1 and ev.backscatter_double_bounces == 1
    inside_causes = sorted(e.cause for e in ev.examples if e.zone == "inside")
    assert "expiry" in inside_causes and len(inside_causes) == 2
    # Examples are bounded: three per cause from outside (the first three here, not the forged one).
    assert len([e for e in ev.examples if e.zone == "outside"]) == 3
    assert forged not in {e.notified for e in ev.examples}
    for e in ev.examples:
        for ln in e.lines:  # the evidence lines are real lines at those numbers of those files
            with open(ln.file, "rb") as fh:
                text = fh.read().splitlines()[ln.line - 1].decode()
            assert text.startswith(ln.text)

    (f,) = [f for f in evaluate([ev]) if f.rule_id == "PF-LOG-001"]
    assert f.status is Status.FAIL and f.message.startswith("5 notification(s)")
    assert "PF-RCPT-003" in f.remediation.text

    # With the bridge trusted, the same logs show no backscatter: a pass, because all was traced.
    inside = collect_postfix_logs(
        [str(sloppy_log), str(strict_log)], trusted_networks=parse_networks("198.18.0.0/24")
    )
    assert inside.backscatter_notifications == 0 and inside.by_zone == {"inside": 7}
    (g,) = [g for g in evaluate([inside]) if g.rule_id == "PF-LOG-001"]
    assert g.status is Status.PASS


def test_cli_reads_the_live_queue_and_the_lab_config(lab: Any, tmp_path: Path) -> None:
    """--queue-live runs the real postqueue (in the instance's namespace, as on its own host);
    --postfix-dir reads the instance's mynetworks."""
    sloppy = _instance(lab, "sloppy")
    tok = new_token()
    TokenStore(lab.sink_token_dir).add(tok)
    _send("198.18.0.12", token_address(tok, lab.sink_domain), f"nx-{tok}@example.test", "outside")
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline and f"nx-{tok}".encode() not in Path(sloppy.maillog).read_bytes():
        time.sleep(1)
    _wait_for_empty_queues(lab)
    out = tmp_path / "report.json"
    argv = ["logs", "postfix", sloppy.maillog, "--postfix-dir", sloppy.config_dir]
    argv += ["--queue-live", sloppy.config_dir, "--format", "json", "--output", str(out)]
    proc = subprocess.run(
        in_netns(sloppy.netns, [sys.executable, "-m", "auditor", *argv]),
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.returncode == 1, proc.stderr.decode()
    doc = json.loads(out.read_text())
    log_obs = next(o for o in doc["observations"] if o["kind"] == "log.postfix")
    queue_obs = next(o for o in doc["observations"] if o["kind"] == "queue.postfix")
    assert log_obs["trusted_networks"] == ["127.0.0.0/8"]  # the lab's mynetworks
    assert queue_obs["complete"] and queue_obs["messages"] == 0, queue_obs["error"]
    statuses = {f["target"]: f["status"] for f in doc["findings"] if f["rule_id"] == "PF-LOG-001"}
    assert statuses[f"queue postqueue -c {sloppy.config_dir} -j"] == "pass"
    assert statuses[sloppy.maillog] == "fail" and log_obs["backscatter_notifications"] >= 1


def test_queue_snapshot_of_waiting_notices(lab: Any, tmp_path: Path) -> None:
    """Notices the sink refuses for a while sit in the backup's queue with MAIL FROM:<>."""
    sloppy = _instance(lab, "sloppy")
    _wait_for_empty_queues(lab)
    # Forged senders at tempfail.test, whose MX answers 450 to unknown recipients: the notices wait.
    senders = [f"nx-{new_token()}@tempfail.test" for _ in range(2)]
    for sender in senders:
        _send("198.18.0.12", sender, f"nx-{new_token()}@example.test", "notice will wait")
    snap = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        q = tmp_path / "queue.json"
        q.write_bytes(_postqueue(sloppy))
        snap = collect_postfix_queue(str(q))
        if snap.null_sender_deferred >= 2:
            break
        time.sleep(1)
    assert snap is not None and snap.complete
    assert snap.null_sender_deferred == 2 and snap.by_domain == {"tempfail.test": 2}
    (f,) = [f for f in evaluate([snap]) if f.rule_id == "PF-LOG-001"]
    assert f.status is Status.INCONCLUSIVE  # two notices to one domain: too few to call backscatter
    _wait_for_empty_queues(lab)  # the lab's 30 s queue lifetime ends them
