"""Small hand-written messages for the analyser's unit tests (each shows one format or trap)."""

from __future__ import annotations

ORIGINAL_HEADERS = (
    "Return-Path: <bsa-tok123@sink.example>\r\n"
    "From: Probe <bsa-tok123@sink.example>\r\n"
    "To: nobody@victim.example\r\n"
    "Subject: probe bsa-tok123\r\n"
    "Message-ID: <bsa-tok123.1@sink.example>\r\n"
)


def dsn(
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <nobody@victim.example>: Recipient address rejected",
    third: str = "rfc822-headers",
    return_path: str = "<>",
    envid: str = "",
) -> bytes:
    """A Postfix-like RFC 3464 DSN; ``third`` is rfc822-headers, rfc822 (full) or none."""
    parts = [
        "--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.victim.example.\r\n",
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.victim.example\r\n"
        + (f"Original-Envelope-Id: {envid}\r\n" if envid else "")
        + "Arrival-Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n"
        "Final-Recipient: rfc822; nobody@victim.example\r\n"
        "Original-Recipient: rfc822;nobody@victim.example\r\n"
        f"Action: {action}\r\n"
        + (f"Status: {status}\r\n" if status else "")
        + "Remote-MTA: dns; mail.victim.example\r\n"
        + (f"Diagnostic-Code: {diagnostic}\r\n" if diagnostic else ""),
    ]
    if third == "rfc822-headers":
        parts.append("--B\r\nContent-Type: text/rfc822-headers\r\n\r\n" + ORIGINAL_HEADERS)
    elif third == "rfc822":
        parts.append(
            "--B\r\nContent-Type: message/rfc822\r\n\r\n" + ORIGINAL_HEADERS + "\r\nBuy cheap pills now!\r\n"
        )
    head = (
        f"Return-Path: {return_path}\r\n"
        "From: MAILER-DAEMON@mx.victim.example (Mail Delivery System)\r\n"
        "To: bsa-tok123@sink.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    )
    return (head + "".join(parts) + "--B--\r\n").encode()


QMAIL = (
    b"Return-Path: <>\r\n"
    b"From: MAILER-DAEMON@mx.victim.example\r\n"
    b"To: bsa-tok123@sink.example\r\n"
    b"Subject: failure notice\r\n\r\n"
    b"Hi. This is the qmail-send program at mx.victim.example.\r\n"
    b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
    b"<nobody@victim.example>:\r\n"
    b"Sorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
    b"--- Below this line is a copy of the message.\r\n\r\n"
    + ORIGINAL_HEADERS.encode()
    + b"\r\nspam body\r\n"
)

EXIM = (
    b"Return-path: <>\r\n"
    b"From: Mail Delivery System <Mailer-Daemon@mx.victim.example>\r\n"
    b"To: bsa-tok123@sink.example\r\n"
    b"Subject: Mail delivery failed: returning message to sender\r\n"
    b"X-Failed-Recipients: nobody@victim.example\r\n"
    b"Auto-Submitted: auto-replied\r\n\r\n"
    b"This message was created automatically by mail delivery software.\r\n\r\n"
    b"A message that you sent could not be delivered to one or more of its\r\n"
    b"recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
    b"  nobody@victim.example\r\n"
    b"    Unrouteable address\r\n\r\n"
    b"------ This is a copy of the message, including all the headers. ------\r\n\r\n"
    + ORIGINAL_HEADERS.encode()
    + b"\r\nspam body\r\n"
)

SENDMAIL_USER_UNKNOWN = (
    b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.victim.example>\r\n"
    b"To: bsa-tok123@sink.example\r\n"
    b"Subject: Returned mail: see transcript for details\r\n\r\n"
    b"The original message was received at Thu, 26 Nov 2026 10:00:00 GMT\r\n\r\n"
    b"   ----- The following addresses had permanent fatal errors -----\r\n"
    b"<nobody@victim.example>\r\n"
    b"    (reason: 550 User unknown)\r\n\r\n"
    b"   ----- Transcript of session follows -----\r\n"
    b"... while talking to mail.victim.example.:\r\n"
    b">>> RCPT To:<nobody@victim.example>\r\n"
    b"<<< 550 User unknown\r\n"
)

EXCHANGE_2003 = (
    b"From: System Administrator <postmaster@victim.example>\r\n"
    b"To: bsa-tok123@sink.example\r\n"
    b"Subject: Undeliverable: probe\r\n\r\n"
    b"Your message\r\n\r\n  To:      nobody@victim.example\r\n  Subject: probe\r\n\r\n"
    b"did not reach the following recipient(s):\r\n\r\n"
    b"nobody@victim.example on Thu, 26 Nov 2026 10:00:00 +0000\r\n"
    b"    The recipient name is not recognized\r\n"
)

AUTOREPLY = (
    b"Return-Path: <>\r\n"
    b"From: Alice <alice@victim.example>\r\n"
    b"To: bsa-tok123@sink.example\r\n"
    b"Subject: Automatic reply: probe\r\n"
    b"Auto-Submitted: auto-replied\r\n\r\n"
    b"I am out of the office until Monday.\r\n"
)

SUPPRESS_ONLY = (
    b"From: Bob <bob@example.org>\r\n"
    b"To: alice@victim.example\r\n"
    b"Subject: meeting notes\r\n"
    b"X-Auto-Response-Suppress: All\r\n\r\n"
    b"Here are the notes from today.\r\n"
)

ARF = (
    b"From: abuse@isp.example\r\n"
    b"To: abuse@victim.example\r\n"
    b"Subject: abuse report\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
    b"--F\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
    b"--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n"
    b"--F\r\nContent-Type: text/rfc822-headers\r\n\r\n" + ORIGINAL_HEADERS.encode() + b"--F--\r\n"
)

PLAIN = (
    b"From: Carol <carol@example.org>\r\n"
    b"To: dave@example.net\r\n"
    b"Subject: lunch?\r\n\r\n"
    b"Shall we meet at noon? The delivery of the new chairs failed, by the way.\r\n"
)
