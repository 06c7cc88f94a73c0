"""Build hook: the wheel (and an editable install) carries the Scala jar of the Spark engine.

``build_py`` compiles ``scala/`` with the Scala compiler inside pyspark (a build requirement,
pyproject.toml) into the package's ``jars/`` folder, so ``pip wheel .`` and ``pip install .``
from a clean checkout ship the jar. Without Java the jar is skipped with a message and the
package falls back to the Spark SQL reductions.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent


class BuildPyWithJar(build_py):
    """``build_py`` that also compiles the Scala jar."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            out = ROOT / "python" / "moderndid" / "jars"
        else:
            out = pathlib.Path(self.build_lib) / "moderndid" / "jars"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_jar.py"), "--out",
                        str(out)], check=True)


setup(cmdclass={"build_py": BuildPyWithJar})
