"""The lab's hardened Postfix MX (issue 12 §2): what a locked-down real MX does to a prober.

One instance in its own namespace, serving ``hardened.test`` and ``tarpit.test`` (outside the demo
site). On HARDENED_IP postscreen runs in front of smtpd with its after-220 tests (pipelining,
non-SMTP commands, bare newlines) and the pregreet test (a ``220-`` first line, then a wait): a
client that passes them gets ``450 4.3.2`` on every RCPT and must reconnect. smtpd then checks the
client against the lab DNSBL, the HELO name and the sender domain, limits connections per client
(anvil), and validates recipients (550 5.1.1 for unknown ones). TARPIT_IP is a plain smtpd with the
same checks that sleeps before every reply once a client has made an error.
"""

from __future__ import annotations

from pathlib import Path

from auditor.lab import postfix
from auditor.lab import topology as topo

NAME = "hardened"
HOST = "mx3"
MYHOSTNAME = "mx.hardened.test"
SCENARIOS = ("hardened", "tarpit")  # per address: HARDENED_IP, TARPIT_IP


def addresses() -> tuple[str, ...]:
    return (topo.HARDENED_IP, topo.TARPIT_IP)


def domains() -> tuple[str, ...]:
    return tuple(s.domain for s in topo.HARDENED_SCENARIOS)


def main_cf(paths: postfix.Paths, state: Path) -> str:
    inbox = f"smtp:[{topo.SINK_IP}]:{topo.SINK_INBOX_PORT}"
    served = domains()
    params = postfix.instance_params(f"postfix-bsa-{NAME}", paths, state, ", ".join(addresses()), MYHOSTNAME)
    params += [
        ("smtpd_banner", "$myhostname ESMTP"),
        ("relay_domains", ", ".join(served)),
        ("relay_recipient_maps", f"texthash:{paths.etc / 'recipients'}"),
        ("transport_maps", "inline:{ " + ", ".join(f"{d}={inbox}" for d in served) + " }"),
        # The checks of a hardened MX, each in its own restriction class as admins write them;
        # smtpd_delay_reject (default yes) answers them all at RCPT.
        ("smtpd_helo_required", "yes"),
        ("smtpd_client_restrictions", f"reject_rbl_client {topo.DNSBL_ZONE}"),
        (
            "smtpd_helo_restrictions",
            "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, reject_unknown_helo_hostname",
        ),
        ("smtpd_sender_restrictions", "reject_non_fqdn_sender, reject_unknown_sender_domain"),
        ("smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination"),
        ("smtpd_recipient_restrictions", "reject_non_fqdn_recipient, reject_unlisted_recipient"),
        # anvil(8): per-client limits of smtpd (postscreen's own sessions are not counted).
        ("anvil_rate_time_unit", f"{topo.ANVIL_TIME_UNIT_S}s"),
        ("smtpd_client_connection_rate_limit", str(topo.HARDENED_CONNECTION_RATE)),
        ("smtpd_client_connection_count_limit", "5"),
        ("smtpd_client_message_rate_limit", "30"),
        ("smtpd_client_recipient_rate_limit", "100"),
        # postscreen(8): the pregreet test with a multi-line greeting, and the after-220 tests.
        ("postscreen_greet_banner", "$smtpd_banner - wait for the whole greeting"),
        ("postscreen_greet_wait", f"{topo.POSTSCREEN_GREET_WAIT_S}s"),
        ("postscreen_greet_action", "enforce"),
        ("postscreen_pipelining_enable", "yes"),
        ("postscreen_pipelining_action", "enforce"),
        ("postscreen_non_smtp_command_enable", "yes"),
        ("postscreen_non_smtp_command_action", "drop"),
        ("postscreen_bare_newline_enable", "yes"),
        ("postscreen_bare_newline_action", "enforce"),
    ]
    return "".join(f"{k} = {v}\n" for k, v in params)


def master_cf(stock: str) -> str:
    """The stock services, postscreen handing over to ``smtpd pass``, and the tarpit smtpd."""
    kept = postfix.without_smtp_inet(stock)
    kept += [
        f"{topo.HARDENED_IP}:smtp inet n - n - 1 postscreen",
        f"  -o syslog_name=postfix-bsa-{NAME}/postscreen",
        "smtpd pass - - n - - smtpd",
        f"  -o syslog_name=postfix-bsa-{NAME}/hardened",
        f"{topo.TARPIT_IP}:smtp inet n - n - - smtpd",
        f"  -o syslog_name=postfix-bsa-{NAME}/tarpit",
        "  -o smtpd_soft_error_limit=1",
        f"  -o smtpd_error_sleep_time={topo.TARPIT_SLEEP_S}s",
    ]
    return "\n".join(kept) + "\n"


def write(paths: postfix.Paths, state: Path) -> None:
    paths.etc.mkdir(parents=True, exist_ok=True)
    paths.queue.mkdir(parents=True, exist_ok=True)
    (paths.etc / "main.cf").write_text(main_cf(paths, state))
    (paths.etc / "master.cf").write_text(master_cf(postfix.read_stock_master_cf()))
    recipients = paths.etc / "recipients"
    recipients.write_text(postfix.texthash([r for s in topo.HARDENED_SCENARIOS for r in s.valid_recipients]))
    postfix.backdate(recipients)
    postfix.no_chroot(paths)
