"""Timing of the Postfix collector: corpus config (file parser / via postconf) and a 10 MB line."""

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from auditor.collect.postfix import collect  # noqa: E402

C = ROOT.parent / "shared" / "corpus" / "postfix"
d = Path(tempfile.mkdtemp())
shutil.copy(C / "mailcow+mailcow-dockerized__data_conf_postfix_main.cf", d / "main.cf")
shutil.copy(C / "mailcow+mailcow-dockerized__data_conf_postfix_master.cf", d / "master.cf")
past = time.time() - 60
for p in d.iterdir():
    os.utime(p, (past, past))
for mode in (False, None):
    ts = []
    for _ in range(20):
        t = time.perf_counter()
        collect(str(d), use_postconf=mode)
        ts.append(time.perf_counter() - t)
    med, worst = statistics.median(ts) * 1000, max(ts) * 1000
    print(f"mailcow main.cf+master.cf use_postconf={mode}: median {med:.1f} ms, max {worst:.1f} ms (20 runs)")
big = Path(tempfile.mkdtemp())  # left in /tmp on purpose: inspectable
(big / "main.cf").write_text("mydestination = " + "a.example, " * 900_000 + "\nmyhostname = x\n")
os.utime(big / "main.cf", (past, past))
t = time.perf_counter()
collect(str(big), use_postconf=False)
print(f"10 MB single-line main.cf (9.9 MB value), file parser: {time.perf_counter() - t:.2f} s")
