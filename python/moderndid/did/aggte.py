"""`aggte`: aggregations of ATT(g, t) (Callaway & Sant'Anna 2021, section 3).

Every aggregation is a linear combination ``c`` of the units' influence-function rows
``z_i = (phi_i per cell, w_i 1{G_i = g} per cohort, 1)`` that the fit summarised in its Gram
matrix: the cohort-share terms carry the correction for estimating the weights
``P(G = g)`` (R `did`'s ``wif``). So variances are ``c' Gram c`` and bootstrap draws are
``draws @ c``, with no unit-level data.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from scipy import stats

from moderndid._warnings import warn_user
from moderndid.core.bootstrap_stats import bootstrap_se, uniform_critical_value
from moderndid.core.multipliers import seed_from_random_state
from moderndid.did.fit import SE_FLOOR, Moments
from moderndid.did.results import AGGREGATION_TYPES, AGGTEResult, MPResult
from moderndid.errors import InvalidOptionError, MissingValuesError


def _share_weighted(moments: Moments, vectors: list[np.ndarray], estimates: np.ndarray,
                    groups: np.ndarray) -> tuple[float, np.ndarray]:
    """Combine estimates with weights ``P(G = g)`` and add the estimated-weights term.

    For components j with estimates ``a_j``, cohort shares ``pg_j`` and influence
    coefficient vectors ``c_j``, returns ``sum_j pg_j a_j / S`` and its coefficient vector

        sum_j (pg_j / S) c_j  +  sum_j (a_j - est) / (S n) * (u_{g_j} - pg_j),

    the second part being R `did`'s ``wif`` written in the z basis.
    """
    n = moments.n_units
    cols = [moments.n_cells + int(np.flatnonzero(moments.cohorts == g)[0]) for g in groups]
    pg = np.array([float(moments.zsum[col] / n) for col in cols])  # R `did`'s pg
    total = pg.sum()
    estimate = float(pg @ estimates / total)
    c = np.zeros(moments.gram.shape[0])
    for j, vec in enumerate(vectors):
        c += pg[j] / total * vec
        dev = (estimates[j] - estimate) / (total * n)
        c[cols[j]] += dev
        c[-1] -= dev * pg[j]
    return estimate, c


def aggte(
    MP: MPResult,
    type: str = "group",
    balance_e: int | None = None,
    min_e: float = -math.inf,
    max_e: float = math.inf,
    na_rm: bool = False,
    boot: bool | None = None,
    biters: int | None = None,
    cband: bool | None = None,
    alpha: float | None = None,
    clustervars: Any = None,
    random_state: Any = None,
) -> AGGTEResult:
    """Aggregate group-time average treatment effects.

    Parameters
    ----------
    MP : MPResult
        Result of :func:`att_gt`.
    type : {"simple", "dynamic", "group", "calendar"}
        ``simple``: average of post-treatment ATT(g, t) weighted by cohort size;
        ``dynamic``: event study by time since treatment ``e = t - g``;
        ``group``: average effect of each cohort; ``calendar``: effect in each period.
    balance_e : int, optional
        ``dynamic`` only: keep cohorts observed for at least ``balance_e`` periods after
        treatment, so the composition of the event study does not change with ``e``.
    min_e, max_e : float
        Event-time window (``dynamic``); ``max_e`` also caps the cells of ``simple`` and
        ``group``.
    na_rm : bool, default False
        Drop cells whose ATT is NA instead of raising.
    boot : bool, optional
        Bootstrap standard errors; defaults to the fit's choice. The fit's multiplier
        draws are reused, so SEs are consistent with ``att_gt``.
    biters : int, optional
        Draws; only used when the fit has no bootstrap draws to reuse.
    cband : bool, optional
        Simultaneous bands for the disaggregated effects (default: the fit's ``cband``
        option). Without bootstrap draws from the fit, the band's critical value comes
        from Gaussian multiplier draws from the analytic covariance.
    alpha : float, optional
        Significance level (default: the fit's).
    clustervars : optional
        Must equal the fit's clustering (clustering is fixed when the fit summarises its
        influence functions).
    random_state : int, numpy Generator or None
        Seed of draws that ``aggte`` makes itself (see ``cband``).

    Returns
    -------
    AGGTEResult
    """
    if not isinstance(MP, MPResult) or not isinstance(MP.moments, Moments):
        raise InvalidOptionError("aggte needs the MPResult returned by att_gt")
    return aggregate(MP.moments, MP.groups, MP.times, MP.att_gt, MP.estimation_params,
                     type=type, balance_e=balance_e, min_e=min_e, max_e=max_e, na_rm=na_rm,
                     boot=boot, biters=biters, cband=cband, alpha=alpha,
                     clustervars=clustervars, random_state=random_state)


def aggregate(moments: Moments, groups: Any, times: Any, att: Any,
              estimation_params: dict[str, Any], *, type: str, balance_e: int | None = None,
              min_e: float = -math.inf, max_e: float = math.inf, na_rm: bool = False,
              boot: bool | None = None, biters: int | None = None, cband: bool | None = None,
              alpha: float | None = None, clustervars: Any = None, random_state: Any = None,
              ) -> AGGTEResult:
    """Aggregate group-time effects summarised by ``moments`` (shared by aggte and agg_ddd)."""
    if type not in AGGREGATION_TYPES:
        raise InvalidOptionError(f"type must be one of {AGGREGATION_TYPES}, got {type!r}")
    params = dict(estimation_params)
    alpha = params.get("alpha", 0.05) if alpha is None else alpha
    if not isinstance(alpha, numbers.Real) or not 0 < float(alpha) < 1:
        raise InvalidOptionError(f"alpha must be a number in (0, 1), got {alpha!r}")
    alpha = float(alpha)
    boot = bool(params.get("boot", False)) if boot is None else boot
    want_cband = bool(params.get("cband_requested", params.get("cband", False))) \
        if cband is None else cband
    fit_clusters = list(params.get("clustervars") or [])
    if clustervars is not None:
        asked = [clustervars] if isinstance(clustervars, str) else list(clustervars)
        asked = [c for c in asked if c != params.get("idname")]
        if asked != fit_clusters:
            raise InvalidOptionError(
                f"aggte cannot change clustering ({fit_clusters} in att_gt, {asked} asked): "
                "pass clustervars to att_gt instead"
            )
    if balance_e is not None and (not isinstance(balance_e, numbers.Integral)
                                  or isinstance(balance_e, bool) or balance_e < 0):
        raise InvalidOptionError(f"balance_e must be a non-negative integer, got {balance_e!r}")

    att = np.asarray(att, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    valid = np.isfinite(att)
    if not valid.all() and not na_rm:
        bad = np.flatnonzero(~valid)[0]
        raise MissingValuesError(
            f"ATT(g,t) is NA for {int((~valid).sum())} cell(s) (first: g={groups[bad]:g}, "
            f"t={times[bad]:g}); pass na_rm=True to aggregate the others"
        )
    idx = np.arange(att.size)

    def cell_vector(cells: Any, weight: float) -> np.ndarray:
        c = np.zeros(moments.gram.shape[0])
        c[cells] = weight
        return c

    def share_weighted(cells: np.ndarray) -> tuple[float, np.ndarray]:
        vectors = [cell_vector(k, 1.0) for k in cells]
        return _share_weighted(moments, vectors, att[cells], groups[cells])

    labels: np.ndarray | None = None
    vectors: list[np.ndarray] = []
    estimates: list[float] = []
    if type == "simple":
        overall, c_overall = share_weighted(
            idx[valid & (groups <= times) & (times <= groups + max_e)])
    else:
        if type == "group":
            candidates = [(g, idx[valid & (groups == g) & (g <= times) & (times <= g + max_e)])
                          for g in np.unique(groups)]
        elif type == "dynamic":
            event = times - groups
            include = valid.copy()
            eseq = np.unique(event)
            if balance_e is not None:
                eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - times.max() + times.min())]
                include &= (times.max() - groups) >= balance_e
            eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
            candidates = [(e, idx[include & (event == e)]) for e in eseq]
        else:
            candidates = [(t, idx[valid & (times == t) & (groups <= t)])
                          for t in np.unique(times[times >= groups.min()])]
        candidates = [(label, cells) for label, cells in candidates if cells.size]
        labels = np.array([label for label, _ in candidates])
        for _, cells in candidates:
            if type == "group":  # a cohort's cells weigh equally
                est, vec = float(att[cells].mean()), cell_vector(cells, 1.0 / cells.size)
            else:  # by event time or period: cohort-share weighted cells
                est, vec = share_weighted(cells)
            estimates.append(est)
            vectors.append(vec)
        if type == "group":  # cohorts weighted by their shares
            overall, c_overall = _share_weighted(moments, vectors, np.array(estimates), labels)
        else:  # the mean of the post-treatment event times, or of every period
            post = labels >= 0 if type == "dynamic" else np.ones(labels.size, dtype=bool)
            if not post.any() and type == "dynamic":
                raise InvalidOptionError("no post-treatment event times in the requested window")
            overall = float(np.mean(np.array(estimates)[post]))
            c_overall = np.mean(np.array(vectors)[post], axis=0)

    if random_state is None:
        # Draws aggte makes itself reuse the fit's seed, so results reproduce by default.
        random_state = params.get("random_state")
    draws = _draws(moments, boot, biters, random_state)
    overall_se = _se(moments.gram, c_overall, draws)
    result_kwargs: dict[str, Any] = {}
    cband_used = False
    if labels is not None:
        cmat = np.array(vectors).T  # (dim, events)
        se_events = np.array([_se(moments.gram, cmat[:, j], draws) for j in range(len(labels))])
        vcov = cmat.T @ moments.gram @ cmat
        z = float(stats.norm.ppf(1 - alpha / 2))
        crit = z
        if want_cband:
            if draws is not None:
                band_draws = draws @ cmat
            else:
                band_draws = _gaussian_draws(vcov, biters or moments.biters or 1000, random_state)
            usable = np.isfinite(se_events)
            value = uniform_critical_value(band_draws[:, usable], se_events[usable], alpha) \
                if usable.any() else np.nan
            if not np.isfinite(value):
                warn_user("simultaneous critical value could not be computed; using "
                          "pointwise intervals")
            elif value > z:
                crit = float(value)
                cband_used = True
            # Otherwise (R `did`): a band narrower than pointwise intervals is not reported;
            # pointwise intervals are used and the result says so.
        if labels.size and np.all(np.mod(labels, 1) == 0):
            labels = labels.astype(np.int64)
        result_kwargs.update(event_times=labels, att_by_event=np.array(estimates),
                             se_by_event=se_events, critical_values=np.full(len(labels), crit),
                             vcov_analytical=vcov)
    params.update(boot=boot, bootstrap=boot, cband=cband_used, uniform_bands=cband_used,
                  alpha=alpha)
    return AGGTEResult(
        overall_att=overall,
        overall_se=overall_se,
        aggregation_type=type,
        min_event_time=None if math.isinf(min_e) else int(min_e),
        max_event_time=None if math.isinf(max_e) else int(max_e),
        balanced_event_threshold=balance_e,
        estimation_params=params,
        call_info={"function": f"aggte(MP, type={type!r})", "type": type},
        alpha=alpha,
        **result_kwargs,
    )


def _draws(moments: Moments, boot: bool, biters: int | None, random_state: Any
           ) -> np.ndarray | None:
    """Bootstrap sums of z to aggregate: the fit's, or Gaussian multiplier draws."""
    if not boot:
        return None
    if moments.boot is not None and (biters is None or biters == moments.biters):
        return moments.boot
    n_draws = biters or moments.biters or 1000
    return _gaussian_draws(moments.gram, n_draws, random_state)


def _gaussian_draws(cov: np.ndarray, n_draws: int, random_state: Any) -> np.ndarray:
    """Draws from N(0, cov): the multiplier bootstrap with Gaussian multipliers, exactly."""
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    rng = np.random.default_rng(seed_from_random_state(random_state))
    return rng.standard_normal((n_draws, cov.shape[0])) @ root.T


def _se(gram: np.ndarray, c: np.ndarray, draws: np.ndarray | None) -> float:
    if draws is not None:
        value = float(bootstrap_se((draws @ c)[:, None])[0])
    else:
        value = math.sqrt(max(float(c @ gram @ c), 0.0))
    return value if value > SE_FLOOR else math.nan
