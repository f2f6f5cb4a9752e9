"""STARTTLS with a self-signed, wrong-name certificate: used, recorded, never a reason to fail."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from auditor.collect.smtp.engine import Engine, make_plan
from auditor.collect.smtp.scenarios import load
from auditor.observations.smtp import ProbeResult
from auditor.rules.smtp_verdicts import Verdict, classify
from tests.conftest import need_tool
from tests.unit.smtp.fakes import RcptHandler, aiosmtpd_server, fast_settings, mx_for

pytestmark = pytest.mark.timeout(60)


def self_signed(tmp: Path) -> ssl.SSLContext:
    """A throw-away self-signed certificate for a name that is not the server's (openssl CLI)."""
    openssl = need_tool("openssl")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=wrong-name.invalid",
            "-keyout",
            str(tmp / "k.pem"),
            "-out",
            str(tmp / "c.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    return ctx


def test_starttls_with_a_bad_certificate_is_used_and_recorded(tmp_path: Path) -> None:
    ctx = self_signed(tmp_path)
    handler = RcptHandler(
        lambda _p, _s, rcpt: "250 2.1.5 Ok" if rcpt.startswith("postmaster@") else "550 5.1.1 User unknown"
    )

    async def go() -> list[ProbeResult]:
        async with aiosmtpd_server(handler, tls_context=ctx, require_starttls=True) as port:
            settings = fast_settings(port)
            return await Engine(settings).run(
                make_plan(mx_for(["example.test"]), settings, load(), ["example.test"])
            )

    [r] = asyncio.run(go())
    # require_starttls: the RCPTs were only answered because the probe did switch to TLS.
    assert classify(r).verdict is Verdict.REJECTS_UNKNOWN, (classify(r).reason, classify(r).detail)
    assert r.tls.offered and r.tls.ok and r.tls.version.startswith("TLS")
    assert "STARTTLS" not in r.extensions  # the extensions kept are those of the EHLO inside TLS
    assert sum(1 for line in r.transcript if line.startswith("C: EHLO")) == 2
    assert any("certificate not verified" in line for line in r.transcript)
