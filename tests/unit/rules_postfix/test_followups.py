"""PF-RCPT-003 reads template tokens (not notes); PF-RCPT-004 judges ldap: tables from LdapMapCheck."""

from __future__ import annotations

from dataclasses import replace

import pytest

from auditor.judge import evaluate
from auditor.model import Finding, Location, Severity, Status
from auditor.observations.postfix import LdapMapCheck, LookupTable, PostfixConfig, TemplateToken
from auditor.rules import load_all
from tests.unit.rules_postfix.builder import TARGET, config, finding, svc, svc_target

FAIL, PASS, INC = Status.FAIL, Status.PASS, Status.INCONCLUSIVE
RCPT = "permit_mynetworks reject_unauth_destination"
GUARD = TemplateToken(
    "[%- IF pmg.mail.verifyreceivers %]",
    Location(f"{TARGET}/main.cf", 104),
    "smtpd_recipient_restrictions",
    "reject_unverified_recipient",
)


def _with(cfg: PostfixConfig, *tokens: TemplateToken, notes: tuple[str, ...] = ()) -> PostfixConfig:
    return replace(cfg, templates=cfg.templates + tokens, notes=cfg.notes + notes)


def test_rcpt003_optional_verification_comes_from_the_token() -> None:
    cfg = _with(config({"relay_domains": "example.com", "smtpd_recipient_restrictions": RCPT}), GUARD)
    f = finding("PF-RCPT-003", cfg)
    assert f.status is FAIL
    assert "template conditional" in f.note and "main.cf:104" in f.note and "verifyreceivers" in f.note
    assert finding("PF-VERIFY-002", cfg).status is FAIL


def test_rcpt003_ignores_notes_and_unrelated_tokens() -> None:
    base = config({"relay_domains": "example.com", "smtpd_recipient_restrictions": RCPT})
    note = "main.cf:104: template line skipped: [% IF x %] reject_unverified_recipient[% END %]"
    other = replace(GUARD, parameter="smtpd_sender_restrictions")
    other_words = replace(GUARD, skipped_text="reject_unknown_recipient_domain")
    cfg = _with(base, other, other_words, notes=(note,))
    f = finding("PF-RCPT-003", cfg)
    assert f.status is FAIL and "template conditional" not in f.note


def test_rcpt003_a_listener_with_its_own_list_does_not_inherit_the_conditional() -> None:
    own = svc("smtp", overrides={"smtpd_recipient_restrictions": RCPT})
    cfg = _with(config({"relay_domains": "example.com", "smtpd_recipient_restrictions": RCPT}, [own]), GUARD)
    f = finding("PF-RCPT-003", cfg, svc_target(own))
    assert f.status is FAIL and "template conditional" not in f.note


# --- PF-RCPT-004 and ldap: tables --------------------------------------------------------------

MAP = "/etc/postfix/ldap-mailboxes.cf"
SPEC = f"proxy:ldap:{MAP}"


def _cfg(resolved: str | None = None) -> PostfixConfig:
    table = LookupTable(
        spec=SPEC, type="ldap", name=MAP, used_by=("virtual_mailbox_maps",), resolved_path=resolved
    )
    return config({"virtual_mailbox_maps": SPEC, "virtual_mailbox_domains": "example.com"}, tables=[table])


def _check(sample: str, result: tuple[str, ...] | None, path: str = MAP, **kw: object) -> LdapMapCheck:
    addr = "@example.com" if sample == "catchall" else f"bsa-{sample}@example.com"
    return LdapMapCheck(
        target=f"ldap:{path}", map_path=path, sample=sample, address=addr, queried=True, result=result, **kw
    )  # type: ignore[arg-type]


def _rcpt004(cfg: PostfixConfig, *checks: LdapMapCheck) -> Finding:
    r = load_all()["PF-RCPT-004"]
    found = [f for f in evaluate([cfg, *checks], rules=[r]) if f.target == f"{TARGET} table {SPEC}"]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ((), INC),  # no directory stage in this run
        ((_check("random", None), _check("catchall", None)), PASS),
        ((_check("random", ("x@example.com",)),), FAIL),
        ((_check("random", None), _check("catchall", ("catchall@example.com",))), FAIL),
        ((_check("random", None, error="server did not answer"),), INC),
        ((_check("known", ("a@example.com",)),), INC),  # no random sample: not judged
        ((_check("random", ("x",), path="/elsewhere/other.cf"),), INC),  # another map
    ],
)
def test_rcpt004_ldap_tables_from_sample_lookups(checks: tuple[LdapMapCheck, ...], expected: Status) -> None:
    f = _rcpt004(_cfg(), *checks)
    assert f.status is expected, f.message
    if expected is FAIL:
        assert f.severity is Severity.HIGH and "do not exist" in f.message


def test_rcpt004_ldap_postmap_answer_wins_like_ldap_sync() -> None:
    # our evaluation erred, postmap -q answered cleanly: LDAP-SYNC-001 reads postmap; so do we
    c = _check("random", None, error="bind failed", postmap_result="x@example.com")
    assert _rcpt004(_cfg(), c).status is FAIL
    sync = [f for f in evaluate([c], rules=[load_all()["LDAP-SYNC-001"]]) if f.status is FAIL]
    assert sync, "the two rules must agree"


def test_rcpt004_ldap_matched_through_the_copied_map_file() -> None:
    copied = "/srv/audit/postfix/ldap-mailboxes.cf"
    f = _rcpt004(_cfg(resolved=copied), _check("random", None, path=copied))
    assert f.status is PASS and "not found" in f.message


def test_without_master_cf_listener_dependent_rules_do_not_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Only main.cf given: -o content_filter / receive_override_options / pipe services are unknown."""
    from auditor.collect.postfix import collect
    from auditor.judge import evaluate
    from auditor.model import Status

    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\nrelay_domains =\n")
    found = {(f.rule_id, f.status) for f in evaluate([collect(str(tmp_path), use_postconf=False)])}
    for rid in ("PF-FILTER-001", "PF-RCPT-008", "PF-PIPE-001"):
        assert (rid, Status.INCONCLUSIVE) in found, rid
        assert (rid, Status.PASS) not in found, rid
