"""Engine-agnostic planning of a panel fit from the statistics of its unit-table blocks.

The Spark and Dask engines build blocks on their workers (:mod:`moderndid.engine.panel_blocks`)
and hand the blocks' small statistics rows to :func:`plan_panel`, which validates the data
(missing values, weights, identifiers, collinear covariates, problem flags), recodes cohorts
as the in-memory engine does (:mod:`moderndid.did.preprocess`), counts units, and returns
the metadata and the :class:`PanelLayout` with which every pass reads the blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moderndid._warnings import warn_user
from moderndid.core.design import check_design_rank
from moderndid.did.preprocess import DidData, DidSpec
from moderndid.engine.panel_blocks import PanelLayout, RowColumns
from moderndid.errors import (
    ColumnTypeError,
    DataStructureError,
    MissingValuesError,
)

ROWS_PER_PARTITION = 2_000_000  # more rows than this per partition raises n_partitions


def partition_count(n_partitions: Any, count_rows: Callable[[], int], minimum: int) -> int:
    """``n_partitions`` if given (a positive integer), else ``minimum`` (the engine's
    parallelism) raised so that no partition holds more than ``ROWS_PER_PARTITION`` rows;
    ``count_rows`` runs only in that case."""
    from moderndid.errors import InvalidOptionError

    if n_partitions is None:
        return max(minimum, math.ceil(count_rows() / ROWS_PER_PARTITION))
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


@dataclass
class PanelPlan:
    """What an engine needs to run the passes over its blocks."""

    meta: DidData  # partitions is empty: the data stay on the workers
    layout: PanelLayout
    two_period: bool = False  # triple differences with two periods and a 0/1 group
    subgroups: dict[tuple[float, float], int] = field(default_factory=dict)  # (G, Q) units


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


def plan_panel(info: Sequence[Mapping[str, Any]], spec: DidSpec, covariates: list[str],
               ordered: dict[str, tuple[str, str]], cols: RowColumns,
               count_units: Callable[[PanelLayout], dict[tuple[float, float, int], int]],
               raise_flag: Callable[[int], None]) -> PanelPlan:
    """Validate the statistics of the blocks, recode cohorts, count units: the metadata and
    the layout that every pass uses to read the blocks.

    ``info`` holds the non-payload fields of every block row (:data:`BLOCK_SCHEMA`);
    ``count_units(layout)`` recounts units on the executors when periods are cut off;
    ``raise_flag(flags)`` raises the typed error for problem flags, naming a unit.
    """
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
        check_covariate_rank(xx + np.triu(xx, 1).T, covariates)

    periods = np.unique(np.concatenate([np.asarray(r["periods"], dtype=np.float64)
                                        for r in info]))
    histogram: dict[tuple[float, float, int], int] = {}
    for r in info:
        add_histogram(histogram, r["histogram"])
    raw_cohorts = np.unique([g for g, _, _ in histogram])
    two_period, group_map = ddd_group_coding(spec, periods, raw_cohorts,
                                             {q for _, q, _ in histogram})
    mapped = np.unique([group_map.get(float(g), float(g)) for g in raw_cohorts])
    plan = cohort_plan(mapped, periods, spec)
    flags = 0
    for r in info:
        flags |= int(r["flags"])
    if flags:
        raise_flag(flags)
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
    kind = "panel"
    balance = False
    if n_complete < n_all:
        if spec.allow_unbalanced_panel:
            kind = "unbalanced"
        else:
            warn_user(
                f"Dropped {n_all - n_complete} of {n_all} units not "
                f"observed in all {T_} periods (balancing the panel); pass "
                "allow_unbalanced_panel=True to keep them")
            balance = True
    which = full_units if kind == "panel" else all_units
    counts = {g: c for g, c in which.items() if c}
    n_units = sum(counts.values())
    n_obs = n_units * T_ if kind == "panel" else n_rows_observed
    names = ["(Intercept)", *covariates]
    meta = build_metadata(kind, periods, counts, plan, names, n_rows=n_obs, n_units=n_units,
                     clustered=cols.clustered, xtv=any(bool(r["xtv"]) for r in info),
                     spec=spec)
    layout = PanelLayout(periods=periods, recode=recode, complete_only=balance, kind=kind,
                         n_covariates=k, clustered=cols.clustered)

    subgroups = {}
    if spec.pname:
        # units per (cohort, eligibility), over all units as the in-memory engine counts them
        subgroups = {(g, q): subgroup_units.get((g, q), 0) for g in labels for q in (0.0, 1.0)}
    return PanelPlan(meta=meta, layout=layout, two_period=two_period, subgroups=subgroups)


def ddd_group_coding(spec: DidSpec, periods: np.ndarray, raw_cohorts: np.ndarray,
                     partition_values: set[float]) -> tuple[bool, dict[float, float]]:
    """Triple differences: check the eligibility values, and detect the two-period design
    (two periods and a 0/1 group column, treated in period 2). Returns whether it is the
    two-period design and the map from raw group values to first-treated periods."""
    if not spec.pname:
        return False, {}
    values = sorted(partition_values)
    if not set(values) <= {0.0, 1.0}:
        raise DataStructureError(
            f"partition column {spec.pname!r} must hold 0 (ineligible) and 1 (eligible), "
            f"found {', '.join(f'{v:g}' for v in values[:6])}")
    cohorts = set(raw_cohorts.tolist())
    two_period = periods.size == 2 and raw_cohorts.size == 2 and (
        cohorts == {0.0, 1.0} or cohorts == {0.0, float(periods[1])})
    if two_period and cohorts == {0.0, 1.0}:
        return True, {1.0: float(periods[1])}
    return two_period, {}


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


@dataclass
class CohortPlan:
    to_never: list[float]
    dropped: list[float]
    excluded: frozenset[float]
    period_cutoff: float | None


def cohort_plan(raw: np.ndarray, periods: np.ndarray, spec: DidSpec) -> CohortPlan:
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
        warn_user(
            f"No never-treated units: cohort {latest:g} (the last treated) serves as the "
            f"comparison group and periods from {latest - spec.anticipation:g} on are dropped")
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
        warn_user(
            f"Dropped the {what} of {len(dropped)} cohort(s) already treated in the first "
            f"period (allowing for anticipation = {spec.anticipation:g}): "
            f"{', '.join(f'{v:g}' for v in dropped)}")
    return CohortPlan(to_never=to_never, dropped=dropped, excluded=excluded,
                       period_cutoff=cutoff)


def build_metadata(kind: str, periods: np.ndarray, counts: dict[float, int], plan: CohortPlan,
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
        warn_user(f"Small groups (units per cohort, fewer than {required}): {listed}; "
                  "estimates for them may be unreliable")
    return DidData(kind=kind, periods=periods, cohorts=cohorts, n_units=n_units, n_obs=n_rows,
                   covariate_names=names, partitions=[], clustered=clustered,
                   x_time_varying=xtv, cohort_counts=counts)


def check_covariate_rank(xx: np.ndarray, covariates: list[str]) -> None:
    """Refuse collinear covariates from their cross-product matrix (intercept first)."""
    if covariates:
        check_design_rank(xx, ["(Intercept)", *covariates])


def cohort_labels(raw: np.ndarray, periods: np.ndarray, plan: CohortPlan,
                   spec: DidSpec) -> list[float]:
    """The recoded cohort values (``inf`` = never treated) present in the data."""
    recoded = {math.inf if (g == 0 or g > periods[-1] + spec.anticipation
                            or g in plan.to_never) else float(g) for g in raw}
    return sorted(recoded - set(plan.dropped))


