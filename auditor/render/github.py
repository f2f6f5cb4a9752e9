"""GitHub Actions workflow commands: one annotation per finding that needs attention, shown on the
run and, for findings with a file and line (config lint), on that line of the pull request diff.

``::error file=main.cf,line=12,title=PF-RCPT-003 …::message`` — fail at critical/high is ``error``,
medium ``warning``, low/info ``notice``; inconclusive is a ``warning`` titled "could not be
measured"; suppressed, passed and not-applicable findings make none. The last line is the verdict.
Escaping as the runner decodes it: in the message ``%``, CR and LF become ``%25``, ``%0D``,
``%0A``; in properties also ``:`` and ``,`` (``%3A``, ``%2C``), so report text cannot end a
property or smuggle a second command onto a new line. Control characters are visible escapes first.
"""

from __future__ import annotations

from auditor.model import Finding, Report, Severity, Status
from auditor.render._common import title_of, visible
from auditor.render._options import RenderOptions

FORMAT = "github"

_COMMAND = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "notice",
    Severity.INFO: "notice",
}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(report: Report, f: Finding) -> str:
    if f.status is Status.INCONCLUSIVE:
        command, title = "warning", f"{f.rule_id} could not be measured: {title_of(report, f)}"
    else:
        command, title = _COMMAND[f.severity], f"{f.rule_id} {f.severity.value}: {title_of(report, f)}"
    props: list[tuple[str, str]] = []
    loc = f.location
    if loc is not None:
        props.append(("file", loc.path))
        if loc.line:
            props.append(("line", str(loc.line)))
            if loc.end_line and loc.end_line >= loc.line:
                props.append(("endLine", str(loc.end_line)))
            if loc.column:
                props.append(("col", str(loc.column)))
    props.append(("title", title))
    head = ",".join(f"{k}={escape_property(visible(v))}" for k, v in props)
    message = f"{f.target}: {f.message}" if f.target and f.target not in f.message else f.message
    return f"::{command} {head}::{escape_data(visible(message or f.rule_id))}"


def render(report: Report, options: RenderOptions | None = None) -> str:
    lines = [annotation(report, f) for f in report.findings if f.status in (Status.FAIL, Status.INCONCLUSIVE)]
    a = report.assessment
    verdict = (
        f"backscatter-audit: {a.verdict.word} — {a.summary} (--fail-on {a.fail_on.value}: exit {a.exit_code})"
    )
    # A plain log line, not a command; escaped all the same, so no line break in it can start one.
    lines.append(escape_data(visible(verdict)))
    return "\n".join(lines) + "\n"


__all__ = ["FORMAT", "annotation", "escape_data", "escape_property", "render"]
