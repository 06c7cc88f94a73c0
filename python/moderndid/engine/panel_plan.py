"""Engine-side helpers of distributed preparation: the number of partitions, the covariate
columns of a formula, the internal columns of the row table, the problem flags, and the
histograms of units that block statistics carry. The decisions taken from these statistics
(validation, cohort recoding, small groups) belong to the estimators' planner
(:class:`moderndid.engine.protocol.Planner`), which engines receive and call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from moderndid.core.design import (
    CovariateDesign,
    categorical_columns,
    covariate_design,
    formula_columns,
    parse_rhs,
)
from moderndid.engine.panel_blocks import RowColumns
from moderndid.engine.protocol import CohortPlan, Planner
from moderndid.engine.spec import DidData, DidSpec, column_roles
from moderndid.engine.unit_table import (
    FLAG_CLUSTER_VARIES,
    FLAG_GROUP_VARIES,
    FLAG_PARTITION_VARIES,
    FLAG_WEIGHT_VARIES,
    partition_from_rows,
)
from moderndid.errors import DataStructureError, InvalidOptionError

ROWS_PER_PARTITION = 2_000_000  # more rows than this per partition raises n_partitions
# Fewer rows than this per partition lowers n_partitions below the parallelism (engines
# that ask for it): a pass costs each partition a Python task, about 30-100 ms to start
# and convert, which is more than the numpy work on 50,000 rows.
ROWS_PER_TASK = 50_000


def partition_count(n_partitions: Any, count_rows: Callable[[], int], minimum: int, *,
                    rows_per_task: int | None = None) -> int:
    """``n_partitions`` if given (a positive integer), else ``minimum`` (the engine's
    parallelism) lowered to one partition per ``rows_per_task`` rows when given (small
    inputs do not fill the cluster) and raised so that no partition holds more than
    ``ROWS_PER_PARTITION`` rows (``count_rows`` runs only then)."""
    if n_partitions is None:
        rows = count_rows()
        wanted = minimum
        if rows_per_task is not None:
            wanted = min(minimum, max(1, math.ceil(rows / rows_per_task)))
        return max(1, wanted, math.ceil(rows / ROWS_PER_PARTITION))
    if isinstance(n_partitions, int) and not isinstance(n_partitions, bool) and n_partitions > 0:
        return n_partitions
    raise InvalidOptionError(f"n_partitions must be a positive integer, got {n_partitions!r}")


def plan_covariates(spec: DidSpec, schema: pa.Schema,
                    check_columns: Callable[[list[tuple[str, str]]], None],
                    distinct_rows: Callable[[list[str]], pa.Table]
                    ) -> tuple[CovariateDesign, list[tuple[str, str]]]:
    """The covariate design of a call and the roles of every column it reads.

    ``check_columns(roles)`` refuses absent or mistyped columns before anything is read;
    ``distinct_rows(columns)`` returns the distinct rows, without missing values, of the
    columns that feed categorical factors (one pass of the engine over the data)."""
    formula = parse_rhs(spec.xformla)
    categorical = categorical_columns(formula, schema)
    roles = column_roles(spec, formula_columns(formula), categorical)
    check_columns(roles)
    levels = distinct_rows(categorical) if categorical else None
    return covariate_design(formula, schema, levels), roles


def formula_sources(design: CovariateDesign) -> dict[str, str]:
    """Internal column -> data column, for the columns a covariate formula reads: a plain
    sum of numeric columns is read as the covariates ``x0, x1, ...`` themselves, any other
    formula as ``f0, f1, ...`` (in their own types), from which each partition evaluates
    the covariates (:func:`moderndid.engine.panel_blocks.with_terms`)."""
    if design.spec is None:
        return {f"x{j}": c for j, c in enumerate(design.columns)}
    return {f"f{i}": c for i, c in enumerate(design.columns)}


def source_columns(spec: DidSpec, design: CovariateDesign) -> dict[str, str | None]:
    """Internal column -> user column of the rows an engine reads (None: ``id`` without
    ids, ``w`` without weights). ``id``, ``cluster`` and a formula's ``f<i>`` keep their
    types (:func:`keeps_type`); the others are read as doubles."""
    sources: dict[str, str | None] = {
        "id": spec.idname, "t": spec.tname, "y": spec.yname, "G": spec.gname,
        "w": spec.weightsname, **formula_sources(design)}
    if spec.clustervars:
        sources["cluster"] = spec.clustervars[0]
    if spec.pname:
        sources["Q"] = spec.pname
    return sources


def keeps_type(name: str) -> bool:
    """Whether the internal column ``name`` is read in its own type (not as doubles)."""
    return name in ("id", "cluster") or name.startswith("f")


def row_columns(spec: DidSpec, design: CovariateDesign, roles: list[tuple[str, str]],
                float_columns: set[str]) -> tuple[RowColumns, dict[str, tuple[str, str]]]:
    """The internal columns an engine selects for :func:`build_blocks`, and for each the
    user column and role that error messages name (in the user's column order; the
    evaluated terms of a formula that is not a plain sum come last). Identifiers among the
    input's ``float_columns`` are checked for non-integer values."""
    internal = {"outcome (yname)": "y", "time (tname)": "t", "group (gname)": "G",
                "unit id (idname)": "id", "weights (weightsname)": "w",
                "cluster (clustervars)": "cluster", "partition (pname)": "Q"}
    sources = formula_sources(design)
    ordered: dict[str, tuple[str, str]] = {}
    for column, role in roles:  # user order: the error names the first offending column
        name = internal.get(role) or next(x for x, c in sources.items() if c == column)
        ordered.setdefault(name, (column, role))
    if design.spec is not None:
        for j, term in enumerate(design.covariates):
            ordered[f"x{j}"] = (term, "covariate (xformla) term")
    fractional = tuple(name for name, column in source_columns(spec, design).items()
                       if name in ("id", "cluster") and column in float_columns)
    cols = RowColumns(checked=tuple(ordered),
                      covariates=tuple(f"x{j}" for j in range(len(design.covariates))),
                      clustered=bool(spec.clustervars), fractional=fractional,
                      design=design if design.spec is not None else None)
    return cols, ordered


