"""Validate a Spark DataFrame for `att_gt` and build its unit table on the executors.

What reaches the driver: column statistics (null counts, the distinct periods and cohorts,
per-cohort unit counts, problem flags) — never unit rows. Panels take one shuffle
(``repartition`` by unit id); repeated cross sections take none.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import Observation
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_type

from moderndid.core.design import MAX_LEVELS, CovariateDesign
from moderndid.core.frames import spark_type_label
from moderndid.engine.panel_blocks import (
    BLOCK_SCHEMA,
    PanelLayout,
    build_blocks,
    partition_from_blocks,
    unit_histogram,
    with_terms,
)
from moderndid.engine.panel_plan import (
    ROWS_PER_TASK,
    add_histogram,
    flag_checks,
    keeps_type,
    partition_count,
    plan_covariates,
    plan_rc,
    rc_metadata,
    row_columns,
    source_columns,
)
from moderndid.engine.protocol import Planner
from moderndid.engine.spec import NUMERIC_ROLES, DidData, DidSpec
from moderndid.engine.unit_table import FLAG_DUPLICATE
from moderndid.spark.session import (
    carrying_errors,
    job_description,
    session_parallelism,
    spark_schema,
)

logger = logging.getLogger("moderndid")

# the roles whose largest absolute value the statistics carry (numeric columns and terms)
MAGNITUDE_CHECKED = (*NUMERIC_ROLES, "covariate (xformla) term")


@dataclass
class SparkDidData:
    """A prepared Spark input: metadata for the driver, a persisted table for the passes."""

    meta: DidData  # partitions is empty: the data stay in Spark
    table: Any
    to_partition: Any
    n_partitions: int
    two_period: bool = False  # triple differences with two periods and a 0/1 group
    subgroups: dict[tuple[float, float], int] = field(default_factory=dict)  # (G, Q) units


def prepare_spark(sdf: Any, spec: DidSpec, spark: Any, n_partitions: int | None,
                  planner: Planner) -> SparkDidData:
    """Validate ``sdf`` and build the persisted unit table (panels) or row table."""
    # one schema analysis (a round trip under Spark Connect) for the names and the types
    types = {f.name: f.dataType for f in sdf.schema.fields}
    columns = list(types)
    design, roles = plan_covariates(
        spec, arrow_schema(types),
        lambda roles: planner.check_columns(roles, columns,
                                            lambda c: spark_type_label(types[c])),
        lambda categorical: _distinct_rows(sdf, categorical, types, spark))
    covariates = design.covariates

    if spec.panel:
        return _prepare_panel(sdf, spec, spark, n_partitions, design, roles, types, planner)

    # Repeated cross sections: one aggregation job of column statistics, then the persisted
    # rows. A formula other than a plain sum is evaluated first, into __moderndid_x<j>.
    checks = [(c, c, role) for c, role in roles]  # (Spark column, user column, role)
    if design.spec is None:
        xcols = list(design.columns)
    else:
        needed = list(dict.fromkeys(c for c, _ in roles))
        sdf, xcols, types = _with_terms(sdf.select(*[_col(c) for c in needed]), design,
                                        {c: types[c] for c in needed})
        checks += [(x, term, "covariate (xformla) term")
                   for x, term in zip(xcols, covariates, strict=True)]
    checked = [c for c, _, _ in checks]
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for c in dict.fromkeys(checked):
        missing = _col(c).isNull()
        if isinstance(types[c], T.FloatType | T.DoubleType):
            missing = missing | F.isnan(_col(c)) | (F.abs(_col(c)) == F.lit(math.inf))
        aggs.append(F.sum(missing.cast("long")).alias(f"__miss_{checked.index(c)}"))
    for i, (c, _, role) in enumerate(checks):  # the planner reads outcome, weights, covariates
        if role in MAGNITUDE_CHECKED:
            v = F.abs(_col(c).cast("double"))
            aggs.append(F.max(F.when(~F.isnan(v) & (v < F.lit(math.inf)), v))
                        .alias(f"__maxabs_{i}"))
    if spec.weightsname:
        aggs += [F.min(_col(spec.weightsname)).alias("__wmin"),
                 F.max(_col(spec.weightsname)).alias("__wmax")]
    float_ids = [c for c in ([spec.idname] if spec.idname else []) + spec.clustervars
                 if isinstance(types.get(c), T.FloatType | T.DoubleType)]
    for j, c in enumerate(float_ids):
        aggs.append(F.sum((_col(c) != F.floor(_col(c))).cast("long")).alias(f"__frac_{j}"))
    aggs.append(F.sort_array(F.collect_set(_col(spec.tname).cast("double"))).alias("__periods"))
    aggs.append(F.sort_array(F.collect_set(_col(spec.gname).cast("double"))).alias("__cohorts"))
    # the cross-products of the covariates with an intercept (upper triangle)
    x = [F.lit(1.0), *[_col(c).cast("double") for c in xcols]]
    upper = [(i, j) for i in range(len(x)) for j in range(i, len(x))] if xcols else []
    aggs += [F.sum(x[i] * x[j]).alias(f"__xx_{i}_{j}") for i, j in upper]
    if spec.pname:
        aggs.append(F.collect_set(_col(spec.pname).cast("double")).alias("__partition"))
    start = time.perf_counter()
    with job_description(spark, "moderndid att_gt: column statistics"):
        stats = sdf.agg(*aggs).collect()[0]
    logger.info("att_gt: column statistics: %.2f s", time.perf_counter() - start)
    xx = np.zeros((len(x), len(x)))
    for i, j in upper:
        xx[i, j] = xx[j, i] = stats[f"__xx_{i}_{j}"]
    planner.check_statistics(
        spec, [(column, role) for _, column, role in checks], int(stats["__rows"]),
        [stats[f"__miss_{checked.index(c)}"] for c, _, _ in checks],
        stats["__wmin"] if spec.weightsname else 1.0, stats["__wmax"] if spec.weightsname else 1.0,
        {c: int(stats[f"__frac_{j}"]) for j, c in enumerate(float_ids)}, xx, covariates,
        [float(stats[f"__maxabs_{i}"] or 0.0) if role in MAGNITUDE_CHECKED else 0.0
         for i, (_, _, role) in enumerate(checks)])
    all_periods = np.array(stats["__periods"], dtype=np.float64)
    two_period, group_map, plan, labels, periods = plan_rc(
        planner, spec, all_periods, np.array(stats["__cohorts"], dtype=np.float64),
        set(stats["__partition"]) if spec.pname else set())
    g = _col(spec.gname).cast("double")
    for raw, first_treated in group_map.items():  # the two-period design's treated code
        g = F.when(g == raw, F.lit(first_treated)).otherwise(g)
    G = F.when((g == 0) | (g > float(all_periods[-1] + spec.anticipation)), F.lit(math.inf))
    for value in plan.to_never:
        G = G.when(g == value, F.lit(math.inf))
    select = [
        _col(spec.tname).cast("double").alias("t"),
        _col(spec.yname).cast("double").alias("y"),
        G.otherwise(g).alias("G"),
        (_col(spec.weightsname).cast("double") if spec.weightsname else F.lit(1.0)).alias("w"),
        *[_col(c).cast("double").alias(f"x{j}") for j, c in enumerate(xcols)],
    ]
    if spec.idname is not None:
        select.insert(0, _col(spec.idname).alias("id"))
    if spec.clustervars:
        select.append(_col(spec.clustervars[0]).alias("cluster"))
    if spec.pname:
        select.append(_col(spec.pname).cast("double").alias("Q"))
    rows = sdf.select(*select)
    if plan.period_cutoff is not None:
        rows = rows.filter(F.col("t") < plan.period_cutoff)
    if plan.dropped:
        rows = rows.filter(~F.col("G").isin(list(plan.dropped)))

    n_parts = partition_count(n_partitions, lambda: int(stats["__rows"]),
                              session_parallelism(spark), rows_per_task=ROWS_PER_TASK)
    if spec.idname is None:
        # Without ids, the multiplier key is the row's position in the input, which
        # depends on how the input is partitioned (documented).
        rows = rows.withColumn("rowkey", F.monotonically_increasing_id())
    rows = rows.repartition(n_parts).persist()
    pairs = [(g, q) for g in labels for q in (0.0, 1.0)] if spec.pname else []
    summary = rows.agg(
        *[F.sum((F.col("G") == g).cast("long")).alias(f"c{i}") for i, g in enumerate(labels)],
        # units per (cohort, eligibility) for triple differences
        *[F.sum(((F.col("G") == g) & (F.col("Q") == q)).cast("long")).alias(f"sg{i}")
          for i, (g, q) in enumerate(pairs)]).collect()[0]
    meta, to_partition = rc_metadata(
        planner, spec, periods, plan, labels,
        {g: int(summary[f"c{i}"] or 0) for i, g in enumerate(labels)}, covariates)
    return SparkDidData(meta, rows, to_partition, n_parts, two_period,
                        {pair: int(summary[f"sg{i}"] or 0) for i, pair in enumerate(pairs)})


def _prepare_panel(sdf: Any, spec: DidSpec, spark: Any, n_partitions: int | None,
                   design: CovariateDesign, roles: list[tuple[str, str]],
                   types: dict[str, Any], planner: Planner) -> SparkDidData:
    """Panels: one shuffle by unit id and one pass over the rows on the executors, which
    checks them, gathers the statistics and builds the persisted unit-table blocks."""
    assert spec.idname is not None
    float_columns = {c for c, t in types.items() if isinstance(t, T.FloatType | T.DoubleType)}
    cols, ordered = row_columns(spec, design, roles, float_columns)
    # Plain covariates as doubles, a formula's columns as they are (see formula_sources).
    # Without weights the unit weight 1 is added after the shuffle, not shuffled with rows.
    select = [_col(c).alias(name) if keeps_type(name) else _col(c).cast("double").alias(name)
              for name, c in source_columns(spec, design).items() if c is not None]
    weighted = spec.weightsname is not None

    # The shuffle's partition count must be fixed before the rows are read, so panels
    # count them first (one small job; for Parquet, mostly footers). Without an explicit
    # count the shuffle would take spark.sql.shuffle.partitions (200 by default, "auto" on
    # Databricks serverless), whatever the size of the data.
    n_parts = partition_count(n_partitions, lambda: _count_rows(sdf, spark),
                              session_parallelism(spark), rows_per_task=ROWS_PER_TASK)

    @carrying_errors
    def build(batches: Any) -> Any:
        batch_list = list(batches)
        if sum(b.num_rows for b in batch_list):
            table = pa.Table.from_batches(batch_list)
            if not weighted:
                table = table.append_column("w", pa.array(np.ones(table.num_rows)))
            yield build_blocks(table, cols)

    start = time.perf_counter()
    blocks = (sdf.select(*select).repartition(n_parts, "id")
              .mapInArrow(build, spark_schema(BLOCK_SCHEMA)).persist())
    with job_description(spark, "moderndid att_gt: unit table (shuffle by unit id, persist)"):
        # one small row per block of units: statistics, never unit rows
        info = blocks.drop("payload").collect()
    logger.info("att_gt: unit table: %.2f s", time.perf_counter() - start)
    try:
        plan = planner.plan_panel(
            [r.asDict() for r in info], spec, design.covariates, ordered, cols,
            lambda layout: _count_units(blocks, layout, spark),
            lambda flags: _raise_flag(flags, sdf, spec, n_parts, planner))
    except BaseException:
        blocks.unpersist()
        raise
    return SparkDidData(plan.meta, blocks,
                        functools.partial(partition_from_blocks, layout=plan.layout),
                        n_parts, plan.two_period, plan.subgroups)


def _count_rows(sdf: Any, spark: Any) -> int:
    """The input's rows, counted in one Spark job: ``DataFrame.count`` takes two under
    adaptive execution (the partial counts' shuffle, then the final count); an observed
    count while the ``noop`` writer discards the rows reads no column of a Parquet input."""
    observation = Observation()
    with job_description(spark, "moderndid att_gt: row count (partitions of the unit table)"):
        (sdf.select(F.lit(1).alias("one")).observe(observation, F.count(F.lit(1)).alias("n"))
         .write.format("noop").mode("overwrite").save())
    row = observation.get
    return int(row["n"]) if row else 0


HISTOGRAM_SCHEMA = pa.schema([("histogram", pa.list_(pa.float64()))])


def _count_units(blocks: Any, layout: PanelLayout, spark: Any
                 ) -> dict[tuple[float, float, int], int]:
    """The recoded histogram counted on the executors (one small row per partition)."""
    def count(batches: Any) -> Any:
        batch_list = list(batches)
        if batch_list:
            flat = unit_histogram(pa.Table.from_batches(batch_list), layout)
            yield pa.RecordBatch.from_pydict({"histogram": [flat]}, schema=HISTOGRAM_SCHEMA)

    with job_description(spark, "moderndid att_gt: unit counts after cutting periods"):
        rows = blocks.mapInArrow(count, spark_schema(HISTOGRAM_SCHEMA)).collect()
    return add_histogram({}, *[r["histogram"] for r in rows])


def _raise_flag(flags: int, sdf: Any, spec: DidSpec, n_parts: int, planner: Planner) -> None:
    """Turn a problem flag into the planner's typed error naming the smallest offending
    unit. The rows are shuffled by unit into ``n_parts`` partitions first, which the grouped
    aggregations reuse, so they do not take spark.sql.shuffle.partitions."""
    assert spec.idname is not None
    idc, tc = _col(spec.idname), _col(spec.tname)
    sdf = sdf.repartition(n_parts, idc)
    if flags & FLAG_DUPLICATE:
        row = (sdf.groupBy(idc.alias("u"), tc.alias("t")).count().filter(F.col("count") > 1)
               .orderBy("u", "t").limit(1).collect()[0])
        raise planner.duplicate_row_error(row[0], row[1], spec)
    for bit, column, what in flag_checks(spec):
        if flags & bit and column is not None:
            row = (sdf.groupBy(idc.alias("u")).agg(F.countDistinct(_col(column)).alias("n"))
                   .filter(F.col("n") > 1).orderBy("u").limit(1).collect()[0])
            raise planner.varying_error(what, column, row[0])


def arrow_schema(types: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of a DataFrame's columns (``pa.null()`` for types Arrow lacks)."""
    fields = []
    for name, kind in types.items():
        try:
            fields.append(pa.field(name, to_arrow_type(kind)))
        except Exception:  # maps, intervals, ...: never a covariate the formula can use
            fields.append(pa.field(name, pa.null()))
    return pa.schema(fields)


def _distinct_rows(sdf: Any, columns: list[str], types: dict[str, Any], spark: Any) -> pa.Table:
    """The distinct rows, without missing values, of a formula's categorical columns (one
    job; at most ``MAX_LEVELS + 1`` rows reach the driver)."""
    with job_description(spark, "moderndid att_gt: levels of the formula's categorical columns"):
        rows = (sdf.select(*[_col(c) for c in columns]).dropna().distinct()
                .limit(MAX_LEVELS + 1).collect())
    schema = arrow_schema({c: types[c] for c in columns})
    return pa.table([pa.array([r[i] for r in rows], type=schema.field(c).type)
                     for i, c in enumerate(columns)], schema=schema)


def _with_terms(sdf: Any, design: CovariateDesign, types: dict[str, Any]
                ) -> tuple[Any, list[str], dict[str, Any]]:
    """``sdf`` (whose columns and types are ``types``) with the formula's covariates
    evaluated on the executors, appended as columns ``__moderndid_x<j>``; their names; the
    types."""
    columns = list(types)
    # mapInArrow resolves the input's columns by unquoted name, which fails for names
    # with dots ("first.treat"): the columns cross it under positional names.
    inner = [f"__moderndid_c{i}" for i in range(len(columns))]
    names = [f"__moderndid_x{j}" for j in range(len(design.covariates))]
    schema = T.StructType([T.StructField(i, types[c]) for i, c in zip(inner, columns, strict=True)]
                          + [T.StructField(x, T.DoubleType()) for x in names])
    formula_inner = [inner[columns.index(c)] for c in design.columns]

    @carrying_errors
    def evaluate(batches: Any) -> Any:
        for batch in batches:
            yield from with_terms(pa.Table.from_batches([batch]), design, formula_inner,
                                  names).to_batches()

    mapped = (sdf.select(*[_col(c).alias(i) for c, i in zip(columns, inner, strict=True)])
              .mapInArrow(evaluate, schema))
    out = mapped.select(*[F.col(i).alias(c) for c, i in zip(columns, inner, strict=True)],
                        *names)
    return out, names, {**types, **{x: T.DoubleType() for x in names}}


def _col(name: str) -> Any:
    """A user column by exact name (names may hold dots or spaces)."""
    return F.col("`" + name.replace("`", "``") + "`")
