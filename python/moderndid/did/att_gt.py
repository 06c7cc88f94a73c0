"""`att_gt`: group-time average treatment effects (Callaway & Sant'Anna 2021)."""

from __future__ import annotations

import difflib
import inspect
import numbers
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

from moderndid.core.multipliers import seed_from_random_state
from moderndid.did import plan
from moderndid.did.fit import FitOptions, FitOutput, fit_att_gt
from moderndid.did.preprocess import normalize_clustervars, prepare_did
from moderndid.did.results import MPResult
from moderndid.engine.executor import LocalExecutor
from moderndid.engine.protocol import Engine, EngineSettings, Prepared
from moderndid.engine.registry import engine_for
from moderndid.engine.spec import DidData, DidSpec
from moderndid.errors import InvalidOptionError

# Materialise the (units x cells) influence-function matrix for in-memory fits up to this
# many entries (80 MB); beyond it, inference runs from the Gram matrix alone.
MAX_INFLUENCE_ENTRIES = 10_000_000

T = TypeVar("T")


def att_gt(
    data: Any,
    yname: str,
    tname: str,
    idname: str | None = None,
    gname: str | None = None,
    xformla: str | None = None,
    weightsname: str | None = None,
    alpha: float = 0.05,
    cband: bool = True,
    boot: bool = False,
    biters: int = 1000,
    clustervars: str | list[str] | None = None,
    est_method: str = "dr",
    panel: bool = True,
    allow_unbalanced_panel: bool = False,
    control_group: str = "nevertreated",
    anticipation: float = 0,
    base_period: str = "varying",
    random_state: Any = None,
    n_jobs: int = 1,
    backend: str | None = None,
    *,
    n_partitions: int | None = None,
    spark: Any = None,
    client: Any = None,
    max_cohorts: int | None = None,
    **unknown: Any,
) -> MPResult:
    """Group-time average treatment effects ATT(g, t) with staggered adoption.

    Implements Callaway & Sant'Anna (2021, J. Econometrics 225(2)) with the doubly robust,
    inverse-probability-weighted and outcome-regression two-period estimators of Sant'Anna
    & Zhao (2020, J. Econometrics 219(1)), reproducing R `did` 2.3.

    Parameters
    ----------
    data : DataFrame or Arrow table
        Long data (one row per unit and period, or per observation for repeated cross
        sections): pandas, polars, pyarrow, or any Arrow-compatible table. A PySpark
        DataFrame (classic or Spark Connect) runs on Spark and a Dask DataFrame on Dask,
        distributed: only column statistics and per-pass partial sums reach the driver.
    yname, tname, idname, gname : str
        Outcome, time period, unit id and first-treated period columns. ``gname`` is 0
        for never-treated units (and for units first treated after the last period).
    xformla : str, optional
        One-sided covariate formula such as ``"~ x1 + x2"`` (formulaic syntax). Panel
        covariates are taken from the earlier of the two periods of each comparison.
    weightsname : str, optional
        Sampling weights column (time-invariant in panels, non-negative).
    alpha : float, default 0.05
        Significance level of confidence intervals and bands.
    cband : bool, default True
        With ``boot=True``, report simultaneous (uniform) confidence bands.
    boot : bool, default False
        Multiplier bootstrap (Mammen weights, counter-based so draws do not depend on
        partitioning) instead of analytic standard errors.
    biters : int, default 1000
        Bootstrap draws.
    clustervars : str or list of str, optional
        The unit id and at most one more variable to cluster on. Clustering applies to
        analytic and bootstrap standard errors (multipliers drawn per cluster).
    est_method : {"dr", "ipw", "reg"}
        Doubly robust, normalised inverse probability weighting, or outcome regression.
    panel : bool, default True
        Panel data (``False``: repeated cross sections).
    allow_unbalanced_panel : bool, default False
        Keep units not observed in every period (estimated as R `did` does, with the
        repeated cross-section estimators and influence functions summed by unit). When
        False, such units are dropped with a warning.
    control_group : {"nevertreated", "notyettreated"}
        Comparison units.
    anticipation : int, default 0
        Periods of anticipation before treatment.
    base_period : {"varying", "universal"}
        Base period of pre-treatment comparisons.
    random_state : int, numpy Generator or None
        Seed of the bootstrap multipliers.
    n_jobs : int, default 1
        Accepted for compatibility; the in-memory engine runs in one process, and Spark
        and Dask use their own parallelism (a note is logged when it is not 1).
    backend : {None, "numpy"}
        Array backend.
    n_partitions : int, optional
        Number of partitions the unit table is split into, in memory or on Spark (results
        agree across partitionings up to floating-point reduction order).
    spark : SparkSession, optional
        Session for a Spark DataFrame: by default the active session, else a new local
        session with the moderndid jar (``local[*]``).
    client : distributed.Client, optional
        Dask client for a Dask DataFrame (see :func:`moderndid.dask.dask_att_gt`).
    max_cohorts : int, optional
        Accepted for ModernDiD compatibility; it has no effect on any engine. ModernDiD
        uses it to cap executor memory; here every pass handles the cells one at a time,
        and the moments pass, which needs all cells together, holds at most about 4
        million values of the units' influence-function rows at once (fewer units per
        block when there are many cells), so executor memory is bounded by the partition
        size (``n_partitions``) whatever the number of cohorts.
    **unknown
        Any other keyword raises :class:`~moderndid.errors.InvalidOptionError` naming it
        and the closest parameter (not Python's ``TypeError``), the same on every engine.

    Returns
    -------
    MPResult
    """
    if unknown:
        known = [k for k in inspect.signature(att_gt).parameters if k not in ("data", "unknown")]
        listed = []
        for name in sorted(unknown):
            close = difflib.get_close_matches(name, known, n=1)
            listed.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InvalidOptionError(f"att_gt got unknown argument(s) {', '.join(listed)}")
    opts, spec = validate_call(
        yname=yname, tname=tname, idname=idname, gname=gname, xformla=xformla,
        weightsname=weightsname, alpha=alpha, cband=cband, boot=boot, biters=biters,
        clustervars=clustervars, est_method=est_method, panel=panel,
        allow_unbalanced_panel=allow_unbalanced_panel, control_group=control_group,
        anticipation=anticipation, base_period=base_period, random_state=random_state,
        backend=backend, collect_influence=False,
    )
    settings = engine_settings(n_partitions=n_partitions, spark=spark, client=client,
                               n_jobs=n_jobs, max_cohorts=max_cohorts)
    engine = engine_for(data)
    if engine is not None:
        out, meta = run_on_engine(
            engine, data, spec, settings, lambda p: fit_att_gt(p.meta, p.executor, opts))
        return build_mp_result(out, meta, spec, opts, engine=engine.name)
    prepared = prepare_did(data, spec, settings.n_partitions or 1)
    n_cells_estimate = prepared.n_units * prepared.cohorts.size * prepared.periods.size
    opts = replace(opts, collect_influence=n_cells_estimate <= MAX_INFLUENCE_ENTRIES)
    out = fit_att_gt(prepared, LocalExecutor(prepared.partitions), opts)
    return build_mp_result(out, prepared, spec, opts, engine="in-memory")


