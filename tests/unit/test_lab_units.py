"""Lab building blocks that need no root: greylist policy, sink, generated configs, LabInfo JSON."""

from __future__ import annotations

import mailbox
import os
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditor.collect.sink import TokenStore, new_token
from auditor.lab import dns, greylist, postfix, procs
from auditor.lab import topology as topo
from auditor.lab.info import Endpoint, LabInfo
from tests.conftest import ROOT, need_tool


def _req(client: str, sender: str, rcpt: str, state: str = "RCPT") -> dict[str, str]:
    return {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "client_address": client,
        "sender": sender,
        "recipient": rcpt,
    }


def test_greylist_defers_first_attempt_until_delay() -> None:
    gl = greylist.Greylist(delay=5)
    a = _req("198.18.0.1", "s@x.test", "r@grey.test")
    assert gl.decide(a, now=100.0).startswith("450 4.2.0 Greylisted")
    assert gl.decide(a, now=104.0).startswith("450 ")
    assert gl.decide(a, now=105.0) == "DUNNO"
    # another triple starts its own clock; other protocol states are not greylisted
    assert gl.decide(_req("198.18.0.2", "s@x.test", "r@grey.test"), now=106.0).startswith("450 ")
    assert gl.decide(_req("198.18.0.3", "s@x.test", "r@grey.test", "DATA"), now=106.0) == "DUNNO"


def test_greylist_memory_is_bounded() -> None:
    gl = greylist.Greylist(delay=1)
    for i in range(greylist.MAX_TRIPLES + 50):
        gl.decide(_req("198.18.0.1", f"s{i}@x.test", "r@grey.test"), now=0.0)
    assert len(gl.first_seen) == greylist.MAX_TRIPLES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _daemon(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def test_greylist_policy_protocol_over_unix_socket(tmp_path: Path) -> None:
    sock = Path("/tmp") / f"bsa-gl-{time.monotonic_ns()}.sock"  # AF_UNIX path length limit
    proc = _daemon(["auditor.lab.greylist", "--socket", str(sock), "--delay", "1"], tmp_path / "log")
    try:
        assert procs.wait_unix(sock, 10), (tmp_path / "log").read_text()
        req = "".join(f"{k}={v}\n" for k, v in _req("127.0.0.9", "a@b.test", "c@grey.test").items()) + "\n"
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(sock))
            s.sendall(req.encode())
            first = s.recv(4096).decode()
            time.sleep(1.05)
            s.sendall(req.encode())  # same connection: Postfix reuses policy connections
            second = s.recv(4096).decode()
        assert first.startswith("action=450 4.2.0 Greylisted") and first.endswith("\n\n")
        assert second == "action=DUNNO\n\n"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert not sock.exists()


def test_sink_stores_probe_ndrs_and_refuses_others(tmp_path: Path) -> None:
    bport, iport = _free_port(), _free_port()
    token = new_token()
    TokenStore(str(tmp_path / "tokens")).add(token)
    proc = _daemon(
        [
            "auditor.lab.sink_process",
            "--dir",
            str(tmp_path),
            f"bounces=127.0.0.1:{bport}:bounces",
            f"inbox=127.0.0.1:{iport}:inbox",
        ],
        tmp_path / "log",
    )
    try:
        assert procs.wait_tcp([("127.0.0.1", bport), ("127.0.0.1", iport)], 10) == []
        with smtplib.SMTP("127.0.0.1", bport, timeout=10) as s:
            s.ehlo()
            s.mail("<>")
            assert s.rcpt("someone@sink.test")[0] == 550
            assert s.rcpt("bsa-x@other.test")[0] == 550
            assert s.rcpt(f"bsa-{new_token()}@sink.test")[0] == 550  # not a live token
            assert s.rcpt(f"bsa-{token}@sink.test")[0] == 250
            assert s.data(b"Subject: ndr abc\r\n\r\nbody\r\n")[0] == 250
        with smtplib.SMTP("127.0.0.1", iport, timeout=10) as s:
            s.sendmail("x@example.test", ["anyone@example.test"], b"Subject: inbox\r\n\r\nhi\r\n")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    (ndr,) = list(mailbox.Maildir(tmp_path / "bounces", create=False))
    assert ndr["Subject"] == "ndr abc"
    assert ndr["Return-Path"] == "<>"
    assert ndr["X-BSA-Envelope-To"] == f"bsa-{token}@sink.test"
    assert [m["Subject"] for m in mailbox.Maildir(tmp_path / "inbox", create=False)] == ["inbox"]
    assert list((tmp_path / "bounces" / "tmp").iterdir()) == []  # nothing half-written


def test_dns_records_follow_the_scenarios() -> None:
    lines = dns.records()
    assert "local=/test/" in lines
    for s in topo.SCENARIOS:
        if s.dns_kind == "mx":
            for mx in s.mx:
                assert f"mx-host={s.domain},{mx.host},{mx.preference}" in lines
                assert f"host-record={mx.host},{mx.address}" in lines
        elif s.dns_kind == "null-mx":
            assert f"dns-rr={s.domain},15,000000" in lines
        else:
            assert f"host-record={s.domain},{s.mx[0].address}" in lines
            assert not any(line.startswith(f"mx-host={s.domain},") for line in lines)


