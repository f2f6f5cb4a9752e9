"""GitLab code quality (a subset of the Code Climate issue format): a JSON array with one issue per
finding that failed or could not be measured, for the merge request widget and the pipeline's
code quality tab (``artifacts: reports: codequality``).

Each issue has the fields GitLab requires — ``description``, ``check_name`` (the rule id),
``fingerprint``, ``severity``, ``location.path`` and ``location.lines.begin`` — plus ``categories``.
Severity maps critical → blocker, high → critical, medium → major, low → minor, info → info; an
inconclusive finding is ``info`` and its description says it could not be measured; suppressed
findings are left out (GitLab has no accepted state). A finding without a file points at the
run's first input (the site.toml of an audit), line 1, since GitLab drops issues without a path.
The fingerprint hashes (rule id, target), the identity baselines and SARIF use, so an issue is
the same across pipelines.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from auditor.model import Finding, Report, Severity, Status
from auditor.render._common import json_safe, title_of
from auditor.render._options import RenderOptions

FORMAT = "gitlab"

SEVERITY = {
    Severity.CRITICAL: "blocker",
    Severity.HIGH: "critical",
    Severity.MEDIUM: "major",
    Severity.LOW: "minor",
    Severity.INFO: "info",
}


def _issue(report: Report, f: Finding, anchor: str, fingerprint: str) -> dict[str, Any]:
    loc = f.location
    path, line = (loc.path, loc.line or 1) if loc is not None else (anchor, 1)
    text = f"{f.target}: {f.message}" if f.target and f.target not in f.message else f.message
    if f.status is Status.INCONCLUSIVE:
        text = f"could not be measured — {text}"
    return {
        "type": "issue",
        "description": f"{f.rule_id} {title_of(report, f)}: {text}",
        "check_name": f.rule_id,
        "fingerprint": fingerprint,
        "severity": "info" if f.status is Status.INCONCLUSIVE else SEVERITY[f.severity],
        "categories": ["Security"],
        "location": {"path": path, "lines": {"begin": line}},
    }


def to_issues(report: Report) -> list[dict[str, Any]]:
    anchor = report.run.inputs[0] if report.run.inputs else (report.run.scope[0] if report.run.scope else "")
    seen: dict[str, int] = {}
    out = []
    for f in report.findings:
        if f.status not in (Status.FAIL, Status.INCONCLUSIVE):
            continue
        digest = hashlib.sha256(f"{f.rule_id}\0{f.target}".encode()).hexdigest()[:32]
        n = seen.get(digest, 0)
        seen[digest] = n + 1
        # GitLab keeps one issue per fingerprint: a repeated key gets a numbered one
        fingerprint = digest if n == 0 else hashlib.sha256(f"{digest}\0{n}".encode()).hexdigest()[:32]
        out.append(_issue(report, f, anchor or f.target, fingerprint))
    return out


def render(report: Report, options: RenderOptions | None = None) -> str:
    # Control characters become \u escapes (see json_safe): the document decodes to the report's text.
    return json_safe(json.dumps(to_issues(report), indent=2, ensure_ascii=False)) + "\n"


__all__ = ["FORMAT", "SEVERITY", "render", "to_issues"]
