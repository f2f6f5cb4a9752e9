"""Several MAIL transactions per session: as few sessions as the error budget allows, never more
refusals per session than the budget, an RSET between transactions, PIPELINING in RFC 2920 groups."""

from __future__ import annotations

import asyncio
import hashlib
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from auditor.collect.smtp.engine import MAX_JUNK_PER_SESSION, Engine, _domain_views, make_plan
from auditor.collect.smtp.scenarios import default_dir, load
from auditor.observations.smtp import ProbeResult
from auditor.rules.smtp_verdicts import Verdict, classify
from tests.unit.smtp.fakes import Scripted, fast_settings, known_only, mx_for, running

pytestmark = pytest.mark.timeout(60)
BUDGET = 9  # ProbeSettings.max_rejections_per_session: under Postfix's smtpd_soft_error_limit (10)


def _unknown_only(tmp_path: Path) -> str:
    """The benchmark's probe set: only the unknown-recipient scenario (plus the controls)."""
    shutil.copy(default_dir() / "unknown-recipient.toml", tmp_path)
    return str(tmp_path)


def _run(srv: Scripted, domains: list[str], **kw: Any) -> list[ProbeResult]:
    async def go() -> list[ProbeResult]:
        async with running(srv):
            settings = fast_settings(srv.port, **kw)
            scenarios = load(settings.scenarios_dir)
            plan = make_plan(mx_for(domains, host="mx.shared.test"), settings, scenarios, domains)
            return await Engine(settings).run(plan)

    return asyncio.run(go())


def _per_session(srv: Scripted, verb: str) -> list[int]:
    return [sum(1 for c in cmds if c.split(":")[0].split(" ")[0] == verb) for cmds in srv.session_commands]


@pytest.mark.parametrize("pipelining", [False, True])
def test_many_domains_need_only_the_sessions_the_error_budget_forces(
    tmp_path: Path, pipelining: bool
) -> None:
    n = 150  # 150 controls (accepted) and 150 unknown recipients (refused)
    domains = [f"d{i:03d}.test" for i in range(n)]
    controls = tuple(f"user@{d}" for d in domains)
    srv = Scripted(
        rcpt=known_only(set(controls)), extensions=("PIPELINING",) if pipelining else ("SIZE 1000",)
    )
    results = _run(srv, domains, controls=controls, scenarios_dir=_unknown_only(tmp_path))
    assert len(results) == n
    assert all(classify(r).verdict is Verdict.REJECTS_UNKNOWN for r in results), {
        classify(r).reason for r in results
    }
    # The fewest sessions possible: n refusals at most BUDGET per session, every session but the
    # last one full; the 150 accepted controls fit into the first session.
    assert srv.connections == math.ceil(n / BUDGET)
    assert max(srv.rejections_per_session) == BUDGET
    assert sorted(srv.rejections_per_session)[1:] == [BUDGET] * (srv.connections - 1)
    # Controls: ceil(150 / 100) transactions in the first session, the second one shared with the
    # first unknowns; then one transaction per session.
    assert _per_session(srv, "MAIL")[0] == 2
    assert srv.mail_commands == srv.connections + 1
    assert srv.accepted_transactions == 2  # Postfix in_flow_delay tokens: not one per domain
    # One RSET per transaction (between them and before QUIT), every command in sequence.
    assert _per_session(srv, "RSET") == _per_session(srv, "MAIL")
    assert srv.out_of_sequence == 0
    assert all(cmds[-1] == "QUIT" for cmds in srv.session_commands)
    assert sum(1 for c in srv.commands if c.startswith("RCPT")) == 2 * n


@pytest.mark.parametrize("pipelining", [False, True])
def test_an_accepting_server_gets_all_transactions_in_one_session(pipelining: bool) -> None:
    domains = [f"d{i:03d}.test" for i in range(120)]  # 360 RCPTs: postmaster, unknown, subdomain
    srv = Scripted(
        rcpt=lambda _a, _s, _srv: "250 2.1.5 Ok",
        extensions=("PIPELINING",) if pipelining else ("SIZE 1000",),
    )
    results = _run(srv, domains, null_sender_per_address=0)
    assert all(classify(r).verdict is Verdict.ACCEPTS_UNKNOWN for r in results)
    assert srv.connections == 1
    assert srv.mail_commands == math.ceil(360 / 100)
    assert _per_session(srv, "RSET") == [srv.mail_commands]
    assert all(r.sessions == 1 for r in results)


