"""The lab itself, probed from the root namespace with smtplib and dnspython (real daemons, no mocks).

Expected behaviour comes from the lab's data (LabInfo / auditor.lab.topology), never from literals
here, so these tests prove that the running lab matches what the prober's tests will rely on.
"""

from __future__ import annotations

import json
import mailbox
import os
import secrets
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dns.resolver
import pytest

from auditor.collect.sink import TokenStore, new_token
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

NDR_WAIT = 30.0


def _resolver(lab: Any) -> dns.resolver.Resolver:
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [lab.nameserver.host]
    r.port = lab.nameserver.port
    r.lifetime = 3
    return r


def _rcpt(address: str, sender: str, rcpts: list[str]) -> list[int]:
    with smtplib.SMTP(address, 25, local_hostname="prober.lab.test", timeout=10) as s:
        s.ehlo()
        code, _ = s.mail(sender)
        assert code == 250, f"MAIL FROM {sender!r} at {address}: {code}"
        return [s.rcpt(r)[0] for r in rcpts]


def _unknown(domain: str) -> str:
    return f"nx-{secrets.token_hex(6)}@{domain}"


def _verdict(code: int) -> str:
    return {2: "accepts-unknown", 4: "defers-unknown", 5: "rejects-unknown"}[code // 100]


def _maildir_hit(path: str, needle: str) -> Any:
    box = mailbox.Maildir(path, create=False)
    for msg in box:
        if needle in msg.as_string():
            return msg
    return None


def test_dns_answers_every_lab_domain(lab: Any) -> None:
    r = _resolver(lab)
    for d in lab.domains:
        if d.dns_kind == "mx":
            got = {(a.preference, str(a.exchange).rstrip(".")) for a in r.resolve(d.domain, "MX")}
            assert got == {(m.preference, m.host) for m in d.mx}, d.domain
            for m in d.mx:
                assert [a.to_text() for a in r.resolve(m.host, "A")] == [m.address]
        elif d.dns_kind == "null-mx":
            got = [(a.preference, str(a.exchange)) for a in r.resolve(d.domain, "MX")]
            assert got == [(0, ".")]
        elif d.dns_kind == "implicit-mx":
            with pytest.raises(dns.resolver.NoAnswer):
                r.resolve(d.domain, "MX")
            assert [a.to_text() for a in r.resolve(d.domain, "A")] == [m.address for m in d.mx]
    with pytest.raises(dns.resolver.NXDOMAIN):
        r.resolve(f"nope-{secrets.token_hex(4)}.test", "MX")


def test_namespaces_have_no_default_route(lab: Any) -> None:
    """Network safety: a daemon in the lab can reach 198.18.0.0/24 and nothing else."""
    from pyroute2 import NetNS

    from auditor.lab import topology

    for host in topology.HOSTS:
        with NetNS(host.netns) as ns:
            routes = [r for r in ns.get_routes(family=socket.AF_INET) if r.get("table") == 254]
            dsts = {(r.get_attr("RTA_DST"), r["dst_len"]) for r in routes}
            assert dsts == {(f"{topology.NET}.0", topology.PREFIXLEN)}, (host.netns, dsts)


def test_strict_primary_rejects_unknown_accepts_directory_addresses(lab: Any) -> None:
    mx = next(m for m in lab.domain("example.test").mx if m.scenario == "strict")
    assert lab.ldap is not None
    codes = _rcpt(
        mx.address, "probe@sink.test", [_unknown("example.test"), lab.ldap.known_valid, lab.ldap.alias]
    )
    assert codes[0] // 100 == 5
    # The alias exists only in the directory (proxyAddresses): accepted through the ldap: map.
    assert codes[1:] == [250, 250]


def test_sloppy_backup_accepts_unknown(lab: Any) -> None:
    mx = next(m for m in lab.domain("example.test").mx if m.scenario == "sloppy-backup")
    assert _rcpt(mx.address, "probe@sink.test", [_unknown("example.test")]) == [250]


def test_every_mx_gives_its_expected_verdict(lab: Any) -> None:
    """Each (domain, MX) without greylisting answers a random unknown as the data says, twice (persistent)."""
    checked = 0
    for d in lab.domains:
        for m in d.mx:
            if m.first_reply or not d.in_scope:
                continue
            for _ in range(2):
                (code,) = _rcpt(m.address, "probe@sink.test", [_unknown(d.domain)])
                assert _verdict(code) == m.verdict, (d.domain, m.address, code)
            control = [r for r in d.valid_recipients]
            assert set(_rcpt(m.address, "probe@sink.test", control)) == {250}, (d.domain, m.address)
            checked += 1
    assert checked >= 5


def test_null_sender_accepted_at_primary(lab: Any) -> None:
    mx = next(m for m in lab.domain("example.test").mx if m.scenario == "strict")
    assert _rcpt(mx.address, "<>", [lab.domain("example.test").valid_recipients[0]]) == [250]


def test_backscatter_ndr_reaches_sink(lab: Any) -> None:
    mx = next(m for m in lab.domain("example.test").mx if m.backscatter)
    tag = new_token()
    TokenStore(lab.sink_token_dir).add(tag)  # the sink accepts bounces only for live probe tokens
    sender = f"{lab.probe_prefix}{tag}@{lab.sink_domain}"
    rcpt = _unknown("example.test")
    t0 = time.monotonic()
    with smtplib.SMTP(mx.address, 25, local_hostname="prober.lab.test", timeout=10) as s:
        s.sendmail(
            sender, [rcpt], f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: probe {tag}\r\n\r\nprobe\r\n"
        )
    ndr = None
    while ndr is None and time.monotonic() - t0 < NDR_WAIT:
        ndr = _maildir_hit(lab.bounce_maildir, tag)
        if ndr is None:
            time.sleep(0.1)
    assert ndr is not None, f"no NDR for {tag} within {NDR_WAIT} s"
    assert ndr["Return-Path"] == "<>"
    assert ndr["X-BSA-Envelope-To"] == sender
    assert ndr.get_content_type() == "multipart/report"


def test_catchall_delivers_to_inbox_not_a_bounce(lab: Any) -> None:
    mx = lab.domain("catchall.test").mx[0]
    tag = secrets.token_hex(6)
    rcpt = _unknown("catchall.test")
    with smtplib.SMTP(mx.address, 25, local_hostname="prober.lab.test", timeout=10) as s:
        s.sendmail("probe@sink.test", [rcpt], f"Subject: catchall {tag}\r\n\r\nx\r\n")
    t0 = time.monotonic()
    while _maildir_hit(lab.inbox_maildir, tag) is None:
        assert time.monotonic() - t0 < NDR_WAIT, "catch-all mail never reached the inbox"
        time.sleep(0.1)


def test_sink_refuses_non_probe_recipients(lab: Any) -> None:
    codes = _rcpt(
        lab.sink_bounces.host,
        "",
        [
            f"someone@{lab.sink_domain}",
            f"{lab.probe_prefix}x@other.test",
            f"{lab.probe_prefix}{new_token()}@{lab.sink_domain}",  # well-formed, but not a live token
        ],
    )
    assert all(c // 100 == 5 for c in codes)


def test_greylisting_defers_then_accepts(lab: Any) -> None:
    d = next(d for d in lab.domains if any(m.first_reply for m in d.mx))
    mx = next(m for m in d.mx if m.first_reply)
    sender = f"grey-{secrets.token_hex(4)}@sink.test"
    known = d.valid_recipients[0]
    t0 = time.monotonic()
    assert _rcpt(mx.address, sender, [known])[0] // 100 == 4
    assert _rcpt(mx.address, sender, [known])[0] // 100 == 4  # too early: still deferred
    deadline = t0 + lab.greylist_delay_s + 10
    code = 0
    while time.monotonic() < deadline:
        (code,) = _rcpt(mx.address, sender, [known])
        if code == 250:
            break
        time.sleep(0.5)
    assert code == 250
    assert time.monotonic() - t0 >= lab.greylist_delay_s
    # After the greylist the MX validates recipients: the expected verdict for an unknown one.
    unknown = _unknown(d.domain)
    _rcpt(mx.address, sender, [unknown])
    time.sleep(lab.greylist_delay_s)
    assert _verdict(_rcpt(mx.address, sender, [unknown])[0]) == mx.verdict


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditor", "lab", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_status_reports_the_running_lab_and_up_respects_the_session(lab: Any) -> None:
    st = _cli("status", "--state-dir", lab.state_dir, "--format", "json")
    assert st.returncode == 0, st.stderr
    doc = json.loads(st.stdout)
    assert doc["up"] is True
    assert all(doc["listening"].values()) and len(doc["listening"]) >= 6
    assert doc["info"]["nameserver"] == {"host": lab.nameserver.host, "port": lab.nameserver.port}
    # This test session holds the lab: `lab up` / `lab down` from outside must not replace it.
    for action in ("up", "down"):
        res = _cli(action, "--state-dir", lab.state_dir)
        assert res.returncode == 2 and "another session" in res.stderr, (action, res.stderr)
    assert _cli("status", "--state-dir", lab.state_dir).returncode == 0


def _lab_processes(state_dir: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if state_dir in cmd:
                found.append(int(entry.name))
    return found


def test_zz_crash_recovery_and_clean_teardown(lab_runner: dict[str, Any]) -> None:
    """Last in this module: up over a 'crashed' lab, then down leaves nothing; then up again."""
    from auditor.lab import Lab, procs
    from auditor.lab.netns import leftovers

    lab, info = lab_runner["lab"], lab_runner["info"]
    # Crash: the bookkeeping is lost while every daemon still runs. A new up must clean it all first.
    for f in ("state.json", "lab.json"):
        (Path(info.state_dir) / f).unlink()
    fresh = Lab(info.state_dir)
    fresh.up()
    dnsmasqs = [
        p for p in _lab_processes(info.state_dir) if "dnsmasq" in Path(f"/proc/{p}/cmdline").read_text()
    ]
    assert len(dnsmasqs) == 1, "the crashed run's dnsmasq survived the new up"
    masters = [int(Path(p.queue_dir, "pid", "master.pid").read_text()) for p in info.postfix]
    assert all(procs.alive(p) for p in masters)

    done = fresh.down()
    assert done, "down reported nothing to do while the lab ran"
    assert leftovers() == []
    assert not any(procs.alive(p) for p in masters), "a Postfix master survived lab down"
    assert [p for p in _lab_processes(info.state_dir) if procs.alive(p)] == []
    before = lab_runner["main_cf_before"]
    main_cf = Path("/etc/postfix/main.cf")
    assert (main_cf.read_text() if main_cf.exists() else None) == before
    assert Path("/etc/netns").exists() == lab_runner["etc_netns_before"]
    assert fresh.down() == []  # idempotent: nothing left to do

    lab_runner["lab"] = lab
    lab.up()  # the session's lab, for whatever tests run after this module
