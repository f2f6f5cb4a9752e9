"""The benchmark site's generated configuration and its maillog reading (no network, no daemons)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.lab import bench
from auditor.lab import topology as topo
from auditor.lab.postfix import Paths

LOG = """\
Nov 26 19:40:17 mx1 postfix-bsb-mx1/smtpd[421]: connect from unknown[198.18.1.1]
Nov 26 19:40:17 mx1 postfix-bsb-mx1/smtpd[421]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 550 5.1.1 \
<x@bench-0001.test>: Recipient address rejected: User unknown in relay recipient table
Nov 26 19:40:17 mx1 postfix-bsb-mx1/smtpd[421]: disconnect from unknown[198.18.1.1] ehlo=1 mail=1 \
rcpt=9/18 rset=1 quit=1 commands=13/22
Nov 26 19:40:18 mx1 postfix-bsb-mx1/smtpd[422]: connect from unknown[198.18.1.1]
Nov 26 19:40:19 mx1 postfix-bsb-mx1/smtpd[422]: too many errors after RCPT from unknown[198.18.1.1]
Nov 26 19:40:19 mx1 postfix-bsb-mx1/smtpd[422]: disconnect from unknown[198.18.1.1] ehlo=1 mail=1/2 \
rcpt=0/20 commands=2/23
Nov 26 19:40:20 mx2 postfix-bsb-mx2/smtpd[423]: connect from unknown[198.18.1.1]
Nov 26 19:40:20 mx2 postfix-bsb-mx2/smtpd[423]: NOQUEUE: reject: CONNECT from unknown[198.18.1.1]: 421 4.7.0 \
Service unavailable
Nov 26 19:40:20 mx2 postfix-bsb-mx2/smtpd[423]: lost connection after CONNECT from unknown[198.18.1.1]
Nov 26 19:40:20 mx2 postfix-bsb-mx2/smtpd[423]: disconnect from unknown[198.18.1.1] commands=0/0
"""


def test_domain_names_are_numbered_and_bounded() -> None:
    names = bench.domain_names(500)
    assert names[0] == "bench-0001.test" and names[-1] == "bench-0500.test"
    assert len(set(names)) == 500
    with pytest.raises(ValueError):
        bench.domain_names(0)


def test_bench_network_never_overlaps_the_test_lab() -> None:
    assert bench.PREFIX != topo.PREFIX and not bench.BRIDGE.startswith(topo.PREFIX)
    assert bench.NET != topo.NET
    for addr in (bench.PROBER_IP, bench.DNS_IP, bench.PRIMARY_IP, bench.BACKUP_IP):
        assert addr.startswith(bench.NET + ".")
    assert len(f"{bench.PREFIX}h-mx1") < 16  # IFNAMSIZ


def test_dnsmasq_gives_each_domain_a_primary_and_a_backup(tmp_path: Path) -> None:
    domains = bench.domain_names(3)
    conf = bench.dnsmasq_config(tmp_path, domains).splitlines()
    assert "no-resolv" in conf and "local=/test/" in conf  # never forwards anywhere
    assert "mx-host=bench-0002.test,mx1.bench-0002.test,10" in conf
    assert "mx-host=bench-0002.test,mx2.bench-0002.test,20" in conf
    assert f"host-record=mx1.bench-0003.test,{bench.PRIMARY_IP}" in conf
    assert f"host-record=mx2.bench-0003.test,{bench.BACKUP_IP}" in conf
    assert sum(line.startswith("mx-host=") for line in conf) == 6


def _params(text: str) -> dict[str, str]:
    return dict(line.split(" = ", 1) for line in text.splitlines())


@pytest.mark.parametrize("strict", [True, False])
def test_main_cf_keeps_default_limits_and_treats_the_prober_as_internet(tmp_path: Path, strict: bool) -> None:
    paths = Paths(tmp_path / "pf")
    params = _params(bench.main_cf("mx1", bench.PRIMARY_IP, paths, tmp_path, strict))
    assert bench.PROBER_IP not in params["mynetworks"] and "198.18" not in params["mynetworks"]
    assert params["inet_interfaces"] == bench.PRIMARY_IP
    for limit in (
        "smtpd_soft_error_limit",
        "smtpd_hard_error_limit",
        "in_flow_delay",
        "smtpd_error_sleep_time",
    ):
        assert limit not in params  # Postfix defaults, as issue 6 asks
    assert not any(k.startswith("smtpd_client_") for k in params)
    assert params["relay_domains"].startswith("texthash:")
    if strict:
        assert params["relay_recipient_maps"] == f"texthash:{paths.etc / 'recipients'}"
        assert params["relay_transport"].startswith("discard")
    else:
        assert params["relay_recipient_maps"] == ""  # accepts every recipient


def test_recipients_table_lists_postmaster_and_one_control_per_domain() -> None:
    lines = bench.recipients_table(bench.domain_names(500)).splitlines()
    assert len(lines) == 1000
    assert "postmaster@bench-0007.test OK" in lines and "user@bench-0007.test OK" in lines
    assert bench.control_address("bench-0007.test") == "user@bench-0007.test"


def test_maillog_view_counts_sessions_errors_and_limits() -> None:
    v = bench.MaillogView()
    v.add(LOG)
    assert (v.connects, v.disconnects) == (3, 3)
    assert v.max_errors_per_session == 21  # 1 refused MAIL + 20 refused RCPT
    assert v.sessions_at_soft_limit == 1  # the 9-error session stayed below 10
    assert v.too_many_errors == 1
    assert v.lines_421 == 1  # the pid smtpd[421] is not a reply code
    assert v.lost_connection == 1
    assert (v.rcpt_ok, v.rcpt_total) == (9, 38)


def test_log_window_reads_only_what_came_after_it_opened(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text(LOG)
    window = bench.LogWindow([str(a), str(b)])  # b does not exist yet
    assert window.read(0).connects == 0
    with open(a, "a") as fh:
        fh.write("Nov 26 19:41:00 mx1 postfix-bsb-mx1/smtpd[9]: connect from unknown[198.18.1.1]\n")
    b.write_text(
        "Nov 26 19:41:00 mx2 postfix-bsb-mx2/smtpd[8]: disconnect from unknown[198.18.1.1] rcpt=2/2\n"
    )
    view = window.read(1, timeout=1.0)
    assert (view.connects, view.disconnects, view.rcpt_ok) == (1, 1, 2)


def test_log_window_read_is_bounded_when_lines_never_come(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    log.write_text("")
    view = bench.LogWindow([str(log)]).read(5, timeout=0.2)
    assert view.disconnects == 0


def test_wait_quiet(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    log.write_text("x\n")
    assert bench.wait_quiet([log], quiet=0.1, timeout=1.0)
