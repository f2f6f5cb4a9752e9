"""The amavisd-new collector: ``collect(PATH, ...)`` reads amavis's configuration files in load order.

Load order, as amavisd-new 2.13 reads it: the files given with ``-c`` (upstream: /etc/amavisd.conf),
or on Debian/Ubuntu every file that ``run-parts --list`` yields for /usr/share/amavis/conf.d and then
/etc/amavis/conf.d (Amavis.pm ``find_config_files``). run-parts takes only regular files whose
names consist of letters, digits, ``_`` and ``-`` (so ``50-user.dpkg-old`` and ``local.conf`` are
never read) and sorts them in byte order. Each file is evaluated in turn; ``include_config_files``
inside a file reads further files at that point. Environment-variable and container-entrypoint
overrides (images that rewrite the files at start) are not seen: they are outside the files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from auditor.collect.amavis.evaluate import Evaluator, Include
from auditor.collect.amavis.perl import PerlSyntaxError, split_statements, tokenize
from auditor.model import InputError
from auditor.observations.amavis import AmavisConfig, AmavisFile

MAX_FILE_BYTES = 512 * 1024  # real files are far smaller (Debian's biggest, 15-av_scanners, is 21 KB)
MAX_TOTAL_BYTES = 2 * 1024 * 1024  # bounds the reading time of hostile input to seconds
MAX_FILES = 256
MAX_INCLUDE_DEPTH = 20  # amavis itself stops at 100
DEBIAN_SHARED = "/usr/share/amavis/conf.d"
DEBIAN_ETC = "/etc/amavis/conf.d"
_RUN_PARTS_NAME = re.compile(r"[A-Za-z0-9_-]+")


def run_parts_list(directory: Path) -> tuple[list[Path], list[AmavisFile]]:
    """The files ``run-parts --list DIR`` yields (Debian's default naming rules), and the skipped ones."""
    take: list[Path] = []
    skipped: list[AmavisFile] = []
    try:
        names = sorted(os.listdir(directory), key=lambda n: n.encode("utf-8", "surrogateescape"))
    except OSError as e:
        raise InputError(f"cannot list the folder: {e.strerror or e}", str(directory)) from None
    for name in names:
        p = directory / name
        if not _RUN_PARTS_NAME.fullmatch(name):
            if not p.is_dir():
                skipped.append(
                    AmavisFile(
                        str(p),
                        "skipped",
                        "run-parts skips names with characters other than letters, digits, '_' and '-'",
                    )
                )
            continue
        if p.is_symlink() and not p.exists():
            skipped.append(AmavisFile(str(p), "skipped", "dangling symbolic link (run-parts cannot stat it)"))
            continue
        if not p.is_file():
            continue  # run-parts lists regular files only
        take.append(p)
    return take, skipped


def _load_order(paths: Sequence[str]) -> tuple[list[Path], list[AmavisFile], list[str]]:
    files: list[Path] = []
    skipped: list[AmavisFile] = []
    notes: list[str] = []
    dirs: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError("no such file or folder", raw)
        if p.is_dir():
            root_etc, root_share = p / "etc/amavis/conf.d", p / "usr/share/amavis/conf.d"
            if root_etc.is_dir():  # an unpacked root (dpkg-deb -x, a copy of / ): Debian's two folders
                dirs += [d for d in (root_share, root_etc) if d.is_dir()]
            elif (p / "conf.d").is_dir():  # /etc/amavis
                dirs.append(p / "conf.d")
            else:
                dirs.append(p)
        else:
            dirs.append(p)
    if (
        len(dirs) == 1
        and dirs[0].is_dir()
        and str(dirs[0].resolve()) == DEBIAN_ETC
        and Path(DEBIAN_SHARED).is_dir()
    ):
        dirs.insert(0, Path(DEBIAN_SHARED))
        notes.append(f"read {DEBIAN_SHARED} first, as Debian's amavisd-new does")
    given = {str(d.resolve()) for d in dirs}
    for d in dirs:
        if d.is_dir():
            taken, skip = run_parts_list(d)
            files += taken
            skipped += skip
            if (d / "01-debian").exists() and not any(x.endswith("usr/share/amavis/conf.d") for x in given):
                notes.append(
                    f"{d} looks like Debian's conf.d: Debian reads {DEBIAN_SHARED} before it; "
                    "give that folder "
                    "first to include it (it sets no destiny in the stock package)"
                )
        else:
            files.append(d)
    if len(files) > MAX_FILES:
        raise InputError(
            f"{len(files)} files: more than the {MAX_FILES} an amavis configuration can sensibly have"
        )
    return files, skipped, notes


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(
                f"file is {size / 1048576:.1f} MiB, larger than the {MAX_FILE_BYTES // 1024} KiB limit "
                "for an amavis configuration file",
                str(path),
            )
        data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", str(path)) from None
    if b"\x00" in data[:65536] or b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise InputError("binary file (NUL byte), not a Perl configuration file", str(path), line)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # Perl reads bytes; comments in Latin-1 are common


def collect(paths: Sequence[str] | str) -> AmavisConfig:
    """Read and evaluate the configuration files; raise InputError on unusable input."""
    if isinstance(paths, str):
        paths = [paths]
    files, skipped, notes = _load_order(paths)
    records: list[AmavisFile] = []
    depth = 0

    total = 0

    def read_file(path: Path) -> None:
        nonlocal total
        text = _read_text(path)
        total += len(text)
        if total > MAX_TOTAL_BYTES:
            raise InputError(f"the files read exceed {MAX_TOTAL_BYTES // 1048576} MiB in total", str(path))
        try:
            statements = split_statements(tokenize(text))
        except PerlSyntaxError as e:
            raise InputError(
                f"Perl syntax: {e.message} (amavis would refuse to start)", str(path), e.line
            ) from None
        entry_index = len(records)
        records.append(AmavisFile(str(path), "read"))
        n = ev.run(statements, str(path))
        records[entry_index] = AmavisFile(str(path), "read", statements=n)

    def follow(inc: Include) -> bool:
        nonlocal depth
        base = Path(inc.location.path).parent
        targets = [Path(p) if os.path.isabs(p) else base / p for p in inc.paths]
        if depth >= MAX_INCLUDE_DEPTH:
            return False
        missing = [t for t in targets if not t.is_file()]
        if missing:
            if inc.optional and all(not t.exists() for t in missing):
                records.append(
                    AmavisFile(str(missing[0]), "skipped", f"optional include at {inc.location}: not found")
                )
            return False
        depth += 1
        try:
            for t in targets:
                read_file(t)
        finally:
            depth -= 1
        return True

    ev = Evaluator(follow=follow)
    for f in files:
        read_file(f)
    target = ", ".join(str(p) for p in paths)
    if not records:
        raise InputError("no configuration file to read (run-parts would run none)", target)
    if ev.recognised == 0:
        raise InputError("no amavis setting found: this is not an amavisd-new configuration", target)
    return AmavisConfig(
        target=target,
        files=(*records, *skipped),
        settings=tuple(ev.settings),
        opaque=tuple(ev.opaque),
        recognised=ev.recognised,
        notes=tuple(notes),
        banks_seen=tuple(ev.banks),
    )


__all__ = ["AmavisConfig", "collect", "run_parts_list"]
