"""`rules` lists the rule catalog; `explain ID` prints one rule's page (like `ruff rule`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tabulate import tabulate

from auditor.exitcodes import ExitCode
from auditor.rules import get, load_all
from auditor.rules.base import Rule


def register(sub: Any) -> None:
    p = sub.add_parser("rules", help="list the rules (id, severity, title)")
    p.add_argument("--family", help="only this family (see the family column of `rules`)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=run_rules)
    e = sub.add_parser("explain", help="print a rule's page: what it flags, why, how to fix, sources")
    e.add_argument("rule_id", metavar="RULE-ID")
    e.set_defaults(func=run_explain)


def run_rules(args: argparse.Namespace) -> int:
    families = sorted({r.family for r in load_all().values()})
    if args.family and args.family not in families:
        print(
            f"backscatter-audit: error: unknown family {args.family!r} (one of: {', '.join(families)})",
            file=sys.stderr,
        )
        return ExitCode.INPUT
    rules = [r for r in load_all().values() if not args.family or r.family == args.family]
    if args.format == "json":
        doc = [
            {"id": r.id, "severity": r.severity.value, "family": r.family, "title": r.title, "tier": r.tier}
            for r in rules
        ]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        rows = [[r.id, r.severity.value, r.family, r.title] for r in rules]
        sys.stdout.write(tabulate(rows, headers=["id", "severity", "family", "title"]) + "\n")
    return ExitCode.OK


def explain_text(r: Rule) -> str:
    lines = [f"# {r.id}: {r.title}", "", f"Severity: {r.severity.value}    Family: {r.family}", ""]
    lines.append(r.doc)
    if r.remediation:  # the one place the generic fix is written (the decorator, see rules.base)
        lines += ["", "## How to fix", "", r.remediation]
    if r.references:
        lines += ["", "## Sources", ""] + [f"- {ref}" for ref in r.references]
    return "\n".join(lines) + "\n"


def run_explain(args: argparse.Namespace) -> int:
    r = get(args.rule_id)
    if r is None:
        print(
            f"backscatter-audit: error: unknown rule {args.rule_id!r} (see `backscatter-audit rules`)",
            file=sys.stderr,
        )
        return ExitCode.INPUT
    sys.stdout.write(explain_text(r))
    return ExitCode.OK
