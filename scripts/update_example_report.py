"""Regenerate reports/examples/ from a demo audit of the lab (needs root: the lab uses namespaces).

Usage: sudo .venv/bin/python scripts/update_example_report.py
The integration test tests/integration/test_demo_example.py checks the committed files against a
fresh demo, so run this after a change that changes what the demo reports.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from auditor.demo import run_demo

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "reports", "examples")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run_demo(tmp)
        os.makedirs(EXAMPLES, exist_ok=True)
        for name in ("report.html", "report.md", "report.json", "site.toml"):
            shutil.copy(os.path.join(tmp, name), os.path.join(EXAMPLES, name))
    print(f"updated {os.path.normpath(EXAMPLES)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