def flag_checks(spec: DidSpec) -> list[tuple[int, str | None, str]]:
    """(flag bit, user column, what) of the unit attributes that must not vary over time."""
    return [
        (FLAG_GROUP_VARIES, spec.gname, "group"),
        (FLAG_WEIGHT_VARIES, spec.weightsname, "weights"),
        (FLAG_CLUSTER_VARIES, spec.clustervars[0] if spec.clustervars else None, "cluster"),
        (FLAG_PARTITION_VARIES, spec.pname, "partition"),
    ]


def add_histogram(into: dict[tuple[float, float, int], int], *flats: Any
                  ) -> dict[tuple[float, float, int], int]:
    """Add flat (g, q, nobs, count) histograms to ``into``; returns ``into``."""
    for flat in flats:
        for g, q, nobs, count in np.asarray(flat, dtype=np.float64).reshape(-1, 4):
            key = (float(g), float(q), int(nobs))
            into[key] = into.get(key, 0) + int(count)
    return into


def recoded_histogram(histogram: dict[tuple[float, float, int], int],
                       recode: dict[float, float]) -> dict[tuple[float, float, int], int]:
    """Units by (cohort, eligibility, periods observed), dropped cohorts left out."""
    out: dict[tuple[float, float, int], int] = {}
    for (raw, q, nobs), count in histogram.items():
        if raw in recode:
            key = (recode[raw], q, nobs)
            out[key] = out.get(key, 0) + count
    return out


def plan_rc(planner: Planner, spec: DidSpec, periods: np.ndarray, raw_cohorts: np.ndarray,
            partition_values: set[float]
            ) -> tuple[bool, dict[float, float], CohortPlan, list[float], np.ndarray]:
    """The planner's decisions for repeated cross sections from their sorted distinct
    periods, raw cohorts and eligibility values: whether the design is triple differences'
    two-period one, its raw -> first-treated map, the cohort plan, the recoded cohorts
    present and the periods kept."""
    two_period, group_map = planner.group_coding(spec, periods, raw_cohorts, partition_values)
    if group_map:
        raw_cohorts = np.unique([group_map.get(g, g) for g in raw_cohorts.tolist()])
    plan = planner.cohort_plan(raw_cohorts, periods, spec)
    labels = planner.cohort_labels(raw_cohorts, periods, plan, spec)
    if plan.period_cutoff is not None:
        periods = periods[periods < plan.period_cutoff]
    if periods.size < 2:
        raise DataStructureError(f"time column {spec.tname!r} has fewer than two periods")
    return two_period, group_map, plan, labels, periods


def rc_metadata(planner: Planner, spec: DidSpec, periods: np.ndarray, plan: CohortPlan,
                labels: list[float], counts: dict[float, int], covariates: list[str]
                ) -> tuple[DidData, Callable[[pa.Table], dict]]:
    """The metadata of repeated cross sections (``counts``: rows per recoded cohort) and
    the conversion of their row tables to kernel partitions."""
    counts = {g: counts[g] for g in labels if counts.get(g)}
    clustered = bool(spec.clustervars)
    meta = planner.metadata("rc", periods, counts, plan, ["(Intercept)", *covariates],
                            n_rows=sum(counts.values()), n_units=sum(counts.values()),
                            clustered=clustered, xtv=False, spec=spec)
    return meta, functools.partial(
        partition_from_rows, periods=periods,
        covariates=[f"x{j}" for j in range(len(covariates))], clustered=clustered,
        has_id=spec.idname is not None)
