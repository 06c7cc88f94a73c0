"""`ddd`: triple differences (Ortiz-Villavicencio & Sant'Anna 2025), two-period and staggered.

Built on the `att_gt` engine: every DDD(g, t) is a signed sum of two-group DiD comparisons
(see :mod:`moderndid.ddd.combine`), which the same passes, kernels and executors estimate;
inference runs from the Gram matrix of the comparisons' influence functions, transformed
to the reported cells.
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from moderndid.core.frames import numeric_column, to_arrow_table, type_label
from moderndid.ddd.combine import combine, plan_ddd, transform_moments
from moderndid.ddd.porting import ddd_r_arguments
from moderndid.did.att_gt import engine_settings, run_on_engine, validate_call
from moderndid.did.cells import build_cells
from moderndid.did.fit import SE_FLOOR, FitOptions, FitOutput, cell_inference, fit_att_gt
from moderndid.did.plan import check_columns, group_coding
from moderndid.did.preprocess import prepare_did
from moderndid.engine.executor import LocalExecutor
from moderndid.engine.protocol import Prepared
from moderndid.engine.registry import engine_for
from moderndid.engine.spec import DidData, DidSpec
from moderndid.errors import DataStructureError, InvalidOptionError


@dataclass
class DDDFit(FitOutput):
    """Engine-independent output of a DDD fit, before it becomes a result object."""

    two_period: bool = False


def ddd(
    data: Any,
    yname: str,
    tname: str,
    idname: str | None = None,
    gname: str | None = None,
    pname: str | None = None,
    xformla: str | None = None,
    control_group: str | None = "nevertreated",
    base_period: str | None = "varying",
    est_method: str = "dr",
    weightsname: str | None = None,
    boot: bool = False,
    boot_type: str = "multiplier",
    biters: int = 1000,
    cluster: str | None = None,
    alpha: float = 0.05,
    trim_level: float = 0.995,
    panel: bool = True,
    allow_unbalanced_panel: bool = False,
    random_state: Any = None,
    n_jobs: int = 1,
    backend: str | None = None,
    *,
    cband: bool = False,
    n_partitions: int | None = None,
    spark: Any = None,
    client: Any = None,
    max_cohorts: int | None = None,
    **r_arguments: Any,
) -> Any:
    """Triple-difference ATTs, two-period or with staggered adoption.

    Parameters
    ----------
    data : DataFrame or Arrow table
        Long data. With two periods and ``gname`` coded 0/1, the two-period DDD is
        estimated; otherwise ``gname`` is the first period in which treatment is enabled
        (0 = never) and DDD(g, t) is estimated for every cohort and period.
    yname, tname, idname, gname : str
        Outcome, period, unit id and treatment-timing columns.
    pname : str
        Eligibility (partition) column, 0/1, constant within a unit.
    xformla : str, optional
        Covariates, e.g. ``"~ cov1 + cov2"``.
    control_group : {"nevertreated", "notyettreated"} or None
        Comparison cohorts (``None``, R's ``NULL``: never treated, which R then uses).
        With several not-yet-treated cohorts, their DDDs are combined with GMM weights
        (inverse covariance of their influence functions).
    base_period : {"varying", "universal"} or None, default "varying"
        Base period of pre-treatment cells: the previous period (``"varying"``, what R
        `triplediff` uses when the argument is not given or ``NULL``; ``None`` here) or
        ``g - 1`` for every cell of cohort ``g`` (``"universal"``, event-study style, that
        cell reported as 0). Post-treatment cells are the same either way. No warning when
        it is not given (R warns): the default is documented, as in :func:`moderndid.att_gt`.
    est_method : {"dr", "ipw", "reg"}
        Estimator of each DiD comparison.
    weightsname : str, optional
        Sampling weights.
    boot, boot_type, biters, random_state
        Multiplier bootstrap (``boot_type="multiplier"`` only; counter-based Mammen
        weights, reproducible across engines and partitions).
    cluster : str, optional
        Variable to cluster on (besides the unit).
    alpha : float
        Significance level.
    trim_level : float
        Comparison units with propensity score at or above this get weight 0.
    panel, allow_unbalanced_panel : bool
        Panel data (default) or repeated cross-sections; unbalanced panels.
    cband : bool, default False
        Simultaneous bands (with ``boot=True``).
    n_partitions, spark, client, max_cohorts, n_jobs
        Engine settings, as in :func:`moderndid.att_gt`: a PySpark or Dask DataFrame runs
        distributed.
    **r_arguments
        Arguments of R `triplediff` that have no parameter of that name here (see the
        porting table in ``docs/ddd.md``): ``nboot`` is ``biters``; ``inffunc`` is accepted
        (influence functions are always returned in memory, as ``influence_func``; Spark
        and Dask refuse ``inffunc=True``); ``use_parallel``, ``cores``,
        ``skip_data_checks``, ``dname``, ``learners`` and ``n_folds`` are accepted at R's
        defaults and refused otherwise. Any other name raises
        :class:`~moderndid.errors.InvalidOptionError` (not ``TypeError``).

    Returns
    -------
    DDDPanelResult, DDDRCResult, DDDMultiPeriodResult or DDDMultiPeriodRCResult
    """
    if r_arguments:
        biters = ddd_r_arguments(r_arguments, biters=biters, known=_DDD_PARAMETERS,
                                 distributed=engine_for(data) is not None)
    # R's NULL for these two means its defaults, which are ours.
    control_group = "nevertreated" if control_group is None else control_group
    base_period = "varying" if base_period is None else base_period
    if boot_type != "multiplier":
        raise InvalidOptionError(f"boot_type must be 'multiplier', got {boot_type!r}")
    if not isinstance(trim_level, int | float) or not 0 < trim_level <= 1:
        raise InvalidOptionError(f"trim_level must be in (0, 1], got {trim_level!r}")
    if pname is None:
        raise InvalidOptionError("pname (the eligibility / partition column) is required")
    if gname is None:
        raise InvalidOptionError("gname (the treatment-timing column) is required")
    opts, spec = validate_call(
        yname=yname, tname=tname, idname=idname, gname=gname, xformla=xformla,
        weightsname=weightsname, alpha=alpha, cband=cband, boot=boot, biters=biters,
        clustervars=cluster, est_method=est_method, panel=panel,
        allow_unbalanced_panel=allow_unbalanced_panel, control_group=control_group,
        anticipation=0, base_period=base_period, random_state=random_state, backend=backend,
        collect_influence=False, pname=pname,
    )
    opts = replace(opts, trim_level=float(trim_level))
    settings = engine_settings(n_partitions=n_partitions, spark=spark, client=client,
                               n_jobs=n_jobs, max_cohorts=max_cohorts)
    engine = engine_for(data)
    if engine is not None:
        def fit_prepared(prepared: Prepared) -> DDDFit:
            check_subgroups(prepared.subgroups, pname)
            return fit_ddd(prepared.meta, prepared.executor, opts, prepared.two_period)

        fit, meta = run_on_engine(engine, data, spec, settings, fit_prepared)
        return _result(fit, meta, spec, opts, engine.name)
    table = to_arrow_table(data)
    table, two_period = _two_period_coding(table, spec)
    prepared = prepare_did(table, spec, settings.n_partitions or 1)
    check_subgroups(_subgroup_counts_local(prepared), pname)
    opts = replace(opts, collect_influence=True)
    fit = fit_ddd(prepared, LocalExecutor(prepared.partitions), opts, two_period)
    return _result(fit, prepared, spec, opts, "in-memory")


def _two_period_coding(table: pa.Table, spec: DidSpec) -> tuple[pa.Table, bool]:
    """The planner's two-period coding (:func:`moderndid.did.plan.group_coding`) applied
    to the rows: the treated code becomes the second period."""
    check_columns([(spec.tname, "time (tname)"), (spec.gname, "group (gname)")],
                  table.column_names, lambda c: type_label(table.schema.field(c).type))
    t = numeric_column(table, spec.tname, "time (tname)")
    g = numeric_column(table, spec.gname, "group (gname)")
    # eligibility values are checked with the other columns when the data are prepared
    two_period, group_map = group_coding(spec, np.unique(t), np.unique(g), {0.0, 1.0})
    for raw, first_treated in group_map.items():  # at most one
        g = np.where(g == raw, first_treated, g)
        table = table.set_column(table.schema.get_field_index(spec.gname), spec.gname,
                                 pa.array(g))
    return table, two_period


_DDD_PARAMETERS = tuple(name for name, p in inspect.signature(ddd).parameters.items()
                        if p.kind is not p.VAR_KEYWORD)


def _subgroup_counts_local(data: DidData) -> Counter[tuple[float, float]]:
    """Units per (cohort, eligibility) of in-memory prepared data."""
    counts: Counter[tuple[float, float]] = Counter()
    for part in data.partitions:
        G, Q = part["G"], part["Q"]
        if data.kind == "unbalanced":  # eligibility is constant within a unit
            G, Q = part["unit_G"], np.zeros(part["unit_G"].size)
            np.maximum.at(Q, part["unit"], part["Q"])
        values, n = np.unique(np.stack([G, Q], axis=1), axis=0, return_counts=True)
        counts.update({(float(g), float(q)): int(c) for (g, q), c in zip(values, n, strict=True)})
    return counts


def check_subgroups(counts: dict[tuple[float, float], int], pname: str) -> None:
    """Every cohort (and the never treated) needs eligible and ineligible units."""
    for g in sorted({g for g, _ in counts}):
        for q, label in ((1.0, "eligible"), (0.0, "ineligible")):
            if counts.get((g, q), 0) == 0:
                who = "never-treated units" if math.isinf(g) else f"cohort {g:g}"
                raise DataStructureError(
                    f"{who} have no {label} units ({pname} == {int(q)}): triple differences "
                    "compare eligible and ineligible units within each group"
                )


def fit_ddd(data: DidData, executor: Any, opts: FitOptions, two_period: bool) -> DDDFit:
    """Estimate the comparisons with the shared engine and combine them into DDD cells."""
    cells = build_cells(data.periods, data.cohorts, opts.control_group, 0.0, opts.base_period)
    if two_period:
        cells = [c for c in cells if c.time == data.periods[-1]]
    plan = plan_ddd(cells)
    out = fit_att_gt(data, executor, replace(opts, wald_pretest=False),
                     cells=plan.comparisons)
    matrix, pooled = combine(plan, out.moments)
    moments = transform_moments(out.moments, matrix)
    used = matrix != 0
    comp_na = ~np.isfinite(out.att)
    att = matrix @ np.where(comp_na, 0.0, out.att)
    att[(used & comp_na[None, :]).any(axis=1)] = np.nan
    R = len(cells)
    vcov = moments.gram[:R, :R]
    se = np.sqrt(np.clip(np.diag(vcov), 0.0, None))
    # Every SE is that of the cell's own influence function (for a pooled cell, the GMM
    # combination of its cohorts' DDDs), the one the bootstrap and agg_ddd use too. R
    # triplediff reports the two-period cell and, without clustering, the pooled cells with
    # the sample variance (centred, n - 1) of that function, so those cells keep its
    # finite-sample convention (clustered, R uses the cluster-sum variance for every cell,
    # as the Gram matrix here). R's unclustered pooled-cell formula also scales by
    # (S / n)^2, S the units in the cell's cohorts, which understates the SE whenever
    # S < n (docs/ddd.md); that factor is not copied.
    sample_variance = pooled if moments.n_clusters is None else []
    if two_period:
        sample_variance.append(0)
    n = data.n_units
    for r in sample_variance:
        centred = vcov[r, r] - moments.zsum[r] ** 2 / n
        se[r] = math.sqrt(max(centred, 0.0) * n / (n - 1))
    degenerate = ~np.isfinite(att) | (se <= SE_FLOOR) | np.array([c.is_base for c in cells])
    se[degenerate] = np.nan
    se, crit, cband = cell_inference(se, degenerate, moments, opts)
    influence = None if out.influence is None else out.influence @ matrix.T
    return DDDFit(cells=cells, att=att, se=se, vcov=vcov, critical_value=crit, cband=cband,
                  wald_stat=None, wald_pvalue=None, moments=moments, influence=influence,
                  two_period=two_period)


def _result(fit: DDDFit, data: DidData, spec: DidSpec, opts: FitOptions, engine: str) -> Any:
    from moderndid.ddd import results as R

    params = {
        "yname": spec.yname, "tname": spec.tname, "idname": spec.idname, "gname": spec.gname,
        "pname": spec.pname, "xformla": spec.xformla or "~1",
        "control_group": opts.control_group, "base_period": opts.base_period,
        "est_method": opts.est_method, "panel": spec.panel, "data_kind": data.kind,
        "weightsname": spec.weightsname, "cluster": spec.clustervars, "boot": opts.boot,
        "biters": opts.biters, "cband": fit.cband, "random_state": opts.seed,
        "alpha": opts.alpha, "n_units": data.n_units, "n_obs": data.n_obs,
        "trim_level": opts.trim_level, "engine": engine,
    }
    return R.build_ddd_result(fit, data, params)
