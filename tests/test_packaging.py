"""The wheel carries the Scala jar, and an installed wheel finds it (no scripts/setup.sh)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

import moderndid

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_built_wheel_contains_the_jar_and_the_installed_package_finds_it(tmp_path):
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime to compile the jar with")
    source = tmp_path / "checkout"
    # a clean copy of the tracked files: no jar built by scripts/setup.sh
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    assert not list(source.rglob("*.jar"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(source)], check=True, timeout=900)
    (wheel,) = wheels.glob("moderndid-*.whl")
    jar = f"moderndid/jars/moderndid-spark_2.13-{moderndid.__version__}.jar"
    assert jar in zipfile.ZipFile(wheel).namelist()

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    probe = ("import moderndid.spark as s; from pyspark.sql import SparkSession; "
             "b = s.configure(SparkSession.builder.master('local[1]')); "
             "print(s.jar_path()); print(b._options['spark.jars'])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(target)}, timeout=120,
                          check=True)
    found, configured = done.stdout.strip().splitlines()[-2:]
    assert found.startswith(str(target)) and found.endswith(".jar")
    assert configured == found
