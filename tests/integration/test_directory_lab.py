"""`directory --probe` against the lab: directory addresses are accepted by every MX (primary with an
ldap: recipient map, sloppy backup), random ones are judged by the SMTP rules in the same report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main

pytestmark = pytest.mark.integration


def test_directory_live_sample_in_the_lab(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.ldap is not None
    rc = main(
        [
            "directory",
            "--ldap-url",
            lab.ldap.url,
            "--bind-dn",
            lab.ldap.bind_dn,
            "--password-file",
            lab.ldap.secret_file,
            "--base",
            lab.ldap.suffix,
            "--domain",
            "example.test",
            "--probe",
            "--sample",
            "3",
            "--nameserver",
            f"{lab.nameserver.host}:{lab.nameserver.port}",
            "--ehlo",
            "prober.lab.test",
            "--mail-from",
            f"probe@{lab.sink_domain}",
            "--probe-timeout",
            "10",
            "--format",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1  # the sloppy backup fails SMTP-RCPT-001/002
    sync = {f["target"]: f["status"] for f in doc["findings"] if f["rule_id"] == "LDAP-SYNC-001"}
    probed = [t for t in sync if "[198.18.0." in t]
    assert {t.split("[")[1] for t in probed} >= {"198.18.0.11]", "198.18.0.12]"}
    assert all(sync[t] == "pass" for t in probed), sync  # both MXs accept the directory's addresses
    controls = {
        o["address"]
        for obs in doc["observations"]
        if obs["kind"] == "smtp.probe"
        for o in obs["outcomes"]
        if o["role"] == "control"
    }
    assert controls and controls <= set(lab.ldap.valid_recipients)
    fails = {(f["rule_id"], f["target"]) for f in doc["findings"] if f["status"] == "fail"}
    assert ("SMTP-RCPT-002", "example.test mx2.example.test[198.18.0.12]") in fails
    secret = Path(lab.ldap.secret_file).read_text().strip()
    assert secret not in json.dumps(doc)
