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
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from moderndid._warnings import warn_user
from moderndid.core.design import distinct_rows, formula_columns, missing_count, parse_rhs
from moderndid.core.frames import key_column, numeric_column, to_arrow_table, type_label
from moderndid.core.multipliers import keys_from_values
from moderndid.did.plan import (
    check_columns,
    check_partition_values,
    check_statistics,
    cohort_plan,
    cohort_recoding,
    duplicate_row_error,
    metadata,
    varying_error,
)
from moderndid.engine.panel_plan import plan_covariates
from moderndid.engine.spec import NUMERIC_ROLES, DidData, DidSpec
from moderndid.errors import DataStructureError, InvalidOptionError


def normalize_clustervars(clustervars: Any, idname: str | None) -> list[str]:
    """The clustering variables other than the unit id, always a clustering level (R `did`
    accepts the unit id and at most one other variable)."""
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


def prepare_did(data: Any, spec: DidSpec, n_partitions: int = 1) -> DidData:
    """Validate ``data`` for `att_gt` and build its partitioned unit table; every refusal,
    warning and cohort decision is the planner's (:mod:`moderndid.did.plan`)."""
    needed = [spec.yname, spec.tname, spec.gname, spec.idname, spec.weightsname,
              *spec.clustervars, *formula_columns(parse_rhs(spec.xformla))]
    table = to_arrow_table(data, [c for c in needed if isinstance(c, str)])
    design, roles = plan_covariates(
        spec, table.schema,
        lambda roles: check_columns(roles, table.column_names,
                                    lambda c: type_label(table.schema.field(c).type)),
        lambda columns: distinct_rows(table, columns))
    n = table.num_rows
    x = np.column_stack([np.ones(n), design.evaluate(table)])
    read = {c: numeric_column(table, c, role, allow_missing=True)
            for c, role in roles if role in NUMERIC_ROLES}
    terms = ({} if design.spec is None
             else dict(zip(design.covariates, x[:, 1:].T, strict=True)))
    roles += [(term, "covariate (xformla) term") for term in terms]
    missing, max_abs = [], []
    for column, role in roles:
        values = terms[column] if role == "covariate (xformla) term" else read.get(column)
        if values is None:  # identifiers and categorical covariates
            missing.append(missing_count(table.column(column)))
            max_abs.append(0.0)
        else:
            finite = np.isfinite(values)
            missing.append(int(values.size - finite.sum()))
            max_abs.append(float(np.abs(values).max(initial=0.0, where=finite)))
    w = read[spec.weightsname] if spec.weightsname is not None else np.ones(n)
    fractional = {}
    for c in [spec.idname, *spec.clustervars]:
        if c is not None and pa.types.is_floating(table.schema.field(c).type):
            ids = table.column(c).to_numpy(zero_copy_only=False)
            fractional[c] = int((np.isfinite(ids) & (ids != np.floor(ids))).sum())
    with np.errstate(over="ignore", invalid="ignore"):  # refused by the checks first
        xx = x.T @ x
    check_statistics(spec, roles, n, missing, float(w.min(initial=np.inf, where=np.isfinite(w))),
                     float(w.max(initial=-np.inf, where=np.isfinite(w))), fractional, xx,
                     design.covariates, max_abs)
    y, t, g = read[spec.yname], read[spec.tname], read[spec.gname]
    cluster = (key_column(table, spec.clustervars[0], "cluster (clustervars)")
               if spec.clustervars else None)
    ids = key_column(table, spec.idname, "unit id (idname)") if spec.idname else None
    q = None
    if spec.pname is not None:
        q = read[spec.pname]
        check_partition_values(spec.pname, np.unique(q).tolist())
    if spec.panel:
        # before the cohort decisions and their warnings, as the distributed engines do
        _check_panel_rows(ids, t, g, w, cluster, q, spec)
    periods = np.unique(t)
    raw, inverse = np.unique(g, return_inverse=True)
    plan = cohort_plan(raw, periods, spec)
    recoding = cohort_recoding(raw, periods, plan, spec)
    g = np.array([recoding.get(float(v), np.nan) for v in raw])[inverse]
    keep = ~np.isnan(g)
    if plan.period_cutoff is not None:
        keep &= t < plan.period_cutoff
    if not keep.any():
        raise DataStructureError("no rows are left after dropping cohorts treated in the "
                                 "first period")
    if not keep.all():
        y, t, g, w, x = y[keep], t[keep], g[keep], w[keep], x[keep]
        ids, cluster, q = (None if a is None else a[keep] for a in (ids, cluster, q))
    periods = np.unique(t)
    if periods.size < 2:
        raise DataStructureError(f"time column {spec.tname!r} has fewer than two periods")
    build = _panel_table if spec.panel else _rc_table
    kind, partitions, unit_g, n_obs, xtv = build(y, t, g, w, x, ids, cluster, q, periods, spec,
                                                 n_partitions)
    values, counts = np.unique(unit_g, return_counts=True)
    prepared = metadata(kind, periods, dict(zip(values.tolist(), counts.tolist(), strict=True)),
                        plan, list(design.names), n_rows=n_obs, n_units=unit_g.size,
                        clustered=cluster is not None, xtv=xtv, spec=spec)
    prepared.partitions = partitions
    return prepared


