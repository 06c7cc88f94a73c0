r"""Simulated triple-differences (DDD) data with a known ATT.

The designs follow the spirit of the Monte Carlo study of Ortiz-Villavicencio & Sant'Anna
(2025): every unit belongs to a treated or an untreated state (or to a staggered adoption
cohort) and to an eligible or an ineligible *partition*; only eligible units of treated states
are treated, from their cohort's first treatment period on. Covariates drive subgroup
membership and the outcome, whose untreated path carries state- and partition-specific
trends: DiD among eligible units or within treated states is biased, while the DDD identifies
the ATT conditionally on the covariates (unconditionally too with ``confounding=False``). As
in :func:`moderndid.data.gen_did_scalable`, ``dgp_type`` selects which working models (linear
in the observed covariates) are correctly specified, through the Kang & Schafer transforms.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

# The DDD designs reuse the DiD simulator's covariate transforms, cohort draws, outcome
# index and effect path, so the two families of simulated data stay comparable.
from moderndid.data.generators import (
    _EXTRA_LEVEL_LOADING,
    _OR_COEF,
    _PS_COEF,
    N_CLUSTERS,
    _att_table,
    _check_cohorts,
    _check_dgp,
    _check_int,
    _cohort_logit,
    _cohort_periods,
    _draw_cohorts,
    _long_columns,
    _working_covariates,
)
from moderndid.data.generators import _att_config as _did_att_config
from moderndid.data.mpdta import _import_pandas
from moderndid.errors import InvalidOptionError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["gen_ddd_2periods", "gen_ddd_mult_periods", "gen_ddd_scalable"]

_Seed = int | np.random.Generator | np.random.SeedSequence | None

# Partition (eligibility) index direction, different from the cohort index ``_PS_COEF``.
_PART_COEF = 0.75 * np.array([0.5, 0.5, -1.0, 0.25])
# Slope of the partition logit on the partition index: untreated state / treated cohorts.
_PART_SLOPE_UNTREATED = 1.0
_PART_SLOPE_TREATED = -1.0
# Bound on the membership indices built from the Kang-Schafer transforms.
_INDEX_BOUND = 2.5
# Extra trend per period of units in treated states / cohorts (state-specific trend): from
# STATE_TREND for the first cohort up to 1.5 * STATE_TREND for the last one ...
STATE_TREND = 1.0
# ... and of eligible units (partition-specific trend); no state x partition interaction.
PARTITION_TREND = 0.5
# Level shift of eligible units.
_PARTITION_LEVEL = 0.5
# Standard deviation of the unit-level treatment-effect heterogeneity (mean zero,
# independent of everything else, so ATT(g, t) is exact for any subgroup or weighting).
_EFFECT_SD = 1.0

_SUBGROUP_LABELS = {
    4: "treated state, eligible",
    3: "treated state, ineligible",
    2: "untreated state, eligible",
    1: "untreated state, ineligible",
}


def _check_finite(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(out):
        raise InvalidOptionError(f"{name} must be finite, got {value!r}")
    return out


def _logistic(z: NDArray) -> NDArray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _membership_indices(w_ps: NDArray, dgp_type: int) -> tuple[NDArray, NDArray]:
    """Cohort index ``s`` and partition index ``r`` of the membership logits.

    With the Kang-Schafer transforms (``dgp_type`` 2 and 4) the linear indices have
    heavy tails that would push subgroup probabilities to zero (no overlap, infinite
    efficiency bound), so they are squashed smoothly into ``(-2.5, 2.5)``; this keeps
    them nonlinear in the observed covariates.
    """
    s = _PS_COEF @ w_ps
    r = _PART_COEF @ w_ps
    if dgp_type in (2, 4):
        s = _INDEX_BOUND * np.tanh(s / _INDEX_BOUND)
        r = _INDEX_BOUND * np.tanh(r / _INDEX_BOUND)
    return s, r


def _cohort_trends(n_cohorts: int) -> NDArray:
    """Extra trend per period by cohort code (0 = untreated state / never treated)."""
    steps = np.linspace(0.0, 0.5, n_cohorts) if n_cohorts > 1 else np.zeros(1)
    return np.concatenate([[0.0], STATE_TREND * (1.0 + steps)])


def _simulate(n: int, dgp_type: int, cohorts: NDArray, n_periods: int, n_covariates: int,
              att_base: float, panel: bool, confounding: bool, random_state: _Seed
              ) -> dict[str, Any]:
    """Shared simulator: long (and, panel only, wide) data plus per-unit draws."""
    pd = _import_pandas()
    rng = np.random.default_rng(random_state)
    T, K, C = n_periods, n_covariates, cohorts.size
    n_draw = n if panel else n * T
    att, post = _att_table(cohorts, T, att_base)

    x = rng.standard_normal((K, n_draw))
    w_ps, w_or = _working_covariates(x[:4], dgp_type)

    # Cohort by a multinomial logit, then partition by a logit given cohort: P(g, q | X) =
    # P(g | X) P(q | g, X) is itself a multinomial logit over the 2(C+1) cohort x partition cells.
    kappa, alpha = _cohort_logit(C, confounding)
    u_cohort = rng.random(n_draw)
    u_part = rng.random(n_draw)
    if confounding:
        s_idx, r_idx = _membership_indices(w_ps, dgp_type)
        code = _draw_cohorts(s_idx, kappa, alpha, u_cohort)
        slope = np.where(code > 0, _PART_SLOPE_TREATED, _PART_SLOPE_UNTREATED)
        p_elig = _logistic(slope * r_idx)
        del s_idx, r_idx
    else:
        code = _draw_cohorts(np.zeros(n_draw), kappa, alpha, u_cohort)
        p_elig = np.full(n_draw, 0.5)
    partition = (u_part < p_elig).astype(np.int64)
    del u_cohort, u_part, p_elig
    group = np.concatenate([[0], cohorts]).astype(np.int64)[code]
    cluster = rng.integers(1, N_CLUSTERS + 1, size=n_draw, dtype=np.int64)

    m = _OR_COEF @ w_or
    level = m + group / T + _PARTITION_LEVEL * partition + rng.standard_normal(n_draw)
    if K > 4:
        level += (_EXTRA_LEVEL_LOADING / (K - 4)) * x[4:].sum(axis=0)
    slope_t = 1.0 + m + _cohort_trends(C)[code] + PARTITION_TREND * partition
    effect_dev = _EFFECT_SD * rng.standard_normal(n_draw)
    del w_ps, w_or, m

    treated = partition == 1  # eligible; the post mask selects treated cohorts and periods
    units = {"group": group, "partition": partition}
    data_wide = time = None
    if panel:
        y = rng.standard_normal((n, T))
        y += level[:, None]
        y += slope_t[:, None] * np.arange(1, T + 1, dtype=np.float64)[None, :]
        for c in range(1, C + 1):  # treated (eligible) units of cohort c, post periods only
            rows = np.flatnonzero((code == c) & treated)
            periods = np.flatnonzero(post[c])
            if rows.size and periods.size:
                block = np.ix_(rows, periods)
                y[block] += att[c, periods][None, :] + effect_dev[rows][:, None]
        data_wide = pd.DataFrame(  # own contiguous y copies: no memory shared with data["y"]
            {"id": np.arange(1, n + 1, dtype=np.int64), **units}
            | {f"y_t{j + 1}": np.ascontiguousarray(y[:, j]) for j in range(T)}
            | {f"cov{k + 1}": x[k] for k in range(K)}
            | {"cluster": cluster},
            copy=False,
        )
    else:
        time = np.repeat(np.arange(1, T + 1, dtype=np.int64), n)
        y = rng.standard_normal(n_draw)
        y += level
        y += slope_t * time
        mask = post[code, time - 1] & treated
        y += np.where(mask, att[code, time - 1] + effect_dev, 0.0)
    return {"data": pd.DataFrame(_long_columns(units, y, x, cluster, time), copy=False),
            "data_wide": data_wide, "group": group, "partition": partition,
            "effect_dev": effect_dev, "time_unit": time, "att": att}


def _att_config(cohorts: NDArray, n_periods: int, att_base: float, att: NDArray) -> dict:
    config = _did_att_config(cohorts, n_periods, att_base, att)
    config["formula"] = (  # same key order as the DiD config: only the wording changes
        "ATT(g, t) = att_base * (1 + 0.1 * (t - g)) for eligible units of cohort g at "
        "t >= g, else 0"
    )
    config["cohort_trends"] = {
        int(g): float(v) for g, v in zip(cohorts, _cohort_trends(cohorts.size)[1:], strict=True)
    }
    config["partition_trend"] = PARTITION_TREND
    return config


def gen_ddd_2periods(
    n: int,
    dgp_type: int = 1,
    panel: bool = True,
    random_state: _Seed = None,
    *,
    att: float = 10.0,
    confounding: bool = True,
) -> dict[str, Any]:
    r"""Simulate two-period triple-differences data with a known ATT.

    Parameters
    ----------
    n : int
        Number of units (``panel=True``) or units drawn per period (``panel=False``).
    dgp_type : {1, 2, 3, 4}, default 1
        Which working models are correct when the estimator uses the covariates linearly:
        1. subgroup (propensity) and outcome models both use the observed covariates;
        2. only the outcome model does (membership uses the Kang-Schafer transforms);
        3. only the membership model does (the outcome uses the transforms);
        4. neither (both use the transforms; doubly robust estimators are biased).
    panel : bool, default True
        ``True`` for a balanced two-period panel; ``False`` for repeated cross-sections,
        where each period draws ``n`` fresh units (ids unique across periods).
    random_state : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Seed passed to :func:`numpy.random.default_rng`; the same seed gives identical data.
    att : float, default 10.0
        The true ATT (keyword only).
    confounding : bool, default True
        Keyword only. ``False`` makes subgroup membership independent of the covariates
        (they still shift outcome levels and trends), so that the unconditional DDD of
        subgroup means is unbiased.

    Returns
    -------
    dict
        ``data`` : pandas.DataFrame
            Long data sorted by ``id`` then ``time``, columns ``id``, ``state`` (1 =
            treated state), ``partition`` (1 = eligible), ``time`` (1, 2), ``y``,
            ``cov1`` .. ``cov4`` and ``cluster`` (1..50). In repeated cross-sections ids
            run ``1..2n``, period ``t`` holding ``(t-1)*n+1 .. t*n``.
        ``true_att`` : float
            The ATT of eligible units in treated states in period 2.
        ``oracle_att`` : float
            Sample average of the individual effects of the treated units (panel) or of the
            treated observations in period 2 (repeated cross-sections).
        ``efficiency_bound`` : float
            Semiparametric efficiency bound for the ATT (asymptotic variance of
            ``sqrt(n) * (estimate - ATT)``, ``n`` = units or, in repeated cross-sections,
            observations), evaluated by Monte Carlo integration over the covariates with the
            true nuisance functions (relative accuracy about 0.2%).
        ``subgroup_labels`` : dict
            ``{4: "treated state, eligible", 3: ..., 2: ..., 1: ...}`` (R ``triplediff``
            subgroup numbering).
        ``dgp_type``, ``panel``, ``confounding``
            The arguments.

    Notes
    -----
    With :math:`X \sim N(0, I_4)`, :math:`s_i = \gamma' W^{ps}_i` and
    :math:`r_i = \delta' W^{ps}_i`, unit :math:`i` is in a treated state (:math:`S_i = 1`)
    with probability :math:`\operatorname{logit}^{-1}(s_i - \|\gamma\|^2/2)` and eligible
    (:math:`Q_i = 1`) with probability :math:`\operatorname{logit}^{-1}(\rho_{S_i} r_i)`,
    :math:`\rho_0 = 1`, :math:`\rho_1 = -1` (for ``dgp_type`` 2 and 4, where
    :math:`W^{ps}` are the Kang-Schafer transforms, both indices are squashed smoothly into
    :math:`(-2.5, 2.5)` to keep overlap). With :math:`m_i = (2.74, 1.37, 1.37, 1.37)'
    W^{or}_i`,

    .. math::

        Y_{it} = m_i + S_i + 0.5 Q_i + v_i + t\,(1 + m_i + 1.0\,S_i + 0.5\,Q_i)
                 + 1\{S_i = Q_i = 1, t = 2\}(\text{att} + \zeta_i) + \varepsilon_{it},

    :math:`v_i, \zeta_i, \varepsilon_{it} \sim N(0, 1)`. Parallel trends fails between
    states (trend 1.0) and between partitions (trend 0.5) but its failure is the same for
    eligible and ineligible units, so the DDD identifies the ATT conditional on :math:`X`.

    Examples
    --------
    >>> from moderndid.data import gen_ddd_2periods
    >>> sim = gen_ddd_2periods(1_000, random_state=0)
    >>> list(sim["data"].columns)
    ['id', 'state', 'partition', 'time', 'y', 'cov1', 'cov2', 'cov3', 'cov4', 'cluster']
    """
    n = _check_int("n", n, 1)
    dgp_type = _check_dgp(dgp_type)
    att = _check_finite("att", att)
    panel, confounding = bool(panel), bool(confounding)
    cohorts = np.array([2], dtype=np.int64)
    sim = _simulate(n, dgp_type, cohorts, 2, 4, att, panel, confounding, random_state)
    data = sim["data"].rename(columns={"group": "state"})
    data["state"] = (data["state"].to_numpy() > 0).astype(np.int64)
    treated = (sim["group"] > 0) & (sim["partition"] == 1)
    if not panel:
        treated &= sim["time_unit"] == 2
    oracle = float(att + sim["effect_dev"][treated].mean()) if treated.any() else math.nan
    return {"data": data, "true_att": att, "oracle_att": oracle,
            "efficiency_bound": _efficiency_bound(dgp_type, panel, confounding),
            "subgroup_labels": dict(_SUBGROUP_LABELS), "dgp_type": dgp_type, "panel": panel,
            "confounding": confounding}


def _cell_probabilities(x4: NDArray, dgp_type: int, confounding: bool) -> dict[int, NDArray]:
    """True P(subgroup k | X) of the two-period design, k = 4, 3, 2, 1."""
    if not confounding:
        quarter = np.full(x4.shape[1], 0.25)
        return {k: quarter for k in (4, 3, 2, 1)}
    w_ps, _ = _working_covariates(x4, dgp_type)
    kappa, alpha = _cohort_logit(1, True)
    s, r = _membership_indices(w_ps, dgp_type)
    p_state = _logistic(kappa[0] * s + alpha[0])
    p_elig_t = _logistic(_PART_SLOPE_TREATED * r)
    p_elig_u = _logistic(_PART_SLOPE_UNTREATED * r)
    return {
        4: p_state * p_elig_t,
        3: p_state * (1.0 - p_elig_t),
        2: (1.0 - p_state) * p_elig_u,
        1: (1.0 - p_state) * (1.0 - p_elig_u),
    }


@functools.lru_cache(maxsize=16)
def _efficiency_bound(dgp_type: int, panel: bool, confounding: bool) -> float:
    r"""Efficiency bound of the two-period ATT by Monte Carlo over the covariates.

    The efficient influence function is a sum over the subgroups of weighted outcome
    residuals (the conditional ATT is constant, so its own term vanishes). With
    :math:`p_k(X)` the subgroup probabilities, :math:`p_4 = E[p_4(X)]` and residual
    variances :math:`\sigma^2` (noise, plus the effect heterogeneity for the treated):

    * panel: :math:`p_4^{-2} E[p_4(X)\sigma_4^2 + \sum_{k<4} p_4(X)^2 \sigma_k^2 / p_k(X)]`
      with :math:`\sigma_k^2 = \operatorname{Var}(\Delta Y | X, k)`;
    * repeated cross-sections with period shares :math:`\lambda_t = 1/2`: the same with
      the sum also over periods, each term divided by :math:`\lambda_t` and
      :math:`\sigma^2_{k,t} = \operatorname{Var}(Y | X, k, t)`.
    """
    if confounding:
        rng = np.random.default_rng(20250417)
        x4 = rng.standard_normal((4, 1 << 19))
    else:  # constant probabilities: one point integrates exactly
        x4 = np.zeros((4, 1))
    p = _cell_probabilities(x4, dgp_type, confounding)
    p4 = p[4]
    p4_bar = float(p4.mean())
    controls = sum(p4 * p4 / p[k] for k in (3, 2, 1))
    noise = 1.0  # Var(epsilon_it) and Var(v_i)
    het = _EFFECT_SD**2
    if panel:
        # Var(dY | X, k) = 2 * noise (+ het for the treated)
        integrand = p4 * (2.0 * noise + het) + controls * (2.0 * noise)
    else:
        # Var(Y | X, k, t) = 2 * noise (unit effect + noise), + het for (4, t = 2)
        lam = 0.5
        integrand = (p4 * (2.0 * noise) + p4 * (2.0 * noise + het)) / lam
        integrand = integrand + controls * (2.0 * (2.0 * noise) / lam)
    return float(integrand.mean() / p4_bar**2)


def gen_ddd_mult_periods(
    n: int,
    dgp_type: int = 1,
    panel: bool = True,
    random_state: _Seed = None,
    *,
    att_base: float = 10.0,
    confounding: bool = True,
) -> dict[str, Any]:
    r"""Simulate staggered triple-differences data: three periods, cohorts 2 and 3.

    The small staggered design (as in R ``triplediff``'s ``gen_dgp_mult_periods``): periods
    1..3, units never treated (``group = 0``) or in cohorts first treated in period 2 or 3,
    each split into an eligible (``partition = 1``) and an ineligible part. The model is
    that of :func:`gen_ddd_scalable` with ``n_periods=3``, ``n_cohorts=2`` and four
    covariates.

    Parameters
    ----------
    n, dgp_type, panel, random_state, confounding
        As in :func:`gen_ddd_2periods` (``confounding`` is keyword only).
    att_base : float, default 10.0
        ATT on impact (keyword only); ``ATT(g, t) = att_base * (1 + 0.1 (t - g))``.

    Returns
    -------
    dict
        ``data`` : pandas.DataFrame
            Columns ``id``, ``group`` (0, 2, 3), ``partition`` (0/1), ``time`` (1..3),
            ``y``, ``cov1`` .. ``cov4``, ``cluster``.
        ``data_wide`` : pandas.DataFrame or None
            Panel only: ``id``, ``group``, ``partition``, ``y_t1`` .. ``y_t3``,
            ``cov1`` .. ``cov4``, ``cluster``.
        ``es_0_oracle`` : float
            Sample average of the individual effects of treated (eligible, cohort 2 or 3)
            units at event time 0 (observations at ``time == group`` in repeated
            cross-sections).
        ``prob_g2_p1``, ``prob_g3_p1`` : float
            Sample shares of cohorts 2 and 3 among eligible treated units (the weights of
            the event-time-0 aggregation).
        ``att_config``, ``cohort_values``, ``n_periods``, ``n_covariates``, ``dgp_type``,
        ``panel``, ``confounding``
            As returned by :func:`gen_ddd_scalable`.
    """
    out, sim = _staggered(n, dgp_type, 3, 2, 4, att_base, panel, confounding, random_state)
    group, partition, dev = sim["group"], sim["partition"], sim["effect_dev"]
    elig_treated = (group > 0) & (partition == 1)
    at_impact = elig_treated if panel else elig_treated & (sim["time_unit"] == group)
    att_base = out["att_config"]["att_base"]  # checked: a float
    es0 = float(att_base + dev[at_impact].mean()) if at_impact.any() else math.nan
    n_et = int(elig_treated.sum())
    shares = {
        g: (float(((group == g) & (partition == 1)).sum() / n_et) if n_et else math.nan)
        for g in (2, 3)
    }
    return {"data": out.pop("data"), "data_wide": out.pop("data_wide"), "es_0_oracle": es0,
            "prob_g2_p1": shares[2], "prob_g3_p1": shares[3], **out}


def gen_ddd_scalable(
    n: int,
    dgp_type: int = 1,
    n_periods: int = 10,
    n_cohorts: int = 8,
    n_covariates: int = 20,
    att_base: float = 10.0,
    panel: bool = True,
    random_state: _Seed = None,
    *,
    confounding: bool = True,
) -> dict[str, Any]:
    r"""Simulate staggered triple-differences data at scale with a known ATT(g, t).

    A vectorised multi-period, multi-cohort triple-differences design (a million units
    by ten periods in a few seconds).

    Parameters
    ----------
    n, dgp_type, panel, random_state, confounding
        As in :func:`gen_ddd_2periods` (``confounding`` is keyword only).
    n_periods, n_cohorts, n_covariates, att_base
        As in :func:`moderndid.data.gen_did_scalable`: ``T >= 2`` periods ``1..T``,
        ``1 <= C <= T - 1`` treated cohorts starting at ``round(linspace(2, T, C))`` (the
        middle period when ``C == 1``), ``K >= 4`` covariates (the first four drive
        membership and outcome trends) and the ATT on impact (event time 0).

    Returns
    -------
    dict
        ``data`` : pandas.DataFrame
            Long data sorted by ``id`` then ``time``: ``id``, ``group`` (first treated
            period of the unit's state, 0 = never), ``partition`` (1 = eligible),
            ``time``, ``y``, ``cov1`` .. ``covK``, ``cluster`` (1..50); all int64 but
            ``y`` and the covariates (float64).
        ``data_wide`` : pandas.DataFrame or None
            Panel only: ``id``, ``group``, ``partition``, ``y_t1`` .. ``y_tT``,
            ``cov1`` .. ``covK``, ``cluster``.
        ``att_config``, ``cohort_values``
            As in :func:`moderndid.data.gen_did_scalable` (``true_att`` for eligible units);
            ``att_config`` also holds ``cohort_trends`` (``{g: lambda_g}``) and
            ``partition_trend``, the extra per-period trends of cohort-``g`` and eligible units.
        ``n_periods``, ``n_covariates``, ``dgp_type``, ``panel``, ``confounding``
            The arguments.

    Notes
    -----
    Unit :math:`i` joins cohort :math:`c` (0 = never treated) by the multinomial logit of
    :func:`moderndid.data.gen_did_scalable` on :math:`s_i = \gamma' W^{ps}_i` and is
    eligible with probability :math:`\operatorname{logit}^{-1}(\rho_{c} \delta' W^{ps}_i)`,
    :math:`\rho_0 = 1` and :math:`\rho_c = -1` for treated cohorts (both indices squashed
    into :math:`(-2.5, 2.5)` for ``dgp_type`` 2 and 4). The outcome is

    .. math::

        Y_{it} = m_i + g_i/T + 0.5 Q_i + b'X_{i,5:K} + v_i
                 + t\,(1 + m_i + \lambda_{g_i} + 0.5\,Q_i)
                 + 1\{Q_i = 1, g_i > 0, t \ge g_i\}(ATT(g_i, t) + \zeta_i)
                 + \varepsilon_{it},

    :math:`v_i, \zeta_i, \varepsilon_{it} \sim N(0, 1)`, with cohort trends
    :math:`\lambda_0 = 0` (never treated) and :math:`\lambda_g` evenly spaced from 1.0
    (first cohort) to 1.5 (last), so DiD among eligible units is biased against never-
    and not-yet-treated comparisons alike.

    The cohort-specific and partition-specific trends break parallel trends for DiD among
    eligible units and for DiD within cohorts, but not for the triple difference (no
    cohort x partition x time term), conditionally on the covariates.
    """
    return _staggered(n, dgp_type, n_periods, n_cohorts, n_covariates, att_base, panel,
                      confounding, random_state)[0]


def _staggered(n: int, dgp_type: int, n_periods: int, n_cohorts: int, n_covariates: int,
               att_base: float, panel: Any, confounding: Any, random_state: _Seed
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked arguments -> (the public result of the staggered designs, the raw simulation)."""
    n = _check_int("n", n, 1)
    dgp_type = _check_dgp(dgp_type)
    n_periods = _check_int("n_periods", n_periods, 2)
    n_cohorts = _check_int("n_cohorts", n_cohorts, 1)
    n_covariates = _check_int("n_covariates", n_covariates, 4)
    _check_cohorts(n_periods, n_cohorts)
    att_base = _check_finite("att_base", att_base)
    panel, confounding = bool(panel), bool(confounding)
    cohorts = _cohort_periods(n_periods, n_cohorts)
    sim = _simulate(n, dgp_type, cohorts, n_periods, n_covariates, att_base, panel, confounding,
                    random_state)
    out = {"data": sim["data"], "data_wide": sim["data_wide"],
           "att_config": _att_config(cohorts, n_periods, att_base, sim["att"]),
           "cohort_values": cohorts.copy(), "n_periods": n_periods, "n_covariates": n_covariates,
           "dgp_type": dgp_type, "panel": panel, "confounding": confounding}
    return out, sim
