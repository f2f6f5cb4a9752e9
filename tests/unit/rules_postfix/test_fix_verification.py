"""Every printed Postfix fix, applied with the real postconf/postmap to a copy, fixes its finding.

For every lab configuration (written by ``auditor.lab.postfix.write_instance`` into a temporary
directory, no namespaces needed) and every corpus configuration: copy it, lint it, and for each
failing finding with commands take a fresh copy, run the finding's commands (placeholders replaced
by test values, the tables they name created), lint the copy again and check that

* the finding no longer fails, and no other finding newly fails;
* no restriction-list element the site had is gone (the fix edits the site's own lists);
* ``postconf -c COPY -n`` prints no warning it did not print before.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from auditor.collect.postfix import collect
from auditor.judge import evaluate
from auditor.lab import topology as topo
from auditor.lab.postfix import Paths, write_instance
from auditor.model import Finding, Status
from auditor.observations.postfix import PostfixConfig
from auditor.rules.postfix_common import RESTRICTION_LISTS, restriction_groups
from tests.conftest import need, need_tool
from tests.unit.test_postfix_corpus_expectations import PAIRS, PF

pytestmark = pytest.mark.postfix

TIMEOUT = 30.0


@dataclass
class Verified:
    triples: int = 0  # (config, finding, command) applied and checked
    findings: int = 0
    without_commands: list[str] | None = None
    rules: set[str] = field(default_factory=set)


def _lab_configs(root: Path) -> dict[str, Path]:
    out = {}
    for inst in topo.POSTFIX_INSTANCES:
        paths = Paths(root / "state" / f"lab-{inst.name}")  # inside the state dir, as the lab has it
        recipients = paths.etc / "recipients"
        write_instance(inst, paths, root / "state", root / "greylist.sock", f"texthash:{recipients}")
        recipients.write_text("".join(f"{r} OK\n" for s in topo.SCENARIOS for r in s.valid_recipients))
        # The lab's addresses exist only inside its network namespaces, and postmap refuses a main.cf
        # whose inet_interfaces are not on this host. "all" keeps the listeners Internet-facing, as
        # they are in the lab (loopback-only would make every listener internal: a null client).
        main = paths.etc / "main.cf"
        main.write_text(re.sub(r"(?m)^inet_interfaces = .*$", "inet_interfaces = all", main.read_text()))
        out[f"lab-{inst.name}"] = paths.etc
    return out


def _corpus_configs(root: Path) -> dict[str, Path]:
    need(PF.is_dir(), f"the Postfix corpus {PF}")
    out = {}
    for name, (main, master) in sorted(PAIRS.items()):
        d = root / f"corpus-{name}"
        d.mkdir()
        shutil.copy(PF / main, d / "main.cf")
        shutil.copy(PF / master, d / "master.cf")
        out[f"corpus-{name}"] = d
    return out


# Small sites with the mistakes the corpus lacks, written as real files (main.cf, master.cf lines).
_STOCK_SMTP = "smtp inet n - n - - smtpd\npickup unix n - n 60 1 pickup\ncleanup unix n - n - 0 cleanup\n"
SITES: dict[str, tuple[str, str]] = {
    # a relay list with SASL, a policy service and a HELO table, but no gate: each must survive
    "open-relay": (
        "compatibility_level = 3.6\nsmtpd_sasl_auth_enable = yes\n"
        "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
        "check_helo_access hash:/etc/postfix/helo_access, check_policy_service inet:127.0.0.1:10023, permit\n"
        "mynetworks = 127.0.0.0/8, 0.0.0.0/0\n",
        _STOCK_SMTP,
    ),
    "soft-site": (
        "compatibility_level = 3.6\nsoft_bounce = yes\nluser_relay = catchall@example.com\n"
        "mydestination = example.com, localhost\nlocal_recipient_maps =\n"
        "unknown_local_recipient_reject_code = 450\nunverified_recipient_defer_code = 250\n"
        "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, "
        "reject_unverified_recipient, permit_mx_backup\n"
        "smtpd_sender_restrictions = reject_unverified_sender\naddress_verify_sender = <>\n"
        "bounce_size_limit = 10240000\n",
        _STOCK_SMTP
        + "127.0.0.1:10025 inet n - n - - smtpd\n  -o content_filter=\n  -o smtpd_recipient_restrictions="
        "permit_mynetworks,reject\n"
        "192.0.2.25:smtp inet n - n - - smtpd\n  -o soft_bounce=yes\n"
        "  -o unknown_relay_recipient_reject_code=450\n  -o smtpd_reject_unlisted_recipient=no\n"
        "  -o receive_override_options=no_unknown_recipient_checks,no_milters\n",
    ),
    "gateway-btree": (
        "compatibility_level = 3.6\nrelay_domains = example.com\n"
        "transport_maps = btree:/etc/postfix/transport\nvirtual_alias_maps = btree:/etc/postfix/virtual\n"
        "header_checks = regexp:/etc/postfix/header_checks\n"
        "virtual_mailbox_maps = ldap:/etc/postfix/ldap-users.cf, static:OK\n",
        _STOCK_SMTP + "127.0.0.1:10025 inet n - n - - smtpd\n  -o content_filter=\n"
        "  -o smtpd_client_restrictions=permit_mynetworks,reject\n",
    ),
}


def _site_configs(root: Path) -> dict[str, Path]:
    out = {}
    for name, (main, master) in SITES.items():
        d = root / f"site-{name}"
        d.mkdir(parents=True)
        (d / "main.cf").write_text(main)
        (d / "master.cf").write_text(master)
        (d / "header_checks").write_text("/^Subject: free money/ REJECT no\n")
        (d / "ldap-users.cf").write_text("server_host = ldap://127.0.0.1:1\nsearch_base = dc=example\n")
        for table in ("transport", "virtual", "helo_access"):
            (d / table).write_text(
                "example.com OK\n" if table != "transport" else "example.com smtp:[192.0.2.9]\n"
            )
        out[f"site-{name}"] = d
    return out


def _lint(d: Path) -> tuple[PostfixConfig, list[Finding]]:
    cfg = collect(str(d))
    return cfg, [f for f in evaluate([cfg]) if f.rule_id.startswith(("PF-", "LDAP-"))]


def _elements(cfg: PostfixConfig) -> set[str]:
    """Every restriction the site wrote, anywhere (main.cf lists, restriction classes, -o lists)."""
    classes = cfg.value("smtpd_restriction_classes").replace(",", " ").split()
    names = [*RESTRICTION_LISTS, *classes]
    values = [cfg.value(n) for n in names] + [
        p.value for s in cfg.services for n, p in s.overrides.items() if n in names
    ]
    return {" ".join(g).lower() for v in values for g in restriction_groups(v)}


def _warnings(postconf: str, d: Path) -> set[str]:
    proc = subprocess.run(
        [postconf, "-c", str(d), "-n"], capture_output=True, text=True, timeout=TIMEOUT, errors="replace"
    )
    return {ln.replace(str(d), "DIR") for ln in proc.stderr.splitlines() if ln.strip()}


def _placeholder_value(ph: str, work: Path) -> str:
    """A test value for each placeholder a fix may hold; the tables it names are created."""
    if ph == "<your relay recipient table>":
        (work / "relay_recipients").write_text("someone@example.com OK\n")
        return str(work / "relay_recipients")
    if ph == "<your table of forged sender domains>":
        (work / "forged_senders").write_text("example.com verify_sender\n")
        return str(work / "forged_senders")
    values = {
        "<your primary MX networks>": "192.0.2.0/24",
        "<your quota-status service>": "inet:127.0.0.1:12340",
    }
    assert ph in values, f"no test value for the placeholder {ph}"
    return values[ph]


def _apply(f: Finding, work: Path) -> int:
    n = 0
    for cmd in f.remediation.commands:
        assert cmd.directory == str(work), cmd
        line = cmd.line
        assert cmd.safe == (not cmd.placeholders), cmd
        for ph in cmd.placeholders:
            line = line.replace(ph, _placeholder_value(ph, work))
        assert not re.search(r"<[^>]*>", line), f"unlisted placeholder in {cmd.line}"
        argv = shlex.split(line)
        assert argv[0] in ("postconf", "postmap"), line
        if argv[0] == "postconf":
            assert argv[1:3] == ["-c", str(work)], f"{line}: does not name the linted directory"
        argv[0] = need_tool(argv[0])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, errors="replace")
        assert proc.returncode == 0, f"{line}: {proc.stderr}"
        assert "warning" not in proc.stderr, f"{line}: {proc.stderr}"
        n += 1
    return n


def _verify(name: str, base: Path, root: Path, postconf: str, done: Verified) -> None:
    _cfg, findings = _lint(base)
    failing = [f for f in findings if f.status is Status.FAIL]
    assert done.without_commands is not None
    for i, f0 in enumerate(failing):
        if not f0.remediation.commands:
            done.without_commands.append(f"{name} {f0.rule_id}")
            continue
        work = root / f"{name}-{i}"
        shutil.copytree(base, work)
        target = f0.target.replace(str(base), str(work), 1)
        cfg_before, before = _lint(work)
        f = next(x for x in before if x.key == (f0.rule_id, target))
        assert f.status is Status.FAIL
        fails_before = {x.key for x in before if x.status is Status.FAIL}
        elements_before = _elements(cfg_before)
        warnings_before = _warnings(postconf, work)
        done.triples += _apply(f, work)
        done.findings += 1
        done.rules.add(f.rule_id)
        cfg_after, after = _lint(work)
        what = f"{name} {f.rule_id} {f.target}: {[c.line for c in f.remediation.commands]}"
        still = [x for x in after if x.key == f.key and x.status is Status.FAIL]
        assert not still, f"{what} did not fix it: {still[0].message}"
        new = {x.key for x in after if x.status is Status.FAIL} - fails_before
        assert not new, f"{what} made {sorted(new)} fail"
        lost = elements_before - _elements(cfg_after)
        assert not lost, f"{what} dropped {sorted(lost)}"
        added = _warnings(postconf, work) - warnings_before
        assert not added, f"{what}: postconf -n now warns {sorted(added)}"


def test_every_fix_fixes_its_finding_on_a_copy(tmp_path: Path) -> None:
    postconf = need_tool("postconf")
    need_tool("postmap")
    src = tmp_path / "src"
    configs = {**_lab_configs(src), **_corpus_configs(src), **_site_configs(src)}
    done = Verified(without_commands=[])
    for name, d in configs.items():
        _verify(name, d, tmp_path / "work", postconf, done)
    # Every rule that prints Postfix commands was exercised on real files.
    assert done.rules >= COMMAND_RULES, sorted(COMMAND_RULES - done.rules)
    assert done.triples >= done.findings, done
    print(
        f"\nverified {done.triples} commands of {done.findings} findings ({len(done.rules)} rules) in "
        f"{len(configs)} configurations; failing without commands: {done.without_commands}"
    )


COMMAND_RULES = {
    "PF-RCPT-001",
    "PF-RCPT-002",
    "PF-RCPT-003",
    "PF-RCPT-005",
    "PF-RCPT-006",
    "PF-RCPT-007",
    "PF-RCPT-008",
    "PF-RCPT-009",
    "PF-RELAY-001",
    "PF-COMPAT-001",
    "PF-VERIFY-001",
    "PF-VERIFY-002",
    "PF-VERIFY-003",
    "PF-FILTER-004",
    "PF-DSN-001",
    "LDAP-QUERY-001",
}
