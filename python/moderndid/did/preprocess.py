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

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from moderndid.core.design import design_matrix, formula_columns, parse_rhs
from moderndid.core.frames import key_column, numeric_column, require_columns, to_arrow_table
from moderndid.core.multipliers import keys_from_values
from moderndid.errors import DataStructureError, InvalidOptionError, ModernDiDError


@dataclass
class DidData:
    """The validated, partitioned input of an `att_gt` estimation."""

    kind: str  # "panel", "rc" or "unbalanced"
    periods: np.ndarray
    cohorts: np.ndarray
    n_units: int
    n_obs: int
    covariate_names: list[str]
    partitions: list[dict[str, np.ndarray]]
    clustered: bool
    x_time_varying: bool = False
    cohort_counts: dict[float, int] = field(default_factory=dict)


@dataclass
class DidSpec:
    """Column roles of an `att_gt` call."""

    yname: str
    tname: str
    idname: str | None
    gname: str
    xformla: str | None
    weightsname: str | None
    clustervars: list[str]
    panel: bool
    allow_unbalanced_panel: bool
    anticipation: float
    control_group: str = "nevertreated"


def normalize_clustervars(clustervars: Any, idname: str | None) -> list[str]:
    """Return the clustering variables other than the unit id (R `did` convention).

    R `did` accepts ``clustervars`` with the unit id and at most one other variable; the
    unit id is always a clustering level in panels, so only the other variable matters.
    """
    if clustervars is None:
        return []
    if isinstance(clustervars, str):
        clustervars = [clustervars]
    names = [str(c) for c in clustervars]
    other = [c for c in names if c != idname]
    if len(other) > 1:
        raise InvalidOptionError(
            f"clustervars may hold the unit id and at most one other variable, got {names}"
        )
    return other


def prepare_did(data: Any, spec: DidSpec, n_partitions: int = 1) -> DidData:
    """Validate ``data`` for `att_gt` and build its partitioned unit table."""
    table = to_arrow_table(data)
    if table.num_rows == 0:
        raise DataStructureError("the data has no rows")
    formula = parse_rhs(spec.xformla)
    roles = [(spec.yname, "outcome (yname)"), (spec.tname, "time (tname)"),
             (spec.gname, "group (gname)")]
    if spec.idname is not None:
        roles.append((spec.idname, "unit id (idname)"))
    elif spec.panel:
        raise InvalidOptionError("idname is required for panel data (panel=True)")
    if spec.weightsname is not None:
        roles.append((spec.weightsname, "weights (weightsname)"))
    roles += [(c, "cluster (clustervars)") for c in spec.clustervars]
    require_columns(table, roles)
    for c in formula_columns(formula):
        require_columns(table, [(c, "covariate (xformla)")])

    y = numeric_column(table, spec.yname, "outcome (yname)")
    t = numeric_column(table, spec.tname, "time (tname)")
    g = numeric_column(table, spec.gname, "group (gname)")
    if spec.weightsname is not None:
        w = numeric_column(table, spec.weightsname, "weights (weightsname)")
        if (w < 0).any():
            raise DataStructureError(
                f"weights column {spec.weightsname!r} has negative values "
                f"(first at row {int(np.flatnonzero(w < 0)[0])})"
            )
    else:
        w = np.ones(table.num_rows)
    x, names = design_matrix(table, formula)
    cluster = (key_column(table, spec.clustervars[0], "cluster (clustervars)")
               if spec.clustervars else None)
    ids = key_column(table, spec.idname, "unit id (idname)") if spec.idname else None

    periods = np.unique(t)
    if periods.size < 2:
        raise DataStructureError(f"time column {spec.tname!r} has fewer than two periods")
    if (g < 0).any():
        raise DataStructureError(f"group column {spec.gname!r} has negative values")
    g, keep = _recode_cohorts(g, periods, spec)
    if not keep.all():
        y, t, g, w, x = y[keep], t[keep], g[keep], w[keep], x[keep]
        ids = ids[keep] if ids is not None else None
        cluster = cluster[keep] if cluster is not None else None
        if y.size == 0:
            raise DataStructureError("no units are left after dropping units treated in the "
                                     "first period")
    cohorts = np.unique(g[np.isfinite(g)])
    if cohorts.size == 0:
        raise DataStructureError(
            f"no treated units: every unit in {spec.gname!r} is never treated (0) or was "
            "dropped"
        )

    if spec.panel:
        assert ids is not None
        return _panel_table(y, t, g, w, x, ids, cluster, periods, cohorts, names, spec,
                            n_partitions)
    return _rc_table(y, t, g, w, x, ids, cluster, periods, cohorts, names, spec, n_partitions)


