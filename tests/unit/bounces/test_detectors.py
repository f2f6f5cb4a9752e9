"""One hand-written message per vendor detector: the right family, recipient and kind."""

from __future__ import annotations

import json

import pytest

from auditor.bounces import analyse_bytes
from auditor.bounces.detectors import ORDER

_H = b"From: MAILER-DAEMON@mx.victim.example\r\nTo: bsa-tok@sink.example\r\nSubject: %s\r\n\r\n"

SES = json.dumps(
    {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "reportingMTA": "dsn; a1.smtp-out.amazonses.com",
            "bouncedRecipients": [
                {
                    "emailAddress": "nobody@victim.example",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
        },
    }
).encode()

CASES = {
    "yahoo": _H
    % b"Failure Notice"
    + b"Sorry, we were unable to deliver your message to the following address.\r\n\r\n"
    b"<nobody@victim.example>:\r\nRemote host said: 550 5.1.1 <nobody@victim.example>... User Unknown\r\n",
    "dragonfly": _H
    % b"Mail delivery failed"
    + b"This is the DragonFly Mail Agent v0.13 at mx.victim.example.\r\n\r\n"
    b"There was an error delivering your mail to <nobody@victim.example>.\r\n\r\n"
    b"mail.victim.example [192.0.2.1] did not like our RCPT TO:\r\n550 5.1.1 User unknown\r\n",
    "opensmtpd": _H
    % b"Delivery status notification: error"
    + b"    Hi!\r\n\r\n    This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.\r\n\r\n"
    b"    An error has occurred while attempting to deliver a message for\r\n"
    b"    the following list of recipients:\r\n\r\nnobody@victim.example: 550 5.1.1 no such user\r\n",
    "groupwise": _H
    % b"Message status - undeliverable"
    + b"The message that you sent was undeliverable to the following:\r\n\r\n"
    b"\tnobody@victim.example (user not found)\r\n",
    "notes": _H
    % b"Undeliverable message"
    + b"------- Failure Reasons  --------\r\n\r\nUser not listed in public Name & Address Book\r\n"
    b"nobody@victim.example\r\n\r\n------- Returned Message --------\r\nFrom: a@b.example\r\n",
    "domino": _H
    % b"DELIVERY FAILURE: User nobody (nobody@victim.example) not listed in Domino Directory"
    + b"Your message\r\n\r\n  Subject: probe\r\n\r\n"
    b"was not delivered to:\r\n\r\n  nobody@victim.example\r\n\r\n"
    b"because:\r\n\r\n  User nobody (nobody@victim.example) not listed in Domino Directory\r\n",
    "gmail": _H
    % b"Delivery Status Notification (Failure)"
    + b"Delivery to the following recipient failed permanently:\r\n\r\n     nobody@victim.example\r\n\r\n"
    b"Technical details of permanent failure:\r\n550 5.1.1 The email account does not exist.\r\n",
    "aol": b"From: Mail Delivery Subsystem <MAILER-DAEMON@aol.com>\r\nSubject: Mail Delivery Problem\r\n\r\n"
    b"Your mail to the following recipients could not be delivered because they are not accepting mail:\r\n"
    b"\tnobody\r\n",
    "hotmail": _H
    % b"Delivery Status Notification (Failure)"
    + b"This is an automatically generated Delivery Status Notification.\r\n\r\n"
    b"Delivery to the following recipients failed.\r\n\r\n       nobody@victim.example\r\n",
    "amazonses": b"From: no-reply@sns.amazonaws.com\r\nSubject: AWS Notification Message\r\n\r\n" + SES,
}
EXPECTED_ADDRESS = {"aol": "nobody@aol.com"}


@pytest.mark.parametrize("family", sorted(CASES))
def test_detector(family: str) -> None:
    assert family in ORDER
    a = analyse_bytes(CASES[family])
    assert a.family == family
    assert a.kind == "failure"
    assert [r.address for r in a.recipients] == [EXPECTED_ADDRESS.get(family, "nobody@victim.example")]
    assert a.recipients[0].status.startswith("5.")


def test_ses_delivery_and_transient() -> None:
    doc = json.loads(SES)
    doc["bounce"]["bounceType"] = "Transient"
    doc["bounce"]["bouncedRecipients"][0]["status"] = "4.4.7"
    raw = (
        b"From: no-reply@sns.amazonaws.com\r\nSubject: AWS Notification Message\r\n\r\n"
        + json.dumps(doc).encode()
    )
    a = analyse_bytes(raw)
    assert (a.kind, a.recipients[0].status) == ("delay", "4.4.7")
    ok = {"notificationType": "Delivery", "delivery": {"recipients": ["someone@victim.example"]}}
    raw = b"From: no-reply@sns.amazonaws.com\r\nSubject: AWS Notification\r\n\r\n" + json.dumps(ok).encode()
    assert analyse_bytes(raw).kind == "success"
    complaint = {"notificationType": "Complaint", "complaint": {"complainedRecipients": []}}
    raw = b"From: no-reply@sns.amazonaws.com\r\nSubject: AWS\r\n\r\n" + json.dumps(complaint).encode()
    a = analyse_bytes(raw)
    assert (a.kind, a.family, a.recipients) == ("feedback", "amazonses", ())


def test_delay_warning_in_text_layout() -> None:
    raw = (
        _H
        % b"Warning: message 1abc-00 delayed 24 hours"
        + b"This message was created automatically by mail delivery software.\r\n"
        b"A message that you sent has not yet been delivered to one or more of its\r\n"
        b"recipients after more than 24 hours on the queue on mx.victim.example.\r\n\r\n"
        b"The address to which the message has not yet been delivered is:\r\n\r\n"
        b"  nobody@victim.example\r\n    Delay reason: 451 4.7.1 greylisted\r\n"
    )
    a = analyse_bytes(raw)
    assert a.family == "exim"
    assert a.kind == "delay"
    assert a.recipients[0].status == "4.7.1"


def _dsn(final_recipient: str) -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.victim.example\r\nTo: bsa-tok@sink.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.victim.example\r\n\r\n"
        b"Final-Recipient: " + final_recipient.encode() + b"\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--B--\r\n"
    )


@pytest.mark.parametrize(
    "field",
    [
        "rfc822; nobody@victim.example",
        "rfc822;nobody@victim.example",
        "RFC822; <nobody@victim.example>",
        "smtp; nobody@victim.example",
        "smtp=nobody@victim.example",  # '=' is legal in a local part: the type must still go
        "SMTP:nobody@victim.example",  # Exchange's proxy-address form
        "nobody@victim.example",  # no type at all
    ],
)
def test_address_type_prefixes_are_stripped_in_any_form(field: str) -> None:
    a = analyse_bytes(_dsn(field))
    assert a.kind == "failure"
    assert [r.address for r in a.recipients] == ["nobody@victim.example"], field
