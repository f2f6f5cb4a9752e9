"""Build hook only: all metadata and options are in pyproject.toml.

The probe scenarios' source of truth is the top-level probes/ folder (one TOML file per probe, next
to its README). A wheel must carry them inside the package, so build_py copies them to
auditor/probes, where auditor/resources.py finds them. An editable install reads probes/ in place.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROBES = Path(__file__).resolve().parent / "probes"
PROBE_FILES = ("*.toml", "README.md")


class BuildPyWithProbes(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib, "auditor", "probes")
        self.mkpath(str(target))
        for pattern in PROBE_FILES:
            for src in sorted(PROBES.glob(pattern)):
                self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildPyWithProbes})
