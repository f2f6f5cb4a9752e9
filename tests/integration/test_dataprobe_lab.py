"""DATA probes end to end against the real lab (issue 3's acceptance).

The sloppy backup MX accepts a labelled test message for a random unknown recipient, relays it to
the strict primary, gets a 5xx and bounces; the lab's sink catches the NDR, the DATA probe ties it
to its token, and SMTP-NDR-001 fails for exactly that MX with the time to bounce. The strict
primary rejects at RCPT, so it never sees DATA, and no probe message reaches any mailbox.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from auditor.cli import main
from auditor.collect.dataprobe import mailbox_reader, run_data_probes
from auditor.collect.sink import TokenStore
from auditor.collect.smtp import ProbeSettings, probe_domains
from auditor.judge import evaluate
from auditor.model import Status
from auditor.observations.smtp import DataOutcome, DataProbeResult, ProbeResult

pytestmark = pytest.mark.integration


def _inbox_files(info: Any) -> set[str]:
    out = set()
    for sub in ("new", "cur"):
        d = os.path.join(info.inbox_maildir, sub)
        if os.path.isdir(d):
            out.update(os.path.join(d, n) for n in os.listdir(d))
    return out


def test_backup_mx_bounce_is_confirmed_end_to_end(lab: Any) -> None:
    settings = ProbeSettings(
        nameservers=(f"{lab.nameserver.host}:{lab.nameserver.port}",),
        ehlo="prober.lab.test",
        mail_from=f"probe@{lab.sink_domain}",
        timeout=10,
        session_delay=0,
    )
    probes = [o for o in probe_domains(["example.test"], settings) if isinstance(o, ProbeResult)]
    assert {p.address for p in probes} == set(lab.mx_addresses("example.test"))
    inbox_before = _inbox_files(lab)
    registered: list[str] = []
    tokens = TokenStore(lab.sink_token_dir)  # the lab's sink accepts bounces only for live tokens

    def register(token: str) -> None:
        registered.append(token)
        tokens.add(token)

    obs = run_data_probes(
        probes,
        sink_domain=lab.sink_domain,
        settings=settings,
        register=register,
        reader=mailbox_reader([lab.bounce_maildir]),
        wait=30,
    )
    results = {o.address: o for o in obs if isinstance(o, DataProbeResult)}
    backup, primary = results["198.18.0.12"], results["198.18.0.11"]

    assert backup.outcome is DataOutcome.ACCEPTED
    assert backup.bounce_seconds is not None and 0 <= backup.bounce_seconds < 30
    assert backup.bounce_kind == "failure" and backup.bounce_path.startswith(lab.bounce_maildir)
    assert primary.outcome is DataOutcome.REJECTED_AT_RCPT
    assert not any(line.startswith("C: DATA") for line in primary.transcript)
    assert len(registered) == 4  # an envelope and a header-From token per probe

    fails = [(f.rule_id, f.target) for f in evaluate(obs) if f.status is Status.FAIL]
    assert ("SMTP-NDR-001", "example.test@198.18.0.12") in fails
    assert not [t for r, t in fails if r == "SMTP-NDR-001" and t != "example.test@198.18.0.12"]
    ndr_finding = next(f for f in evaluate(obs) if f.rule_id == "SMTP-NDR-001" and f.status is Status.FAIL)
    assert f"{backup.bounce_seconds:.1f} s" in ndr_finding.message

    # Nothing the probes sent reached a mailbox: the sink's inbox got no message with our tokens.
    for path in _inbox_files(lab) - inbox_before:
        with open(path, "rb") as fh:
            data = fh.read()
        assert backup.token.encode() not in data and primary.token.encode() not in data


def test_probe_data_cli_in_the_lab(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """`probe --data` end to end: tokens go to the sink's token dir, the NDR is read from its Maildir."""
    rc = main(
        [
            "probe",
            "example.test",
            "--nameserver",
            f"{lab.nameserver.host}:{lab.nameserver.port}",
            "--ehlo",
            "prober.lab.test",
            "--mail-from",
            f"probe@{lab.sink_domain}",
            "--session-delay",
            "0",
            "--timeout",
            "10",
            "--data",
            "--sink-domain",
            lab.sink_domain,
            "--bounce-mailbox",
            lab.bounce_maildir,
            "--token-dir",
            lab.sink_token_dir,
            "--bounce-wait",
            "30",
            "--format",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    ndr = {f["target"]: f["status"] for f in doc["findings"] if f["rule_id"] == "SMTP-NDR-001"}
    assert ndr == {"example.test@198.18.0.12": "fail", "example.test@198.18.0.11": "pass"}
