"""Time reading big header_checks / transport_maps tables and judging PF-FILTER-004 / PF-PIPE-001.

    python3 benchmarks/postfix_content_bench.py [--entries 100000] [--repeat 5]

Writes a config directory in a temp dir: main.cf with a regexp header_checks table and a hash
transport_maps table of ``--entries`` lines each, a master.cf with a re-injection listener and a
pipe service. Prints the median and max of the file-parser collection and of the two rules.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.collect.postfix import collect
from auditor.judge import evaluate
from auditor.rules import load_all

MAIN = """\
compatibility_level = 3.6
myhostname = mx.example.org
header_checks = regexp:/etc/postfix/header_checks
transport_maps = hash:/etc/postfix/transport
"""
MASTER = """\
smtp      inet  n       -       n       -       -       smtpd
127.0.0.1:10025 inet n  -       n       -       -       smtpd
  -o content_filter=
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
ticket    unix  -       n       n       -       -       pipe
  user=rt argv=/usr/bin/rt-mailgate --queue general
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bsa-bench-") as tmp:
        d = Path(tmp)
        (d / "main.cf").write_text(MAIN)
        (d / "master.cf").write_text(MASTER)
        n = args.entries
        with (d / "header_checks").open("w") as f:
            f.writelines(f"/^Subject: .*spam{i}/ DISCARD\n" for i in range(n - 1))
            f.write("/^Subject: .*last/ REJECT\n")
        with (d / "transport").open("w") as f:
            f.writelines(f"user{i}@example.com smtp:[10.0.0.{i % 250 + 1}]\n" for i in range(n - 1))
            f.write("help@example.com ticket:\n")
        past = time.time() - 60
        for p in d.iterdir():
            os.utime(p, (past, past))
        rules = [load_all()[r] for r in ("PF-FILTER-004", "PF-PIPE-001")]
        collect_t: list[float] = []
        judge_t: list[float] = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            cfg = collect(str(d), use_postconf=False)
            t1 = time.perf_counter()
            findings = evaluate([cfg], rules=rules)
            t2 = time.perf_counter()
            collect_t.append(t1 - t0)
            judge_t.append(t2 - t1)
        fails = sorted({f.rule_id for f in findings if f.status.value == "fail"})
        print(
            f"{n} header_checks + {n} transport_maps entries, file parser: collect median "
            f"{statistics.median(collect_t) * 1000:.0f} ms, max {max(collect_t) * 1000:.0f} ms; "
            f"PF-FILTER-004 + PF-PIPE-001 median {statistics.median(judge_t) * 1000:.1f} ms, "
            f"max {max(judge_t) * 1000:.1f} ms ({args.repeat} runs); failing: {', '.join(fails)}"
        )


if __name__ == "__main__":
    main()
