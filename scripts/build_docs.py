"""Write the man page and the bash/zsh completions from the argparse definitions.

Usage: .venv/bin/python scripts/build_docs.py [--check]

The files are committed (docs/man/, docs/completions/) so that a build from a checkout or an sdist
needs neither generator, and the wheel installs them under share/. `--check` (run by .ci/run and
tests/packaging) fails when a committed file no longer matches the CLI. The man page's date is kept
when nothing else in it changed, so regenerating does not churn the file.

A script rather than a hidden subcommand: the generators (argparse-manpage, shtab) are dev
dependencies, and the installed command stays exactly the CLI users see.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAN_PAGE = Path("docs/man/backscatter-audit.1")
BASH = Path("docs/completions/backscatter-audit.bash")
ZSH = Path("docs/completions/_backscatter-audit")
URL = "https://github.com/backscatter-auditor/backscatter-auditor"
_TH_DATE = re.compile(r'^(\.TH \S+ "\d+" )"[^"]*"', re.M)


def _parser() -> argparse.ArgumentParser:
    os.environ["COLUMNS"] = "72"  # argparse wraps usage lines to the terminal: fix the width
    sys.path.insert(0, str(ROOT))
    from auditor.cli import build_parser

    return build_parser()


def man_page(parser: argparse.ArgumentParser) -> str:
    from argparse_manpage.manpage import Manpage

    from auditor import __version__

    page = Manpage(
        parser,
        _data={
            "project_name": "backscatter-auditor",
            "version": __version__,
            "description": "find and fix every way a mail site generates backscatter",
            "manual_title": "Backscatter Auditor",
            "url": URL,
        },
    )
    return str(page)


def completions(parser: argparse.ArgumentParser) -> dict[Path, str]:
    import shtab

    return {BASH: shtab.complete(parser, shell="bash"), ZSH: shtab.complete(parser, shell="zsh")}


def _same(old: str, new: str, path: Path) -> bool:
    if path == MAN_PAGE:
        return _TH_DATE.sub(r"\1", old) == _TH_DATE.sub(r"\1", new)
    return old == new


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if a committed file is out of date")
    args = ap.parse_args(argv)
    parser = _parser()
    wanted = {MAN_PAGE: man_page(parser), **completions(parser)}
    stale = []
    for rel, text in wanted.items():
        target = ROOT / rel
        old = target.read_text(encoding="utf-8") if target.is_file() else None
        if old is not None and _same(old, text, rel):
            continue
        stale.append(rel)
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    if args.check and stale:
        names = ", ".join(str(p) for p in stale)
        print(f"build_docs: out of date: {names} (run scripts/build_docs.py)", file=sys.stderr)
        return 1
    verb = "checked" if args.check else f"wrote {len(stale)} of"
    print(f"build_docs: {verb} {len(wanted)} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
