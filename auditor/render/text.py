"""Terminal text: the verdict, findings grouped by severity, worst first, the fixes; in the width
of the terminal (``RenderOptions.width``: no line is longer, tables and transcripts included).

Control characters from the report (a hostile server's reply) are written as visible escapes
(``\\x1b``) before any colour of our own is added, so a report cannot drive the terminal. Colour
comes only when the options ask for it (the command line decides: a terminal, ``NO_COLOR`` unset).
Long targets are cut in the middle (start and end tell MX hosts and DNs apart); shell commands are
folded with backslash continuations, so what is pasted runs unchanged.
"""

from __future__ import annotations

from tabulate import tabulate

from auditor.model import Finding, PlanItem, Report, Severity, Status
from auditor.render._common import visible
from auditor.render._fit import MIN_WIDTH, cut_middle, fold_shell, wrap
from auditor.render._options import DEFAULT, RenderOptions

FORMAT = "text"

_COLOURS = {
    Status.FAIL: "\033[31m",
    Status.INCONCLUSIVE: "\033[33m",
    Status.PASS: "\033[32m",
    Status.SUPPRESSED: "\033[2m",
    Status.NOT_APPLICABLE: "\033[2m",
}
_VERDICT_COLOURS = {"fail": "\033[1;31m", "inconclusive": "\033[1;33m", "pass": "\033[1;32m"}
_RESET = "\033[0m"
_SHOWN = (Status.FAIL, Status.INCONCLUSIVE, Status.SUPPRESSED)
_GAP = 2  # columns between table columns (tabulate's "simple" format)
_TALL = 3  # a table cell of more lines than this: the group is listed instead
_NARROW = 36  # below this many columns for target and message, findings are listed, not tabled