def test_postfix_configs_carry_each_listener(tmp_path: Path) -> None:
    stock = (
        "smtp      inet  n       -       y       -       -       smtpd\n"
        "  -o smtpd_upstream_proxy_protocol=haproxy\n"  # a continuation of the dropped service
        "pickup    unix  n  -  y  60  1  pickup\n"
    )
    strict = topo.POSTFIX_INSTANCES[0]
    master = postfix.master_cf(strict, stock)
    assert "smtp      inet" not in master and "haproxy" not in master and "pickup" in master
    for lst in strict.listeners:
        assert f"{lst.address}:smtp inet n - n - - smtpd" in master
        for k, v in lst.overrides:
            assert f"  -o {k}={v}" in master
    paths = postfix.Paths(tmp_path / "pf")
    main = postfix.main_cf(strict, paths, tmp_path, tmp_path / "gl.sock", "texthash:/x")
    assert f"queue_directory = {paths.queue}\n" in main
    assert "relay_recipient_maps = texthash:/x\n" in main
    assert f"check_policy_service unix:{tmp_path / 'gl.sock'}" in main


@pytest.mark.postfix
def test_postconf_reads_generated_main_cf(tmp_path: Path) -> None:
    need_tool("postconf")
    paths = postfix.Paths(tmp_path / "pf")
    paths.etc.mkdir(parents=True)
    sloppy = topo.POSTFIX_INSTANCES[1]
    (paths.etc / "main.cf").write_text(postfix.main_cf(sloppy, paths, tmp_path, tmp_path / "s", ""))
    out = subprocess.run(
        ["postconf", "-c", str(paths.etc), "-h", "relay_domains", "inet_interfaces", "relay_recipient_maps"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    assert out == ["example.test", sloppy.listeners[0].address, ""]


def test_served_domains_follow_the_mx_data() -> None:
    strict, sloppy = topo.POSTFIX_INSTANCES
    assert set(topo.served_domains(strict)) == {
        "example.test",
        "softbounce.test",
        "tempfail.test",
        "grey.test",
        "implicit.test",
    }
    assert topo.served_domains(strict, catch_all=True) == ("catchall.test",)
    assert topo.served_domains(sloppy) == ("example.test",)
    assert topo.served_domains(sloppy, catch_all=True) == ()


def test_labinfo_json_round_trip() -> None:
    info = LabInfo(
        state_dir="/run/x",
        nameserver=Endpoint(topo.DNS_IP, 53),
        prober_address=topo.PROBER_IP,
        sink_domain=topo.SINK_DOMAIN,
        probe_prefix=topo.PROBE_LOCAL_PREFIX,
        sink_bounces=Endpoint(topo.SINK_IP, 25),
        sink_inbox=Endpoint(topo.SINK_IP, 2526),
        bounce_maildir="/run/x/sink/bounces",
        inbox_maildir="/run/x/sink/inbox",
        greylist_delay_s=3,
        domains=topo.SCENARIOS,
        postfix=(),
        ldap=None,
        bringup_seconds=1.5,
    )
    back = LabInfo.from_json(info.to_json())
    assert back == info
    assert "sink.test" not in back.scope() and "example.test" in back.scope()
    assert back.expected("example.test", f"{topo.NET}.12").backscatter is True
    with pytest.raises(KeyError):
        back.expected("example.test", "192.0.2.1")


def test_wait_tcp_is_bounded() -> None:
    port = _free_port()
    t0 = time.monotonic()
    assert procs.wait_tcp([("127.0.0.1", port)], 0.3) == [("127.0.0.1", port)]
    assert time.monotonic() - t0 < 2


def test_run_reports_failure_with_output() -> None:
    with pytest.raises(procs.LabError, match="exit 3"):
        procs.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], 10, "demo")


@pytest.mark.postfix
def test_authorize_merges_and_restore_puts_main_cf_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("postconf")
    main_cf = tmp_path / "etc" / "main.cf"
    main_cf.parent.mkdir()
    original = "compatibility_level = 3.6\nalternate_config_directories = /srv/other/etc\n"
    main_cf.write_text(original)
    os.utime(main_cf, (1_600_000_000, 1_600_000_000))
    monkeypatch.setattr(postfix, "DEFAULT_MAIN_CF", main_cf)
    backup = tmp_path / "backup"
    postfix.authorize([Path("/run/x/pf/etc")], backup)
    postfix.authorize([Path("/run/x/pf/etc")], backup)  # twice (a retried up): same backup
    out = subprocess.run(
        ["postconf", "-c", str(main_cf.parent), "-h", "alternate_config_directories"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert "/srv/other/etc" in out and "/run/x/pf/etc" in out
    assert postfix.restore(backup) is True
    assert main_cf.read_text() == original and main_cf.stat().st_mtime == 1_600_000_000
    assert postfix.restore(backup) is False  # nothing left to restore

    main_cf.unlink()
    postfix.authorize([Path("/run/x/pf/etc")], backup)
    assert "alternate_config_directories = /run/x/pf/etc" in main_cf.read_text()
    postfix.restore(backup)
    assert not main_cf.exists()


def test_bounded_gives_a_lab_error_instead_of_hanging() -> None:
    """A netlink call that never answers must end the lab's bring-up with an error, not hang it."""
    import threading as _threading

    from auditor.lab.procs import LabError, bounded

    release = _threading.Event()
    t0 = time.monotonic()
    with pytest.raises(LabError, match="no answer within"):
        bounded(lambda: release.wait(30), 0.5, "a hung call")
    release.set()
    assert time.monotonic() - t0 < 5
    assert bounded(lambda: 42, 5, "a quick call") == 42
    with pytest.raises(ValueError):
        bounded(lambda: int("x"), 5, "a failing call")