def _recode_cohorts(g: np.ndarray, periods: np.ndarray, spec: DidSpec
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Never treated -> inf; drop (with a warning) units treated in the first period.

    As in R `did`, 0 marks never-treated units and units first treated after the last
    period are never treated within the sample; units already treated (allowing for
    anticipation) in the first period have no untreated period and are dropped.
    """
    g = np.where(g == 0, np.inf, g)
    g = np.where(g > periods[-1], np.inf, g)
    treated = np.isfinite(g)
    bad = treated & ~np.isin(g, periods)
    if bad.any():
        raise DataStructureError(
            f"group column {spec.gname!r} has first-treated period {g[bad][0]:g}, which is "
            f"not one of the time periods in {spec.tname!r}"
        )
    early = treated & (g <= periods[0] + spec.anticipation)
    if early.any():
        if spec.idname is not None:
            _ids_note = " units"
        else:
            _ids_note = " observations"
        warnings.warn(
            f"Dropped {int(np.unique(g[early]).size)} cohort(s) ({', '.join(f'{v:g}' for v in np.unique(g[early]))}) "
            f"treated in the first period (allowing for anticipation): {int(early.sum())} "
            f"rows of{_ids_note} with no untreated period",
            UserWarning,
            stacklevel=4,
        )
    return g, ~early


def _panel_table(y, t, g, w, x, ids, cluster, periods, cohorts, names, spec, n_partitions
                 ) -> DidData:
    n_rows = y.size
    uid, unit = np.unique(ids, return_inverse=True)
    tpos = np.searchsorted(periods, t)
    order = np.lexsort((tpos, unit))
    unit_s, tpos_s = unit[order], tpos[order]
    dup = (unit_s[1:] == unit_s[:-1]) & (tpos_s[1:] == tpos_s[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataStructureError(
            f"unit {uid[unit_s[i]]!r} has more than one row in period "
            f"{periods[tpos_s[i]]:g}: panel data need one row per unit and period "
            f"(columns {spec.idname!r}, {spec.tname!r})"
        )
    n_units, n_periods = uid.size, periods.size
    counts = np.bincount(unit, minlength=n_units)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    _check_constant_within(g[order], unit_s, starts, uid, spec.gname, "group")
    _check_constant_within(w[order], unit_s, starts, uid, spec.weightsname or "", "weights")
    if cluster is not None:
        ckeys = keys_from_values(cluster)
        _check_constant_within(ckeys[order].view(np.int64).astype(np.float64), unit_s, starts,
                               uid, spec.clustervars[0], "cluster")
    balanced = bool((counts == n_periods).all())
    if not balanced and spec.allow_unbalanced_panel:
        return _unbalanced_table(y, t, g, w, x, ids, cluster, periods, cohorts, names, spec,
                                 n_partitions, uid, unit)
    if not balanced:
        full = counts == n_periods
        warnings.warn(
            f"Dropped {int((~full).sum())} of {n_units} units not observed in all "
            f"{n_periods} periods (balancing the panel); pass allow_unbalanced_panel=True "
            "to keep them",
            UserWarning,
            stacklevel=3,
        )
        keep = full[unit]
        if not keep.any():
            raise DataStructureError("no unit is observed in every period")
        return _panel_table(y[keep], t[keep], g[keep], w[keep], x[keep], ids[keep],
                            None if cluster is None else cluster[keep], periods, cohorts,
                            names, spec, n_partitions)
    # Balanced: rows sorted by (unit, period) reshape to (units, periods).
    k = x.shape[1]
    y_u = y[order].reshape(n_units, n_periods)
    x_u = x[order].reshape(n_units, n_periods, k)
    if (x_u == x_u[:, :1, :]).all():
        x_u = np.ascontiguousarray(x_u[:, :1, :])
    first = starts
    unit_cols = {
        "y": y_u,
        "G": g[order][first],
        "w": w[order][first],
        "x": x_u,
        "key": keys_from_values(uid),
    }
    if cluster is not None:
        unit_cols["cluster"] = keys_from_values(cluster[order][first])
    cohorts = np.unique(unit_cols["G"][np.isfinite(unit_cols["G"])])
    return DidData(
        kind="panel",
        periods=periods,
        cohorts=cohorts,
        n_units=n_units,
        n_obs=n_units * n_periods,
        covariate_names=names,
        partitions=split_partitions(unit_cols, n_partitions),
        clustered=cluster is not None,
        x_time_varying=x_u.shape[1] > 1,
        cohort_counts=_cohort_counts(unit_cols["G"]),
    )


def _unbalanced_table(y, t, g, w, x, ids, cluster, periods, cohorts, names, spec,
                      n_partitions, uid, unit) -> DidData:
    raise ModernDiDError("unbalanced panels are not implemented yet")


def _rc_table(y, t, g, w, x, ids, cluster, periods, cohorts, names, spec, n_partitions
              ) -> DidData:
    n = y.size
    if ids is not None:
        keys = keys_from_values(ids)
    else:
        keys = np.arange(n, dtype=np.uint64)
    cols = {
        "y": y,
        "tidx": np.searchsorted(periods, t).astype(np.int64),
        "G": g,
        "w": w,
        "x": x.reshape(n, 1, x.shape[1]),
        "key": keys,
    }
    if cluster is not None:
        cols["cluster"] = keys_from_values(cluster)
    return DidData(
        kind="rc",
        periods=periods,
        cohorts=cohorts,
        n_units=n,
        n_obs=n,
        covariate_names=names,
        partitions=split_partitions(cols, n_partitions),
        clustered=cluster is not None,
        cohort_counts=_cohort_counts(g),
    )


def _check_constant_within(values, unit_sorted, starts, uid, column, what) -> None:
    first = values[starts][unit_sorted]
    differs = values != first
    if differs.any():
        i = int(np.flatnonzero(differs)[0])
        raise DataStructureError(
            f"{what} column {column!r} varies over time within unit {uid[unit_sorted[i]]!r}; "
            f"it must be constant for each unit in panel data"
        )


def _cohort_counts(g: np.ndarray) -> dict[float, int]:
    values, counts = np.unique(g, return_counts=True)
    return {float(v): int(c) for v, c in zip(values, counts, strict=True)}


def split_partitions(cols: dict[str, np.ndarray], n_partitions: int
                     ) -> list[dict[str, np.ndarray]]:
    """Split row-aligned arrays into contiguous partitions, each sorted by cohort ``G``."""
    n = cols["G"].shape[0]
    if not isinstance(n_partitions, int) or n_partitions < 1:
        raise InvalidOptionError(f"n_partitions must be a positive integer, got {n_partitions!r}")
    bounds = np.linspace(0, n, min(n_partitions, n) + 1).astype(np.int64)
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        order = lo + np.argsort(cols["G"][lo:hi], kind="stable")
        parts.append({name: arr[order] for name, arr in cols.items()})
    return parts

