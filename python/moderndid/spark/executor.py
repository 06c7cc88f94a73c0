"""SparkExecutor: runs the core's partition kernels with ``mapInArrow``, reduces in the JVM.

Each pass maps every partition of the persisted unit table to a few rows holding its
``Partial`` and reduces them inside Spark as an observed aggregation (one stage): by the
jar's Scala ``ArraySum`` / ``ArrayMax`` aggregators, or without the jar by Spark SQL's
``aggregate`` / ``zip_with``. Keyed sums (per cluster) are grouped by name and key in an
explicitly sized shuffle. Only the reduced arrays (KBs) reach the Python driver.

Spark merges partials in the order their tasks end, and a floating-point sum depends on
the order of its terms, so each partial row carries its partition (column ``part``) and
the sums are added in ascending partition order: a rerun, a retried task or a slow
executor gives the same digits.

With the jar, the multiplier bootstrap also runs in the JVM: the units' ``(key, z)``
blocks go to the Scala ``MammenBootstrap`` aggregator in the same stage, which draws the
multipliers (bit-identical to NumPy's); only the ``(draws x K)`` sums leave the executors.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import Observation
from pyspark.sql import functions as F

from moderndid._version import __version__
from moderndid.engine.executor import NATIVE_BOOTSTRAP, BootstrapRequest
from moderndid.engine.partial import Partial
from moderndid.errors import InvalidOptionError, SparkVersionError
from moderndid.spark.session import (
    carrying_errors,
    job_description,
    spark_schema,
    translated_errors,
)

logger = logging.getLogger("moderndid")

PARTIAL_SCHEMA = pa.schema([
    ("kind", pa.string()),
    ("name", pa.string()),
    ("key", pa.int64()),
    ("shape", pa.list_(pa.int32())),
    ("value", pa.list_(pa.float64())),
])


def partial_to_batch(partial: Partial) -> pa.RecordBatch:
    """Flatten a Partial into rows (keyed sums: one row per key)."""
    rows = [(kind, name, 0, np.asarray(a, dtype=np.float64))
            for kind, items in (("sum", partial.sums), ("max", partial.maxima))
            for name, a in items.items()]
    rows += [("keyed", name, int(key), row) for name, (kk, vv) in partial.keyed.items()
             for key, row in zip(kk.view(np.int64), vv, strict=True)]
    kinds, names, keys, arrays = zip(*rows, strict=True) if rows else ((), (), (), ())
    values = [a.ravel() for a in arrays]
    offsets = np.concatenate([[0], np.cumsum([v.size for v in values])]).astype(np.int32)
    flat = np.concatenate(values) if values else np.empty(0)
    return pa.RecordBatch.from_arrays([
        pa.array(kinds, pa.string()),
        pa.array(names, pa.string()),
        pa.array(keys, pa.int64()),
        pa.array([list(a.shape) for a in arrays], pa.list_(pa.int32())),
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)),
    ], schema=PARTIAL_SCHEMA)


FLAT_SCHEMA = pa.schema([
    ("layout", pa.string()),
    ("sums", pa.list_(pa.float64())),
    ("maxima", pa.list_(pa.float64())),
    ("bkeys", pa.list_(pa.int64())),
    ("bz", pa.list_(pa.float64())),
])


def partial_to_flat(partial: Partial) -> list[pa.RecordBatch]:
    """One row per partition: every sum in one array, every maximum in another, and the
    layout (names and shapes, as JSON) that splits them again; then one row per bootstrap
    block (its units' keys and their rows ``z``, row-major), null in the other columns."""
    if partial.keyed:
        raise RuntimeError("internal error: a pass run with keyed=False returned keyed sums")
    layout = [["sum", name, list(np.shape(a))] for name, a in partial.sums.items()]
    layout += [["max", name, list(np.shape(a))] for name, a in partial.maxima.items()]

    def flat(items: dict[str, np.ndarray]) -> np.ndarray:
        arrays = [np.asarray(a, dtype=np.float64).ravel() for a in items.values()]
        return np.concatenate(arrays) if arrays else np.empty(0)

    return [pa.RecordBatch.from_pydict(
        {"layout": [json.dumps(layout)], "sums": [flat(partial.sums)],
         "maxima": [flat(partial.maxima)], "bkeys": [None], "bz": [None]}, schema=FLAT_SCHEMA),
        *[_bootstrap_rows(np.ascontiguousarray(keys).view(np.int64),
                          np.ascontiguousarray(z, dtype=np.float64))
          for keys, z in partial.bootstrap_blocks]]


# Units per bootstrap row: keeps each JVM array well under G1's humongous-object size
# (half a heap region, 1-16 MB), which whole 65,536-unit blocks exceeded. Measured at 2M
# units (benchmarks/results/*_n2000000_run4 / _boot_run5): JVM peak 5.4 -> 2.3 GB, moments
# pass 19.5 -> 14.7 s.
BOOTSTRAP_ROW_UNITS = 1024


def _bootstrap_rows(keys: np.ndarray, z: np.ndarray) -> pa.RecordBatch:
    """Rows of up to BOOTSTRAP_ROW_UNITS units (keys, row-major z), sharing the numpy
    buffers (no copy); null in the partial-sum columns."""
    n, width = z.shape
    starts = np.append(np.arange(0, n, BOOTSTRAP_ROW_UNITS), n)
    rows = starts.size - 1
    return pa.RecordBatch.from_arrays([
        pa.nulls(rows, pa.string()),
        pa.nulls(rows, pa.list_(pa.float64())),
        pa.nulls(rows, pa.list_(pa.float64())),
        pa.ListArray.from_arrays(pa.array(starts, pa.int32()), pa.array(keys)),
        # int32 offsets: a block's n * width values stay far below 2^31 (65,536 units)
        pa.ListArray.from_arrays(pa.array(starts * width, pa.int32()), pa.array(z.ravel())),
    ], schema=FLAT_SCHEMA)


def partial_from_flat(layout: str, sums: Any, maxima: Any) -> Partial:
    """Split the reduced flat arrays back into named arrays."""
    out = Partial()
    into = {"sum": out.sums, "max": out.maxima}
    flat = {"sum": np.asarray(sums if sums is not None else [], dtype=np.float64),
            "max": np.asarray(maxima if maxima is not None else [], dtype=np.float64)}
    offset = dict.fromkeys(flat, 0)
    for kind, name, shape in json.loads(layout):
        size = math.prod(shape)
        into[kind][name] = flat[kind][offset[kind]: offset[kind] + size].reshape(shape)
        offset[kind] += size
    if any(offset[kind] != flat[kind].size for kind in flat):
        raise RuntimeError("internal error: reduced arrays do not match their layout")
    return out


def partial_from_rows(rows: list[Any]) -> Partial:
    """Rebuild a combined Partial from reduced rows ``(kind, name, key, shape, value)``."""
    out = Partial()
    keyed_rows: dict[str, list[tuple[int, np.ndarray]]] = {}
    for kind, name, key, shape, value in rows:
        arr = np.asarray(value, dtype=np.float64)
        if kind == "keyed":
            keyed_rows.setdefault(name, []).append((key, arr))
        else:
            (out.maxima if kind == "max" else out.sums)[name] = arr.reshape(shape)
    for name, items in keyed_rows.items():
        items.sort(key=lambda kv: np.uint64(np.int64(kv[0])))
        keys = np.array([k for k, _ in items], dtype=np.int64).view(np.uint64)
        out.keyed[name] = (keys, np.vstack([v for _, v in items]))
    return out


JVM_BOOTSTRAP_CONF = "spark.moderndid.jvmBootstrap"
# The column of the partial rows holding their partition (spark_partition_id()).
PART = "part"


class SparkExecutor:
    """Executor over a persisted Spark DataFrame (unit table, or rows of repeated cross
    sections) whose partitions each Python worker converts with ``to_partition``;
    ``jvm_aggregators`` says whether the session has the Scala aggregators."""

    def __init__(self, spark: Any, table: Any, to_partition: Callable[[pa.Table], dict],
                 jvm_aggregators: bool, n_partitions: int):
        self.spark = spark
        self.table = table
        self.to_partition = to_partition
        self.jvm_aggregators = jvm_aggregators
        self.n_partitions = n_partitions
        # The Scala MammenBootstrap aggregator draws and sums the bootstrap in the JVM
        # unless the session turns it off (JVM_BOOTSTRAP_CONF; see docs/distributed.md).
        native = False
        if jvm_aggregators:
            value = str(spark.conf.get(JVM_BOOTSTRAP_CONF, "true")).strip().lower()
            if value not in ("true", "false"):
                raise InvalidOptionError(f"the Spark setting {JVM_BOOTSTRAP_CONF} must be true "
                                         f"or false, not {value!r}")
            native = value == "true"
        self.capabilities = frozenset([NATIVE_BOOTSTRAP] if native else [])

    def run(self, kernel: Any, state: Any, description: str, *, keyed: bool = True,
            bootstrap: BootstrapRequest | None = None) -> Partial:
        """Run ``kernel`` on every partition and reduce the partials inside Spark: with
        ``keyed=False`` one flat row per partition and a single global aggregation (no
        grouping shuffle), otherwise rows grouped by name (and key), which keyed sums such
        as per-cluster sums need."""
        to_partition = self.to_partition
        driver_version = __version__
        flat = not keyed

        @carrying_errors
        def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            from moderndid._version import __version__ as worker_version

            if worker_version != driver_version:
                raise SparkVersionError(
                    f"a Spark executor runs moderndid {worker_version} but the driver runs "
                    f"{driver_version}: install the same version on every node"
                )
            batch_list = list(batches)
            if sum(b.num_rows for b in batch_list) == 0:
                return
            part = to_partition(pa.Table.from_batches(batch_list))
            partial = kernel(part, state)
            if flat:
                yield from partial_to_flat(partial)
            else:
                if partial.bootstrap_blocks:
                    raise RuntimeError("internal error: bootstrap blocks in a keyed pass")
                yield partial_to_batch(partial)

        def mapped(schema: pa.Schema) -> Any:
            # the partition of each partial, in the stage that computes it
            return self.table.mapInArrow(apply, spark_schema(schema)).withColumn(
                PART, F.spark_partition_id())

        start = time.perf_counter()
        with job_description(self.spark, description), translated_errors():
            if bootstrap is not None and (not flat or NATIVE_BOOTSTRAP not in self.capabilities):
                raise ValueError("internal error: a native bootstrap needs a flat pass and "
                                 "the Scala aggregators")
            if flat:
                result = self._reduce_flat(mapped(FLAT_SCHEMA), bootstrap)
            else:
                result = self._reduce_rows(mapped(PARTIAL_SCHEMA))
        logger.debug("%s: %.2f s in Spark", description, time.perf_counter() - start)
        return result

    def _reduce_flat(self, mapped: Any, bootstrap: BootstrapRequest | None) -> Partial:
        """One global aggregation of the flat rows; ``bootstrap`` adds the Scala
        multiplier-bootstrap reduction of the blocks, returned as the sum ``boot``.

        The aggregation is observed while the ``noop`` writer discards the rows: each task
        reduces its rows in its executor JVM and the driver's JVM merges the task buffers,
        in one stage. A plain ``agg`` adds a second stage (a shuffle to one partition) to
        every pass: 0.40 s against 0.25 s per pass (median of 14) on a local[2] session."""
        sums, maxima = self._folds("sums", "maxima")
        columns = [
            F.count("layout").alias("n"),
            F.min("layout").alias("first"),
            F.max("layout").alias("last"),
            sums.alias("sums"),
            maxima.alias("maxima"),
        ]
        if bootstrap is not None:
            seed, draws = bootstrap.seed, bootstrap.draws
            signed_seed = seed - (1 << 64) if seed >= 1 << 63 else seed
            columns.append(F.expr(
                f"moderndid_mammen_bootstrap(CAST({signed_seed} AS BIGINT), {draws}, {PART}, "
                f"bkeys, bz)"
            ).alias("boot"))
        observation = Observation()
        mapped.observe(observation, *columns).write.format("noop").mode("overwrite").save()
        row = observation.get
        if not row or row["n"] == 0:
            return Partial()
        if row["first"] != row["last"]:
            raise RuntimeError("internal error: partitions returned different partial layouts")
        partial = partial_from_flat(row["first"], row["sums"], row["maxima"])
        if bootstrap is not None and row["boot"]:
            boot = np.asarray(row["boot"], dtype=np.float64)
            partial.sums["boot"] = boot.reshape(bootstrap.draws, boot.size // bootstrap.draws)
        return partial

    def _reduce_rows(self, mapped: Any) -> Partial:
        """Group the partials by name (and key) and reduce each group.

        The rows are first shuffled by (kind, name, key) into as many partitions as the
        table has, which the grouping reuses: a bare ``groupBy`` would shuffle into
        spark.sql.shuffle.partitions (200 tasks of a few rows each by default)."""
        mapped = mapped.repartition(self.n_partitions, "kind", "name", "key")
        sums, maxima = self._folds("value", "value")
        reduced = mapped.groupBy("kind", "name", "key").agg(
            F.first("shape").alias("shape"), sums.alias("s"), maxima.alias("m")).collect()
        rows = [(r["kind"], r["name"], r["key"], r["shape"],
                 r["m"] if r["kind"] == "max" else r["s"]) for r in reduced]
        return partial_from_rows(rows)

    def _folds(self, sums: str, maxima: str) -> tuple[Any, Any]:
        """Element-wise sums of the array column ``sums`` (in ascending partition order)
        and maxima of ``maxima``: the Scala aggregators, or without the jar the rows
        collected and folded by Spark SQL's higher-order functions, still one stage (a
        grouped posexplode + sum took a shuffle and a second stage per pass). Null rows are
        skipped. The passes send one row per partition (and key), so ties need no order and
        the driver's JVM holds partitions x (row length) doubles at most."""
        if self.jvm_aggregators:
            return (F.expr(f"moderndid_array_sum({PART}, {sums})"),
                    F.expr(f"moderndid_array_max({maxima})"))

        def fold(column: str, combine: str) -> Any:
            return F.expr(
                f"aggregate(array_sort(collect_list(CASE WHEN {column} IS NOT NULL "
                f"THEN struct({PART} AS p, {column} AS v) END)), CAST(NULL AS ARRAY<DOUBLE>), "
                f"(acc, x) -> CASE WHEN acc IS NULL THEN x.v "
                f"ELSE zip_with(acc, x.v, (a, b) -> {combine}) END)")

        return fold(sums, "a + b"), fold(maxima, "greatest(a, b)")