@pytest.mark.parametrize("pipelining", [False, True])
def test_junk_commands_per_session_stay_under_the_limit(pipelining: bool) -> None:
    # Two RCPTs per transaction: 240 RCPTs need 120 transactions, hence 120 RSETs, far more than
    # one session may send (Postfix smtpd_junk_command_limit 100, counted with EHLO).
    domains = [f"d{i:03d}.test" for i in range(80)]
    srv = Scripted(
        rcpt=lambda _a, _s, _srv: "250 2.1.5 Ok",
        extensions=("PIPELINING",) if pipelining else ("SIZE 1000",),
    )
    results = _run(srv, domains, null_sender_per_address=0, max_rcpts_per_transaction=2)
    assert all(classify(r).verdict is Verdict.ACCEPTS_UNKNOWN for r in results)
    assert srv.mail_commands == 120
    assert max(srv.junk_per_session) <= MAX_JUNK_PER_SESSION
    assert srv.connections == math.ceil(120 / (MAX_JUNK_PER_SESSION - 1))
    assert sum(1 for c in srv.commands if c.startswith("RCPT")) == 240


def _mixed(seed: int, share: int) -> Any:
    """Refuses about ``share`` % of recipients (a hash of the address decides), 5 % get a 4xx."""

    def rcpt(addr: str, _sender: str, _srv: Scripted) -> str:
        h = int(hashlib.sha256(f"{seed}:{addr}".encode()).hexdigest()[:8], 16) % 100
        if addr.startswith("postmaster@"):
            return "250 2.1.5 Ok"
        return (
            "550 5.1.1 User unknown" if h < share else ("450 4.2.0 Try later" if h < share + 5 else "250 Ok")
        )

    return rcpt


@pytest.mark.parametrize("pipelining", [False, True])
@pytest.mark.parametrize(("seed", "share"), [(1, 10), (2, 50), (3, 90)])
def test_error_budget_is_never_exceeded(pipelining: bool, seed: int, share: int) -> None:
    domains = [f"d{i:03d}.test" for i in range(60)]
    srv = Scripted(rcpt=_mixed(seed, share), extensions=("PIPELINING",) if pipelining else ("SIZE 1000",))
    results = _run(srv, domains, null_sender_per_address=10)
    assert max(srv.rejections_per_session) <= BUDGET
    assert max(srv.junk_per_session) <= MAX_JUNK_PER_SESSION
    assert not any(classify(r).reason in ("error-budget", "protocol-error") for r in results)
    # Every recipient asked once (postmaster@ once more in the 10 null-sender transactions).
    rcpts = [c for c in srv.commands if c.startswith("RCPT")]
    assert (len(rcpts), len(set(rcpts))) == (60 * 3 + 10, 60 * 3)
    assert srv.out_of_sequence == 0
    assert all(r.outcome("unknown") is not None for r in results)
    # As few sessions as the refusals force, give or take the one whose budget ran short of a
    # transaction (a null-sender transaction needs room for two refusals).
    refusals = sum(srv.rejections_per_session)
    assert srv.connections <= math.ceil(refusals / (BUDGET - 1)) + 1


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_per_session_message_limit_ends_the_session_without_losing_answers(pipelining: bool) -> None:
    domains = [f"d{i:03d}.test" for i in range(50)]  # 150 accepted RCPTs: 2 transactions per session
    srv = Scripted(
        rcpt=lambda _a, _s, _srv: "250 2.1.5 Ok",
        max_messages=1,
        extensions=("PIPELINING",) if pipelining else ("SIZE 1000",),
    )
    results = _run(srv, domains, null_sender_per_address=0)
    # The second MAIL of a session gets 452: not a refusal of our sender, just "next session".
    assert all(classify(r).verdict is Verdict.ACCEPTS_UNKNOWN for r in results), {
        classify(r).reason for r in results
    }
    assert not any(o.error for r in results for o in r.outcomes)
    assert srv.connections == 2
    assert max(srv.rejections_per_session) <= BUDGET


def test_pipelined_null_sender_transactions_go_out_as_groups() -> None:
    srv = Scripted(extensions=("PIPELINING",), reply_delay=0.02)
    results = _run(srv, [f"d{i}.test" for i in range(4)], null_sender_per_address=4)
    assert sum(r.null_sender_tested for r in results) == 4
    assert all(classify(r).verdict is Verdict.REJECTS_UNKNOWN for r in results)
    assert srv.early_talk > 0
    # RSET leads each following group: no nested MAIL, no RCPT outside a transaction.
    [cmds] = srv.session_commands
    mails = [i for i, c in enumerate(cmds) if c.startswith("MAIL")]
    assert all(cmds[i - 1] == "RSET" for i in mails[1:])
    assert cmds[-2:] == ["RSET", "QUIT"]
    assert srv.rejections_per_session == [8]  # unknown + subdomain of 4 domains; postmaster accepted


def test_each_domain_transcript_holds_the_shared_lines_and_only_its_own_rcpts() -> None:
    domains = [f"d{i}.test" for i in range(3)]
    srv = Scripted(extensions=("PIPELINING",))
    results = _run(srv, domains, null_sender_per_address=0)
    for r in results:
        rcpts = [line for line in r.transcript if line.startswith("C: RCPT")]
        assert rcpts and all(f"@{r.domain}>" in line or f".{r.domain}>" in line for line in rcpts)
        assert any(line.startswith("C: MAIL FROM:<probe@audit.test>") for line in r.transcript)
        assert any(line.startswith("S: 220") for line in r.transcript)


