"""Engine-side helpers of distributed preparation: the number of partitions, the covariate
columns of a formula, the internal columns of the row table, the problem flags, and the
histograms of units that block statistics carry. The decisions taken from these statistics
(validation, cohort recoding, small groups) belong to the estimators' planner
(:class:`moderndid.engine.protocol.Planner`), which engines receive and call.
"""

from __future__ import annotations

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
from moderndid.engine.spec import DidSpec, column_roles

ROWS_PER_PARTITION = 2_000_000  # more rows than this per partition raises n_partitions
# Fewer rows than this per partition lowers n_partitions below the parallelism (engines
# that ask for it): a pass costs each partition a Python task, about 30-100 ms to start
# and convert, which is more than the numpy work on 50,000 rows.
ROWS_PER_TASK = 50_000


def partition_count(n_partitions: Any, count_rows: Callable[[], int], minimum: int, *,
                    rows_per_task: int | None = None) -> int:
    """``n_partitions`` if given (a positive integer), else the number the data need.

    That is ``minimum`` (the engine's parallelism), lowered to one partition per
    ``rows_per_task`` rows when that is given (small inputs do not fill the cluster), and
    raised so that no partition holds more than ``ROWS_PER_PARTITION`` rows;
    ``count_rows`` runs only when ``n_partitions`` is None.
    """
    from moderndid.errors import InvalidOptionError

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

    ``schema`` is the Arrow schema of the input's columns; ``check_columns(roles)`` refuses
    absent or mistyped columns (the planner's check, before anything is read) and
    ``distinct_rows(columns)`` returns the distinct rows, without missing values, of the
    columns that feed categorical factors (one pass of the engine over the data).
    """
    formula = parse_rhs(spec.xformla)
    categorical = categorical_columns(formula, schema)
    roles = column_roles(spec, formula_columns(formula), categorical)
    check_columns(roles)
    levels = distinct_rows(categorical) if categorical else None
    return covariate_design(formula, schema, levels), roles


def formula_sources(design: CovariateDesign) -> dict[str, str]:
    """Internal column -> data column, for the columns a covariate formula reads.

    A plain sum of numeric columns is read as the covariates ``x0, x1, ...`` themselves;
    any other formula reads its columns as ``f0, f1, ...`` (in their own types), from which
    :func:`with_covariates` evaluates the covariates on each partition."""
    if design.spec is None:
        return {f"x{j}": c for j, c in enumerate(design.columns)}
    return {f"f{i}": c for i, c in enumerate(design.columns)}


def row_columns(spec: DidSpec, design: CovariateDesign, roles: list[tuple[str, str]],
                float_columns: set[str]) -> tuple[RowColumns, dict[str, tuple[str, str]]]:
    """The internal columns an engine selects for :func:`build_blocks`, and for each the
    user column and role that error messages name (in the user's column order; the
    evaluated terms of a formula that is not a plain sum come last).

    ``float_columns`` are the input's floating-point columns (float identifiers are
    checked for non-integer values)."""
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
    fractional = tuple(name for name, column in (("id", spec.idname), (
        "cluster", spec.clustervars[0] if spec.clustervars else None))
        if column is not None and column in float_columns)
    cols = RowColumns(checked=tuple(ordered),
                      covariates=tuple(f"x{j}" for j in range(len(design.covariates))),
                      clustered=bool(spec.clustervars), fractional=fractional,
                      design=design if design.spec is not None else None)
    return cols, ordered


def flag_checks(spec: DidSpec) -> list[tuple[int, str | None, str]]:
    """(flag bit, user column, what) of the unit attributes that must not vary over time."""
    from moderndid.engine.unit_table import (
        FLAG_CLUSTER_VARIES,
        FLAG_GROUP_VARIES,
        FLAG_PARTITION_VARIES,
        FLAG_WEIGHT_VARIES,
    )

    return [
        (FLAG_GROUP_VARIES, spec.gname, "group"),
        (FLAG_WEIGHT_VARIES, spec.weightsname, "weights"),
        (FLAG_CLUSTER_VARIES, spec.clustervars[0] if spec.clustervars else None, "cluster"),
        (FLAG_PARTITION_VARIES, spec.pname, "partition"),
    ]


def add_histogram(into: dict[tuple[float, float, int], int], flat: Any) -> None:
    values = np.asarray(flat, dtype=np.float64).reshape(-1, 4)
    for g, q, nobs, count in values:
        key = (float(g), float(q), int(nobs))
        into[key] = into.get(key, 0) + int(count)


def recoded_histogram(histogram: dict[tuple[float, float, int], int],
                       recode: dict[float, float]) -> dict[tuple[float, float, int], int]:
    """Units by (cohort, eligibility, periods observed), dropped cohorts left out."""
    out: dict[tuple[float, float, int], int] = {}
    for (raw, q, nobs), count in histogram.items():
        if raw in recode:
            key = (recode[raw], q, nobs)
            out[key] = out.get(key, 0) + count
    return out


