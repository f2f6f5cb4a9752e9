"""Fuzz the SMTP reply reader: any bytes a server sends end as a Reply or a ProbeError, nothing else.

No network: the bytes go straight into the client's stream reader. Bounded: 300 examples per
property, 1 s deadline each, no example database written.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.collect.smtp.client import ProbeError, SmtpClient
from auditor.observations.smtp import Reason, Reply
from auditor.rules.smtp_verdicts import Why, setup_refusal

FUZZ = settings(
    max_examples=300,
    deadline=1000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_LINES, MAX_LEN = 20, 256

# Lines that look like SMTP replies, so the fuzzer reaches the multi-line and code-mismatch paths.
_line = st.one_of(
    st.builds(
        lambda code, sep, text: f"{code}{sep}{text}".encode(),
        st.sampled_from(["220", "250", "354", "421", "450", "550", "199", "600", "25", "2500"]),
        st.sampled_from(["-", " ", "", "\t"]),
        st.text(max_size=40),
    ),
    st.binary(max_size=60),
)
_stream = st.one_of(
    st.lists(_line, max_size=30).map(lambda ls: b"".join(x + b"\r\n" for x in ls)),
    st.binary(max_size=2000),
    st.lists(_line, max_size=30).map(lambda ls: b"\n".join(ls)),
)


def _read(data: bytes, eof: bool) -> Reply | ProbeError:
    async def go() -> Reply | ProbeError:
        client = SmtpClient(timeout=0.2, max_lines=MAX_LINES, max_line_length=MAX_LEN)
        reader = asyncio.StreamReader(limit=MAX_LEN)
        reader.feed_data(data)
        if eof:
            reader.feed_eof()
        client._reader = reader  # the reader a connection would have made
        try:
            return await client.read_reply("fuzz")
        except ProbeError as exc:
            return exc

    return asyncio.run(go())


@FUZZ
@given(data=_stream, eof=st.booleans())
def test_reply_reader_returns_a_reply_or_a_probe_error(data: bytes, eof: bool) -> None:
    got = _read(data, eof)
    if isinstance(got, ProbeError):
        assert isinstance(got.reason, Reason)
        return
    assert 200 <= got.code <= 599
    assert 1 <= len(got.lines) <= MAX_LINES
    # A reply is complete only at a line "NNN " (or "NNN"): the data must hold one with its code.
    assert f"{got.code}".encode() in data


@FUZZ
@given(code=st.integers(min_value=200, max_value=599), text=st.text(max_size=300))
def test_setup_refusal_reads_any_text(code: int, text: str) -> None:
    why = setup_refusal(Reply(code, (text,)))
    assert why is None or isinstance(why, Why)
    if code < 400:
        assert why is None  # only refusals are classified


def test_known_setup_refusals_are_named() -> None:
    cases = {
        "450 4.1.8 <p@x.invalid>: Sender address rejected: Domain not found": Why.SENDER,
        "550 5.7.23 SPF validation failed": Why.SENDER,
        "554 5.7.1 Service unavailable; Client host [198.18.0.2] blocked using dnsbl.lab.test": Why.DNSBL,
        "450 4.7.1 <probe>: Helo command rejected: Host not found": Why.HELO,
        "421 4.7.0 mx Error: too many connections from 198.18.0.2": Why.RATE,
        "450 4.7.1 Error: too much mail from 198.18.0.2": Why.RATE,
        "450 4.3.2 Service currently unavailable": Why.POSTSCREEN,
        "450 4.7.25 Client host rejected: cannot find your hostname, [198.18.0.2]": Why.CLIENT,
    }
    for line, why in cases.items():
        code, _, text = line.partition(" ")
        assert setup_refusal(Reply(int(code), (text,))) is why, line
    for line in (
        "550 5.1.1 <x@example.test>: Recipient address rejected: User unknown in local recipient table",
        "450 4.7.1 <x@example.test>: Recipient address rejected: Greylisted, see http://postgrey",
        "554 5.7.1 <x@relay.test>: Relay access denied",
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    ):
        code, _, text = line.partition(" ")
        assert setup_refusal(Reply(int(code), (text,))) is None, line
