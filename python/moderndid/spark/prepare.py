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
from moderndid.spark.panel_blocks import (
    BLOCK_SCHEMA_DDL,
    PanelLayout,
    RowColumns,
    build_blocks,
    partition_from_blocks,
    unit_histogram,
)
from moderndid.spark.session import set_job_description
from moderndid.spark.unit_table import (
    FLAG_CLUSTER_VARIES,
    FLAG_DUPLICATE,
    FLAG_GROUP_VARIES,
    FLAG_PARTITION_VARIES,
    FLAG_WEIGHT_VARIES,
    partition_from_rows,
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

    if spec.panel:
        return _prepare_panel(sdf, spec, spark, n_partitions, covariates, roles, types)

    # Repeated cross sections: one aggregation job (row count, missing values per column,
    # weight range, periods, cohorts, covariate cross-products), then the persisted rows.
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

    _check_covariate_rank(_crossproduct_matrix(stats, covariates), covariates)
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


def _prepare_panel(sdf: Any, spec: DidSpec, spark: Any, n_partitions: int | None,
                   covariates: list[str], roles: list[tuple[str, str]],
                   types: dict[str, Any]) -> SparkDidData:
    """Panels: one shuffle by unit id and one pass over the rows on the executors, which
    checks them, gathers the statistics and builds the persisted unit-table blocks."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    assert spec.idname is not None
    internal = {"outcome (yname)": "y", "time (tname)": "t", "group (gname)": "G",
                "unit id (idname)": "id", "weights (weightsname)": "w",
                "cluster (clustervars)": "cluster", "partition (pname)": "Q"}
    checked: dict[str, tuple[str, str]] = {}  # internal column -> (user column, role)
    for j, c in enumerate(covariates):
        checked.setdefault(f"x{j}", (c, "covariate (xformla)"))
    ordered: dict[str, tuple[str, str]] = {}
    for column, role in roles:  # user order: the error names the first offending column
        name = internal.get(role) or next(x for x, (c, _) in checked.items() if c == column)
        ordered.setdefault(name, (column, role))
    float_types = T.FloatType | T.DoubleType
    fractional = tuple(name for name, column in (("id", spec.idname), (
        "cluster", spec.clustervars[0] if spec.clustervars else None))
        if column is not None and isinstance(types[column], float_types))
    clustered = bool(spec.clustervars)
    cols = RowColumns(checked=tuple(ordered), covariates=tuple(f"x{j}" for j in
                                                               range(len(covariates))),
                      clustered=clustered, fractional=fractional)
    select = [
        _col(spec.idname).alias("id"),
        _col(spec.tname).cast("double").alias("t"),
        _col(spec.yname).cast("double").alias("y"),
        _col(spec.gname).cast("double").alias("G"),  # raw: recoded when the blocks are read
        (_col(spec.weightsname).cast("double") if spec.weightsname else F.lit(1.0)).alias("w"),
        *[_col(c).cast("double").alias(f"x{j}") for j, c in enumerate(covariates)],
    ]
    if clustered:
        select.append(_col(spec.clustervars[0]).alias("cluster"))
    if spec.pname:
        select.append(_col(spec.pname).cast("double").alias("Q"))

    if n_partitions is None:
        n_rows = sdf.count()
        n_parts = max(_default_parallelism(spark), math.ceil(n_rows / ROWS_PER_PARTITION))
    elif isinstance(n_partitions, int) and not isinstance(n_partitions, bool) and n_partitions > 0:
        n_parts = n_partitions
    else:
        raise InvalidOptionError(f"n_partitions must be a positive integer, got {n_partitions!r}")

    def build(batches: Any) -> Any:
        import pyarrow as pa

        batch_list = list(batches)
        if batch_list:
            table = pa.Table.from_batches(batch_list)
            if table.num_rows:
                yield build_blocks(table, cols)

    start = time.perf_counter()
    blocks = (sdf.select(*select).repartition(n_parts, "id")
              .mapInArrow(build, BLOCK_SCHEMA_DDL).persist())
    set_job_description(spark, "moderndid att_gt: unit table (shuffle by unit id, persist)")
    try:
        # one small row per block of units: statistics, never unit rows
        info = blocks.drop("payload").collect()
    finally:
        set_job_description(spark, None)
    logger.info("att_gt: unit table: %.2f s", time.perf_counter() - start)
    try:
        return _plan_panel(blocks, info, sdf, spec, spark, covariates, ordered, cols, n_parts)
    except BaseException:
        blocks.unpersist()
        raise


def _plan_panel(blocks: Any, info: list[Any], sdf: Any, spec: DidSpec, spark: Any,
                covariates: list[str], ordered: dict[str, tuple[str, str]], cols: RowColumns,
                n_parts: int) -> SparkDidData:
    """Validate the statistics of the blocks, recode cohorts, count units: the metadata and
    the layout that every pass uses to read the blocks."""
    if sum(r["rows"] for r in info) == 0:
        raise DataStructureError("the data has no rows")
    missing = np.sum([r["missing"] for r in info], axis=0)
    for (column, role), n_missing in zip(ordered.values(), missing, strict=True):
        if n_missing:
            raise MissingValuesError(
                f"{role} column {column!r} has {n_missing} missing or non-finite value(s); "
                "drop or impute them first"
            )
    if spec.weightsname and min(r["wmin"] for r in info) < 0:
        raise DataStructureError(f"weights column {spec.weightsname!r} has negative values")
    if spec.weightsname and not max(r["wmax"] for r in info) > 0:
        raise DataStructureError(f"weights column {spec.weightsname!r} is zero everywhere")
    if cols.fractional:
        fractional = np.sum([r["fractional"] for r in info], axis=0)
        for name, count in zip(cols.fractional, fractional, strict=True):
            if count:
                column, role = ordered[name]
                raise ColumnTypeError(
                    f"{role} column {column!r} holds non-integer numbers: identifiers must be "
                    "integers or strings")
    if covariates:
        k1 = len(covariates) + 1
        upper = np.sum([r["xx"] for r in info], axis=0)
        xx = np.zeros((k1, k1))
        xx[np.triu_indices(k1)] = upper
        _check_covariate_rank(xx + np.triu(xx, 1).T, covariates)

    periods = np.unique(np.concatenate([np.asarray(r["periods"], dtype=np.float64)
                                        for r in info]))
    histogram: dict[tuple[float, float, int], int] = {}
    for r in info:
        _add_histogram(histogram, r["histogram"])
    raw_cohorts = np.unique([g for g, _, _ in histogram])
    two_period = False
    group_map: dict[float, float] = {}
    if spec.pname:
        values = sorted({q for _, q, _ in histogram})
        if not set(values) <= {0.0, 1.0}:
            raise DataStructureError(
                f"partition column {spec.pname!r} must hold 0 (ineligible) and 1 (eligible), "
                f"found {', '.join(f'{v:g}' for v in values[:6])}")
        # Two periods with a 0/1 group column: the two-period DDD (treated in period 2).
        two_period = periods.size == 2 and raw_cohorts.size == 2 and (
            set(raw_cohorts) == {0.0, 1.0} or set(raw_cohorts) == {0.0, float(periods[1])})
        if two_period and set(raw_cohorts) == {0.0, 1.0}:
            group_map = {1.0: float(periods[1])}
    mapped = np.unique([group_map.get(float(g), float(g)) for g in raw_cohorts])
    plan = _cohort_plan(mapped, periods, spec)
    flags = 0
    for r in info:
        flags |= int(r["flags"])
    if flags:
        _raise_flag(flags, sdf, spec)
    recode: dict[float, float] = {}
    for raw in raw_cohorts:
        g = group_map.get(float(raw), float(raw))
        if g in plan.dropped:
            continue
        never = g == 0 or g > periods[-1] + spec.anticipation or g in plan.to_never
        recode[float(raw)] = math.inf if never else g
    if plan.period_cutoff is not None:
        periods = periods[periods < plan.period_cutoff]
    if periods.size < 2:
        raise DataStructureError(f"time column {spec.tname!r} has fewer than two periods")
    T_ = periods.size
    k = len(covariates)
    layout = PanelLayout(periods=periods, recode=recode, complete_only=False, kind="panel",
                         n_covariates=k, clustered=cols.clustered)
    if plan.period_cutoff is None:
        units = _recoded_histogram(histogram, recode)
    else:
        # observations in the periods cut off no longer count: recount on the executors
        units = _count_units(blocks, layout, spark)
    labels = sorted({g for g, _, _ in units})
    all_units = {g: 0 for g in labels}
    full_units = {g: 0 for g in labels}
    subgroup_units: dict[tuple[float, float], int] = {}
    n_rows_observed = 0
    for (g, q, nobs), count in units.items():
        all_units[g] += count
        if nobs == T_:
            full_units[g] += count
        n_rows_observed += nobs * count
        subgroup_units[(g, q)] = subgroup_units.get((g, q), 0) + count
    n_all, n_complete = sum(all_units.values()), sum(full_units.values())
    kind = "panel"
    balance = False
    if n_complete < n_all:
        if spec.allow_unbalanced_panel:
            kind = "unbalanced"
        else:
            warnings.warn(
                f"Dropped {n_all - n_complete} of {n_all} units not "
                f"observed in all {T_} periods (balancing the panel); pass "
                "allow_unbalanced_panel=True to keep them", UserWarning, stacklevel=5)
            balance = True
    which = full_units if kind == "panel" else all_units
    counts = {g: c for g, c in which.items() if c}
    n_units = sum(counts.values())
    n_obs = n_units * T_ if kind == "panel" else n_rows_observed
    names = ["(Intercept)", *covariates]
    meta = _metadata(kind, periods, counts, plan, names, n_rows=n_obs, n_units=n_units,
                     clustered=cols.clustered, xtv=any(bool(r["xtv"]) for r in info),
                     spec=spec)
    layout = PanelLayout(periods=periods, recode=recode, complete_only=balance, kind=kind,
                         n_covariates=k, clustered=cols.clustered)

    def unit_partition(table: Any) -> dict:
        return partition_from_blocks(table, layout)

    subgroups = {}
    if spec.pname:
        # units per (cohort, eligibility), over all units as the in-memory engine counts them
        subgroups = {(g, q): subgroup_units.get((g, q), 0) for g in labels for q in (0.0, 1.0)}
    return SparkDidData(meta, blocks, unit_partition, n_parts, two_period, subgroups)


def _add_histogram(into: dict[tuple[float, float, int], int], flat: Any) -> None:
    values = np.asarray(flat, dtype=np.float64).reshape(-1, 4)
    for g, q, nobs, count in values:
        key = (float(g), float(q), int(nobs))
        into[key] = into.get(key, 0) + int(count)


def _recoded_histogram(histogram: dict[tuple[float, float, int], int],
                       recode: dict[float, float]) -> dict[tuple[float, float, int], int]:
    """Units by (cohort, eligibility, periods observed), dropped cohorts left out."""
    out: dict[tuple[float, float, int], int] = {}
    for (raw, q, nobs), count in histogram.items():
        if raw in recode:
            key = (recode[raw], q, nobs)
            out[key] = out.get(key, 0) + count
    return out


def _count_units(blocks: Any, layout: PanelLayout, spark: Any
                 ) -> dict[tuple[float, float, int], int]:
    """The recoded histogram counted on the executors (one small row per partition)."""
    def count(batches: Any) -> Any:
        import pyarrow as pa

        batch_list = list(batches)
        if batch_list:
            flat = unit_histogram(pa.Table.from_batches(batch_list), layout)
            yield pa.RecordBatch.from_pydict({"histogram": [flat]},
                                             schema=pa.schema([("histogram",
                                                                pa.list_(pa.float64()))]))

    set_job_description(spark, "moderndid att_gt: unit counts after cutting periods")
    try:
        rows = blocks.mapInArrow(count, "histogram array<double>").collect()
    finally:
        set_job_description(spark, None)
    out: dict[tuple[float, float, int], int] = {}
    for r in rows:
        _add_histogram(out, r["histogram"])
    return out


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


def _crossproduct_matrix(stats: Any, covariates: list[str]) -> np.ndarray:
    k = len(covariates) + 1
    xx = np.zeros((k, k))
    if covariates:
        for i in range(k):
            for j in range(i, k):
                xx[i, j] = xx[j, i] = stats[f"__xx_{i}_{j}"]
    return xx


def _check_covariate_rank(xx: np.ndarray, covariates: list[str]) -> None:
    """Refuse globally collinear covariates, from their cross-product matrix."""
    if not covariates:
        return
    k = xx.shape[0]
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
