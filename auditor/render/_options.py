"""How a view is drawn: width, colour, detail, severity floor. Presentation only — the report is the
same whatever the options; the command line (``auditor.cli.common``) decides them."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity


@dataclass(frozen=True)
class RenderOptions:
    width: int = 80  # columns of the text view (the terminal's, 80 when unknown)
    color: bool = False  # ANSI colour in the text view; no other view ever has any
    quiet: bool = False  # text view: the verdict line and the failures, nothing else
    verbose: bool = False  # text view: every finding with its evidence and transcripts in full
    min_severity: Severity = Severity.INFO  # text view: hide findings below this (other views keep all)
    full_report: str = ""  # where the full report is, for views that must be cut short (Markdown)

    def shows(self, severity: Severity) -> bool:
        return severity.at_least(self.min_severity)


DEFAULT = RenderOptions()
