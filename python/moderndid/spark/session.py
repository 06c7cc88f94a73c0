"""Finding the Spark session, the moderndid jar, and what a session can do."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any

from moderndid._version import __version__
from moderndid.errors import (
    ModernDiDError,
    SparkEnvironmentError,
    SparkTaskLostError,
    SparkVersionError,
    error_from_remote,
    remote_error_text,
)

logger = logging.getLogger("moderndid")

ARROW_BATCH_ROWS = 100_000  # measured: 4.9 s -> 4.1 s on 10M rows against Spark's default


def jar_path() -> Path | None:
    """Path of the packaged moderndid jar, or None when it was not built."""
    folder = resources.files("moderndid") / "jars"
    try:
        candidates = sorted(Path(str(folder)).glob("moderndid-spark_*.jar"))
    except OSError:
        return None
    if not candidates:
        return None
    jar = candidates[-1]
    if not jar.name.endswith(f"-{__version__}.jar"):
        raise SparkVersionError(
            f"the packaged jar {jar.name} does not match moderndid {__version__}; rebuild it "
            "with `python scripts/build_jar.py`"
        )
    return jar


def configure(builder: Any) -> Any:
    """Add the moderndid jar and recommended settings to a ``SparkSession.builder``.

    Existing ``spark.jars`` and ``spark.sql.extensions`` entries are kept; the jar's
    ``moderndid.Extensions`` registers the aggregators in every session, including those of
    a local Spark Connect server started with ``SparkSession.builder.remote("local[N]")``.
    For a running server (``remote("sc://...")``) only session settings are added: its jar
    and extensions are set where the server starts. For a local master (or none set), Python
    workers are pointed at this interpreter, which has moderndid installed (Spark would
    otherwise start the system Python). Returns the builder, so calls chain::

        spark = moderndid.spark.configure(SparkSession.builder.master("local[4]")).getOrCreate()
    """
    options = dict(getattr(builder, "_options", {}))
    remote = str(options.get("spark.remote", ""))
    builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch",
                             str(ARROW_BATCH_ROWS))
    if remote.startswith("sc://"):
        # A running Connect server: its jars, extensions and Python are fixed at its start
        # (docs/distributed.md, "Spark Connect"); only session settings can be sent.
        return builder
    # a local master, or remote("local[N]"), which starts a local Connect server
    master = str(options.get("spark.master", remote or "local"))
    if master.startswith("local") and "spark.pyspark.python" not in options:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
    jar = jar_path()
    if jar is not None:
        existing = options.get("spark.jars", "")
        jars = [j for j in existing.split(",") if j] + [str(jar)]
        builder = builder.config("spark.jars", ",".join(dict.fromkeys(jars)))
        extensions = [e for e in str(options.get("spark.sql.extensions", "")).split(",") if e]
        builder = builder.config("spark.sql.extensions",
                                 ",".join(dict.fromkeys([*extensions, EXTENSIONS_CLASS])))
    return builder


def is_connect(spark: Any) -> bool:
    """Whether ``spark`` is a Spark Connect session (no JVM on the client)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def resolve_session(spark: Any = None) -> Any:
    """The given session, else the active one, else a new local session with the jar."""
    if spark is not None:
        return spark
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # configure points the local executors at this interpreter (its packages)
    return configure(SparkSession.builder.master("local[*]").appName("moderndid")).getOrCreate()


EXTENSIONS_CLASS = "moderndid.Extensions"  # spark.sql.extensions: the jar's registrar
DEFAULT_PARALLELISM = 8  # when a Connect session says nothing about its cores


def register_aggregators(spark: Any) -> bool:
    """Make the JVM reductions available to ``spark``; False where unavailable.

    Classic sessions register them through the JVM gateway. Spark Connect clients have no
    gateway: the server's sessions have them when it was started with the jar and the
    extension (what :func:`configure` sets), which ``moderndid_version()`` checks (one round
    trip, no Spark job). Either way the log says which reduction runs."""
    if is_connect(spark):
        version = _connect_jar_version(spark)
        if version is None:
            logger.info("moderndid: the Spark Connect server has no moderndid aggregators "
                        "(start it with the moderndid jar on spark.jars and "
                        "spark.sql.extensions=%s); partial sums are reduced with Spark SQL "
                        "and the bootstrap is drawn in the Python workers", EXTENSIONS_CLASS)
            return False
    else:
        try:
            version = spark._jvm.moderndid.Register.register(spark._jsparkSession)
        except Exception:  # the jar is not on this session's classpath
            logger.info("moderndid: the moderndid jar is not on the Spark classpath; partial "
                        "sums are reduced with Spark SQL instead of the Scala aggregators")
            return False
    if str(version) != __version__:
        raise SparkVersionError(
            f"the moderndid jar on the Spark classpath is version {version}, the Python "
            f"package is {__version__}: put the matching jar on spark.jars "
            "(moderndid.spark.configure does this)"
        )
    logger.info("moderndid: partial sums are reduced by the moderndid jar's Scala "
                "aggregators (version %s)", version)
    return True


