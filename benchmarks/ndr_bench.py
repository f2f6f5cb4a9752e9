"""NDR analyser throughput side by side with flufl.bounce, and accuracy on the shared corpora.

    python3 benchmarks/ndr_bench.py [--repeat 9] [--flufl /tmp/flufl-venv/bin/python] [--parser]

Every message of both corpora is read into memory once. One *pass* runs an analyser over all of
them: ours is ``analyse_bytes`` (parse + detect + classify + read the returned original), flufl.bounce
is ``email.message_from_bytes`` + ``all_failures`` (what its documentation shows). Both run in this
one process, passes alternated (ours, flufl, flufl, ours, ...) so that load changes on a shared machine
hit both alike; each figure is the best and the median of ``--repeat`` passes, after one warm-up pass
each. flufl.bounce is never a project dependency: it is imported from a throw-away venv (``--flufl``,
same Python version) for this comparison only. Its failed addresses are scored against the same
labels as ours, so the accuracy columns compare like with like.

``--parser`` also times the standard library's parser alone (CPU time, best of ``--repeat``): the
``compat32`` and ``default`` policies, and ``compat32`` on messages with renamed MIME boundaries
(``auditor.bounces.boundaries``), with the cost of the rename itself.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.bounces import analyse_bytes  # noqa: E402
from auditor.bounces.boundaries import rename  # noqa: E402
from tests.conftest import CORPUS  # noqa: E402
from tests.unit.bounces.scoring import load_labels, score_bounceparser, score_sisimai, summary  # noqa: E402

SISIMAI = CORPUS / "ndr" / "sisimai"
BOUNCEPARSER = CORPUS / "ndr" / "bounceparser"

Blobs = list[tuple[str, bytes]]


def corpus_files() -> list[Path]:
    files = [SISIMAI / lab["file"] for lab in load_labels(SISIMAI)]
    files += [BOUNCEPARSER / lab["file"] for lab in load_labels(BOUNCEPARSER)]
    return files


def load_flufl(python: str) -> Callable[[bytes], list[str]]:
    """flufl.bounce's failed-address finder, imported from the venv of the given interpreter."""
    out = subprocess.run(
        [
            python,
            "-c",
            "import sys, sysconfig; print(sys.version_info[:3]); print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    if out[0] != str(sys.version_info[:3]):
        raise SystemExit(f"{python} is Python {out[0]}, this is {sys.version_info[:3]}: use the same version")
    sys.path.append(out[1])  # appended: the project's own packages keep precedence
    from flufl.bounce import all_failures

    def failures(data: bytes) -> list[str]:
        _temporary, permanent = all_failures(email.message_from_bytes(data))
        return sorted(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in permanent)

    return failures


def ours_failures(data: bytes) -> list[str]:
    a = analyse_bytes(data)
    return [r.address for r in a.recipients] if a.kind == "failure" else []


def one_pass(fn: Callable[[bytes], object], blobs: Blobs) -> tuple[float, int]:
    """Seconds for one pass over all messages, and how many messages raised."""
    errors = 0
    t0 = time.perf_counter()
    for _path, data in blobs:
        try:
            fn(data)
        except Exception:
            errors += 1
    return time.perf_counter() - t0, errors


def side_by_side(analysers: dict[str, Callable[[bytes], object]], blobs: Blobs, repeat: int) -> None:
    names = list(analysers)
    times: dict[str, list[float]] = {n: [] for n in names}
    errors = dict.fromkeys(names, 0)
    for n in names:  # warm-up: imports, compiled regular expressions, caches
        one_pass(analysers[n], blobs)
    for i in range(repeat):
        for n in names if i % 2 == 0 else reversed(names):
            dt, errors[n] = one_pass(analysers[n], blobs)
            times[n].append(dt)
    print(f"\n{len(blobs)} messages per pass, {repeat} passes each, alternated:")
    print("| analyser | msgs/s (best) | msgs/s (median) | ms per pass best / median | messages that raised |")
    print("|---|---|---|---|---|")
    for n in names:
        best, med = min(times[n]), statistics.median(times[n])
        print(
            f"| {n} | {len(blobs) / best:,.0f} | {len(blobs) / med:,.0f} "
            f"| {best * 1000:.0f} / {med * 1000:.0f} | {errors[n]} |"
        )
    if len(names) == 2:
        a, b = names
        print(
            f"{a} / {b} speed: {min(times[b]) / min(times[a]):.2f}x (best), "
            f"{statistics.median(times[b]) / statistics.median(times[a]):.2f}x (median)"
        )


def parser_costs(blobs: Blobs, repeat: int) -> None:
    """CPU milliseconds per pass of the stdlib parser alone, by policy, with and without the rename."""
    renamed = [rename(data).data for _, data in blobs]
    raw = [data for _, data in blobs]
    compat32, default = email.policy.compat32, email.policy.default
    steps: list[tuple[str, Callable[[], object]]] = [
        (
            "email.message_from_bytes, compat32",
            lambda: [email.message_from_bytes(b, policy=compat32) for b in raw],
        ),
        (
            "email.message_from_bytes, default",
            lambda: [email.message_from_bytes(b, policy=default) for b in raw],
        ),
        (
            "compat32 on renamed boundaries",
            lambda: [email.message_from_bytes(b, policy=compat32) for b in renamed],
        ),
        ("the rename itself", lambda: [rename(b) for b in raw]),
    ]
    print(f"\nstdlib parser alone, CPU ms per pass, best of {repeat}:")
    for name, fn in steps:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
        print(f"  {name}: {best * 1000:.0f} ms")
    count = sum(bool(rename(b).tokens) for b in raw)
    print(f"  messages renamed: {count} of {sum(b'boundary' in b.lower() for b in raw)} with a boundary")


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


def addresses_of(fn: Callable[[bytes], list[str]], blobs: Blobs) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, data in blobs:
        try:
            found[path] = fn(data)
        except Exception:
            found[path] = []
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=9, help="timed passes per analyser (default 9)")
    ap.add_argument("--flufl", metavar="PYTHON", help="python of a venv with flufl.bounce installed")
    ap.add_argument("--parser", action="store_true", help="also time the stdlib parser alone")
    args = ap.parse_args()
    if not 1 <= args.repeat <= 100:
        ap.error("--repeat must be between 1 and 100")
    files = corpus_files()
    blobs = [(str(f), f.read_bytes()) for f in files]
    total = sum(len(d) for _, d in blobs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"corpus: {len(blobs)} messages, {total / 1e6:.2f} MB; Python {platform.python_version()}; "
        f"cpu count {os.cpu_count()}; load average {load:.2f}"
    )
    s1, _ = score_sisimai(SISIMAI)
    s2, _ = score_bounceparser(BOUNCEPARSER)
    print(summary("ours sisimai", s1))
    print(summary("ours bounceparser", s2))
    analysers: dict[str, Callable[[bytes], object]] = {"ours analyse_bytes": analyse_bytes}
    flufl = load_flufl(args.flufl) if args.flufl else None
    if flufl is not None:
        analysers["flufl.bounce all_failures"] = flufl
    side_by_side(analysers, blobs, args.repeat)
    if args.parser:
        parser_costs(blobs, args.repeat)
    print()
    scored = [("ours", addresses_of(ours_failures, blobs))]
    if flufl is not None:
        scored.append(("flufl.bounce", addresses_of(flufl, blobs)))
    for who, found in scored:
        for name, (rec, p, r) in score_addresses(found).items():
            print(
                f"{who} {name}: bounces with a failed address {rec:.3f}, "
                f"addr precision {p:.3f} recall {r:.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
