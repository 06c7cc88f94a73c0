"""The engine-agnostic `att_gt` driver: runs the passes, solves the small systems, infers.

The driver only ever holds per-cell sums (a few KB) and the Gram matrix of the units'
influence-function rows; the executor decides where the partitions live.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from moderndid._warnings import warn_user
from moderndid.core.bootstrap_stats import bootstrap_se, uniform_critical_value
from moderndid.did.cells import Cell, build_cells
from moderndid.did.estimators import (
    TRIM_LEVEL,
    nuisance_names,
    ols_models,
    term_signs,
    uses_pscore,
)
from moderndid.did.kernels import (
    CellFinal,
    FitState,
    bootstrap_sums,
    cell_sums_pass,
    logit_and_cell_sums_pass,
    logit_key,
    logit_pass,
    moments_pass,
    summary_pass,
)
from moderndid.engine.executor import NATIVE_BOOTSTRAP, BootstrapRequest, Executor
from moderndid.engine.partial import Partial
from moderndid.engine.spec import DidData
from moderndid.errors import ConvergenceError

logger = logging.getLogger("moderndid")

SE_FLOOR = np.sqrt(np.finfo(float).eps) * 10  # R `did`: smaller SEs are reported as NA
MAX_LOGIT_ITERATIONS = 100
LOGIT_TOLERANCE = 1e-10
# After a Newton step this small (relative), the next pass also computes the estimator sums
# at its coefficients (speculatively) ...
SPECULATE_AFTER_STEP = 1e-5
# ... and keeps them when that pass's own step is below this: the coefficients are then
# within about that of the maximum-likelihood fit (Newton converges quadratically).
ACCEPT_STEP = 1e-12
OVERLAP_LIMIT = 0.999  # R `did`: cells whose propensity score reaches this are NA


@dataclass
class FitOptions:
    """Estimator options of one `att_gt` call (validated by the caller)."""

    est_method: str
    control_group: str
    anticipation: float
    base_period: str
    alpha: float
    cband: bool
    boot: bool
    biters: int
    seed: int
    collect_influence: bool
    trim_level: float = TRIM_LEVEL
    # the pre-test on the ATT(g,t) cells; off for the comparison cells inside ddd, which
    # are not the reported cells (and warned of singular covariances nobody asked about)
    wald_pretest: bool = True


@dataclass
class Moments:
    """Sufficient statistics for all inference on a fit, kept for `aggte`.

    ``gram`` is ``sum_i z_i z_i'`` (or ``sum_c Z_c Z_c'`` over clusters) for
    ``z_i = (phi_i per cell, w_i 1{G_i = g} per cohort, 1)``; ``boot`` holds
    ``sum_i v_ib z_i`` for every bootstrap draw (None without bootstrap).
    """

    gram: np.ndarray
    zsum: np.ndarray
    boot: np.ndarray | None
    n_units: int
    n_cells: int
    cohorts: np.ndarray
    n_clusters: int | None
    seed: int
    biters: int


@dataclass
class FitOutput:
    """What the driver hands to the result builder."""

    cells: list[Cell]
    att: np.ndarray
    se: np.ndarray
    vcov: np.ndarray
    critical_value: float
    cband: bool
    wald_stat: float | None
    wald_pvalue: float | None
    moments: Moments
    influence: np.ndarray | None


def fit_att_gt(data: DidData, executor: Executor, opts: FitOptions,
               cells: list[Cell] | None = None) -> FitOutput:
    """Estimate every ATT(g, t) of a prepared data set with the given executor.

    ``cells`` defaults to `att_gt`'s cells; triple differences pass their comparisons.
    """
    if cells is None:
        cells = build_cells(data.periods, data.cohorts, opts.control_group,
                            opts.anticipation, opts.base_period)
    state = FitState(kind=data.kind, est_method=opts.est_method, cells=cells,
                     cohorts=data.cohorts, clustered=data.clustered, boot=opts.boot,
                     biters=opts.biters, seed=opts.seed, trim_level=opts.trim_level,
                     collect_influence=opts.collect_influence, finals=[None] * len(cells))
    panel = data.kind == "panel"
    state.logit_keys = [
        logit_key(data.kind, cell, data.x_time_varying)
        if uses_pscore(opts.est_method) and not cell.is_base else None
        for cell in cells
    ]

    summary = _timed(executor, summary_pass, state, "moderndid att_gt: cell summaries")
    na_reason: dict[int, str] = {}
    state.betas = []
    for c, cell in enumerate(cells):
        betas: dict[str, np.ndarray] = {}
        if not cell.is_base:
            counts = summary.sums[f"n/{c}"]
            if (counts == 0).any():
                na_reason[c] = _empty_reason(counts, panel)
            else:
                for model in ols_models(opts.est_method, panel):
                    xx = summary.sums[f"xx/{c}/{model.name}"]
                    if np.linalg.cond(xx) > 1.0 / np.finfo(float).eps:
                        na_reason[c] = ("singular outcome-regression design among "
                                        f"{'treated' if model.treated else 'comparison'} units")
                        break
                    betas[model.name] = np.linalg.solve(xx, summary.sums[f"xy/{c}/{model.name}"])
        state.betas.append(betas)
    for c in na_reason:
        state.finals[c] = False
        state.logit_keys[c] = None

    sums = _fit_logits(executor, state, summary, data.covariate_names)
    if sums is None:
        sums = _timed(executor, cell_sums_pass, state, "moderndid att_gt: estimator sums")
    att = np.zeros(len(cells))
    for c, cell in enumerate(cells):
        if cell.is_base or c in na_reason:
            continue
        final, reason = _finalize_cell(state, c, sums)
        if final is None:
            na_reason[c] = reason
        else:
            state.finals[c] = final
            att[c] = float(final.signs @ final.ratios)
    for c in na_reason:
        att[c] = np.nan
        state.finals[c] = False
    if na_reason:
        listed = "; ".join(f"(g={cells[c].group:g}, t={cells[c].time:g}): {why}"
                           for c, why in sorted(na_reason.items()))
        warn_user(f"ATT(g,t) set to NA for {len(na_reason)} cell(s): {listed}")

    # Only the moments pass draws the bootstrap: an executor that draws it natively gets
    # the request for this pass alone, and the kernels hand it their (key, z) blocks.
    state.native_bootstrap = (opts.boot and not data.clustered and not opts.collect_influence
                              and NATIVE_BOOTSTRAP in executor.capabilities)
    moments_partial = _timed(executor, moments_pass, state, "moderndid att_gt: moments",
                             keyed=state.clustered or state.collect_influence,
                             bootstrap=BootstrapRequest(opts.seed, opts.biters)
                             if state.native_bootstrap else None)
    return _inference(att, moments_partial, state, opts, data)


def _timed(executor: Executor, kernel: Any, state: FitState, description: str,
           keyed: bool = False, bootstrap: BootstrapRequest | None = None) -> Partial:
    start = time.perf_counter()
    result = executor.run(kernel, state.for_pass(), description, keyed=keyed, bootstrap=bootstrap)
    logger.info("%s: %.2f s", description, time.perf_counter() - start)
    return result


def _empty_reason(counts: np.ndarray, panel: bool) -> str:
    if panel:
        return "no treated units" if counts[0] == 0 else "no comparison units"
    labels = ["treated units in period t", "treated units in the base period",
              "comparison units in period t", "comparison units in the base period"]
    return "no " + " and no ".join(lbl for lbl, n in zip(labels, counts, strict=True) if n == 0)


def _fit_logits(executor: Executor, state: FitState, summary: Partial,
                names: list[str]) -> Partial | None:
    """Fit every distinct propensity-score logit by Newton's method, all in the same passes.

    When every unfinished logit is close to its optimum (its start was the exact fit of the
    one partition holding its rows, or its previous Newton step was below
    ``SPECULATE_AFTER_STEP``), the pass also computes the estimator sums at the current
    coefficients. If every step of that pass is below ``ACCEPT_STEP`` the coefficients are
    final to about 1e-12 and those sums are returned, saving the estimator-sums pass;
    otherwise they are discarded (and None is returned once the logits converge).
    """
    keys: dict[Any, int] = {}
    for c, key in enumerate(state.logit_keys):
        if key is not None:
            keys.setdefault(key, c)
    k = len(names)
    # Damped Newton: a step that lowers the log-likelihood is halved (rare-treatment samples
    # make plain Newton steps from the intercept-only start overshoot).
    accepted: dict[Any, tuple[np.ndarray, float]] = {}  # coefficients and their loglik
    intercept_only: dict[Any, tuple[np.ndarray, float]] = {}
    for key, c in keys.items():
        wd, wsum = summary.sums[f"wd/{c}"]
        share = min(max(wd / wsum, 1e-12), 1 - 1e-12)
        gamma = np.zeros(k)  # the design's first column is the intercept
        gamma[0] = np.log(share / (1.0 - share))
        state.gammas[key] = gamma
        start = _pooled_start(summary, key)
        if start is not None:
            # The intercept-only fit stays the fallback (see below).
            intercept_only[key] = (gamma, wd * np.log(share) + (wsum - wd) * np.log(1.0 - share))
            state.gammas[key] = start
    # With an intercept only, the weighted share is the exact maximum-likelihood fit.
    state.active_logits = [] if k == 1 else list(keys)
    # a pooled start that is one partition's converged fit on all the logit's rows is exact
    close = {key for key in intercept_only
             if summary.sums[f"lok/{key!r}"][0] == 1 == summary.sums[f"lparts/{key!r}"][0]}
    iteration = 0
    while state.active_logits:
        iteration += 1
        if iteration > MAX_LOGIT_ITERATIONS:
            raise ConvergenceError(
                f"the propensity-score logit did not converge in {MAX_LOGIT_ITERATIONS} "
                f"iterations for {len(state.active_logits)} cell(s), e.g. cohort "
                # the smallest cohort, as every example value in messages
                f"{min(key[0] for key in state.active_logits):g}; covariates may separate "
                "treated and comparison units"
            )
        speculate = all(key in close for key in state.active_logits)
        used = {key: state.gammas[key] for key in state.active_logits}
        step = _timed(executor, logit_and_cell_sums_pass if speculate else logit_pass, state,
                      f"moderndid att_gt: logit iteration {iteration}"
                      + (" + estimator sums" if speculate else ""))
        # final: whether every key took a plain Newton step (no reset, no damping) below
        # ACCEPT_STEP
        still, largest, final = [], 0.0, True
        for key in state.active_logits:
            loglik = float(step.sums[f"ll/{key!r}"][0])
            if key in intercept_only:
                gamma0, loglik0 = intercept_only.pop(key)
                if loglik < loglik0:
                    # the pooled start is worse than the intercept-only fit: start there
                    state.gammas[key] = gamma0
                    still.append(key)
                    final = False
                    close.discard(key)
                    continue
            if key in accepted and loglik < accepted[key][1] - 1e-12 * abs(accepted[key][1]):
                final = False
                close.discard(key)
                base = accepted[key][0]
                half = 0.5 * (state.gammas[key] - base)
                if np.max(np.abs(half)) <= LOGIT_TOLERANCE * (1.0 + np.max(np.abs(base))):
                    state.gammas[key] = base  # cannot improve further: base is the optimum
                    continue
                state.gammas[key] = base + half
                still.append(key)
                continue
            hess = step.sums[f"H/{key!r}"]
            score = step.sums[f"s/{key!r}"]
            try:
                delta = np.linalg.solve(hess, score)
            except np.linalg.LinAlgError:
                delta = np.linalg.lstsq(hess, score, rcond=None)[0]
            gamma = state.gammas[key]
            accepted[key] = (gamma, loglik)
            state.gammas[key] = gamma + delta
            size = np.max(np.abs(delta)) / (1.0 + np.max(np.abs(gamma)))
            largest = max(largest, size)
            if size > LOGIT_TOLERANCE:
                still.append(key)
            final = final and size <= ACCEPT_STEP
            if size <= SPECULATE_AFTER_STEP:
                close.add(key)
            else:
                close.discard(key)
        logger.debug("logit iteration %d: largest relative Newton step %.1e", iteration, largest)
        if speculate and final:
            # converged at the coefficients the estimator sums were computed with
            state.gammas.update(used)
            state.active_logits = []
            return step
        state.active_logits = still
    return None


def _pooled_start(summary: Partial, key: Any) -> np.ndarray | None:
    """Information-weighted average of the partitions' own logit fits (None if unusable).

    With one partition this is the maximum-likelihood fit itself, so the global Newton
    iterations stop after one confirming step; with many, it is within O(1/n) of it.
    """
    hess = summary.sums.get(f"lH/{key!r}")
    if (hess is None or summary.sums[f"lok/{key!r}"][0] < 1
            or np.linalg.cond(hess) > 1.0 / np.finfo(float).eps):
        return None
    start = np.linalg.solve(hess, summary.sums[f"lHg/{key!r}"])
    return start if np.isfinite(start).all() else None


def _finalize_cell(state: FitState, c: int, sums: Partial) -> tuple[CellFinal | None, str]:
    """Ratios, estimate and influence-function projections of one cell from its sums."""
    A, B = sums.sums[f"A/{c}"], sums.sums[f"B/{c}"]
    if (B <= 0).any():
        return None, "all comparison units trimmed (propensity scores at or above 0.995)"
    pmax = sums.maxima.get(f"pmax/{c}")
    if pmax is not None and pmax[0] >= OVERLAP_LIMIT:
        return None, f"propensity score reaches {OVERLAP_LIMIT} (overlap fails)"
    ratios = A / B
    signs = term_signs(state.est_method, state.kind == "panel")
    projections: dict[str, np.ndarray] = {}
    for name in nuisance_names(state.est_method, state.kind == "panel"):
        grad = 0.0
        for k in range(len(A)):
            part = (sums.sums.get(f"da/{c}/{k}/{name}", 0.0)
                    - ratios[k] * sums.sums.get(f"db/{c}/{k}/{name}", 0.0))
            grad = grad + signs[k] * part / B[k]
        hess = sums.sums[f"H/{c}/{name}"]
        if np.linalg.cond(hess) > 1.0 / np.finfo(float).eps:
            return None, f"singular {'propensity-score' if name == 'ps' else 'regression'} design"
        projections[name] = np.linalg.solve(hess, np.broadcast_to(grad, hess.shape[:1]))
    return CellFinal(signs=signs, ratios=ratios, denominators=B, projections=projections,
                     params=state.params(c)), ""


def _inference(att: np.ndarray, part: Partial, state: FitState, opts: FitOptions,
               data: DidData) -> FitOutput:
    """The moments of the units' rows ``z`` (from the moments pass), then the cells' SEs,
    bands and pre-test."""
    cells, boot, n_clusters = state.cells, part.sums.get("boot"), None
    if state.clustered:
        keys, zc = part.keyed["cluster"]
        gram, n_clusters = zc.T @ zc, int(keys.size)
        if state.boot:  # one multiplier per cluster (R `did` 2.3: cluster sums)
            boot = bootstrap_sums(state.seed, keys, zc, state.biters)
    else:
        gram = part.sums["gram"]
    moments = Moments(gram=gram, zsum=part.sums["zsum"], boot=boot, n_units=data.n_units,
                      n_cells=len(cells), cohorts=data.cohorts, n_clusters=n_clusters,
                      seed=state.seed, biters=state.biters)
    C = len(cells)
    vcov = moments.gram[:C, :C].copy()
    se_analytic = np.sqrt(np.clip(np.diag(vcov), 0.0, None))
    degenerate = ~np.isfinite(att) | (se_analytic <= SE_FLOOR)
    se_analytic[degenerate] = np.nan
    se, crit, cband = cell_inference(se_analytic, degenerate, moments, opts)
    wald_stat, wald_p = (_wald_pretest(cells, att, vcov, se_analytic) if opts.wald_pretest
                         else (None, None))
    influence = None
    if "influence" in part.keyed:  # rows in unit-id order
        keys, phi = part.keyed["influence"]
        influence = phi[np.argsort(keys, kind="stable")] * moments.n_units
    return FitOutput(cells=cells, att=att, se=se, vcov=vcov, critical_value=crit, cband=cband,
                     wald_stat=wald_stat, wald_pvalue=wald_p, moments=moments,
                     influence=influence)


def cell_inference(se_analytic: np.ndarray, degenerate: np.ndarray, moments: Moments,
                   opts: FitOptions) -> tuple[np.ndarray, float, bool]:
    """SEs, critical value and whether bands are simultaneous, for the reported cells.

    Analytic SEs and the normal quantile, or (``boot``) the multiplier-bootstrap SEs
    (IQR / 1.349 of the draws) and, with ``cband``, the sup-t critical value over every
    non-degenerate cell, as R `did`'s ``mboot`` does.
    """
    n_cells = se_analytic.size
    crit = float(stats.norm.ppf(1 - opts.alpha / 2))
    if not opts.boot:
        return se_analytic, crit, False
    assert moments.boot is not None
    draws = moments.boot[:, :n_cells]
    ok = ~degenerate
    se = np.full(n_cells, np.nan)
    if ok.any():
        se[ok] = bootstrap_se(draws[:, ok])
    usable = np.isfinite(se)
    if not (opts.cband and usable.any()):
        return se, crit, False
    value = uniform_critical_value(draws[:, usable], se[usable], opts.alpha)
    if not np.isfinite(value):
        return se, crit, False
    if value >= 7:
        warn_user(f"simultaneous critical value is large ({value:.2f}): the bootstrap may "
                  "be unreliable")
    return se, float(value), True


def _wald_pretest(cells: list[Cell], att: np.ndarray, vcov: np.ndarray,
                  se: np.ndarray) -> tuple[float | None, float | None]:
    """Wald test that every pre-treatment ATT(g, t) (t < g) is zero (R `did`)."""
    pre = np.array([cell.time < cell.group and np.isfinite(se[c]) for c, cell in enumerate(cells)])
    if not pre.any():
        return None, None
    v = vcov[np.ix_(pre, pre)]
    if 1.0 / np.linalg.cond(v, 1) <= np.finfo(float).eps:
        warn_user("Not returning the pre-test Wald statistic: singular covariance matrix")
        return None, None
    a = att[pre]
    stat = float(a @ np.linalg.solve(v, a))
    return stat, float(stats.chi2.sf(stat, int(pre.sum())))
