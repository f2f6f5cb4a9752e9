"""Arbitrary parameter text never makes a PF rule crash: the worst it gets is inconclusive."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.judge import evaluate
from auditor.model import Status
from auditor.rules import load_all
from tests.unit.rules_postfix.builder import config, svc

PARAMS = (
    "mydestination",
    "local_recipient_maps",
    "relay_domains",
    "relay_recipient_maps",
    "smtpd_recipient_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_reject_unlisted_recipient",
    "mynetworks",
    "mynetworks_style",
    "compatibility_level",
    "content_filter",
    "bounce_size_limit",
    "receive_override_options",
    "virtual_transport",
    "unverified_recipient_defer_code",
    "address_verify_sender",
)
# Text with the characters that matter to the parsers: separators, braces, template syntax.
TEXT = st.text(alphabet=st.sampled_from(list("ab:/,{}[]%$#!@. \t-_0123456789lmtpermitrejec")), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    main=st.dictionaries(st.sampled_from(PARAMS), TEXT, max_size=8),
    ov=st.dictionaries(st.sampled_from(PARAMS), TEXT, max_size=4),
)
def test_rules_survive_arbitrary_values(main: dict[str, str], ov: dict[str, str]) -> None:
    cfg = config(
        main,
        [svc("smtp", overrides=ov), svc("127.0.0.1:10025", overrides=ov), svc("pickup", "unix", "pickup")],
    )
    rules = [r for r in load_all().values() if r.family == "postfix"]
    findings = evaluate([cfg], rules=rules)
    assert not [f for f in findings if f.target == "(rule error)"], [f.message for f in findings]
    assert {f.rule_id for f in findings} == {r.id for r in rules}  # every rule says something
    keys = [f.key for f in findings]
    assert len(keys) == len(set(keys))
    assert all(isinstance(f.status, Status) for f in findings)
