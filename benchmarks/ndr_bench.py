"""NDR analyser throughput and accuracy on the shared corpora, optionally against flufl.bounce.

    python3 benchmarks/ndr_bench.py [--repeat 5] [--flufl /tmp/flufl-venv/bin/python]

Our figure: messages/second of ``analyse_bytes`` (parse + detect + classify) over every message of
both corpora, best of ``--repeat`` passes. flufl.bounce (if its interpreter is given; it lives in a
throw-away venv, never in the project) is timed the same way in a subprocess:
``email.message_from_bytes`` + ``all_failures`` per message, over the same bytes. Its failed
addresses are scored against the same labels, so the accuracy columns compare like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.bounces import analyse_bytes  # noqa: E402
from tests.conftest import CORPUS  # noqa: E402
from tests.unit.bounces.scoring import load_labels, score_bounceparser, score_sisimai, summary  # noqa: E402

SISIMAI = CORPUS / "ndr" / "sisimai"
BOUNCEPARSER = CORPUS / "ndr" / "bounceparser"

# Runs inside the flufl.bounce venv: reads file paths on stdin, prints JSON (time + addresses).
FLUFL_SCRIPT = r"""
import email, json, sys, time
from flufl.bounce import all_failures
paths = json.load(sys.stdin)
repeat = int(sys.argv[1])
blobs = [open(p, "rb").read() for p in paths]
best, found, errors = None, {}, 0
for _ in range(repeat):
    errors = 0
    t0 = time.perf_counter()
    for p, data in zip(paths, blobs):
        try:
            temp, perm = all_failures(email.message_from_bytes(data))
            found[p] = sorted(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in perm)
        except Exception:
            errors += 1
            found[p] = []
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
json.dump({"seconds": best, "found": found, "errors": errors}, sys.stdout)
"""


def corpus_files() -> list[Path]:
    files = [SISIMAI / lab["file"] for lab in load_labels(SISIMAI)]
    files += [BOUNCEPARSER / lab["file"] for lab in load_labels(BOUNCEPARSER)]
    return files


def time_ours(files: list[Path], repeat: int) -> float:
    blobs = [(str(f), f.read_bytes()) for f in files]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for path, data in blobs:
            analyse_bytes(data, path)
        best = min(best, time.perf_counter() - t0)
    return best


def score_addresses(found: dict[str, list[str]]) -> dict[str, tuple[float, float, float]]:
    """(bounce recall, address precision, address recall) per corpus for a path → addresses map."""
    out = {}
    for name, root, key, is_bounce in (
        ("sisimai", SISIMAI, "expected_addresses", lambda lab: lab["kind"] == "bounce"),
        ("bounceparser", BOUNCEPARSER, "addresses", lambda lab: bool(lab["is_bounce"])),
    ):
        tp = ours = want = bounces = hits = 0
        for lab in load_labels(root):
            if not is_bounce(lab):
                continue
            got = {a.lower() for a in found.get(str(root / lab["file"]), [])}
            exp = {a.lower() for a in lab[key]}
            bounces += 1
            hits += bool(got)
            tp += len(got & exp)
            ours += len(got)
            want += len(exp)
        out[name] = (hits / bounces, tp / ours if ours else 1.0, tp / want if want else 1.0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--flufl", metavar="PYTHON", help="python of a venv with flufl.bounce installed")
    args = ap.parse_args()
    files = corpus_files()
    total = sum(f.stat().st_size for f in files)
    print(f"corpus: {len(files)} messages, {total / 1e6:.2f} MB; cpu count {os.cpu_count()}")
    s1, _ = score_sisimai(SISIMAI)
    s2, _ = score_bounceparser(BOUNCEPARSER)
    print(summary("ours sisimai", s1))
    print(summary("ours bounceparser", s2))
    ours = time_ours(files, args.repeat)
    print(f"ours: {len(files) / ours:,.0f} msgs/s ({ours * 1000:.0f} ms per pass, best of {args.repeat})")
    if args.flufl:
        proc = subprocess.run(
            [args.flufl, "-c", FLUFL_SCRIPT, str(args.repeat)],
            input=json.dumps([str(f) for f in files]),
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        res = json.loads(proc.stdout)
        secs = res["seconds"]
        print(
            f"flufl.bounce: {len(files) / secs:,.0f} msgs/s ({secs * 1000:.0f} ms per pass, best of "
            f"{args.repeat}; {res['errors']} messages raised)"
        )
        for name, (rec, p, r) in score_addresses(res["found"]).items():
            print(
                f"flufl.bounce {name}: bounces with a failed address {rec:.3f}, "
                f"addr precision {p:.3f} recall {r:.3f}"
            )
    ours_found = {}
    for f in files:
        a = analyse_bytes(f.read_bytes(), str(f))
        ours_found[str(f)] = [r.address for r in a.recipients] if a.kind == "failure" else []
    for name, (rec, p, r) in score_addresses(ours_found).items():
        print(f"ours {name}: bounces with a failed address {rec:.3f}, addr precision {p:.3f} recall {r:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
