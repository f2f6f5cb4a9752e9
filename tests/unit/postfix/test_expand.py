"""$name expansion: every syntax form of mac_expand(3), errors, loops, and speed."""

from __future__ import annotations

import time

import pytest

from auditor.collect.postfix.expand import Expander, ExpansionError, compat_level, split_macros

VARS = {
    "a": "A",
    "b": "$a-$a",
    "empty": "",
    "undef_ref": "$nothing_here",
    "lvl": "3.6",
    "cycle1": "$cycle2",
    "cycle2": "x $cycle1",
    "self": "$self",
}


def ex(text: str, extra: dict[str, str] | None = None) -> str:
    table = {**VARS, **(extra or {})}
    return Expander(table.get).expand(text)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("plain", "plain"),
        ("$a", "A"),
        ("${a}", "A"),
        ("$(a)", "A"),
        ("x$a.y", "xA.y"),
        ("$b", "A-A"),  # recursive
        ("$$a", "$a"),  # $$ is a literal $
        ("$$$a", "$A"),
        ("[$unknown]", "[]"),  # undefined expands to nothing, like postconf
        ("${a?yes}", "yes"),
        ("${empty?yes}", ""),
        ("${unknown?yes}", ""),
        ("${a:no}", ""),
        ("${empty:no}", "no"),
        ("${unknown:no}", "no"),
        ("${a?{ yes }}", " yes "),
        ("${a?{T}:{F}}", "T"),
        ("${empty?{T}:{F}}", "F"),
        ("${empty?{T}:F}", "F"),
        ("${a?$b}", "A-A"),
        ("${ a }", "A"),
        ("${a ? yes}", " yes"),
        ("${undef_ref?raw-is-tested}", "raw-is-tested"),  # the raw value "$nothing_here" is non-empty
        ("${{$a} == {A} ? {eq} : {ne}}", "eq"),
        ("${{$a} != {A} ? {eq} : {ne}}", "ne"),
        ("${{$a}=={A}?{eq}:{ne}}", "eq"),
        ("${{10} < {9} ? {lt} : {ge}}", "ge"),  # numeric when both are digits
        ("${{b} < {a} ? {lt} : {ge}}", "ge"),  # else byte order
        ("${{x} == {x}}", "true"),
        ("${{x} == {y}}", ""),
        ("${{$lvl} <level {2} ? {old} : {new}}", "new"),
        ("${{3.6} <level {3.10} ? {lt} : {ge}}", "lt"),
        ("${{2} >=level {2.0} ? {ge}}", "ge"),
        ("${{$lvl} <level {3.6} ? {lt} : {ge}}", "ge"),
        ("${a?{x}}${a:{y}}$a", "xA"),
    ],
)
def test_expansion_forms(text: str, want: str) -> None:
    assert ex(text) == want


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pre ${x post", "truncated"),
        ("pre $ post", "empty macro name"),
        ("end $", "empty macro name"),
        ("${{a} =~ {b} ? {x}}", "operator"),
        ("${{a} == b}", "expected"),
        ("${{a} ==level {b}}", "compatibility level"),
        ("${{a} <bogus {b}}", "suffix"),
        ("${a?{x}:{y}z}", "unexpected input"),
        ("${a?{x} junk}", '":" expected'),
        ("${{a} == {b} junk}", '"?" or ":"'),
        ("${a b}", "syntax error"),
        ("${{a} == {b}", "truncated"),
        ("${a?{unbalanced}", "truncated"),
    ],
)
def test_syntax_errors(text: str, needle: str) -> None:
    with pytest.raises(ExpansionError, match=needle):
        ex(text)


def test_reference_loop_is_an_error_not_a_hang() -> None:
    with pytest.raises(ExpansionError, match="recursive parameter reference: cycle1 -> cycle2 -> cycle1"):
        ex("$cycle1")
    with pytest.raises(ExpansionError, match="self -> self"):
        ex("$self")


def test_deep_but_finite_nesting_is_bounded() -> None:
    table = {f"v{i}": f"$v{i + 1}" for i in range(500)}
    table["v500"] = "end"
    with pytest.raises(ExpansionError, match="nesting"):
        Expander(table.get).expand("$v0")
    short = {f"v{i}": f"$v{i + 1}" for i in range(20)}
    short["v20"] = "end"
    assert Expander(short.get).expand("$v0") == "end"


def test_used_and_undefined_are_recorded() -> None:
    e = Expander(VARS.get)
    assert e.expand("$b $ghost ${empty?x}") == "A-A  "
    assert {"a", "b", "ghost", "empty"} <= e.used
    assert e.undefined == {"ghost"}


def test_unbranched_errors_are_not_seen_like_postfix() -> None:
    # Postfix only parses the branch it takes.
    assert ex("${empty?{$ bad}:{ok}}") == "ok"


def test_split_macros() -> None:
    want = [(False, "a"), (True, "b"), (True, "c"), (True, "d"), (False, "$e")]
    assert split_macros("a$b${c}$(d)$$e") == want


@pytest.mark.parametrize(("text", "want"), [("0", (0, 0, 0)), ("3.6", (3, 6, 0)), ("3.10.2", (3, 10, 2))])
def test_compat_level(text: str, want: tuple[int, int, int]) -> None:
    assert compat_level(text) == want


@pytest.mark.parametrize("text", ["", "abc", "3.", "3.6.1.1", "-1"])
def test_bad_compat_level(text: str) -> None:
    with pytest.raises(ExpansionError):
        compat_level(text)


def test_ten_megabyte_value_is_linear() -> None:
    chunk = "w" * 80 + " $a ${a?{x}} "
    big = chunk * (10_000_000 // len(chunk))
    t0 = time.perf_counter()
    out = ex(big)
    assert time.perf_counter() - t0 < 10
    assert out.startswith("w" * 80 + " A x w")
    assert len(out) == len(big) // len(chunk) * (80 + 5)
    t0 = time.perf_counter()
    with pytest.raises(ExpansionError, match="truncated"):
        ex("${" + "x" * 10_000_000)
    assert time.perf_counter() - t0 < 5
