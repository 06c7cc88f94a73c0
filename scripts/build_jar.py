"""Compile the Scala sources into python/moderndid/jars/ with the compiler inside pyspark.

No sbt and no network: the pyspark wheel ships scala-compiler and every Spark jar. The jar
is named after the Python package version, which the Spark engine checks at run time.
Run with the project's interpreter: ``.venv/bin/python scripts/build_jar.py``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "python/moderndid/jars",
                        help="folder of the jar (default: the package's jars/ folder)")
    out_dir = parser.parse_args(argv).out
    try:
        import pyspark
    except ImportError:
        print("pyspark is not installed: skipping the Scala jar", file=sys.stderr)
        return 0
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        print("no Java runtime: skipping the Scala jar", file=sys.stderr)
        return 0
    version = re.search(r'__version__ = "([^"]+)"',
                        (ROOT / "python/moderndid/_version.py").read_text()).group(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"moderndid-spark_2.13-{version}.jar"
    sources = sorted((ROOT / "scala/src/main/scala").rglob("*.scala"))
    newest = max(p.stat().st_mtime for p in sources)
    if target.exists() and target.stat().st_mtime > newest:
        return 0
    for stale in out_dir.glob("*.jar"):
        stale.unlink()
    jars = pathlib.Path(pyspark.__file__).parent / "jars"
    with tempfile.TemporaryDirectory() as tmp:
        info = pathlib.Path(tmp) / "BuildInfo.scala"
        info.write_text(f'package moderndid\n\nobject BuildInfo {{ val version: String = "{version}" }}\n')
        cmd = ["java", "-cp", f"{jars}/*", "scala.tools.nsc.Main", "-usejavacp", "-nowarn",
               "-d", str(target), str(info), *map(str, sources)]
        subprocess.run(cmd, check=True)
    shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    print(f"built {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
