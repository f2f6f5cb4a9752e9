"""Status codes from diagnostics: explicit codes, reply codes, well-known texts."""

from __future__ import annotations

import pytest

from auditor.bounces import status


@pytest.mark.parametrize(
    ("diagnostic", "permanent", "expected"),
    [
        ("smtp; 550 5.1.1 <a@b.example>... User Unknown", None, "5.1.1"),
        ("552 Error: disk quota exceeded", None, "5.2.2"),
        ("550 Unknown user a@b.example", None, "5.1.1"),
        ("Mailbox full", False, "4.2.2"),
        ("Host or domain name not found", True, "5.1.2"),
        ("451 4.7.1 Greylisted, try again", None, "4.7.1"),
        ("connected to 192.0.2.10 said 554 relay access denied", None, "5.7.1"),
        ("something odd happened", True, "5.0.0"),
        ("something odd happened", None, ""),
        ("version 1.2.3.4 said 550 no such user", None, "5.1.1"),
    ],
)
def test_derive(diagnostic: str, permanent: bool | None, expected: str) -> None:
    assert status.derive(diagnostic, permanent=permanent) == expected


def test_given_status_wins_unless_generic() -> None:
    assert status.derive("550 5.1.1 user unknown", given="5.7.1") == "5.7.1"
    assert status.derive("550 5.1.1 user unknown", given="5.0.0") == "5.1.1"
    assert status.derive("user unknown", given="5.0.0") == "5.0.0"


def test_enhanced_code_ignores_ip_addresses() -> None:
    assert status.enhanced_code("host 5.1.1.1 said hello") == ""
    assert status.enhanced_code("said 5.1.1 bad") == "5.1.1"