def engine_settings(*, n_partitions: Any, spark: Any, client: Any, n_jobs: Any,
                    max_cohorts: Any) -> EngineSettings:
    """The engine options of a call, checked the same way for every engine."""
    for name, value in (("n_partitions", n_partitions), ("max_cohorts", max_cohorts)):
        if value is not None and (not isinstance(value, numbers.Integral)
                                  or isinstance(value, bool) or value < 1):
            raise InvalidOptionError(f"{name} must be a positive integer, got {value!r}")
    return EngineSettings(n_partitions=None if n_partitions is None else int(n_partitions),
                          session=spark, client=client, n_jobs=n_jobs,
                          max_cohorts=None if max_cohorts is None else int(max_cohorts))


def run_on_engine(engine: Engine, data: Any, spec: DidSpec, settings: EngineSettings,
                  fit: Callable[[Prepared], T]) -> tuple[T, DidData]:
    """Prepare ``data`` on a distributed engine with the estimators' planner, run ``fit``
    on it, and release what the engine persisted."""
    prepared = engine.prepare(data, spec, settings, plan)
    try:
        return fit(prepared), prepared.meta
    finally:
        prepared.release()


def validate_call(*, yname: str, tname: str, idname: str | None, gname: str | None,
                  xformla: str | None, weightsname: str | None, alpha: Any, cband: Any,
                  boot: Any, biters: Any, clustervars: Any, est_method: Any, panel: Any,
                  allow_unbalanced_panel: Any, control_group: Any, anticipation: Any,
                  base_period: Any, random_state: Any, backend: Any,
                  collect_influence: bool, pname: str | None = None
                  ) -> tuple[FitOptions, DidSpec]:
    """The estimator options and data specification of an `att_gt` (or, with ``pname``,
    `ddd`) call, validated the same way for every engine."""
    opts = validate_options(
        alpha=alpha, cband=cband, boot=boot, biters=biters, est_method=est_method,
        control_group=control_group, anticipation=anticipation, base_period=base_period,
        random_state=random_state, backend=backend, collect_influence=collect_influence,
    )
    if gname is None:
        raise InvalidOptionError("gname (the first-treated period column) is required")
    if not isinstance(panel, bool | np.bool_):
        raise InvalidOptionError(f"panel must be True or False, got {panel!r}")
    spec = DidSpec(
        yname=yname, tname=tname, idname=idname, gname=gname, xformla=xformla,
        weightsname=weightsname, clustervars=normalize_clustervars(clustervars, idname),
        panel=bool(panel), allow_unbalanced_panel=bool(allow_unbalanced_panel),
        anticipation=float(anticipation), control_group=control_group, pname=pname,
    )
    return opts, spec


