"""Shared fixtures: one local SparkSession for every Spark test of the run.

Starting a JVM costs 10-20 s, so all Spark test modules share the session-scoped ``spark``
fixture (``local[2]``, the moderndid jar on the classpath via
:func:`moderndid.spark.configure`). Modules that use it skip when pyspark or Java is
missing; importing this file never imports pyspark.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest

# PySpark 4.3 warns on import and on pandas conversions that pandas >= 3 is not fully
# supported; the tests only move small numeric frames through it.
PANDAS3_WARNING = "ignore:PySpark does not yet fully support pandas:FutureWarning"


def java_available() -> bool:
    """Whether a Java runtime for a local Spark JVM can be found."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return True
    return shutil.which("java") is not None


def require_spark() -> None:
    """Skip the calling test module when pyspark or Java is missing."""
    pytest.importorskip("pyspark", reason="pyspark is not installed")
    if not java_available():
        pytest.skip("no Java runtime (java / JAVA_HOME) for a local Spark session",
                    allow_module_level=True)


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test run (stopped at the end of the session)."""
    require_spark()
    # Python workers of a local session must run this interpreter (its packages).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        from pyspark.sql import SparkSession

        import moderndid.spark

        builder = (
            SparkSession.builder.master("local[2]")
            .appName("moderndid-tests")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.default.parallelism", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        session = moderndid.spark.configure(builder).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
