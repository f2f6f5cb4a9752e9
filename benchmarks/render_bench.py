"""Time every renderer and suppression matching on a large synthetic report.

Usage (repository root): ``PYTHONPATH=. python3 benchmarks/render_bench.py 9000``. The golden report of
tests/unit/render/fixtures.py is replicated with distinct targets to about N findings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Callable

from auditor.model import Report
from auditor.render import csv as csv_render
from auditor.render import html, junit, markdown, sarif, text
from auditor.serialize import report_to_json
from auditor.suppress import apply_suppressions, baseline_text, parse_suppressions
from tests.unit.render.fixtures import golden_report, judged


def main(n: int) -> None:
    g = golden_report()
    copies = max(1, n // len(g.findings))
    findings = tuple(
        dataclasses.replace(f, target=f"{f.target}#{i}") for i in range(copies) for f in g.findings
    )
    print(f"findings={len(findings)}")
    t = time.perf_counter()
    report = judged(findings, g.run, observations=g.observations)
    print(f"{'judge':9s} {(time.perf_counter() - t) * 1000:8.0f} ms")
    renderers: list[tuple[str, Callable[[Report], str]]] = [
        ("json", report_to_json),
        ("sarif", lambda r: sarif.render_with(r)),
        ("junit", junit.render),
        ("csv", csv_render.render),
        ("markdown", markdown.render),
        ("html", html.render),
        ("text", text.render),
    ]
    for name, fn in renderers:
        t = time.perf_counter()
        out = fn(report)
        ms = (time.perf_counter() - t) * 1000
        print(f"{name:9s} {ms:8.0f} ms {len(out.encode()) / 1e6:6.2f} MB")
    today = dt.date(2026, 11, 26)
    sups = parse_suppressions(baseline_text(findings, today))
    t = time.perf_counter()
    apply_suppressions(findings, sups, today)
    ms = (time.perf_counter() - t) * 1000
    print(f"apply {len(sups)} suppressions to {len(findings)} findings: {ms:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 900)
