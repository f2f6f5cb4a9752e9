"""Time the Postfix rules (every PF-* rule) on the real-world configurations of the corpus.

    python3 benchmarks/postfix_rules_bench.py [--repeat 20]

Each main.cf/master.cf pair of shared/corpus/postfix is collected once by the file parser
(``collect(dir, use_postconf=False)``, not timed); then ``evaluate`` runs the postfix-family rules
over each configuration ``--repeat`` times. Prints the mean time per configuration.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.collect.postfix import collect  # noqa: E402
from auditor.judge import evaluate  # noqa: E402
from auditor.rules import load_all  # noqa: E402
from tests.unit.test_postfix_corpus_expectations import PAIRS, PF  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rules = [r for r in load_all().values() if r.family == "postfix"]
    with tempfile.TemporaryDirectory() as tmp:
        cfgs = []
        for name, (main_cf, master_cf) in PAIRS.items():
            d = Path(tmp) / name
            d.mkdir()
            shutil.copy(PF / main_cf, d / "main.cf")
            shutil.copy(PF / master_cf, d / "master.cf")
            cfgs.append(collect(str(d), use_postconf=False))
    findings = 0
    start = time.perf_counter()
    for _ in range(args.repeat):
        for cfg in cfgs:
            findings += len(evaluate([cfg], rules=rules))
    elapsed = time.perf_counter() - start
    runs = args.repeat * len(cfgs)
    print(
        f"{len(rules)} rules x {len(cfgs)} configs x {args.repeat} rounds: {elapsed:.2f} s, "
        f"{1000 * elapsed / runs:.1f} ms per config, {findings // runs} findings per config"
    )


if __name__ == "__main__":
    main()