def validate_options(*, alpha: Any, cband: Any, boot: Any, biters: Any, est_method: Any,
                     control_group: Any, anticipation: Any, base_period: Any,
                     random_state: Any, backend: Any, collect_influence: bool) -> FitOptions:
    """Check estimator options and return them typed; raise InvalidOptionError otherwise."""
    if callable(est_method):
        raise InvalidOptionError(
            "a custom (callable) est_method is not supported: use 'dr', 'ipw' or 'reg'"
        )
    for name, value, allowed in (
            ("est_method", est_method, ("dr", "ipw", "reg")),
            ("control_group", control_group, ("nevertreated", "notyettreated")),
            ("base_period", base_period, ("varying", "universal"))):
        if value not in allowed:
            listed = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
            raise InvalidOptionError(f"{name} must be {listed}, got {value!r}")
    if not isinstance(alpha, numbers.Real) or not 0 < float(alpha) < 1:
        raise InvalidOptionError(f"alpha must be a number in (0, 1), got {alpha!r}")
    if (not isinstance(anticipation, numbers.Real) or isinstance(anticipation, bool)
            or anticipation < 0 or not float(anticipation).is_integer()):
        raise InvalidOptionError(
            f"anticipation must be a non-negative whole number of periods, got {anticipation!r}"
        )
    if not isinstance(biters, numbers.Integral) or isinstance(biters, bool) or biters < 1:
        raise InvalidOptionError(f"biters must be a positive integer, got {biters!r}")
    for name, value in (("boot", boot), ("cband", cband)):
        if not isinstance(value, bool | np.bool_):
            raise InvalidOptionError(f"{name} must be True or False, got {value!r}")
    if backend == "cupy":
        raise InvalidOptionError(
            "backend='cupy' (GPUs) is not available in this release (see docs/gpu.md); "
            "use backend=None"
        )
    if backend not in (None, "numpy"):
        raise InvalidOptionError(f"backend must be None or 'numpy', got {backend!r}")
    seed = seed_from_random_state(random_state)
    return FitOptions(
        est_method=est_method, control_group=control_group, anticipation=float(anticipation),
        base_period=base_period, alpha=float(alpha), cband=bool(cband), boot=bool(boot),
        biters=int(biters), seed=seed, collect_influence=collect_influence,
    )


def build_mp_result(out: FitOutput, data: DidData, spec: DidSpec, opts: FitOptions,
                    engine: str) -> MPResult:
    """Assemble the public result object from the driver's output."""
    groups = np.array([c.group for c in out.cells])
    times = np.array([c.time for c in out.cells])
    if np.all(np.mod(data.periods, 1) == 0):
        groups, times = groups.astype(np.int64), times.astype(np.int64)
    params = {
        "yname": spec.yname, "tname": spec.tname, "idname": spec.idname, "gname": spec.gname,
        "xformla": spec.xformla or "~1", "weightsname": spec.weightsname,
        "control_group": opts.control_group, "anticipation": opts.anticipation,
        "anticipation_periods": opts.anticipation, "base_period": opts.base_period,
        "est_method": opts.est_method, "estimation_method": opts.est_method,
        "panel": spec.panel, "allow_unbalanced_panel": spec.allow_unbalanced_panel,
        "data_kind": data.kind, "clustervars": spec.clustervars,
        "boot": opts.boot, "bootstrap": opts.boot, "biters": opts.biters,
        "cband": out.cband, "uniform_bands": out.cband, "cband_requested": opts.cband,
        "random_state": opts.seed,
        "alpha": opts.alpha, "n_units": data.n_units, "n_obs": data.n_obs,
        "n_periods": int(data.periods.size), "n_clusters": out.moments.n_clusters,
        "covariates": data.covariate_names, "engine": engine,
    }
    return MPResult(groups=groups, times=times, att_gt=out.att, vcov_analytical=out.vcov,
                    se_gt=out.se, critical_value=out.critical_value,
                    influence_func=out.influence, n_units=data.n_units,
                    wald_stat=out.wald_stat, wald_pvalue=out.wald_pvalue, alpha=opts.alpha,
                    estimation_params=params, moments=out.moments)
