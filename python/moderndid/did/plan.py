"""The one planner of the estimators: every decision taken from the statistics of the input.

Each engine gathers the same small statistics (rows, missing values per column, weight
range, fractional identifiers, the covariates' cross-product, distinct periods and raw
cohorts, units per cohort) in its own way; the functions here turn them into the
decisions and the messages, so that the in-memory, Spark and Dask paths refuse, warn,
recode and count alike. This module is the planner handed to the engines
(:class:`moderndid.engine.protocol.Planner`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from moderndid._warnings import warn_user
from moderndid.core.design import check_design_rank
from moderndid.core.frames import KEY_LABELS, NUMERIC_LABELS, show_value
from moderndid.engine.panel_blocks import PanelLayout, RowColumns
from moderndid.engine.panel_plan import add_histogram, recoded_histogram
from moderndid.engine.protocol import CohortPlan, PanelPlan
from moderndid.engine.spec import NUMERIC_ROLES, DidData, DidSpec
from moderndid.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    DataStructureError,
    MissingValuesError,
    NumericalOverflowError,
)

KEY_ROLES = ("unit id (idname)", "cluster (clustervars)")


def check_columns(roles: Sequence[tuple[Any, str]], available: Sequence[str],
                  describe: Callable[[str], str]) -> None:
    """Refuse columns absent from the data or of an unusable type. ``describe`` gives a
    column's type in the vocabulary of :func:`moderndid.core.frames.type_label`, so that
    the message is the same on every engine."""
    for column, role in roles:
        if not isinstance(column, str):
            raise ColumnTypeError(f"{role} must be a column name (str), got {column!r}")
        if column not in available:
            raise ColumnNotFoundError(column, role, available)
    for column, role in roles:
        if role in NUMERIC_ROLES and (label := describe(column)) not in NUMERIC_LABELS:
            raise ColumnTypeError(f"{role} column {column!r} must be numeric, but has type {label}")
        if role in KEY_ROLES and (label := describe(column)) not in KEY_LABELS:
            raise ColumnTypeError(f"{role} column {column!r} must hold integers or strings, but "
                                  f"has type {label}")


MAGNITUDE_LIMIT = 1e100
"""The largest absolute value an outcome, weight or covariate may hold. The estimators
sum squares and products of up to three such values (weight x covariate x outcome) over
millions of rows: below 1e100 that stays finite; well beyond it numpy returns inf or NaN
standard errors (with a RuntimeWarning) or a spurious singular design."""

MAGNITUDE_ROLES = ("outcome (yname)", "weights (weightsname)", "covariate (xformla)",
                   "covariate (xformla) term")


def check_statistics(spec: DidSpec, ordered: Sequence[tuple[str, str]], rows: int,
                     missing: Sequence[int], wmin: float, wmax: float,
                     fractional: Mapping[str, int], xx: np.ndarray | None,
                     covariates: list[str], max_abs: Sequence[float] | None = None) -> None:
    """Refuse what column statistics show to be unusable, in this order: no rows, missing
    values (``missing[i]`` for the column and role ``ordered[i]``), negative or all-zero
    weights, non-integer identifiers (``fractional``: user column -> count), outcome,
    weights or covariate values beyond :data:`MAGNITUDE_LIMIT` (``max_abs[i]``: the largest
    finite absolute value of column ``ordered[i]``), collinear covariates (``xx``:
    cross-product with the intercept first)."""
    if rows == 0:
        raise DataStructureError("the data has no rows")
    for (column, role), n_missing in zip(ordered, missing, strict=True):
        if n_missing:
            raise MissingValuesError(
                f"{role} column {column!r} has {int(n_missing)} missing or non-finite "
                "value(s); drop or impute them first"
            )
    if spec.weightsname and wmin < 0:
        raise DataStructureError(f"weights column {spec.weightsname!r} has negative values")
    if spec.weightsname and not wmax > 0:
        raise DataStructureError(f"weights column {spec.weightsname!r} is zero everywhere")
    for column, role in ordered:
        if fractional.get(column):
            raise ColumnTypeError(
                f"{role} column {column!r} holds non-integer numbers: identifiers must be "
                "integers or strings")
    largest_values = [0.0] * len(ordered) if max_abs is None else max_abs
    for (column, role), largest in zip(ordered, largest_values, strict=True):
        if role in MAGNITUDE_ROLES and float(largest) > MAGNITUDE_LIMIT:
            raise NumericalOverflowError(
                f"{role} column {column!r} has values as large as {float(largest):g} in "
                f"absolute value (the limit is {MAGNITUDE_LIMIT:g}): the estimator's sums "
                "of squares and cross-products would overflow; rescale the column (e.g. "
                "divide it by a power of ten)")
    if xx is not None and covariates:
        check_design_rank(xx, ["(Intercept)", *covariates])


def duplicate_row_error(unit: Any, period: Any, spec: DidSpec) -> DataStructureError:
    """The error for a unit with two rows in one period. Every engine names the smallest
    such unit (ids in sort order) and its earliest duplicated period."""
    return DataStructureError(
        f"unit {show_value(unit)} has more than one row in period {float(period):g}: panel "
        f"data need one row per unit and period (columns {spec.idname!r}, {spec.tname!r})")


def varying_error(what: str, column: str, unit: Any) -> DataStructureError:
    """The error for a unit attribute (group, weights, cluster, partition) that changes
    over time; every engine names the smallest such unit."""
    return DataStructureError(
        f"{what} column {column!r} varies over time within unit {show_value(unit)}; it must "
        "be constant for each unit in panel data")


def plan_panel(info: Sequence[Mapping[str, Any]], spec: DidSpec, covariates: list[str],
               ordered: dict[str, tuple[str, str]], cols: RowColumns,
               count_units: Callable[[PanelLayout], dict[tuple[float, float, int], int]],
               raise_flag: Callable[[int], None]) -> PanelPlan:
    """Validate the blocks' statistics (``info``: their non-payload fields), recode
    cohorts and count units: the metadata and the layout every pass reads the blocks with.
    ``count_units(layout)`` recounts units on the executors when periods are cut off;
    ``raise_flag(flags)`` raises the typed error for problem flags, naming a unit."""
    if not any(r["rows"] for r in info):  # an empty input has no blocks at all
        check_statistics(spec, [], 0, [], 1.0, 1.0, {}, None, covariates)
    xx = None
    if covariates:
        k1 = len(covariates) + 1
        upper = np.sum([r["xx"] for r in info], axis=0)
        xx = np.zeros((k1, k1))
        xx[np.triu_indices(k1)] = upper
        xx = xx + np.triu(xx, 1).T
    fractional = dict(zip(cols.fractional, np.sum([r["fractional"] for r in info], axis=0)
                          if cols.fractional else [], strict=True))
    check_statistics(spec, list(ordered.values()), sum(r["rows"] for r in info),
                     np.sum([r["missing"] for r in info], axis=0),
                     min(r["wmin"] for r in info), max(r["wmax"] for r in info),
                     {ordered[name][0]: int(n) for name, n in fractional.items()}, xx,
                     covariates, np.max([r["max_abs"] for r in info], axis=0))

    # Structure errors (duplicates, attributes varying within a unit) come before the
    # cohort decisions and their warnings: the raw cohorts below are each unit's first
    # row's group, which only means something once the group is constant within units.
    if flags := int(np.bitwise_or.reduce([int(r["flags"]) for r in info])):
        raise_flag(flags)
    periods = np.unique(np.concatenate([np.asarray(r["periods"], dtype=np.float64)
                                        for r in info]))
    histogram: dict[tuple[float, float, int], int] = {}
    for r in info:
        add_histogram(histogram, r["histogram"])
    raw_cohorts = np.unique([g for g, _, _ in histogram])
    two_period, group_map = group_coding(spec, periods, raw_cohorts,
                                             {q for _, q, _ in histogram})
    mapped = np.unique([group_map.get(float(g), float(g)) for g in raw_cohorts])
    plan = cohort_plan(mapped, periods, spec)
    recoding = cohort_recoding(mapped, periods, plan, spec)
    recode = {float(raw): recoding[g] for raw in raw_cohorts
              if (g := group_map.get(float(raw), float(raw))) in recoding}
    if plan.period_cutoff is not None:
        periods = periods[periods < plan.period_cutoff]
    if periods.size < 2:
        raise DataStructureError(f"time column {spec.tname!r} has fewer than two periods")
    T_ = periods.size
    layout = PanelLayout(periods=periods, recode=recode, complete_only=False, kind="panel",
                         n_covariates=len(covariates), clustered=cols.clustered)
    if plan.period_cutoff is None:
        units = recoded_histogram(histogram, recode)
    else:
        # observations in the periods cut off no longer count: recount on the executors
        units = count_units(layout)
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
    kind = "unbalanced" if n_complete < n_all and spec.allow_unbalanced_panel else "panel"
    balance = n_complete < n_all and kind == "panel"
    if balance:
        warn_user(f"Dropped {n_all - n_complete} of {n_all} units not observed in all {T_} "
                  "periods (balancing the panel); pass allow_unbalanced_panel=True to keep them")
    which = full_units if kind == "panel" else all_units
    counts = {g: c for g, c in which.items() if c}
    n_units = sum(counts.values())
    n_obs = n_units * T_ if kind == "panel" else n_rows_observed
    names = ["(Intercept)", *covariates]
    meta = metadata(kind, periods, counts, plan, names, n_rows=n_obs, n_units=n_units,
                     clustered=cols.clustered, xtv=any(bool(r["xtv"]) for r in info),
                     spec=spec)
    # units per (cohort, eligibility), over all units as the in-memory engine counts them
    subgroups = ({(g, q): subgroup_units.get((g, q), 0) for g in labels for q in (0.0, 1.0)}
                 if spec.pname else {})
    return PanelPlan(meta=meta, layout=replace(layout, complete_only=balance, kind=kind),
                     two_period=two_period, subgroups=subgroups)


def check_partition_values(pname: str, values: Sequence[float]) -> None:
    """The eligibility column of triple differences holds 0 and 1 only."""
    values = sorted(values)
    if not set(values) <= {0.0, 1.0}:
        raise DataStructureError(
            f"partition column {pname!r} must hold 0 (ineligible) and 1 (eligible), "
            f"found {', '.join(f'{v:g}' for v in values[:6])}")


def group_coding(spec: DidSpec, periods: np.ndarray, raw_cohorts: np.ndarray,
                 partition_values: set[float]) -> tuple[bool, dict[float, float]]:
    """Triple differences: check the eligibility values and detect the two-period design.

    With two periods and a group column holding 0 and one other value (``1``, the second
    period, or any other code, as R `triplediff` accepts), the design is the two-period
    DDD and the non-zero value means treated in the second period. Returns whether it is
    the two-period design and the map from raw group values to first-treated periods.
    """
    if not spec.pname:
        return False, {}
    check_partition_values(spec.pname, sorted(partition_values))
    cohorts = sorted(set(raw_cohorts.tolist()))
    if periods.size != 2 or len(cohorts) != 2 or cohorts[0] != 0.0:
        return False, {}
    treated = cohorts[1]
    return True, ({} if treated == float(periods[1]) else {treated: float(periods[1])})


def cohort_plan(raw: np.ndarray, periods: np.ndarray, spec: DidSpec) -> CohortPlan:
    """Recode distinct raw cohorts as R `did` 2.3 does (with its warnings).

    - 0 means never treated, and so does a first-treated period after the last period plus
      anticipation;
    - without never-treated units, the last cohort becomes the comparison group and periods
      from its treatment (less anticipation) on are dropped;
    - cohorts treated (allowing for anticipation) in the first period are dropped.
    """
    g = np.where((raw == 0) | (raw > periods[-1] + spec.anticipation), np.inf, raw)
    if (g < 0).any():
        raise DataStructureError(
            f"group column {spec.gname!r} has negative values ({g[g < 0][0]:g}); it holds "
            "the first treated period, or 0 for never treated")
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
        warn_user(
            f"No never-treated units: cohort {latest:g} (the last treated) serves as the "
            f"comparison group and periods from {latest - spec.anticipation:g} on are dropped")
        cutoff = latest - spec.anticipation
        if spec.control_group == "nevertreated":
            to_never = [latest]
        else:
            excluded = frozenset([latest])
    cohorts = g[np.isfinite(g) & ~np.isin(g, to_never)]
    before = periods if cutoff is None else periods[periods < cutoff]
    if before.size == 0:
        raise DataStructureError("no rows are left after dropping cohorts treated in the "
                                 "first period")
    first = before[0]
    dropped = [float(v) for v in cohorts if v <= first + spec.anticipation]
    if dropped:
        what = "units" if spec.panel else "observations"
        warn_user(
            f"Dropped the {what} of {len(dropped)} cohort(s) already treated in the first "
            f"period (allowing for anticipation = {spec.anticipation:g}): "
            f"{', '.join(f'{v:g}' for v in dropped)}")
    return CohortPlan(to_never=to_never, dropped=dropped, excluded=excluded,
                       period_cutoff=cutoff)


def metadata(kind: str, periods: np.ndarray, counts: dict[float, int], plan: CohortPlan,
             names: list[str], n_rows: int, n_units: int, clustered: bool, xtv: bool,
             spec: DidSpec) -> DidData:
    """The metadata of prepared data, with the treated cohorts to estimate, after the
    small-group rule (``counts``: units per recoded cohort, or observations for repeated
    cross sections)."""
    cohorts = np.array(sorted(g for g, c in counts.items()
                              if c and np.isfinite(g) and g not in plan.excluded))
    if cohorts.size == 0:
        raise DataStructureError("no treated cohort is left to estimate: every unit is never "
                                 "treated (group 0) or was dropped")
    # R `did`'s small-group rule: fewer than (covariates + 5) units in a cohort warns; a
    # never-treated comparison group that small is refused
    required = len(names) - 1 + 5
    per_period = periods.size if kind == "rc" else 1
    small = {g: c / per_period for g, c in counts.items() if c and c / per_period < required}
    if math.inf in small and spec.control_group == "nevertreated":
        raise DataStructureError(
            f"the never-treated group has only about {small[math.inf]:g} units; at least "
            f"{required} are needed with these covariates (try control_group='notyettreated')"
        )
    if small:
        listed = ", ".join(f"{'never treated' if math.isinf(g) else f'{g:g}'} ({s:g})"
                           for g, s in sorted(small.items()))
        warn_user(f"Small groups (units per cohort, fewer than {required}): {listed}; "
                  "estimates for them may be unreliable")
    return DidData(kind=kind, periods=periods, cohorts=cohorts, n_units=n_units, n_obs=n_rows,
                   covariate_names=names, partitions=[], clustered=clustered,
                   x_time_varying=xtv, cohort_counts=counts)


def cohort_recoding(raw: Iterable[float], periods: np.ndarray, plan: CohortPlan,
                    spec: DidSpec) -> dict[float, float]:
    """Raw cohort -> recoded cohort (``inf`` = never treated); dropped cohorts are left out."""
    last = periods[-1] + spec.anticipation
    return {float(g): math.inf if g == 0 or g > last or g in plan.to_never else float(g)
            for g in raw if g not in plan.dropped}


def cohort_labels(raw: np.ndarray, periods: np.ndarray, plan: CohortPlan,
                  spec: DidSpec) -> list[float]:
    """The recoded cohort values (``inf`` = never treated) present in the data."""
    return sorted(set(cohort_recoding(raw, periods, plan, spec).values()))
