"""`backscatter-audit probe` end to end on loopback: fake DNS + a scripted SMTP server in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from auditor.cli import main
from tests.unit.dns.fakedns import serve
from tests.unit.smtp.fakes import Scripted, known_only

pytestmark = pytest.mark.timeout(60)


@contextlib.contextmanager
def smtp_in_thread(srv: Scripted) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, asyncio.base_events.Server] = {}

    async def start() -> None:
        holder["server"] = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        ready.set()

    th = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    th.start()
    assert ready.wait(5)
    try:
        yield holder["server"].sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(holder["server"].close)
        loop.call_soon_threadsafe(loop.stop)
        th.join(5)


ZONE = {
    ("example.test", "MX"): ["10 mx1.example.test."],
    ("mx1.example.test", "A"): ["127.0.0.1"],
    ("parked.test", "MX"): ["0 ."],
}


def test_probe_command_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    srv = Scripted(rcpt=known_only({"alice@example.test"}))
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        code = main(
            [
                "probe",
                "example.test",
                "--nameserver",
                ns,
                "--port",
                str(port),
                "--timeout",
                "2",
                "--session-delay",
                "0",
                "--control",
                "alice@example.test",
                "--non-mail-domain",
                "parked.test",
                "--format",
                "json",
                "--fail-on",
                "critical",
            ]
        )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    statuses = {(f["rule_id"], f["status"]) for f in doc["findings"]}
    assert ("SMTP-RCPT-001", "pass") in statuses
    assert ("SMTP-PM-001", "pass") in statuses
    assert ("DNS-NULLMX-001", "pass") in statuses
    assert ("DNS-MX-001", "pass") in statuses
    probes = [o for o in doc["observations"] if o["kind"] == "smtp.probe"]
    # The observation carries the replies, not a verdict: the findings above are the judgement.
    assert len(probes) == 1 and "verdict" not in probes[0] and probes[0]["failure"] is None
    assert {o["role"]: o["reply"]["code"] for o in probes[0]["outcomes"]}["unknown"] == 550
    assert srv.connections == 1


def test_accept_all_fails_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    srv = Scripted(rcpt=lambda _a, _s, _srv: "250 2.1.5 Ok")
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        code = main(
            [
                "probe",
                "example.test",
                "--nameserver",
                ns,
                "--port",
                str(port),
                "--timeout",
                "2",
                "--session-delay",
                "0",
            ]
        )
    out = capsys.readouterr().out
    assert code == 1
    assert "SMTP-RCPT-001" in out


def test_dry_run_opens_no_session(capsys: pytest.CaptureFixture[str]) -> None:
    srv = Scripted()
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        code = main(["probe", "example.test", "--nameserver", ns, "--port", str(port), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert srv.connections == 0
    assert "mx1.example.test[127.0.0.1]" in out and "RCPT TO:<postmaster@example.test>" in out


def test_bad_arguments_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "example.test", "--nameserver", "not-an-ip"]) == 2
    assert main(["probe", "example.test", "--trusted-network", "10.0.0.0/33"]) == 2
    assert main(["probe", "example.test", "--mail-from", "no-at-sign"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "Traceback" not in err


def test_saved_report_loads_back_with_probe_observations(tmp_path: Any) -> None:
    from auditor.observations.dns import DnsMx
    from auditor.observations.smtp import ProbeResult
    from auditor.rules.smtp_verdicts import classify
    from auditor.serialize import load_report

    out = tmp_path / "r.json"
    srv = Scripted(rcpt=known_only(set()))
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        code = main(
            [
                "probe",
                "example.test",
                "--nameserver",
                ns,
                "--port",
                str(port),
                "--session-delay",
                "0",
                "--format",
                "json",
                "--output",
                str(out),
            ]
        )
    assert code == 0
    report = load_report(str(out))
    [probe] = report.of(ProbeResult)
    [mx] = report.of(DnsMx)
    assert classify(probe).verdict.value == "rejects-unknown" and probe.transcript
    assert mx.hosts[0].addresses == ("127.0.0.1",)


def test_mx_override_and_bad_override(capsys: pytest.CaptureFixture[str]) -> None:
    srv = Scripted()
    with serve({("other.test", "TXT"): ['"x"']}) as ns, smtp_in_thread(srv) as port:
        code = main(
            [
                "probe",
                "other.test",
                "--nameserver",
                ns,
                "--port",
                str(port),
                "--dry-run",
                "--mx-override",
                "other.test=127.0.0.1",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0 and "[127.0.0.1]" in out and "mx_override" in out
        assert main(["probe", "other.test", "--mx-override", "other.test"]) == 2
    assert srv.connections == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["probe", "exa mple.test"],
        ["probe", "example.test\r\nRCPT TO:<x@y>"],
        ["probe", "bad-.test"],
        ["probe", "example.test", "--control", "a@example.test>\r\nDATA"],
        ["probe", "example.test", "--ehlo", "x y"],
        ["probe", "example.test", "--relay-test-domain", "a@b"],
        ["probe", "example.test", "--control", "someone@other.test"],
    ],
)
def test_nothing_from_the_command_line_can_inject_smtp(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--nameserver", "127.0.0.1:1", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("backscatter-audit: error:") and err.count("\n") == 1


def test_probing_from_inside_mynetworks_is_inconclusive(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.cf").write_text("mynetworks = 127.0.0.0/8 [::1]/128\n")
    srv = Scripted()
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        code = main(
            [
                "probe",
                "example.test",
                "--nameserver",
                ns,
                "--port",
                str(port),
                "--mynetworks-from",
                str(tmp_path),
                "--format",
                "json",
            ]
        )
    doc = json.loads(capsys.readouterr().out)
    assert srv.connections == 0
    assert code == 3  # could not measure
    [probe] = [o for o in doc["observations"] if o["kind"] == "smtp.probe"]
    assert probe["failure"] == "trusted-vantage"


@pytest.mark.parametrize(
    "extra",
    [
        ["--timeout", "1e308"],
        ["--timeout", "inf"],
        ["--timeout", "nan"],
        ["--timeout", "0"],
        ["--session-delay", "-1"],
        ["--retry-after", "-5"],
        ["--audit-timeout", "-inf"],
        ["--bounce-wait", "nan"],
        ["--concurrency", str(10**20)],
        ["--concurrency", "0"],
        ["--port", "99999"],
        ["--data", "--sink-domain", "sink.test", "--sink-listen", "127.0.0.1:99999"],
    ],
)
def test_out_of_range_numbers_are_usage_errors(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "example.test", "--nameserver", "127.0.0.1:1", "--dry-run", *extra]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err


def test_sink_rejects_bad_listen_and_a_file_as_maildir(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["sink", "--domain", "sink.test", "--token-dir", str(tmp_path / "tokens")]
    assert main([*base, "--maildir", str(tmp_path / "md"), "--listen", "127.0.0.1:99999"]) == 2
    assert main([*base, "--maildir", str(tmp_path / "md"), "--listen", "localhost:2525"]) == 2
    regular = tmp_path / "file"
    regular.write_text("x")
    assert main([*base, "--maildir", str(regular), "--listen", "127.0.0.1:0"]) == 2
    assert main([*base, "--maildir", str(tmp_path / "md"), "--max-recipients", str(10**20)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 4


def test_a_cname_mx_to_a_third_party_is_not_probed(capsys: pytest.CaptureFixture[str]) -> None:
    """mx.example.test is in scope by name, but is an alias of the provider's host: consent needed."""
    zone = {
        ("example.test", "MX"): ["10 mx.example.test."],
        ("mx.example.test", "CNAME"): ["inbound.provider.example."],
        ("inbound.provider.example", "A"): ["127.0.0.1"],
    }
    srv = Scripted()
    with serve(zone) as ns, smtp_in_thread(srv) as port:
        code = main(["probe", "example.test", "--nameserver", ns, "--port", str(port), "-f", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert srv.connections == 0
    assert code == 1
    [mx] = [f for f in doc["findings"] if f["rule_id"] == "DNS-MX-001"]
    assert mx["status"] == "fail" and "CNAME to inbound.provider.example" in mx["message"]
    assert "--allow-external-mx" in mx["message"]


def test_nothing_measured_is_never_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    """A domain that does not exist (a typo) probes nothing: a high-severity failure, not a pass."""
    with serve(ZONE) as ns:
        code = main(["probe", "exmaple.test", "--nameserver", ns, "-f", "json", "--fail-on", "high"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    [mx] = [f for f in doc["findings"] if f["rule_id"] == "DNS-MX-001"]
    assert (mx["status"], mx["severity"]) == ("fail", "high") and "NXDOMAIN" in mx["message"]