def _connect_jar_version(spark: Any) -> str | None:
    """The version reported by the server session's ``moderndid_version()``, or None when
    the function is missing (jar or extension absent on the server)."""
    def probe() -> str | None:
        try:
            # an inline table is a local relation: the server's driver evaluates the
            # projection, no Spark job runs
            row = spark.sql("SELECT moderndid_version() AS v FROM VALUES (1)").collect()[0]
        except Exception as exc:
            if "moderndid_version" not in str(exc) and "UNRESOLVED_ROUTINE" not in str(exc):
                raise
            return None
        return str(row["v"])

    return _per_session(_CONNECT_VERSIONS, spark, probe)


# Connect session id -> the jar version its server session reported (None: no jar); asked
# once per session, as the server's registrations last as long as the session.
_CONNECT_VERSIONS: dict[str, str | None] = {}
_PARALLELISM: dict[str, int] = {}  # Connect session id -> its parallelism


def _per_session(cache: dict[str, Any], spark: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, once per Connect session (each read is a round trip)."""
    key = str(getattr(spark, "session_id", id(spark)))
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def session_parallelism(spark: Any) -> int:
    """How many tasks the session runs at once, read without ``sparkContext`` under Connect.

    Classic sessions report ``defaultParallelism``. A Connect client reads
    ``spark.default.parallelism`` when a positive integer, else the cores of a ``local[N]``
    master, else ``DEFAULT_PARALLELISM`` ("auto" on Databricks serverless, unreadable keys
    and garbage fall through). ``spark.sql.shuffle.partitions`` is deliberately not a
    source: it sizes shuffles of SQL queries, not the cluster (200 by default)."""
    if not is_connect(spark):
        with suppress(Exception):  # else fall back to the settings
            return max(1, int(spark.sparkContext.defaultParallelism))

    def read() -> int:  # both settings are fixed when the cluster starts
        for name in ("spark.default.parallelism", "spark.master"):
            try:
                parsed = parse_parallelism(spark.conf.get(name, None))
            except Exception:  # a key the server does not let this client read
                continue
            if parsed is not None:
                return parsed
        return DEFAULT_PARALLELISM

    return int(_per_session(_PARALLELISM, spark, read))


def parse_parallelism(value: Any) -> int | None:
    """Cores from ``spark.default.parallelism`` or a local master (``local``, ``local[4]``,
    ``local[4, 2]``, ``local[*]``); None for anything else ("auto", "yarn", garbage)."""
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit():
        return int(text) if int(text) > 0 else None
    if text == "local":
        return 1
    match = re.fullmatch(r"local\[\s*(\d+|\*)\s*(?:,\s*\d+\s*)?\]", text)
    if match is None:
        return None
    if match.group(1) == "*":
        return os.cpu_count() or DEFAULT_PARALLELISM
    return int(match.group(1)) or None


def spark_schema(schema: Any) -> Any:
    """A Spark ``StructType`` for a pyarrow schema, built on the client: a DDL string would
    cost a parsing round trip to a Connect server each time a plan is sent."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


@contextmanager
def job_description(spark: Any, text: str) -> Iterator[None]:
    """Label the Spark jobs started inside (visible in the Spark UI) on classic sessions."""
    def label(value: str | None) -> None:
        if not is_connect(spark):
            with suppress(Exception):  # never fail an estimation over a label
                spark.sparkContext.setJobDescription(value)

    label(text)
    try:
        yield
    finally:
        label(None)


def carrying_errors(function: Callable[[Iterator[Any]], Iterator[Any]]
                    ) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """Wrap a ``mapInArrow`` function so that a moderndid error it raises on an executor
    reaches the driver with its class (:func:`translated_errors` raises it again)."""

    @functools.wraps(function)
    def wrapped(batches: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from function(batches)
        except ModernDiDError as exc:
            raise RuntimeError(remote_error_text(exc)) from None

    return wrapped


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn failures inside Spark's Python workers into moderndid's typed errors."""
    try:
        yield
    except ModernDiDError:
        raise
    except Exception as exc:
        text = str(exc)
        if "ModuleNotFoundError" in text or "No module named" in text:
            missing = re.search(r"No module named '([^']+)'", text)
            raise SparkEnvironmentError(
                f"Spark's Python workers cannot import {missing.group(1) if missing else 'a module'}"
                f": they must run an interpreter with moderndid installed (this driver runs "
                f"{sys.executable}); set PYSPARK_PYTHON or spark.pyspark.python, or use "
                "moderndid.spark.configure(builder)"
            ) from None
        remote = error_from_remote(text)
        if remote is not None:
            raise remote from None
        if "Job aborted due to stage failure" in text:
            raise task_lost(text) from exc
        raise


def task_lost(text: str) -> SparkTaskLostError:
    """The typed error for Spark's "job aborted: task failed N times" (what was lost and
    why)."""
    attempts = re.search(r"failed (\d+) times?", text)
    where = re.search(r"Lost task ([\d.]+) in stage ([\d.]+)", text)
    reason = re.search(r"most recent failure: Lost task [^:]*: ([^\n]+)", text)
    return SparkTaskLostError(
        "Spark gave up on a task of this fit"
        + (f" after {attempts.group(1)} attempt(s)" if attempts else "")
        + (f" (task {where.group(1)} of stage {where.group(2)})" if where else "")
        + ": " + (reason.group(1).strip()[:300] if reason else "see the executor logs")
        + ". Nothing was estimated: the executors running the fit died or failed (memory, "
        "a crashed Python worker); give them more memory, raise spark.task.maxFailures, or "
        "use smaller partitions (n_partitions)")