class _Text:
    def __init__(self, report: Report, opts: RenderOptions) -> None:
        self.r = report
        self.o = opts
        self.w = max(MIN_WIDTH, opts.width)
        self.out: list[str] = []

    # -- pieces ----------------------------------------------------------------------------------

    def status(self, f: Finding) -> str:
        word = f.status.value
        return f"{_COLOURS[f.status]}{word}{_RESET}" if self.o.color else word

    def para(self, text: str, indent: str = "", hanging: str | None = None) -> None:
        self.out.extend(wrap(visible(text), self.w, indent, hanging))

    def head(self) -> None:
        run = self.r.run
        self.para(f"backscatter-audit {run.tool_version} — {run.command}", hanging="  ")
        if run.scope:
            self.para(f"scope: {', '.join(run.scope)}", hanging="       ")
        if run.partial:
            self.para(
                "PARTIAL REPORT: the audit was interrupted; unmeasured checks are listed as inconclusive"
            )
        self.verdict()

    def verdict(self) -> None:
        a = self.r.assessment
        lines = wrap(visible(f"verdict: {a.verdict.word} — {a.summary}"), self.w, "", "         ")
        if self.o.color and a.verdict.value in _VERDICT_COLOURS:
            word = a.verdict.word
            lines[0] = lines[0].replace(word, f"{_VERDICT_COLOURS[a.verdict.value]}{word}{_RESET}", 1)
        self.out.extend(lines)

    # -- findings --------------------------------------------------------------------------------

    def table(self, group: list[Finding]) -> bool:
        """The group as a table if target and message get enough room (each message in two lines
        at most: a table of tall narrow cells reads worse than a list); False if not."""
        # tabulate makes a column at least its header plus 2 wide
        sw = max(len("status") + 2, *(len(f.status.value) for f in group))
        rw = max(len("rule") + 2, *(len(visible(f.rule_id)) for f in group))
        room = self.w - sw - rw - 3 * _GAP
        if room < _NARROW:
            return False
        longest = max(len(visible(f.target)) for f in group)
        tw = max(len("target") + 2, min(longest, room // 2))
        mw = room - tw
        rows = []
        for f in group:
            msg = wrap(visible(f.message), mw)
            where = _where(f)
            if where:
                msg += wrap(visible(where), mw)
            if len(msg) > _TALL:
                return False
            rows.append(
                [self.status(f), visible(f.rule_id), cut_middle(visible(f.target), tw), "\n".join(msg)]
            )
        self.out.append(
            tabulate(
                rows,
                headers=["status", "rule", "target", "message"],
                disable_numparse=True,
                stralign="left",
            )
        )
        return True

    def listing(self, group: list[Finding], verbose: bool) -> None:
        """One block per finding: status, rule, target, message (and, verbose, the evidence)."""
        sw = max(len(f.status.value) for f in group)
        rw = max(len(visible(f.rule_id)) for f in group)
        if sw + rw + 4 + 12 > self.w:  # too narrow to align: no padding
            sw = rw = 0
        for n, f in enumerate(group):
            if n and verbose:
                self.out.append("")
            rule = visible(f.rule_id).ljust(rw)
            pad = " " * (sw - len(f.status.value))
            lead = f"{self.status(f)}{pad}  {rule}  "
            plain = f"{f.status.value}{pad}  {rule}  "
            target = visible(f.target)
            if verbose:
                first = wrap(target, self.w, plain, "    ")
                first[0] = lead + first[0][len(plain) :]
                self.out.extend(first)
            else:
                self.out.append(lead + cut_middle(target, max(1, self.w - len(plain))))
            self.para(f.message, "    ")
            where = _where(f)
            if where:
                self.para(where, "    ", "      ")
            if verbose:
                self.evidence(f)

    def evidence(self, f: Finding) -> None:
        if f.note:
            self.para(f"note: {f.note}", "    ", "      ")
        for ev in f.evidence:
            where = f" ({ev.location})" if ev.location else ""
            self.para(f"evidence: {ev.summary}{where}", "    ", "      ")
            for line in ev.transcript:  # a transcript line keeps its own line; longer ones continue
                self.out.extend(wrap(visible(line), self.w, "      | ", "      |   "))
        if f.remediation and f.status in (Status.FAIL, Status.INCONCLUSIVE):
            self.out.append("    how to fix:")
            if f.remediation.text:
                self.para(f.remediation.text, "      ")
            for c in f.remediation.commands:
                self.out.extend(fold_shell(visible(c.line), self.w, "      "))

    def findings(self, shown: list[Finding]) -> None:
        for sev in Severity:
            group = [f for f in shown if f.severity is sev]
            if not group:
                continue
            self.out.append("")
            self.out.append(f"== {sev.value.upper()} ({len(group)}) ==")
            if self.o.verbose or not self.table(group):
                self.listing(group, self.o.verbose)

    # -- plan and summary ------------------------------------------------------------------------

    def plan(self, items: list[PlanItem]) -> None:
        self.out.append("")
        self.out.append("How to fix (by root cause, worst first):")
        for n, item in enumerate(items, 1):
            num = f"  {n}. "
            self.para(f"{item.title} [{item.severity.value}, {item.effort.value}]", num, " " * len(num))
            for step in item.steps:
                answers = ", ".join(f"{r.rule_id} {r.target}" for r in step.findings)
                self.para(answers, "     - ", "       ")
                for line in step.text.splitlines():
                    self.para(line, "         ", "           ")
                for c in step.commands:
                    self.out.extend(fold_shell(visible(c.line), self.w, "         "))
                if step.to_fill:
                    self.para("(fill in first: " + ", ".join(step.to_fill) + ")", "         ", "          ")
            for line in item.verify:
                self.out.extend(fold_shell(visible(line), self.w, "     ", "verify: "))

    def summary(self, hidden: int) -> None:
        a = self.r.assessment
        counts = a.by_status
        self.out.append("")
        self.para(
            "summary: "
            + ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
            + (f" ({len(self.r.findings)} findings)" if self.r.findings else "no findings")
            + f"; --fail-on {a.fail_on.value}: exit {a.exit_code}",
            hanging="  ",
        )
        if hidden:
            self.para(
                f"{hidden} finding{'s' if hidden != 1 else ''} below {self.o.min_severity.value} not shown"
                " (--min-severity); every format but text lists them",
                hanging="  ",
            )
        if counts.get(Status.PASS) or counts.get(Status.NOT_APPLICABLE):
            self.para("passed and not-applicable checks are listed in the json, html and markdown formats")
        if not self.o.verbose and any(f.evidence for f in self.r.findings if f.status in _SHOWN):
            self.para("--verbose shows the evidence and SMTP transcripts of each finding")

    def render(self) -> str:
        opts = self.o
        if opts.quiet:
            self.verdict()
            fails = [f for f in self.r.findings if f.status is Status.FAIL and opts.shows(f.severity)]
            for f in fails:
                text = f"{f.severity.value} {f.rule_id} {f.target}: {f.message}"
                lines = wrap(visible(text), self.w, "", "    ")
                if opts.color:
                    lines[0] = f"{_COLOURS[Status.FAIL]}{lines[0]}{_RESET}"
                self.out.extend(lines)
            return "\n".join(self.out) + "\n"
        self.head()
        # The terminal shows what needs attention; passes are counted (every other format lists them).
        attention = [f for f in self.r.findings if f.status in _SHOWN]
        shown = [f for f in attention if opts.shows(f.severity)]
        self.findings(shown)
        items = [i for i in self.r.plan if opts.shows(i.severity)]
        if items:
            self.plan(items)
        self.summary(len(attention) - len(shown))
        return "\n".join(self.out) + "\n"


def _where(f: Finding) -> str:
    """Where the finding points, unless the target already says it (a file target: its line)."""
    loc = f.location
    if loc is None or str(loc) == f.target:
        return ""
    if loc.path == f.target:
        return f"line {loc.line}" if loc.line else ""
    return f"at {loc}"


def render(report: Report, options: RenderOptions | None = None) -> str:
    return _Text(report, options or DEFAULT).render()


__all__ = ["FORMAT", "render"]
