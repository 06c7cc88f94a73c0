"""Validate user data and build the partitioned unit table that the `att_gt` passes read.

The unit table has one row per unit (balanced panels) or per observation (repeated cross
sections and unbalanced panels). Partitions are dicts of numpy arrays:

``y``        outcomes: ``(n, T)`` for panels, ``(n,)`` otherwise
``tidx``     period index of each observation (not for balanced panels)
``G``        first-treated period, ``inf`` for never treated
``w``        sampling weight
``x``        covariates, ``(n, Tx, k)``: ``Tx = T`` when a covariate varies over time in a
             panel (the base period's values are used), else 1
``key``      uint64 key of the unit, for the counter-based bootstrap multipliers
``cluster``  uint64 key of the cluster (only when clustering on a second variable)
``unit``     within-partition unit index of each observation (unbalanced panels only)

Rows within a partition are sorted by ``G`` so a cohort is a contiguous slice.
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any

import numpy as np

from moderndid._warnings import warn_user
from moderndid.core.design import (
    check_design_rank,
    design_matrix,
    distinct_rows,
    formula_columns,
    parse_rhs,
)
from moderndid.core.frames import (
    key_column,
    numeric_column,
    to_arrow_table,
    type_label,
)
from moderndid.core.multipliers import keys_from_values
from moderndid.did.plan import (
    check_columns,
    check_group_sizes,
    check_magnitudes,
    check_partition_values,
    cohort_plan,
    duplicate_row_error,
    estimable_cohorts,
    varying_error,
)
from moderndid.engine.panel_plan import plan_covariates
from moderndid.engine.spec import DidData, DidSpec
from moderndid.errors import (
    DataStructureError,
    InvalidOptionError,
)


def normalize_clustervars(clustervars: Any, idname: str | None) -> list[str]:
    """Return the clustering variables other than the unit id (R `did` convention).

    R `did` accepts ``clustervars`` with the unit id and at most one other variable; the
    unit id is always a clustering level in panels, so only the other variable matters.
    """
    if clustervars is None:
        return []
    if isinstance(clustervars, str):
        clustervars = [clustervars]
    try:
        names = list(clustervars)
    except TypeError:
        names = [clustervars]  # refused just below, naming the value
    if not all(isinstance(c, str) for c in names):
        raise InvalidOptionError(
            f"clustervars must be a column name or a list of column names, got {clustervars!r}"
        )
    other = [c for c in names if c != idname]
    if len(other) > 1:
        raise InvalidOptionError(
            f"clustervars may hold the unit id and at most one other variable, got {names}"
        )
    return other


def prepare_did(data: Any, spec: DidSpec, n_partitions: int = 1, *,
                force_unbalanced: bool = False) -> DidData:
    """Validate ``data`` for `att_gt` and build its partitioned unit table.

    ``force_unbalanced`` sends a balanced panel through the unbalanced-panel path (tests
    use it: without covariates both paths must agree exactly).
    """
    _check_n_partitions(n_partitions)
    needed = [spec.yname, spec.tname, spec.gname, spec.idname, spec.weightsname,
              *spec.clustervars, *formula_columns(parse_rhs(spec.xformla))]
    table = to_arrow_table(data, [c for c in needed if isinstance(c, str)])
    if table.num_rows == 0:
        raise DataStructureError("the data has no rows")
    design, _ = plan_covariates(
        spec, table.schema,
        lambda roles: check_columns(roles, table.column_names,
                                    lambda c: type_label(table.schema.field(c).type)),
        lambda columns: distinct_rows(table, columns))

    y = numeric_column(table, spec.yname, "outcome (yname)")
    t = numeric_column(table, spec.tname, "time (tname)")
    g = numeric_column(table, spec.gname, "group (gname)")
    if spec.weightsname is not None:
        w = numeric_column(table, spec.weightsname, "weights (weightsname)")
        if (w < 0).any():
            raise DataStructureError(f"weights column {spec.weightsname!r} has negative values")
        if not (w > 0).any():  # every estimator would divide by a zero total weight
            raise DataStructureError(f"weights column {spec.weightsname!r} is zero everywhere")
    else:
        w = np.ones(table.num_rows)
    x, names = design_matrix(table, design)
    cluster = (key_column(table, spec.clustervars[0], "cluster (clustervars)")
               if spec.clustervars else None)
    ids = key_column(table, spec.idname, "unit id (idname)") if spec.idname else None
    q = _partition_column(table, spec.pname) if spec.pname is not None else None

    # values too large for the estimator, in the call's order (outcome, weights, covariates)
    magnitudes: list[tuple[str, str, np.ndarray]] = [(spec.yname, "outcome (yname)", y)]
    if spec.weightsname is not None:
        magnitudes.append((spec.weightsname, "weights (weightsname)", w))
    if design.spec is None:
        magnitudes += [(name, "covariate (xformla)", x[:, j + 1])
                       for j, name in enumerate(names[1:])]
    else:  # the formula's numeric columns, then its terms, as the statistics list them
        magnitudes += [(c, "covariate (xformla)", numeric_column(table, c, "covariate"))
                       for c in design.columns if c not in design.categorical]
        magnitudes += [(name, "covariate (xformla) term", x[:, j + 1])
                       for j, name in enumerate(names[1:])]
    check_magnitudes([(column, role) for column, role, _ in magnitudes],
                     [float(np.abs(values).max()) for _, _, values in magnitudes])
    if x.shape[1] > 1:  # over every input row, as the distributed engines sum it
        check_design_rank(x.T @ x, names)
    if spec.panel:
        # before the cohort decisions and their warnings, as the distributed engines do
        _check_panel_rows(ids, t, g, w, cluster, q, spec)
    g, keep, excluded = _recode_cohorts(g, t, spec)
    if not keep.all():
        y, t, g, w, x = y[keep], t[keep], g[keep], w[keep], x[keep]
        ids = ids[keep] if ids is not None else None
        cluster = cluster[keep] if cluster is not None else None
        q = q[keep] if q is not None else None
    periods = np.unique(t)
    if periods.size < 2:
        raise DataStructureError(f"time column {spec.tname!r} has fewer than two periods")

    args = (y, t, g, w, x, ids, cluster, q, periods, excluded, names, spec, n_partitions)
    if spec.panel:
        prepared = _panel_table(*args, force_unbalanced=force_unbalanced)
    else:
        prepared = _rc_table(*args)
    check_group_sizes(prepared.kind, prepared.periods, prepared.cohort_counts, names, spec)
    return prepared


def _recode_cohorts(g: np.ndarray, t: np.ndarray, spec: DidSpec
                    ) -> tuple[np.ndarray, np.ndarray, frozenset[float]]:
    """Apply the planner's cohort recoding (:func:`moderndid.did.plan.cohort_plan`) to the
    rows; return cohorts (``inf`` = never treated), rows to keep, cohorts not estimated."""
    periods = np.unique(t)
    plan = cohort_plan(np.unique(g), periods, spec)
    never = (g == 0) | (g > periods[-1] + spec.anticipation) | np.isin(g, plan.to_never)
    g = np.where(never, np.inf, g)
    keep = ~np.isin(g, plan.dropped)
    if plan.period_cutoff is not None:
        keep &= t < plan.period_cutoff
    if not keep.any():
        raise DataStructureError("no rows are left after dropping cohorts treated in the "
                                 "first period")
    return g, keep, plan.excluded


def _panel_table(y, t, g, w, x, ids, cluster, q, periods, excluded, names, spec, n_partitions,
                 force_unbalanced=False) -> DidData:
    tpos = np.searchsorted(periods, t)
    order: np.ndarray | None
    if _sorted_by_unit_and_period(ids, tpos):
        # The common layout (rows sorted by unit, then period) needs no sort and no copies.
        change = np.empty(ids.size, dtype=bool)
        change[0] = True
        change[1:] = ids[1:] != ids[:-1]
        unit = np.cumsum(change) - 1
        uid = ids[change]
        order = None
    else:
        uid, unit = np.unique(ids, return_inverse=True)
        order = np.lexsort((tpos, unit))

    def take(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    unit_s = take(unit)
    n_units, n_periods = uid.size, periods.size
    counts = np.bincount(unit, minlength=n_units)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    balanced = bool((counts == n_periods).all())
    if force_unbalanced or (not balanced and spec.allow_unbalanced_panel):
        return _unbalanced_table(take(y), take(tpos), take(g), take(w), take(x),
                                 unit_s, starts, uid,
                                 None if cluster is None else take(cluster),
                                 None if q is None else take(q),
                                 periods, excluded, names, n_partitions)
    if not balanced:
        full = counts == n_periods
        warn_user(
            f"Dropped {int((~full).sum())} of {n_units} units not observed in all "
            f"{n_periods} periods (balancing the panel); pass allow_unbalanced_panel=True "
            "to keep them"
        )
        keep = full[unit]
        if not keep.any():
            raise DataStructureError("no unit is observed in every period")
        return _panel_table(y[keep], t[keep], g[keep], w[keep], x[keep], ids[keep],
                            None if cluster is None else cluster[keep],
                            None if q is None else q[keep], periods, excluded,
                            names, spec, n_partitions)
    # Balanced: rows sorted by (unit, period) reshape to (units, periods).
    k = x.shape[1]
    y_u = take(y).reshape(n_units, n_periods)
    x_u = take(x).reshape(n_units, n_periods, k)
    if (x_u == x_u[:, :1, :]).all():
        x_u = np.ascontiguousarray(x_u[:, :1, :])
    unit_cols = {
        "y": y_u,
        "G": take(g)[starts],
        "w": take(w)[starts],
        "x": x_u,
        "key": keys_from_values(uid),
        "pos": np.arange(n_units),
    }
    if cluster is not None:
        unit_cols["cluster"] = keys_from_values(take(cluster)[starts])
    if q is not None:
        unit_cols["Q"] = take(q)[starts]
    return DidData(
        kind="panel",
        periods=periods,
        cohorts=estimable_cohorts(_cohort_counts(unit_cols["G"]), excluded),
        n_units=n_units,
        n_obs=n_units * n_periods,
        covariate_names=names,
        partitions=split_partitions(unit_cols, n_partitions),
        clustered=cluster is not None,
        x_time_varying=x_u.shape[1] > 1,
        cohort_counts=_cohort_counts(unit_cols["G"]),
    )


def _unbalanced_table(y, tpos, g, w, x, unit, starts, uid, cluster, q, periods, excluded, names,
                      n_partitions) -> DidData:
    """Observation table of an unbalanced panel; rows arrive sorted by (unit, period).

    As R `did` does, cells use the repeated cross-section estimators on the observations
    and each unit's influence function is the sum over its observations.
    """
    n_units = uid.size
    _check_n_partitions(n_partitions)
    n_partitions = int(n_partitions)
    unit_keys = keys_from_values(uid)
    unit_clusters = None if cluster is None else keys_from_values(cluster[starts])
    bounds = np.linspace(0, n_units, min(n_partitions, n_units) + 1).astype(np.int64)
    ends = np.concatenate([starts[1:], [y.size]])
    parts = []
    for lo, hi in itertools.pairwise(bounds):
        rows = np.arange(starts[lo], ends[hi - 1])
        order = rows[np.argsort(g[rows], kind="stable")]
        part = {
            "y": y[order],
            "tidx": tpos[order].astype(np.int64),
            "G": g[order],
            "w": w[order],
            "x": x[order].reshape(order.size, 1, x.shape[1]),
            "unit": unit[order] - lo,
            "unit_G": g[starts[lo:hi]],
            "unit_w": w[starts[lo:hi]],
            "unit_key": unit_keys[lo:hi],
            "unit_pos": np.arange(lo, hi),
        }
        if unit_clusters is not None:
            part["unit_cluster"] = unit_clusters[lo:hi]
        if q is not None:
            part["Q"] = q[order]
        parts.append(part)
    unit_g = g[starts]
    return DidData(
        kind="unbalanced",
        periods=periods,
        cohorts=estimable_cohorts(_cohort_counts(unit_g), excluded),
        n_units=n_units,
        n_obs=int(y.size),
        covariate_names=names,
        partitions=parts,
        clustered=cluster is not None,
        cohort_counts=_cohort_counts(unit_g),
    )


def _rc_table(y, t, g, w, x, ids, cluster, q, periods, excluded, names, spec, n_partitions
              ) -> DidData:
    n = y.size
    keys = keys_from_values(ids) if ids is not None else np.arange(n, dtype=np.uint64)
    cols = {
        "y": y,
        "tidx": np.searchsorted(periods, t).astype(np.int64),
        "G": g,
        "w": w,
        "x": x.reshape(n, 1, x.shape[1]),
        "key": keys,
        "pos": np.arange(n),
    }
    if cluster is not None:
        cols["cluster"] = keys_from_values(cluster)
    if q is not None:
        cols["Q"] = q
    return DidData(
        kind="rc",
        periods=periods,
        cohorts=estimable_cohorts(_cohort_counts(g), excluded),
        n_units=n,
        n_obs=n,
        covariate_names=names,
        partitions=split_partitions(cols, n_partitions),
        clustered=cluster is not None,
        cohort_counts=_cohort_counts(g),
    )


def _sorted_by_unit_and_period(ids: np.ndarray, tpos: np.ndarray) -> bool:
    """Whether numeric ids ascend and periods strictly ascend within each unit."""
    if ids.dtype.kind not in "iuf" or ids.size < 2:
        return False
    same = ids[1:] == ids[:-1]
    return bool((ids[1:] >= ids[:-1]).all() and (tpos[1:][same] > tpos[:-1][same]).all())


def _partition_column(table: Any, pname: str) -> np.ndarray:
    """The eligibility column of triple differences, which must be 0/1."""
    q = numeric_column(table, pname, "partition (pname)")
    check_partition_values(pname, np.unique(q).tolist())
    return q


def _check_panel_rows(ids, t, g, w, cluster, q, spec: DidSpec) -> None:
    """One row per unit and period, and group, weights, cluster and eligibility constant
    within units; the errors (the planner's) name the smallest offending unit."""
    periods = np.unique(t)
    tpos = np.searchsorted(periods, t)
    if _sorted_by_unit_and_period(ids, tpos):
        order = None  # sorted input: no duplicates; constant-within checks below
        change = np.empty(ids.size, dtype=bool)
        change[0] = True
        change[1:] = ids[1:] != ids[:-1]
        unit = np.cumsum(change) - 1
        uid = ids[change]
    else:
        uid, unit = np.unique(ids, return_inverse=True)
        order = np.lexsort((tpos, unit))

    def take(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    unit_s, tpos_s = take(unit), take(tpos)
    dup = (unit_s[1:] == unit_s[:-1]) & (tpos_s[1:] == tpos_s[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise duplicate_row_error(uid[unit_s[i]], periods[tpos_s[i]], spec)
    starts = np.concatenate([[0], np.cumsum(np.bincount(unit, minlength=uid.size))[:-1]])
    checks = [(g, spec.gname, "group"), (w, spec.weightsname or "", "weights")]
    if cluster is not None:
        checks.append((keys_from_values(cluster), spec.clustervars[0], "cluster"))
    if q is not None:
        checks.append((q, spec.pname or "", "partition"))
    # attribute by attribute in this order, as Spark and Dask read their flags: the first
    # attribute that varies anywhere, and its smallest unit, is named
    for values, column, what in checks:
        sorted_values = take(values)
        differs = sorted_values != sorted_values[starts][unit_s]
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            raise varying_error(what, column, uid[unit_s[i]])


def _check_n_partitions(n_partitions: Any) -> None:
    if (not isinstance(n_partitions, numbers.Integral) or isinstance(n_partitions, bool)
            or n_partitions < 1):
        raise InvalidOptionError(f"n_partitions must be a positive integer, got {n_partitions!r}")


def _cohort_counts(g: np.ndarray) -> dict[float, int]:
    values, counts = np.unique(g, return_counts=True)
    return {float(v): int(c) for v, c in zip(values, counts, strict=True)}


def split_partitions(cols: dict[str, np.ndarray], n_partitions: int
                     ) -> list[dict[str, np.ndarray]]:
    """Split row-aligned arrays into contiguous partitions, each sorted by cohort ``G``."""
    n = cols["G"].shape[0]
    _check_n_partitions(n_partitions)
    n_partitions = int(n_partitions)
    bounds = np.linspace(0, n, min(n_partitions, n) + 1).astype(np.int64)
    parts = []
    for lo, hi in itertools.pairwise(bounds):
        order = lo + np.argsort(cols["G"][lo:hi], kind="stable")
        parts.append({name: arr[order] for name, arr in cols.items()})
    return parts

