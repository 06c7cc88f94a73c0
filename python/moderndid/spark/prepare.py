"""Validate a Spark DataFrame for `att_gt` and build its unit table on the executors.

What reaches the driver: column statistics (null counts, the distinct periods and cohorts,
per-cohort unit counts, problem flags) — never unit rows. Panels take one shuffle
(``repartition`` by unit id); repeated cross sections take none.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moderndid.core.design import _plain_terms as plain_terms
from moderndid.core.design import parse_rhs
from moderndid.did.preprocess import NUMERIC_ROLES, DidData, DidSpec, column_roles
from moderndid.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    DataStructureError,
    InvalidOptionError,
    MissingValuesError,
    SingularDesignError,
)
from moderndid.spark.session import set_job_description
from moderndid.spark.unit_table import (
    BLOCK_SCHEMA_DDL,
    FLAG_CLUSTER_VARIES,
    FLAG_DUPLICATE,
    FLAG_GROUP_VARIES,
    FLAG_PARTITION_VARIES,
    FLAG_WEIGHT_VARIES,
    decode_blocks,
    encode_blocks,
    partition_from_rows,
    partition_from_units,
    units_from_rows,
)

logger = logging.getLogger("moderndid")

ROWS_PER_PARTITION = 2_000_000  # more rows than this per partition raises n_partitions


@dataclass
class SparkDidData:
    """A prepared Spark input: metadata for the driver, a persisted table for the passes."""

    meta: DidData  # partitions is empty: the data stay in Spark
    table: Any
    to_partition: Any
    n_partitions: int
    two_period: bool = False  # triple differences with two periods and a 0/1 group
    subgroups: dict[tuple[float, float], int] = field(default_factory=dict)  # (G, Q) units


def prepare_spark(sdf: Any, spec: DidSpec, spark: Any, n_partitions: int | None) -> SparkDidData:
    """Validate ``sdf`` and build the persisted unit table (panels) or row table."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    columns = sdf.columns
    formula = parse_rhs(spec.xformla)
    covariates: list[str] = []
    if formula is not None:
        names = plain_terms(formula)
        if names is None:
            raise InvalidOptionError(
                f"on Spark, xformla must be a sum of columns (e.g. '~ x1 + x2'), got "
                f"{spec.xformla!r}: add transformed or dummy columns to the DataFrame first"
            )
        covariates = names
    roles = column_roles(spec, covariates)
    for column, role in roles:
        if column not in columns:
            raise ColumnNotFoundError(column, role, columns)
    types = {f.name: f.dataType for f in sdf.schema.fields}
    for column, role in [(c, r) for c, r in roles if r in NUMERIC_ROLES]:
        if not isinstance(types[column], T.NumericType | T.BooleanType):
            raise ColumnTypeError(
                f"{role} column {column!r} must be numeric, but has type "
                f"{types[column].simpleString()}"
            )

    # One aggregation job: row count, missing values per column, smallest weight.
    checked = [c for c, _ in roles]
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for c in dict.fromkeys(checked):
        missing = _col(c).isNull()
        if isinstance(types[c], T.FloatType | T.DoubleType):
            missing = missing | F.isnan(_col(c))
        aggs.append(F.sum(missing.cast("long")).alias(f"__miss_{checked.index(c)}"))
    if spec.weightsname:
        aggs.append(F.min(_col(spec.weightsname)).alias("__wmin"))
        aggs.append(F.max(_col(spec.weightsname)).alias("__wmax"))
    float_ids = [c for c in ([spec.idname] if spec.idname else []) + spec.clustervars
                 if isinstance(types_of(sdf).get(c), T.FloatType | T.DoubleType)]
    for j, c in enumerate(float_ids):
        aggs.append(F.sum((_col(c) != F.floor(_col(c))).cast("long")).alias(f"__frac_{j}"))
    aggs.append(F.sort_array(F.collect_set(_col(spec.tname).cast("double"))).alias("__periods"))
    aggs.append(F.sort_array(F.collect_set(_col(spec.gname).cast("double"))).alias("__cohorts"))
    aggs += _crossproduct_aggs(covariates)
    if spec.pname:
        aggs.append(F.collect_set(_col(spec.pname).cast("double")).alias("__partition"))
    start = time.perf_counter()
    set_job_description(spark, "moderndid att_gt: column statistics")
    try:
        stats = sdf.agg(*aggs).collect()[0]
    finally:
        set_job_description(spark, None)
    logger.info("att_gt: column statistics: %.2f s", time.perf_counter() - start)
    if stats["__rows"] == 0:
        raise DataStructureError("the data has no rows")
    for c, role in roles:
        n_missing = stats[f"__miss_{checked.index(c)}"]
        if n_missing:
            raise MissingValuesError(
                f"{role} column {c!r} has {n_missing} missing or non-finite value(s); "
                "drop or impute them first"
            )
    if spec.weightsname and stats["__wmin"] < 0:
        raise DataStructureError(f"weights column {spec.weightsname!r} has negative values")
    if spec.weightsname and not stats["__wmax"] > 0:
        raise DataStructureError(f"weights column {spec.weightsname!r} is zero everywhere")
    for j, c in enumerate(float_ids):
        if stats[f"__frac_{j}"]:
            role = "unit id (idname)" if c == spec.idname else "cluster (clustervars)"
            raise ColumnTypeError(
                f"{role} column {c!r} holds non-integer numbers: identifiers must be integers "
                "or strings")

    _check_covariate_rank(stats, covariates)
    periods = np.array(stats["__periods"], dtype=np.float64)
    raw_cohorts = np.array(stats["__cohorts"], dtype=np.float64)
    g = _col(spec.gname).cast("double")
    two_period = False
    if spec.pname:
        values = sorted(stats["__partition"])
        if not set(values) <= {0.0, 1.0}:
            raise DataStructureError(
                f"partition column {spec.pname!r} must hold 0 (ineligible) and 1 (eligible), "
                f"found {', '.join(f'{v:g}' for v in values[:6])}")
        # Two periods with a 0/1 group column: the two-period DDD (treated in period 2).
        two_period = periods.size == 2 and raw_cohorts.size == 2 and (
            set(raw_cohorts) == {0.0, 1.0} or set(raw_cohorts) == {0.0, float(periods[1])})
        if two_period and set(raw_cohorts) == {0.0, 1.0}:
            g = F.when(g == 1, F.lit(float(periods[1]))).otherwise(F.lit(0.0))
            raw_cohorts = np.array([0.0, periods[1]])
    plan = _cohort_plan(raw_cohorts, periods, spec)
    labels = _cohort_labels(raw_cohorts, periods, plan, spec)

    G = F.when((g == 0) | (g > float(periods[-1] + spec.anticipation)), F.lit(math.inf))
    for value in plan.to_never:
        G = G.when(g == value, F.lit(math.inf))
    G = G.otherwise(g)
    select = [
        _col(spec.tname).cast("double").alias("t"),
        _col(spec.yname).cast("double").alias("y"),
        G.alias("G"),
        (_col(spec.weightsname).cast("double") if spec.weightsname else F.lit(1.0)).alias("w"),
        *[_col(c).cast("double").alias(f"x{j}") for j, c in enumerate(covariates)],
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
        periods = periods[periods < plan.period_cutoff]
    if plan.dropped:
        rows = rows.filter(~F.col("G").isin(list(plan.dropped)))
    if periods.size < 2:
        raise DataStructureError(f"time column {spec.tname!r} has fewer than two periods")

    n_rows = int(stats["__rows"])
    parallelism = _default_parallelism(spark)
    n_parts = n_partitions or max(parallelism, math.ceil(n_rows / ROWS_PER_PARTITION))
    if not isinstance(n_parts, int) or n_parts < 1:
        raise InvalidOptionError(f"n_partitions must be a positive integer, got {n_partitions!r}")
    k = len(covariates)
    xcols = [f"x{j}" for j in range(k)]
    names = ["(Intercept)", *covariates]
    clustered = bool(spec.clustervars)

    if not spec.panel:
        if spec.idname is None:
            # Without ids, the multiplier key is the row's position in the input, which
            # depends on how the input is partitioned (documented).
            rows = rows.withColumn("rowkey", F.monotonically_increasing_id())
        rows = rows.repartition(n_parts).persist()
        summary = rows.agg(*[F.sum((F.col("G") == g).cast("long")).alias(f"c{i}")
                             for i, g in enumerate(labels)],
                           *_subgroup_aggs(labels, spec)).collect()[0]
        counts = {g: int(summary[f"c{i}"] or 0) for i, g in enumerate(labels)}
        counts = {g: c for g, c in counts.items() if c}
        meta = _metadata("rc", periods, counts, plan, names, n_rows=sum(counts.values()),
                         n_units=sum(counts.values()), clustered=clustered, xtv=False, spec=spec)
        has_id = spec.idname is not None

        def rc_partition(table: Any) -> dict:
            return partition_from_rows(table, periods, xcols, clustered, has_id)

        return SparkDidData(meta, rows, rc_partition, n_parts, two_period,
                            _subgroups(summary, labels, spec))

    periods_local = periods
    T_ = periods.size
    with_q = bool(spec.pname)

    def build_blocks(batches: Any) -> Any:
        import pyarrow as pa

        batch_list = list(batches)
        if not batch_list:
            return
        table = pa.Table.from_batches(batch_list)
        if table.num_rows:
            units = units_from_rows(table, periods_local, xcols, clustered)
            yield encode_blocks(units, labels, T_, with_q)

    start = time.perf_counter()
    blocks = (rows.repartition(n_parts, "id").mapInArrow(build_blocks, BLOCK_SCHEMA_DDL)
              .persist())
    set_job_description(spark, "moderndid att_gt: unit table (shuffle by unit id, persist)")
    try:
        # one small row per block of units: counts and problem flags, never unit rows
        block_rows = blocks.select("units", "counts", "flags", "xtv").collect()
    finally:
        set_job_description(spark, None)
    logger.info("att_gt: unit table: %.2f s", time.perf_counter() - start)
    n_labels = len(labels)
    counts_sum = np.zeros(2 * n_labels + 2 + (2 * n_labels if with_q else 0), dtype=np.int64)
    flags = 0
    xtv = False
    for r in block_rows:
        counts_sum += np.asarray(r["counts"], dtype=np.int64)
        flags |= int(r["flags"])
        xtv = xtv or bool(r["xtv"])
    all_units = counts_sum[:n_labels]
    full_units = counts_sum[n_labels:2 * n_labels]
    n_all = int(sum(r["units"] for r in block_rows))
    n_complete, n_rows_observed = int(counts_sum[2 * n_labels]), int(counts_sum[2 * n_labels + 1])
    subgroup_counts = counts_sum[2 * n_labels + 2:]
    if flags:
        blocks.unpersist()
        _raise_flag(flags, sdf, spec)
    kind = "panel"
    balance = False
    if n_complete < n_all:
        if spec.allow_unbalanced_panel:
            kind = "unbalanced"
        else:
            warnings.warn(
                f"Dropped {n_all - n_complete} of {n_all} units not "
                f"observed in all {T_} periods (balancing the panel); pass "
                "allow_unbalanced_panel=True to keep them", UserWarning, stacklevel=4)
            balance = True
    which = full_units if kind == "panel" else all_units
    counts = {g: int(c) for g, c in zip(labels, which, strict=True) if c}
    n_units = sum(counts.values())
    n_obs = n_units * T_ if kind == "panel" else n_rows_observed
    try:
        meta = _metadata(kind, periods, counts, plan, names, n_rows=n_obs, n_units=n_units,
                         clustered=clustered, xtv=xtv, spec=spec)
    except Exception:
        blocks.unpersist()
        raise
    complete_periods = T_ if balance else None

    def unit_partition(table: Any) -> dict:
        units = decode_blocks(table, complete_periods)
        return partition_from_units(units, kind, T_, k, clustered)

    subgroups = {}
    if with_q:
        # units per (cohort, eligibility), over all units as the in-memory engine counts them
        subgroups = {(g, q): int(subgroup_counts[2 * i + j])
                     for i, g in enumerate(labels) for j, q in enumerate((0.0, 1.0))}
    return SparkDidData(meta, blocks, unit_partition, n_parts, two_period, subgroups)


def _subgroup_aggs(labels: list[float], spec: DidSpec) -> list[Any]:
    """Units per (cohort, eligibility) for triple differences."""
    from pyspark.sql import functions as F

    if not spec.pname:
        return []
    return [F.sum(((F.col("G") == g) & (F.col("Q") == q)).cast("long")).alias(f"sg{i}_{int(q)}")
            for i, g in enumerate(labels) for q in (0.0, 1.0)]


def _subgroups(row: Any, labels: list[float], spec: DidSpec) -> dict[tuple[float, float], int]:
    if not spec.pname:
        return {}
    return {(g, q): int(row[f"sg{i}_{int(q)}"] or 0)
            for i, g in enumerate(labels) for q in (0.0, 1.0)}


@dataclass
class _CohortPlan:
    to_never: list[float]
    dropped: list[float]
    excluded: frozenset[float]
    period_cutoff: float | None


def _cohort_plan(raw: np.ndarray, periods: np.ndarray, spec: DidSpec) -> _CohortPlan:
    """The in-memory engine's cohort recoding (preprocess._recode_cohorts), on distinct values."""
    g = np.where((raw == 0) | (raw > periods[-1] + spec.anticipation), np.inf, raw)
    if (g < 0).any():
        raise DataStructureError(f"group column {spec.gname!r} has negative values")
    treated = np.isfinite(g)
    bad = treated & (g <= periods[-1]) & ~np.isin(g, periods)
    if bad.any():
        raise DataStructureError(
            f"group column {spec.gname!r} has first-treated period {g[bad][0]:g}, which is "
            f"not one of the time periods in {spec.tname!r}"
        )
    to_never: list[float] = []
    excluded: frozenset[float] = frozenset()
    cutoff = None
    if treated.all():
        latest = float(g.max())
        warnings.warn(
            f"No never-treated units: cohort {latest:g} (the last treated) serves as the "
            f"comparison group and periods from {latest - spec.anticipation:g} on are dropped",
            UserWarning, stacklevel=5)
        cutoff = latest - spec.anticipation
        if spec.control_group == "nevertreated":
            to_never = [latest]
        else:
            excluded = frozenset([latest])
    cohorts = g[np.isfinite(g) & ~np.isin(g, to_never)]
    first = periods[0] if cutoff is None else periods[periods < cutoff][0]
    dropped = [float(v) for v in cohorts if v <= first + spec.anticipation]
    if dropped:
        what = "units" if spec.panel else "observations"
        warnings.warn(
            f"Dropped the {what} of {len(dropped)} cohort(s) already treated in the first "
            f"period (allowing for anticipation = {spec.anticipation:g}): "
            f"{', '.join(f'{v:g}' for v in dropped)}", UserWarning, stacklevel=5)
    return _CohortPlan(to_never=to_never, dropped=dropped, excluded=excluded,
                       period_cutoff=cutoff)


def _metadata(kind: str, periods: np.ndarray, counts: dict[float, int], plan: _CohortPlan,
              names: list[str], n_rows: int, n_units: int, clustered: bool, xtv: bool,
              spec: DidSpec) -> DidData:
    cohorts = np.array(sorted(g for g in counts if np.isfinite(g) and g not in plan.excluded))
    if cohorts.size == 0:
        raise DataStructureError("no treated cohort is left to estimate: every unit is never "
                                 "treated (group 0) or was dropped")
    required = len(names) - 1 + 5
    # counts are units, except for repeated cross sections (observations over all periods)
    per_period = periods.size if kind == "rc" else 1
    small = {g: c / per_period for g, c in counts.items() if c / per_period < required}
    if small:
        if math.inf in small and spec.control_group == "nevertreated" and math.inf in counts:
            raise DataStructureError(
                f"the never-treated group has only about {small[math.inf]:g} units; at least "
                f"{required} are needed with these covariates (try control_group='notyettreated')"
            )
        listed = ", ".join(f"{'never treated' if math.isinf(g) else f'{g:g}'} ({s:g})"
                           for g, s in sorted(small.items()))
        warnings.warn(f"Small groups (units per cohort, fewer than {required}): {listed}; "
                      "estimates for them may be unreliable", UserWarning, stacklevel=4)
    return DidData(kind=kind, periods=periods, cohorts=cohorts, n_units=n_units, n_obs=n_rows,
                   covariate_names=names, partitions=[], clustered=clustered,
                   x_time_varying=xtv, cohort_counts=counts)


def _crossproduct_aggs(covariates: list[str]) -> list[Any]:
    """Aggregations of the covariates' cross-products (with an intercept), named ``__xx_i_j``."""
    from pyspark.sql import functions as F

    cols = [F.lit(1.0), *[_col(c).cast("double") for c in covariates]]
    return [F.sum(cols[i] * cols[j]).alias(f"__xx_{i}_{j}")
            for i in range(len(cols)) for j in range(i, len(cols))] if covariates else []


def _check_covariate_rank(stats: Any, covariates: list[str]) -> None:
    """Refuse globally collinear covariates, from their cross-product matrix."""
    if not covariates:
        return
    k = len(covariates) + 1
    xx = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            xx[i, j] = xx[j, i] = stats[f"__xx_{i}_{j}"]
    scale = np.sqrt(np.maximum(np.diag(xx), 1e-300))
    eig = np.linalg.eigvalsh(xx / np.outer(scale, scale))
    if eig[0] <= eig[-1] * k * np.finfo(float).eps * 1e3:
        raise SingularDesignError(
            f"the covariate design ({' + '.join(covariates)}) is singular: some covariates "
            "are linear combinations of the others (or constant); drop or recode them"
        )


def _cohort_labels(raw: np.ndarray, periods: np.ndarray, plan: _CohortPlan,
                   spec: DidSpec) -> list[float]:
    """The recoded cohort values (``inf`` = never treated) present in the data."""
    recoded = {math.inf if (g == 0 or g > periods[-1] + spec.anticipation
                            or g in plan.to_never) else float(g) for g in raw}
    return sorted(recoded - set(plan.dropped))


def _raise_flag(flags: int, sdf: Any, spec: DidSpec) -> None:
    """Turn a problem flag into a typed error naming an offending unit (an error path only)."""
    from pyspark.sql import functions as F

    assert spec.idname is not None
    idc, tc = _col(spec.idname), _col(spec.tname)
    if flags & FLAG_DUPLICATE:
        row = sdf.groupBy(idc, tc).count().filter(F.col("count") > 1).limit(1).collect()[0]
        raise DataStructureError(
            f"unit {row[0]!r} has more than one row in period {row[1]}: panel data need one "
            f"row per unit and period (columns {spec.idname!r}, {spec.tname!r})"
        )
    checks: list[tuple[int, str | None, str]] = [
        (FLAG_GROUP_VARIES, spec.gname, "group"),
        (FLAG_WEIGHT_VARIES, spec.weightsname, "weights"),
        (FLAG_CLUSTER_VARIES, spec.clustervars[0] if spec.clustervars else None, "cluster"),
        (FLAG_PARTITION_VARIES, spec.pname, "partition"),
    ]
    for bit, column, what in checks:
        if flags & bit and column is not None:
            row = (sdf.groupBy(idc).agg(F.countDistinct(_col(column)).alias("n"))
                   .filter(F.col("n") > 1).limit(1).collect()[0])
            raise DataStructureError(
                f"{what} column {column!r} varies over time within unit {row[0]!r}; it must "
                "be constant for each unit in panel data"
            )


def types_of(sdf: Any) -> dict[str, Any]:
    """Column name -> Spark data type."""
    return {f.name: f.dataType for f in sdf.schema.fields}


def _col(name: str) -> Any:
    """A user column by exact name (names may hold dots or spaces)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _default_parallelism(spark: Any) -> int:
    from moderndid.spark.session import is_connect

    if not is_connect(spark):
        try:
            return int(spark.sparkContext.defaultParallelism)
        except Exception:  # pragma: no cover
            pass
    try:
        return int(spark.conf.get("spark.sql.shuffle.partitions"))
    except Exception:  # pragma: no cover
        return 8
