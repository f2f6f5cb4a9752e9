"""The analyser on small hand-written messages: one format, kind or trap per test."""

from __future__ import annotations

import pytest

from auditor.bounces import analyse_bytes
from tests.unit.bounces import messages as m


def test_dsn_failure_with_headers_only() -> None:
    a = analyse_bytes(m.dsn(), "x.eml")
    assert a.kind == "failure"
    assert a.family == "rfc3464"
    assert [(r.address, r.status, r.action) for r in a.recipients] == [
        ("nobody@victim.example", "5.1.1", "failed")
    ]
    assert a.reporting_mta == "mx.victim.example"
    assert a.returned == "headers"
    assert a.original.message_id == "bsa-tok123.1@sink.example"
    assert a.original.envelope_from == "bsa-tok123@sink.example"
    assert a.return_path == ""
    assert a.path == "x.eml"


def test_dsn_full_original_is_full() -> None:
    assert analyse_bytes(m.dsn(third="rfc822")).returned == "full"
    assert analyse_bytes(m.dsn(third="none")).returned == "none"


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [
        ("delayed", "4.4.1", "delay"),
        ("delivered", "2.0.0", "success"),
        ("relayed", "2.0.0", "success"),
        ("expanded", "2.0.0", "success"),
        ("failed", "5.2.2", "failure"),
    ],
)
def test_dsn_kind_from_action(action: str, status: str, kind: str) -> None:
    a = analyse_bytes(m.dsn(action=action, status=status, diagnostic=""))
    assert a.kind == kind
    assert a.recipients[0].status == status


def test_status_derived_from_diagnostic_when_missing() -> None:
    a = analyse_bytes(m.dsn(status="", diagnostic="smtp; 550 5.2.2 mailbox full"))
    assert a.recipients[0].status == "5.2.2"
    b = analyse_bytes(m.dsn(status="", diagnostic="smtp; 550 Sorry, user unknown"))
    assert b.recipients[0].status == "5.1.1"


def test_generic_status_refined_by_diagnostic_code() -> None:
    a = analyse_bytes(m.dsn(status="5.0.0", diagnostic="smtp; 550 5.7.1 rejected by policy"))
    assert a.recipients[0].status == "5.7.1"


@pytest.mark.parametrize(
    ("raw", "family", "returned"),
    [
        (m.QMAIL, "qmail", "full"),
        (m.EXIM, "exim", "full"),
        (m.SENDMAIL_USER_UNKNOWN, "sendmail", "none"),
        (m.EXCHANGE_2003, "exchange", "none"),
    ],
)
def test_vendor_text_bounces(raw: bytes, family: str, returned: str) -> None:
    a = analyse_bytes(raw)
    assert a.kind == "failure"
    assert a.family == family
    assert [r.address for r in a.recipients] == ["nobody@victim.example"]
    assert a.recipients[0].status.startswith("5.")
    assert a.returned == returned


def test_sendmail_user_unknown_maps_to_5_1_1() -> None:
    assert analyse_bytes(m.SENDMAIL_USER_UNKNOWN).recipients[0].status == "5.1.1"


def test_qmail_reporting_mta_and_original() -> None:
    a = analyse_bytes(m.QMAIL)
    assert a.reporting_mta == "mx.victim.example"
    assert a.original.subject == "probe bsa-tok123"


def test_autoreply_and_not_autoreply() -> None:
    assert analyse_bytes(m.AUTOREPLY).kind == "autoreply"
    # X-Auto-Response-Suppress asks others not to reply; it does not make a message an auto-reply.
    assert analyse_bytes(m.SUPPRESS_ONLY).kind == "not-bounce"


def test_postfix_bounce_with_auto_submitted_is_not_autoreply() -> None:
    assert analyse_bytes(m.dsn()).kind == "failure"
    assert analyse_bytes(m.EXIM).kind == "failure"


def test_feedback_report() -> None:
    a = analyse_bytes(m.ARF)
    assert a.kind == "feedback"
    assert a.recipients == ()


def test_ordinary_mail_is_not_bounce() -> None:
    a = analyse_bytes(m.PLAIN)
    assert a.kind == "not-bounce"
    assert a.recipients == ()
    assert a.returned == "none"


def test_json_record_shape() -> None:
    rec = analyse_bytes(m.dsn(), "p").to_json()
    assert set(rec) >= {"path", "kind", "recipients", "reporting_mta", "returned", "original"}
    assert set(rec["original"]) == {"message_id", "from", "to", "subject", "envelope_from"}
    assert set(rec["recipients"][0]) == {"address", "status", "action", "diagnostic"}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"Content-Type: multipart/report; boundary=\r\n\r\n--\r\n",
        b"Subject: =?x-unknown?B?////?=\r\nContent-Type: text/plain; charset=x-nope\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64",
        b"From: MAILER-DAEMON@x\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: ;\r\n",
    ],
)
def test_broken_input_never_raises(raw: bytes) -> None:
    a = analyse_bytes(raw)
    assert a.kind in ("failure", "delay", "success", "autoreply", "feedback", "not-bounce")


def test_charsets_and_encodings_are_decoded() -> None:
    body = "Ihre Nachricht konnte nicht zugestellt werden an: müller@victim.example\r\n".encode("latin-1")
    raw = (
        b"From: MAILER-DAEMON@mx.victim.example\r\nSubject: =?iso-8859-1?q?Unzustellbar?=\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"Delivery to the following recipient failed permanently:\r\n\r\n   nobody@victim.example\r\n" + body
    )
    a = analyse_bytes(raw)
    assert a.subject == "Unzustellbar"
    assert a.kind == "failure"
    assert "nobody@victim.example" in [r.address for r in a.recipients]


def test_header_flood_is_cut() -> None:
    raw = b"From: MAILER-DAEMON@x.example\r\n" + b"X-A: b\r\n" * 200_000 + b"\r\nhello\r\n"
    a = analyse_bytes(raw)
    assert any("header section" in n for n in a.notes)
    assert a.header_from == "mailer-daemon@x.example"


def test_oversized_message_is_truncated_with_a_note() -> None:
    from auditor.bounces import parse

    big = m.dsn() + b"x" * (parse.MAX_PARSE + 10)
    a = analyse_bytes(big)
    assert a.size == len(big)
    assert any("only the first" in n for n in a.notes)
    assert a.kind == "failure"
