"""Progress on stderr: counts, percentage and ETA; a live line on a terminal, sparse plain lines
elsewhere, nothing when not wanted (machine formats, no terminal, unless --progress)."""

from __future__ import annotations

import io

from auditor.progress import Progress, eta_text, wanted


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counts_percentage_and_eta() -> None:
    clock = _Clock()
    p = Progress(io.StringIO(), clock=clock)
    t = p.task("probe", total=40)
    assert t.line() == "probe 0/40 (0%)"  # no ETA before the first unit
    clock.now += 30
    t.advance(10, "mx2.example.com")
    assert t.line("mx2.example.com") == "probe 10/40 (25%) ETA 1:30 · mx2.example.com"
    assert eta_text(3725) == "1:02:05"


def test_plain_lines_are_sparse() -> None:
    clock = _Clock()
    out = io.StringIO()
    p = Progress(out, clock=clock, interval=60)
    t = p.task("probe", total=100)
    for _ in range(100):
        clock.now += 0.1
        t.advance()
    t.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[audit] probe 1/100")
    assert 10 <= len(lines) <= 12  # the first, one per tenth, the last
    assert lines[-1] == "[audit] probe 100/100 (100%)"
    assert "\r" not in out.getvalue()


def test_live_line_is_rewritten_in_place_and_fits() -> None:
    out = _Tty()
    p = Progress(out, width=40)
    t = p.task("probe", total=3)
    t.advance(1, "a very long host name that does not fit into forty columns at all")
    t.advance(1, "b")
    p.done()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert all(len(chunk) <= 40 for chunk in text.strip("\n").split("\r"))


def test_disabled_progress_writes_nothing() -> None:
    out = _Tty()
    p = Progress(out, enabled=False)
    p("stage …")
    p.task("probe", 5).advance()
    p.done()
    assert out.getvalue() == ""


def test_when_progress_is_wanted() -> None:
    tty, pipe = _Tty(), io.StringIO()
    assert wanted(requested=None, machine=False, stream=tty)
    assert not wanted(requested=None, machine=True, stream=tty)  # machine formats: never by default
    assert not wanted(requested=None, machine=False, stream=pipe)  # not a terminal
    assert not wanted(requested=None, machine=False, quiet=True, stream=tty)
    assert wanted(requested=True, machine=True, stream=pipe)  # --progress asks for it anyway
    assert not wanted(requested=False, machine=False, stream=tty)
