"""Score the NDR analyser against the labelled corpora (shared by the corpus test and the benchmark).

Sisimai labels: ``kind`` (bounce, delay_dsn, delivered_dsn, autoreply, arf_feedback_report,
not_bounce), ``expected_addresses`` (failed recipients), ``expected_from_tests[].status`` paired with
``sisimai_facts[].recipient``. Sisimai's own pseudo codes (X.0.9NN, not RFC 3463) are not status
labels and are left out of the status agreement.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from auditor.bounces import NdrAnalysis, analyse_bytes

_PSEUDO = re.compile(r"^[245]\.0\.9\d\d$")


@dataclass
class Score:
    bounces: int = 0
    bounces_found: int = 0
    non_failures: int = 0
    false_failures: int = 0
    tp: int = 0
    ours: int = 0
    expected: int = 0
    status_labelled: int = 0
    status_agree: int = 0
    status_class_agree: int = 0
    misses: list[str] = field(default_factory=list)  # for debugging output

    @property
    def recall(self) -> float:
        return self.bounces_found / self.bounces if self.bounces else 1.0

    @property
    def false_rate(self) -> float:
        return self.false_failures / self.non_failures if self.non_failures else 0.0

    @property
    def addr_precision(self) -> float:
        return self.tp / self.ours if self.ours else 1.0

    @property
    def addr_recall(self) -> float:
        return self.tp / self.expected if self.expected else 1.0

    @property
    def status_rate(self) -> float:
        return self.status_agree / self.status_labelled if self.status_labelled else 1.0

    @property
    def status_class_rate(self) -> float:
        return self.status_class_agree / self.status_labelled if self.status_labelled else 1.0


def load_labels(root: Path) -> list[dict]:
    with open(root / "labels.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _addresses(a: NdrAnalysis) -> set[str]:
    return {r.address.lower() for r in a.recipients}


def score_sisimai(root: Path) -> tuple[Score, list[NdrAnalysis]]:
    s = Score()
    results = []
    for label in load_labels(root):
        a = analyse_bytes((root / label["file"]).read_bytes(), label["file"])
        results.append(a)
        if label["kind"] == "bounce":
            s.bounces += 1
            if a.kind == "failure":
                s.bounces_found += 1
            else:
                s.misses.append(f"kind {label['file']}: {a.kind}")
            expected = {x.lower() for x in label["expected_addresses"]}
            ours = _addresses(a)
            s.tp += len(expected & ours)
            s.ours += len(ours)
            s.expected += len(expected)
            if expected != ours:
                s.misses.append(f"addr {label['file']}: ours {sorted(ours)} want {sorted(expected)}")
            tests = label.get("expected_from_tests") or []
            facts = label.get("sisimai_facts") or []
            by_addr = {r.address.lower(): r.status for r in a.recipients}
            if len(tests) == len(facts):
                for t, f in zip(tests, facts, strict=True):
                    want = t.get("status") or ""
                    rcpt = (f.get("recipient") or "").lower()
                    if not want or _PSEUDO.match(want) or rcpt not in by_addr:
                        continue
                    s.status_labelled += 1
                    got = by_addr[rcpt]
                    if got == want:
                        s.status_agree += 1
                    else:
                        s.misses.append(f"status {label['file']}: {rcpt} ours {got!r} want {want!r}")
                    if got[:1] == want[:1]:
                        s.status_class_agree += 1
        else:
            s.non_failures += 1
            if a.kind == "failure":
                s.false_failures += 1
                s.misses.append(f"false {label['file']} ({label['kind']})")
    return s, results


def score_bounceparser(root: Path) -> tuple[Score, list[NdrAnalysis]]:
    s = Score()
    results = []
    for label in load_labels(root):
        a = analyse_bytes((root / label["file"]).read_bytes(), label["file"])
        results.append(a)
        if label["is_bounce"]:
            s.bounces += 1
            if a.kind == "failure":
                s.bounces_found += 1
            else:
                s.misses.append(f"kind {label['file']}: {a.kind}")
            expected = {x.lower() for x in label["addresses"]}
            ours = _addresses(a)
            s.tp += len(expected & ours)
            s.ours += len(ours)
            s.expected += len(expected)
            if expected != ours:
                s.misses.append(f"addr {label['file']}: ours {sorted(ours)} want {sorted(expected)}")
        else:
            s.non_failures += 1
            if a.kind == "failure":
                s.false_failures += 1
                s.misses.append(f"false {label['file']}")
    return s, results


def summary(name: str, s: Score) -> str:
    return (
        f"{name}: failure recall {s.recall:.3f} ({s.bounces_found}/{s.bounces}), false failure "
        f"{s.false_rate:.3f} ({s.false_failures}/{s.non_failures}), addr precision {s.addr_precision:.3f} "
        f"recall {s.addr_recall:.3f} ({s.tp}/{s.ours}/{s.expected}), status {s.status_rate:.3f} "
        f"class {s.status_class_rate:.3f} ({s.status_agree}/{s.status_labelled})"
    )
