"""Caseless patterns (auditor.bounces.caseless) find exactly what the re.IGNORECASE pattern finds."""

from __future__ import annotations

import importlib
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.bounces import analyse, detectors, status
from auditor.bounces.caseless import Caseless, fast, lowered
from auditor.bounces.detectors import base, generic, rfc3464


def _all() -> list[Caseless]:
    found = [
        analyse.COPY_MARKER,
        analyse._REPORTER,
        base.DELAY,
        generic.BOUNCE_SUBJECT,
        generic.BOUNCE_BODY,
        generic.STRONG_BODY,
        rfc3464._INLINE,
    ]
    found += [p for p, _ in status._TEXT_MAP]
    for name in detectors.ORDER:
        layout = getattr(importlib.import_module(f"auditor.bounces.detectors.{name}"), "LAYOUT", None)
        for p in (layout.marker, layout.start, layout.end, layout.delay) if layout else ():
            if p is not None and isinstance(c := fast(p), Caseless):
                found.append(c)
    return found


PATTERNS = _all()
# Text made of the patterns' own words in random case, so that matches actually happen.
WORDS = sorted({w for p in PATTERNS for w in re.findall(r"[A-Za-z']{2,}", p.pattern.pattern)})


@st.composite
def texts(draw: st.DrawFn) -> str:
    pieces = draw(
        st.lists(
            st.one_of(
                st.sampled_from(WORDS).map(lambda w: w.upper() if len(w) % 3 == 0 else w.capitalize()),
                st.sampled_from([" ", "\n", " \t", "-", "--- ", ":", ".", "(", ")", "\r\n", "@", "5.1.1 "]),
                st.text("abcXYZ \n-:\u00e9\u041a\u212a", max_size=5),
            ),
            max_size=40,
        )
    )
    return "".join(pieces)


def _span(m: re.Match[str] | None) -> tuple[int, int, tuple[str | None, ...]] | None:
    return None if m is None else (m.start(), m.end(), m.groups())


@settings(max_examples=300, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts(), index=st.integers(min_value=0))
def test_same_match_as_ignorecase(text: str, index: int) -> None:
    c = PATTERNS[index % len(PATTERNS)]
    assert _span(c.search(text)) == _span(c.pattern.search(text))


def test_all_corpus_patterns_have_a_fast_path() -> None:
    assert len(PATTERNS) > 40
    slow = [c.pattern.pattern[:40] for c in PATTERNS if c._fast is None]
    assert slow == []


def test_matches_keep_the_original_case() -> None:
    m = analyse._REPORTER.search("Reporting: This is the mail system at host MX.Example.ORG.\n")
    assert m is not None and m.group(1) == "MX.Example.ORG."
    assert analyse.COPY_MARKER.search("report\n  ------ This is a copy of THE message\n") is not None
    # Not at the start of a line: no copy marker.
    assert analyse.COPY_MARKER.search("report ------ This is a copy of the message") is None


def test_unsafe_patterns_use_the_original_only() -> None:
    for pattern in (r"\x41b", r"[A-z]", "[a-\u017f]", "\u212a", r"\N{LATIN SMALL LETTER A}"):
        assert lowered(pattern) is None, pattern
    assert lowered(r"[A-Z]\S+\bFoo") == r"[a-z]\S+\bfoo"
    kelvin = Caseless("\u212a")  # the Kelvin sign matches "k" under IGNORECASE
    assert kelvin.search("k") is not None
    assert Caseless("caf\u00e9").search("CAF\u00c9") is not None  # non-ASCII text: the original pattern