def test_domain_views_keep_the_session_order() -> None:
    lines = [(None, "a"), ("x", "b"), ("y", "c"), (None, "d"), ("x", "e"), ("z", "f")]
    views = _domain_views(lines, {"x", "y"})
    assert views == {"x": ["a", "b", "d", "e"], "y": ["a", "c", "d"]}
    # Own lines before the first and after the last shared line; a domain with none of its own.
    lines = [("x", "0"), (None, "a"), ("x", "1"), ("x", "2"), (None, "b"), ("x", "3")]
    assert _domain_views(lines, {"x", "w"}) == {"x": ["0", "a", "1", "2", "b", "3"], "w": ["a", "b"]}


def test_a_session_ended_by_the_budget_says_goodbye_in_its_last_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.collect.smtp import engine
    from auditor.collect.smtp.client import SmtpClient

    sends: list[list[str]] = []  # per session: what each write opened with (one write per round trip)

    class Spy(SmtpClient):
        async def connect(self, host: str, port: int, source_address: str = "") -> Any:
            sends.append([])
            return await super().connect(host, port, source_address)

        async def _write(self, data: str) -> None:
            sends[-1].append(data)
            await super()._write(data)

    monkeypatch.setattr(engine, "SmtpClient", Spy)
    domains = [f"d{i:02d}.test" for i in range(27)]
    controls = tuple(f"user@{d}" for d in domains)
    srv = Scripted(rcpt=known_only(set(controls)), extensions=("PIPELINING",))
    results = _run(srv, domains, controls=controls, scenarios_dir=_unknown_only(tmp_path))
    assert all(classify(r).verdict is Verdict.REJECTS_UNKNOWN for r in results)
    assert srv.connections == 3 and max(srv.rejections_per_session) == BUDGET
    # Later sessions: EHLO, [MAIL + 8 RCPT], [RCPT, RSET, QUIT]: three round trips after the greeting.
    for writes in sends[1:]:
        assert len(writes) == 3
        assert writes[2].count("RCPT") == 1 and writes[2].endswith("RSET\r\nQUIT\r\n")
    assert all(cmds[-3].startswith("RCPT") and cmds[-2:] == ["RSET", "QUIT"] for cmds in srv.session_commands)


def test_an_unexpected_accept_in_the_goodbye_group_loses_nothing(tmp_path: Path) -> None:
    # The 9th unknown of each session is accepted after all: the session has already said QUIT,
    # so the next session carries on; every recipient is still asked once and answered.
    domains = [f"d{i:02d}.test" for i in range(30)]
    controls = tuple(f"user@{d}" for d in domains)
    asked: list[str] = []

    def rcpt(addr: str, _sender: str, _srv: Scripted) -> str:
        asked.append(addr)
        if addr in controls or len(asked) % 9 == 0:
            return "250 2.1.5 Ok"
        return "550 5.1.1 User unknown"

    srv = Scripted(rcpt=rcpt, extensions=("PIPELINING",))
    results = _run(srv, domains, controls=controls, scenarios_dir=_unknown_only(tmp_path))
    assert len(asked) == len(set(asked)) == 60
    assert all(r.outcome("unknown") is not None for r in results)
    assert all(o.reply is not None for r in results for o in r.outcomes)
    assert max(srv.rejections_per_session) <= BUDGET
    assert srv.out_of_sequence == 0


@pytest.mark.parametrize("pipelining", [False, True])
def test_421_and_hang_up_mid_group_keeps_the_answers_already_given(tmp_path: Path, pipelining: bool) -> None:
    """Postfix under stress (hard error limit 1..) answers 421 and disconnects: what it answered
    before counts, pipelined or not, and the 421 stops the host (backoff, one more try)."""
    domains = [f"d{i:02d}.test" for i in range(12)]
    controls = tuple(f"user@{d}" for d in domains)
    srv = Scripted(
        rcpt=known_only(set(controls)),
        extensions=("PIPELINING",) if pipelining else ("SIZE 1000",),
        hard_limit=5,
    )
    results = _run(srv, domains, controls=controls, scenarios_dir=_unknown_only(tmp_path))
    measured = [r for r in results if classify(r).verdict is Verdict.REJECTS_UNKNOWN]
    # Two sessions (the first, and the one retry after the 421 backoff) of 5 refusals each.
    assert len(measured) == 10, sorted(
        (r.domain, classify(r).verdict.value, classify(r).reason) for r in results
    )
    assert all(classify(r).reason == "421" for r in results if classify(r).verdict is Verdict.INCONCLUSIVE)
