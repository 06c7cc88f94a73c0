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

from moderndid.engine.panel_blocks import RowColumns
from moderndid.engine.spec import DidSpec

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


def formula_covariates(xformla: str | None, engine: str) -> list[str]:
    """The covariate columns of ``xformla``, which distributed engines need as a plain sum
    of columns (the formula is not evaluated on the workers)."""
    from moderndid.core.design import _plain_terms as plain_terms
    from moderndid.core.design import parse_rhs
    from moderndid.errors import InvalidOptionError

    formula = parse_rhs(xformla)
    if formula is None:
        return []
    names = plain_terms(formula)
    if names is None:
        raise InvalidOptionError(
            f"on {engine}, xformla must be a sum of columns (e.g. '~ x1 + x2'), got "
            f"{xformla!r}: add transformed or dummy columns to the DataFrame first"
        )
    return names


def row_columns(spec: DidSpec, covariates: list[str], roles: list[tuple[str, str]],
                float_columns: set[str]) -> tuple[RowColumns, dict[str, tuple[str, str]]]:
    """The internal columns an engine selects for :func:`build_blocks`, and for each the
    user column and role that error messages name (in the user's column order).

    ``float_columns`` are the input's floating-point columns (float identifiers are
    checked for non-integer values)."""
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
    fractional = tuple(name for name, column in (("id", spec.idname), (
        "cluster", spec.clustervars[0] if spec.clustervars else None))
        if column is not None and column in float_columns)
    cols = RowColumns(checked=tuple(ordered),
                      covariates=tuple(f"x{j}" for j in range(len(covariates))),
                      clustered=bool(spec.clustervars), fractional=fractional)
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


