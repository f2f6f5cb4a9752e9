"""Benchmark `logs postfix` against pflogsumm on one generated Postfix log with a known mix.

    python3 benchmarks/logs_bench.py --lines 5000000 [--out /tmp/bsa-logs-bench.log] [--keep]

The generator writes real Postfix line shapes (smtpd/cleanup/qmgr/local/smtp/bounce, connect and
disconnect, NOQUEUE rejects, foreign programs), several messages in flight at once, and counts what
it wrote: outside and inside notifications, double bounces, delivered and bounced recipients. Then
each tool runs in its own process on the same file; wall time and peak RSS (``wait4`` rusage) are
printed side by side, and our counts are checked against the generator's (pflogsumm's "bounced"
total too). Nothing here is a test; the figures go to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSIDE = "192.0.2.0/24"
DOMAINS = [f"victim{i}.example" for i in range(400)]  # past the counter bound: the "other" bucket


class Gen:
    """Write message histories; interleave a few at a time so the tracker holds several open."""

    def __init__(self, fh: object, seed: int = 13) -> None:
        self.fh = fh
        self.rng = random.Random(seed)
        self.t = 0  # seconds since Dec 1 00:00
        self.qid = 0x10000000
        self.lines = 0
        self.counts: Counter[str] = Counter()
        self.buf: list[str] = []

    def ts(self) -> str:
        day, rest = divmod(self.t, 86400)
        h, rest = divmod(rest, 3600)
        m, s = divmod(rest, 60)
        return f"Dec {day + 1:2d} {h:02d}:{m:02d}:{s:02d}"

    def new_id(self) -> str:
        self.qid += self.rng.randint(1, 40)
        return f"{self.qid:X}"

    def emit(self, prog: str, pid: int, text: str) -> None:
        self.buf.append(f"{self.ts()} mx1 postfix/{prog}[{pid}]: {text}\n")

    def message(self, kind: str) -> list[list[str]]:
        """One message's lines, as groups that may interleave with other messages' groups."""
        rng = self.rng
        q = self.new_id()
        client_ip = (
            f"192.0.2.{rng.randint(2, 250)}" if kind == "inside" else f"203.0.113.{rng.randint(1, 250)}"
        )
        sender_dom = rng.choice(DOMAINS)
        sender = f"u{rng.randint(1, 99999)}@{sender_dom}"
        groups: list[list[str]] = []
        g: list[str] = []
        self.buf = g
        if kind == "pickup":
            self.emit("pickup", 900, f"{q}: uid=1000 from=<local{rng.randint(1, 9)}>")
            sender = f"local{rng.randint(1, 9)}@mx1.example.com"
        else:
            self.emit("smtpd", 1001, f"connect from c{client_ip.split('.')[-1]}.example.net[{client_ip}]")
            self.emit("smtpd", 1001, f"{q}: client=c{client_ip.split('.')[-1]}.example.net[{client_ip}]")
        self.emit("cleanup", 1002, f"{q}: message-id=<{q}.{rng.randint(1, 10**9)}@example.net>")
        self.emit(
            "qmgr", 901, f"{q}: from=<{sender}>, size={rng.randint(500, 90000)}, nrcpt=1 (queue active)"
        )
        if kind != "pickup":
            self.emit(
                "smtpd",
                1001,
                f"disconnect from c{client_ip.split('.')[-1]}.example.net[{client_ip}] ehlo=1 mail=1 rcpt=1 "
                "data=1 quit=1 commands=5",
            )
        groups.append(g)
        g = []
        self.buf = g
        if kind == "normal":
            self.emit(
                "local",
                1003,
                f"{q}: to=<user{rng.randint(1, 500)}@example.com>, relay=local, delay=0.2, "
                "delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)",
            )
            self.counts["delivered"] += 1
            self.emit("qmgr", 901, f"{q}: removed")
            groups.append(g)
            return groups
        if kind == "outside":
            self.emit(
                "local",
                1003,
                f"{q}: to=<nx{rng.randint(1, 10**6)}@example.com>, relay=local, delay=0.3, "
                f'delays=0.1/0.1/0/0.1, dsn=5.1.1, status=bounced (unknown user: "nx")',
            )
        else:
            self.emit(
                "smtp",
                1005,
                f"{q}: to=<typo@partner.example>, relay=mx.partner.example[198.51.100.40]:25, delay=1, "
                "delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.partner.example[198.51.100.40] said: "
                "550 5.1.1 No such user (in reply to RCPT TO command))",
            )
        self.counts["bounced"] += 1
        n = self.new_id()
        self.emit("cleanup", 1002, f"{n}: message-id=<bounce.{n}@mx1.example.com>")
        self.emit("bounce", 1004, f"{q}: sender non-delivery notification: {n}")
        self.emit("qmgr", 901, f"{q}: removed")
        self.emit("qmgr", 901, f"{n}: from=<>, size=3000, nrcpt=1 (queue active)")
        groups.append(g)
        g = []
        self.buf = g
        self.counts[f"notice-{'outside' if kind == 'outside' else 'inside'}"] += 1
        if kind == "outside":
            self.counts[f"domain:{sender_dom}"] += 1
        double = kind == "outside" and rng.random() < 0.3
        if double:
            self.emit(
                "smtp",
                1006,
                f"{n}: to=<{sender}>, relay=mx.{sender_dom}[198.51.100.9]:25, delay=1, delays=0/0/0.5/0.5, "
                f"dsn=5.1.1, status=bounced (host mx.{sender_dom}[198.51.100.9] said: 550 5.1.1 no such user "
                "(in reply to RCPT TO command))",
            )
            self.counts["double"] += 1
            self.counts["bounced"] += 1
        else:
            self.emit(
                "smtp",
                1006,
                f"{n}: to=<{sender}>, relay=mx.{sender_dom}[198.51.100.9]:25, delay=1, delays=0/0/0.5/0.5, "
                "dsn=2.0.0, status=sent (250 2.0.0 Ok)",
            )
            self.counts["delivered"] += 1
        self.emit("qmgr", 901, f"{n}: removed")
        groups.append(g)
        return groups

    def noise(self) -> list[str]:
        g: list[str] = []
        self.buf = g
        ip = f"203.0.113.{self.rng.randint(1, 250)}"
        self.emit("smtpd", 1010, f"connect from unknown[{ip}]")
        self.emit(
            "smtpd",
            1010,
            f"NOQUEUE: reject: RCPT from unknown[{ip}]: 550 5.1.1 <nx@example.com>: Recipient address "
            "rejected: User unknown in local recipient table; from=<s@example.net> to=<nx@example.com> "
            "proto=ESMTP helo=<x>",
        )
        self.emit("smtpd", 1010, f"disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4")
        g.append(f"{self.ts()} mx1 dovecot: imap-login: Login: user=<u>, method=PLAIN, rip={ip}\n")
        return g

    def run(self, target_lines: int) -> None:
        kinds = ["normal"] * 50 + ["outside"] * 12 + ["inside"] * 5 + ["pickup"] * 3 + ["noise"] * 30
        pending: list[list[list[str]]] = []
        write = self.fh.write  # type: ignore[attr-defined]
        while self.lines < target_lines:
            kind = self.rng.choice(kinds)
            self.counts[f"kind:{kind}"] += 1
            if kind == "noise":
                pending.append([self.noise()])
            else:
                pending.append(self.message(kind))
            # Emit one group of a random pending message: histories interleave.
            while len(pending) > 8 or (pending and self.rng.random() < 0.5):
                i = self.rng.randrange(len(pending))
                group = pending[i].pop(0)
                if not pending[i]:
                    pending.pop(i)
                write("".join(group))
                self.lines += len(group)
                if self.rng.random() < 0.2:
                    self.t += 1
        for groups in pending:
            for group in groups:
                write("".join(group))
                self.lines += len(group)


def measure(argv: list[str]) -> tuple[float, float, float, bytes]:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB) and stdout of one child process."""
    out_path = Path("/tmp") / f"bsa-logs-bench.{os.getpid()}.out"
    with open(out_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else b""
    if os.waitstatus_to_exitcode(status) not in (0, 1, 3):
        raise SystemExit(f"{argv[0]} failed: {err.decode(errors='replace')[-500:]}")
    data = out_path.read_bytes()
    out_path.unlink()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, data


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--out", default="/tmp/bsa-logs-bench.log")
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the generated file")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    out = Path(args.out)
    counts_file = out.with_suffix(".counts.json")
    if args.keep and out.exists() and counts_file.exists():
        counts = Counter(json.loads(counts_file.read_text()))
    else:
        t0 = time.perf_counter()
        with open(out, "w", buffering=1 << 20) as fh:
            gen = Gen(fh)
            gen.run(args.lines)
        counts = gen.counts
        counts["lines"] = gen.lines
        counts_file.write_text(json.dumps(counts))
        took = time.perf_counter() - t0
        print(f"generated {gen.lines} lines, {out.stat().st_size / 1e6:.0f} MB in {took:.1f} s")
    print(
        f"mix: {counts['notice-outside']} outside notices ({counts['double']} double bounces), "
        f"{counts['notice-inside']} inside notices, {counts['delivered']} delivered, "
        f"{counts['bounced']} bounced"
    )
    py = sys.executable
    ours = [
        py,
        "-m",
        "auditor",
        "logs",
        "postfix",
        str(out),
        "--trusted-networks",
        INSIDE,
        "--year",
        "2026",
        "-f",
        "json",
    ]
    pflog = shutil.which("pflogsumm") or "/usr/sbin/pflogsumm"
    os.environ["PYTHONPATH"] = str(ROOT)
    for r in range(args.rounds):
        w1, c1, m1, data = measure(ours)
        doc = json.loads(data)
        o = next(x for x in doc["observations"] if x["kind"] == "log.postfix")
        expect_domains = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("domain:")}
        got = o["backscatter_by_domain"]
        ok = (
            o["lines_read"] == counts["lines"]
            and o["backscatter_notifications"] == counts["notice-outside"]
            and o["by_zone"].get("inside", 0) == counts["notice-inside"]
            and o["backscatter_double_bounces"] == counts["double"]
            and o["unattributed_notifications"] == 0
            and o["skipped_lines"] == 0
            and sum(got.values()) == counts["notice-outside"]
            and all(got[d] == n for d, n in expect_domains.items() if d in got)
            and ("other" in got) == (len(expect_domains) > len(got))
        )
        w2, c2, m2, pdata = measure([pflog, str(out)])
        m = re.search(rb"^\s*(\d+)(k|m)?\s+bounced", pdata, re.M)
        pf_bounced = m.group(0).decode().strip() if m else "?"
        print(
            f"round {r + 1}: ours {w1:.1f} s wall, {c1:.1f} s CPU, {m1:.0f} MiB peak RSS, counts "
            f"{'exact' if ok else 'WRONG'} ({o['backscatter_notifications']} backscatter, "
            f"{o['by_zone'].get('inside', 0)} inside, {o['backscatter_double_bounces']} double) | "
            f"pflogsumm {w2:.1f} s wall, {c2:.1f} s CPU, {m2:.0f} MiB, '{pf_bounced}' (expected "
            f"{counts['bounced']}) | speed-up {w2 / w1:.2f}x wall, {c2 / c1:.2f}x CPU"
        )
    if not args.keep:
        out.unlink()
        counts_file.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