def _units(ids: np.ndarray, t: np.ndarray, periods: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[Any], Any]]:
    """Distinct unit ids, each row's unit index and period index, and a function putting
    rows in (unit, period) order (the identity when they already are: the common layout
    needs no sort and no copies)."""
    tpos = np.searchsorted(periods, t)
    if ids.dtype.kind in "iuf" and ids.size > 1:
        same = ids[1:] == ids[:-1]
        if (ids[1:] >= ids[:-1]).all() and (tpos[1:][same] > tpos[:-1][same]).all():
            change = np.concatenate([[True], ~same])
            return ids[change], np.cumsum(change) - 1, tpos, lambda values: values
    uid, unit = np.unique(ids, return_inverse=True)
    order = np.lexsort((tpos, unit))
    return uid, unit, tpos, lambda values: None if values is None else values[order]


def _check_panel_rows(ids, t, g, w, cluster, q, spec: DidSpec) -> None:
    """One row per unit and period, and group, weights, cluster and eligibility constant
    within units; the errors (the planner's) name the smallest offending unit."""
    periods = np.unique(t)
    uid, unit, tpos, take = _units(ids, t, periods)
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


def _panel_table(y, t, g, w, x, ids, cluster, q, periods, spec, n_partitions):
    """Partitions of a panel: (kind, partitions, cohort of each unit, observations,
    whether covariates vary over time)."""
    uid, unit, tpos, take = _units(ids, t, periods)
    n_units, n_periods = uid.size, periods.size
    counts = np.bincount(unit, minlength=n_units)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    balanced = bool((counts == n_periods).all())
    if not balanced and spec.allow_unbalanced_panel:
        return _unbalanced_table(take(y), take(tpos), take(g), take(w), take(x), take(unit),
                                 starts, uid, take(cluster), take(q), n_partitions)
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
                            None if q is None else q[keep], periods, spec, n_partitions)
    # Balanced: rows sorted by (unit, period) reshape to (units, periods).
    y_u = take(y).reshape(n_units, n_periods)
    x_u = take(x).reshape(n_units, n_periods, x.shape[1])
    if (x_u == x_u[:, :1, :]).all():
        x_u = np.ascontiguousarray(x_u[:, :1, :])
    unit_cols = {"y": y_u, "G": take(g)[starts], "w": take(w)[starts], "x": x_u,
                 "key": keys_from_values(uid), "pos": np.arange(n_units)}
    if cluster is not None:
        unit_cols["cluster"] = keys_from_values(take(cluster)[starts])
    if q is not None:
        unit_cols["Q"] = take(q)[starts]
    return ("panel", split_partitions(unit_cols, n_partitions), unit_cols["G"],
            n_units * n_periods, x_u.shape[1] > 1)


def _unbalanced_table(y, tpos, g, w, x, unit, starts, uid, cluster, q, n_partitions):
    """Observation table of an unbalanced panel (rows sorted by unit and period): as in
    R `did`, cells use the repeated cross-section estimators, summed by unit."""
    n_units = uid.size
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
    return "unbalanced", parts, g[starts], int(y.size), False


def _rc_table(y, t, g, w, x, ids, cluster, q, periods, spec, n_partitions):
    """Partitions of repeated cross sections (one row per observation)."""
    n = y.size
    keys = keys_from_values(ids) if ids is not None else np.arange(n, dtype=np.uint64)
    cols = {"y": y, "tidx": np.searchsorted(periods, t).astype(np.int64), "G": g, "w": w,
            "x": x.reshape(n, 1, x.shape[1]), "key": keys, "pos": np.arange(n)}
    if cluster is not None:
        cols["cluster"] = keys_from_values(cluster)
    if q is not None:
        cols["Q"] = q
    return "rc", split_partitions(cols, n_partitions), g, n, False


def split_partitions(cols: dict[str, np.ndarray], n_partitions: int
                     ) -> list[dict[str, np.ndarray]]:
    """Split row-aligned arrays into contiguous partitions, each sorted by cohort ``G``."""
    n = cols["G"].shape[0]
    bounds = np.linspace(0, n, min(n_partitions, n) + 1).astype(np.int64)
    parts = []
    for lo, hi in itertools.pairwise(bounds):
        order = lo + np.argsort(cols["G"][lo:hi], kind="stable")
        parts.append({name: arr[order] for name, arr in cols.items()})
    return parts
