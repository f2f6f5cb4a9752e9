"""Time `Lab.up()` and `Lab.down()` over N cycles (root; real Postfix/slapd/dnsmasq in namespaces).

Usage: sudo python3 benchmarks/lab_updown.py [RUNS] [STATE_DIR]
Prints one line per run and min/median/max, in seconds.
"""

from __future__ import annotations

import statistics
import sys
import time

from auditor.lab import Lab
from auditor.lab.orchestrator import session


def main() -> int:
    with session(timeout=600):  # waits for a test run that holds the lab instead of breaking it
        return bench()


def bench() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    lab = Lab(sys.argv[2] if len(sys.argv) > 2 else "/run/bsa-lab-bench")
    lab.down()  # start from nothing
    ups, downs = [], []
    for i in range(runs):
        t0 = time.monotonic()
        info = lab.up()
        ups.append(time.monotonic() - t0)
        t0 = time.monotonic()
        lab.down()
        downs.append(time.monotonic() - t0)
        steps = ", ".join(f"{k} {v:.2f}" for k, v in info.phases.items())
        print(f"run {i + 1}: up {ups[-1]:.2f} s (all listeners accept), down {downs[-1]:.2f} s", flush=True)
        print(f"  up steps (s since start): {steps}", flush=True)
    for name, xs in (("up", ups), ("down", downs)):
        print(f"{name}: min {min(xs):.2f} s, median {statistics.median(xs):.2f} s, max {max(xs):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
