"""HTML: one self-contained file a manager can read in a minute and an admin can act on.

A table of contents, the verdict, then one row per domain (worst status, failures, inconclusive —
a hosting provider's view of hundreds of domains); evidence and transcripts are collapsed
(``<details>``); on a phone the domain and compliance tables become one labelled card per row.

Inline CSS, charts as inline SVG, no scripts, no external resources (fonts, CDNs, images), so the
file works offline, in a mail attachment and on paper (``@media print``). Jinja2 autoescaping is on:
every string from the report (SMTP replies, file contents) is data, never markup, and its control
characters are written as visible escapes.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import jinja2

from auditor import resources
from auditor.model import Report, Severity, Status
from auditor.render._common import visible
from auditor.render._options import RenderOptions
from auditor.render._view import STATUS_HEADINGS, STATUS_ORDER, build_view
from auditor.schema.codec import SCHEMA_ID

FORMAT = "html"

TEMPLATES = resources.path("auditor.render.templates")
SECTION_HEADINGS = (
    "Summary",
    "Domains",
    "Remediation plan",
    "Compliance",
    "Findings",
    "Observations",
    "Run metadata",
)
SECTION_ANCHORS = tuple(h.lower().replace(" ", "-") for h in SECTION_HEADINGS)


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    css: str
    width: float  # in SVG user units


_BAR_MAX = 300.0


def _bars(counts: dict[str, int], css: dict[str, str]) -> list[Bar]:
    top = max(counts.values(), default=0) or 1
    return [Bar(k, n, css[k], round(_BAR_MAX * n / top, 1)) for k, n in counts.items()]


_TILE_LABELS = {"not-applicable": "n/a"}


def human_time(stamp: str) -> str:
    """'2026-11-26T09:00:00+00:00' → '26 Nov 2026, 09:00 UTC' (unparseable stamps are shown as is)."""
    try:
        t = _dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if t.tzinfo is not None:
        t = t.astimezone(_dt.UTC)
    return t.strftime("%d %b %Y, %H:%M UTC" if t.tzinfo else "%d %b %Y, %H:%M")


def duration(started: str, finished: str) -> str:
    try:
        secs = (_dt.datetime.fromisoformat(finished) - _dt.datetime.fromisoformat(started)).total_seconds()
    except (ValueError, TypeError):  # TypeError: one stamp with a zone, one without
        return ""
    if secs < 0:
        return ""
    minutes, seconds = divmod(int(secs), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # the template is .j2, so select_autoescape would not pick it up
        undefined=jinja2.StrictUndefined,  # a typo in the template is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["human_time"] = human_time
    env.finalize = _finalize
    return env


def _finalize(value: object) -> object:
    """Every ``{{ value }}`` passes here before autoescaping: report strings (and objects printed
    as strings, such as locations) lose their control characters."""
    if value is None or isinstance(value, (int, float)):
        return value
    return visible(value if isinstance(value, str) else str(value))


def render(report: Report, options: RenderOptions | None = None) -> str:
    view = build_view(report)
    a = report.assessment
    sev = {s.value: a.failed_by_severity.get(s, 0) for s in Severity}
    status = {s.value: a.by_status.get(s, 0) for s in STATUS_ORDER}
    template = _environment().get_template("report.html.j2")
    return template.render(
        v=view,
        run=report.run,
        severity_bars=_bars(sev, {s: f"sev-{s}" for s in sev}),
        status_bars=_bars(status, {s: f"st-{s}" for s in status}),
        tile_labels=_TILE_LABELS,
        duration=duration(report.run.started, report.run.finished),
        status_headings={s.value: h for s, h in STATUS_HEADINGS.items()},
        Status=Status,
        headings=SECTION_HEADINGS,
        anchors=SECTION_ANCHORS,
        schema_id=SCHEMA_ID,
    )
