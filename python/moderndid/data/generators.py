"""Simulated staggered difference-in-differences data with a known ATT(g, t).

The design follows the spirit of the Monte Carlo study of Sant'Anna & Zhao (2020, section 4),
extended from two periods to staggered adoption with many cohorts: the covariates drive both
the treatment timing (a multinomial logit over cohorts) and the outcome trend, so parallel
trends holds only conditionally on the covariates, and the nonlinear covariate transforms of
Kang & Schafer (2007) let the propensity-score and/or outcome-regression working models (linear
in the observed covariates) be misspecified on purpose.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from moderndid.data.mpdta import _import_pandas
from moderndid.errors import InvalidOptionError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["gen_did_scalable"]

#: Number of clusters units are spread over (``cluster`` takes the values 1..N_CLUSTERS).
N_CLUSTERS = 50

# Propensity-score index direction (Sant'Anna & Zhao 2020, eq. for p(Z), times 0.75).
_PS_COEF = 0.75 * np.array([-1.0, 0.5, -0.25, -0.1])
# Outcome-regression index m(W) (Sant'Anna & Zhao's f_reg without intercept, divided by 10).
_OR_COEF = np.array([2.74, 1.37, 1.37, 1.37])
# Total loading of the covariates beyond the fourth on the unit level (spread evenly).
_EXTRA_LEVEL_LOADING = 0.5
# Slope of the dynamic treatment effect per period of exposure.
_ATT_SLOPE = 0.1


def _ks_raw(x1: NDArray, x2: NDArray, x3: NDArray, x4: NDArray) -> list[NDArray]:
    """Kang & Schafer (2007) transforms of four standard normals (before standardisation)."""
    return [
        np.exp(0.5 * x1),
        10.0 + x2 / (1.0 + np.exp(x1)),
        (0.6 + x1 * x3 / 25.0) ** 3,
        (20.0 + x2 + x4) ** 2,
    ]


@functools.lru_cache(maxsize=1)
def _ks_moments() -> tuple[NDArray, NDArray]:
    """Population mean and standard deviation of the four transforms.

    Computed by tensor Gauss-Hermite quadrature (probabilists' weights) over the standard
    normal inputs, so the standardisation does not depend on the sample drawn.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    # Each transform depends on at most two of the inputs; a 2-D grid covers all of them
    # (x1 paired with x2/x3, and x2 + x4 has the same law as x1 + x3).
    a, b = np.meshgrid(nodes, nodes, indexing="ij")
    w2 = np.outer(weights, weights)
    raws = _ks_raw(a, b, b, a)  # z3 uses (x1, x3) = (a, b); z4 uses (x2, x4) = (b, a)
    means = np.array([(w2 * r).sum() for r in raws])
    sds = np.array([math.sqrt((w2 * (r - m) ** 2).sum()) for r, m in zip(raws, means, strict=True)])
    return means, sds


def _ks_transform(x: NDArray) -> NDArray:
    """Standardised Kang & Schafer transforms of the first four rows of ``x`` (shape (4, n))."""
    means, sds = _ks_moments()
    raws = _ks_raw(x[0], x[1], x[2], x[3])
    return np.stack([(r - m) / s for r, m, s in zip(raws, means, sds, strict=True)])


def _cohort_logit(n_cohorts: int, confounding: bool) -> tuple[NDArray, NDArray]:
    """Slopes ``kappa`` and intercepts of the cohort multinomial logit."""
    kappa = np.linspace(1.0, 0.25, n_cohorts) if n_cohorts > 1 else np.ones(1)
    if not confounding:
        return kappa, np.zeros(n_cohorts)
    return kappa, -0.5 * kappa**2 * float(_PS_COEF @ _PS_COEF)


def _working_covariates(x4: NDArray, dgp_type: int) -> tuple[NDArray, NDArray]:
    """Covariate rows driving treatment timing (membership) and the outcome (shape (4, n) each)."""
    z = _ks_transform(x4) if dgp_type != 1 else x4
    w_ps = z if dgp_type in (2, 4) else x4
    w_or = z if dgp_type in (3, 4) else x4
    return w_ps, w_or


def _long_columns(
    units: dict[str, NDArray], y: NDArray, x: NDArray, cluster: NDArray, time: NDArray | None
) -> dict[str, NDArray]:
    """Columns ``id``, ``units``, ``time``, ``y``, ``cov1..covK``, ``cluster`` of long data.

    Panel data (``time`` None, ``y`` of shape (n, T)) repeat each unit's values over the
    periods; repeated cross-sections (``time`` given) have one row per draw already.
    """
    n, T = (y.shape[0], y.shape[1]) if time is None else (y.shape[0], 1)

    def spread(v: NDArray) -> NDArray:
        return np.repeat(v, T) if time is None else v

    cols = {"id": spread(np.arange(1, n + 1, dtype=np.int64))}
    cols.update((name, spread(v)) for name, v in units.items())
    cols["time"] = np.tile(np.arange(1, T + 1, dtype=np.int64), n) if time is None else time
    cols["y"] = y.reshape(-1)
    cols.update((f"cov{k + 1}", spread(x[k])) for k in range(x.shape[0]))
    cols["cluster"] = spread(cluster)
    return cols


def _cohort_periods(n_periods: int, n_cohorts: int) -> NDArray:
    """Evenly spaced, distinct first-treatment periods in ``[2, n_periods]``."""
    if n_cohorts == 1:
        return np.array([(2 + n_periods) // 2], dtype=np.int64)
    grid = np.linspace(2.0, float(n_periods), n_cohorts)
    periods = np.floor(grid + 0.5).astype(np.int64)
    # Spacing is >= 1 because n_cohorts <= n_periods - 1, so rounding keeps them distinct.
    assert np.unique(periods).size == n_cohorts
    return periods


def _att_table(cohorts: NDArray, n_periods: int, att_base: float) -> tuple[NDArray, NDArray]:
    """ATT(g, t) and post-treatment mask, rows (never-treated, cohort_1..C), columns t = 1..T."""
    t = np.arange(1, n_periods + 1)
    g = np.concatenate([[0], cohorts])[:, None]
    post = (g > 0) & (t[None, :] >= g)
    return np.where(post, att_base * (1.0 + _ATT_SLOPE * (t[None, :] - g)), 0.0), post


def _draw_cohorts(s: NDArray, kappa: NDArray, alpha: NDArray, u: NDArray) -> NDArray:
    """Inverse-CDF draw from the multinomial logit over (never, cohort_1, ..., cohort_C).

    Category ``c >= 1`` has weight ``exp(alpha[c-1] + kappa[c-1] * s)`` relative to the
    never-treated category (weight 1). ``kappa`` is evenly spaced, so the weights follow the
    recursion ``w_c = w_{c-1} * exp(-d * s) * exp(alpha[c-1] - alpha[c-2])`` and only two
    exponentials per unit are needed. Works on whole arrays, looping over the (few)
    categories only. Returns the category code (0 = never treated), int64.
    """
    n_cat = kappa.size
    first = np.exp(kappa[0] * s + alpha[0])
    ratio = np.exp((kappa[1] - kappa[0]) * s if n_cat > 1 else np.zeros_like(s))
    steps = np.exp(np.diff(alpha))

    def weights(count: int) -> Iterator[NDArray]:
        w = first.copy()
        yield w
        for c in range(1, count):
            w *= ratio
            w *= steps[c - 1]
            yield w

    total = np.ones_like(s)
    for w in weights(n_cat):
        total += w
    u = u * total
    cum = np.ones_like(s)
    code = (u >= cum).astype(np.int64)
    for w in weights(n_cat - 1):
        cum += w
        code += u >= cum
    return code


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidOptionError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidOptionError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_dgp(dgp_type: Any) -> int:
    if isinstance(dgp_type, bool) or dgp_type not in (1, 2, 3, 4):
        raise InvalidOptionError(f"dgp_type must be 1, 2, 3 or 4, got {dgp_type!r}")
    return int(dgp_type)


def _check_cohorts(n_periods: int, n_cohorts: int) -> None:
    if n_cohorts > n_periods - 1:
        raise InvalidOptionError(
            f"n_cohorts={n_cohorts} is too many for n_periods={n_periods}: treated cohorts "
            f"start in distinct periods 2..{n_periods}, so n_cohorts must be <= "
            f"{n_periods - 1}"
        )


def gen_did_scalable(
    n: int,
    dgp_type: int = 1,
    n_periods: int = 10,
    n_cohorts: int = 8,
    n_covariates: int = 20,
    att_base: float = 10.0,
    panel: bool = True,
    random_state: int | np.random.Generator | np.random.SeedSequence | None = None,
) -> dict[str, Any]:
    r"""Simulate staggered-adoption DiD data with covariates and a known ATT(g, t).

    A vectorised, multi-period, multi-cohort generalisation of the Sant'Anna & Zhao (2020,
    section 4) Monte Carlo design, usable at scale (a million units in a few seconds).

    Parameters
    ----------
    n : int
        Number of units (``panel=True``) or number of units drawn per period
        (``panel=False``).
    dgp_type : {1, 2, 3, 4}, default 1
        Which working models are correctly specified when the estimator uses the observed
        covariates linearly:

        1. propensity score and outcome both depend on the observed covariates (both
           correctly specified; every doubly robust, IPW and regression estimator is
           consistent);
        2. outcome uses the observed covariates, propensity score the Kang-Schafer transforms
           (only the outcome regression is correct);
        3. propensity score uses the observed covariates, outcome the transforms (only the
           propensity score is correct);
        4. both use the transforms (neither is correct; DR estimators are biased).
    n_periods : int, default 10
        Number of time periods ``T``; periods are ``1..T``. Must be >= 2.
    n_cohorts : int, default 8
        Number of treated cohorts, between 1 and ``n_periods - 1``.
    n_covariates : int, default 20
        Number of covariates ``K`` (>= 4). The first four drive treatment timing and outcome
        trends; the others only shift the unit's outcome level.
    att_base : float, default 10.0
        ATT on impact (event time 0).
    panel : bool, default True
        ``True`` for a balanced panel; ``False`` for repeated cross-sections, where each
        period draws ``n`` fresh units (ids unique across periods).
    random_state : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Seed passed to :func:`numpy.random.default_rng`. The same seed gives identical data.

    Returns
    -------
    dict
        ``data`` : pandas.DataFrame
            Long data sorted by ``id`` then ``time`` with columns ``id`` (int64),
            ``group`` (int64, first treated period, ``0`` = never treated), ``time`` (int64,
            ``1..T``), ``y`` (float64), ``cov1`` ... ``covK`` (float64, time-invariant within
            a unit) and ``cluster`` (int64, ``1..50``). In the panel ``id`` runs ``1..n``; in
            repeated cross-sections ``1..n*T`` with period ``t`` holding ids
            ``(t-1)*n+1 .. t*n``.
        ``data_wide`` : pandas.DataFrame or None
            Panel only: one row per unit with ``id, group, cluster, cov1..covK, y_1..y_T``.
            ``None`` for repeated cross-sections.
        ``att_config`` : dict
            The truth: ``att_base``, ``dynamic`` (``True``), ``slope`` (0.1), ``formula``
            (text), ``true_att`` (``{(g, t): ATT(g, t)}`` for every cohort ``g`` and every
            period ``t``, zero before treatment), ``true_att_event`` (``{e: ATT}`` for event
            times ``e = t - g`` that occur, including negative ones) and ``true_att_group``
            (``{g: mean of ATT(g, t) over t >= g}``).
        ``cohort_values`` : numpy.ndarray
            The treated cohorts (first-treatment periods), sorted, int64.
        ``n_periods``, ``n_covariates``, ``dgp_type``, ``panel``
            The arguments.

    Raises
    ------
    InvalidOptionError
        (a :class:`ValueError`) for out-of-range arguments, e.g. ``n_cohorts > n_periods - 1``.
    ImportError
        If pandas is not installed.

    Notes
    -----
    Let :math:`X_i \in \mathbb{R}^K` be i.i.d. standard normal covariates and
    :math:`Z_i` the Kang & Schafer (2007) transforms of the first four,
    :math:`\exp(X_1/2)`, :math:`10 + X_2/(1+\exp(X_1))`, :math:`(0.6 + X_1X_3/25)^3`,
    :math:`(20 + X_2 + X_4)^2`, each standardised with its population mean and standard
    deviation. :math:`W^{ps}` and :math:`W^{or}` are :math:`(X_1..X_4)` or :math:`Z`
    according to ``dgp_type``.

    *Cohorts.* The ``C`` treated cohorts start at ``round(linspace(2, T, C))`` (the middle
    period when ``C == 1``). Unit :math:`i` joins cohort :math:`c` (``0`` = never treated)
    with multinomial-logit probability proportional to :math:`\exp(\eta_c)`,
    :math:`\eta_0 = 0`, :math:`\eta_c = \kappa_c s_i - \kappa_c^2 \|\gamma\|^2 / 2`,
    :math:`s_i = \gamma' W^{ps}_i`, :math:`\gamma = 0.75(-1, 0.5, -0.25, -0.1)` (Sant'Anna &
    Zhao's propensity index) and :math:`\kappa_c` evenly spaced from 1 (first cohort) down to
    0.25 (last). The intercepts make every category about equally likely, so the
    never-treated share is roughly :math:`1/(C+1)`; units with low :math:`s_i` are more often
    never treated and early cohorts are the most selected.

    *Outcome.* With :math:`m_i = (2.74, 1.37, 1.37, 1.37)' W^{or}_i` (Sant'Anna & Zhao's
    regression index divided by 10),

    .. math::

        Y_{it} = g_i / T + m_i + b' X_{i,5:K} + v_i + t + t\, m_i
                 + ATT(g_i, t)\, 1\{g_i > 0, t \ge g_i\} + \varepsilon_{it},

    with :math:`v_i, \varepsilon_{it} \sim N(0, 1)` independent, :math:`b` equal loadings
    summing to 0.5, and

    .. math:: ATT(g, t) = \text{att\_base}\,(1 + 0.1\,(t - g)), \quad t \ge g.

    The trend :math:`t\,m_i` depends on the covariates, whose distribution differs across
    cohorts, so unconditional parallel trends fails while parallel trends conditional on
    :math:`X` holds (for never-treated and not-yet-treated comparisons alike). Treatment
    effects are homogeneous within ``(g, t)``, so ``true_att`` is exact for any weighting.
    ``cluster`` is drawn uniformly from ``1..50``, independently of everything else.

    Everything is drawn with whole-array NumPy calls (no Python loop over units), in a fixed
    order from ``numpy.random.default_rng(random_state)``.

    References
    ----------
    Sant'Anna, P. H. C. and Zhao, J. (2020). Doubly robust difference-in-differences
    estimators. *Journal of Econometrics*, 219(1), 101-122.

    Kang, J. D. Y. and Schafer, J. L. (2007). Demystifying double robustness. *Statistical
    Science*, 22(4), 523-539.

    Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time
    periods. *Journal of Econometrics*, 225(2), 200-230.

    Examples
    --------
    >>> from moderndid.data import gen_did_scalable
    >>> sim = gen_did_scalable(1_000, n_periods=5, n_cohorts=3, n_covariates=4, random_state=0)
    >>> sim["data"].shape
    (5000, 9)
    >>> sim["cohort_values"]
    array([2, 4, 5])
    >>> sim["att_config"]["true_att"][(2, 4)]
    12.0
    """
    n = _check_int("n", n, 1)
    n_periods = _check_int("n_periods", n_periods, 2)
    n_cohorts = _check_int("n_cohorts", n_cohorts, 1)
    n_covariates = _check_int("n_covariates", n_covariates, 4)
    dgp_type = _check_dgp(dgp_type)
    _check_cohorts(n_periods, n_cohorts)
    att_base = float(att_base)
    if not math.isfinite(att_base):
        raise InvalidOptionError(f"att_base must be finite, got {att_base!r}")
    pd = _import_pandas()

    rng = np.random.default_rng(random_state)
    T, K, C = n_periods, n_covariates, n_cohorts
    n_draw = n if panel else n * T  # one draw per unit, or per (period, unit) in RC
    cohorts = _cohort_periods(T, C)
    att, _ = _att_table(cohorts, T, att_base)  # (C + 1, T)

    x = rng.standard_normal((K, n_draw))
    w_ps, w_or = _working_covariates(x[:4], dgp_type)

    kappa, alpha = _cohort_logit(C, confounding=True)
    code = _draw_cohorts(_PS_COEF @ w_ps, kappa, alpha, rng.random(n_draw))
    group = np.concatenate([[0], cohorts]).astype(np.int64)[code]

    cluster = rng.integers(1, N_CLUSTERS + 1, size=n_draw, dtype=np.int64)

    m = _OR_COEF @ w_or  # covariate index: level and trend slope
    level = m + group / T + rng.standard_normal(n_draw)
    if K > 4:
        level += (_EXTRA_LEVEL_LOADING / (K - 4)) * x[4:].sum(axis=0)
    del w_or, w_ps

    if panel:
        time = None
        y = rng.standard_normal((n, T))  # noise, then add the systematic part in place
        y += level[:, None]
        y += np.arange(1, T + 1, dtype=np.float64)[None, :] * (1.0 + m[:, None])
        y += att[code]
        data_wide = pd.DataFrame(  # own contiguous y copies: no memory shared with data["y"]
            {"id": np.arange(1, n + 1, dtype=np.int64), "group": group, "cluster": cluster}
            | {f"cov{k + 1}": x[k] for k in range(K)}
            | {f"y_{j + 1}": np.ascontiguousarray(y[:, j]) for j in range(T)},
            copy=False,
        )
    else:
        time = np.repeat(np.arange(1, T + 1, dtype=np.int64), n)
        y = rng.standard_normal(n_draw)
        y += level
        y += time * (1.0 + m)
        y += att[code, time - 1]
        data_wide = None
    data = pd.DataFrame(_long_columns({"group": group}, y, x, cluster, time), copy=False)
    return {"data": data, "data_wide": data_wide,
            "att_config": _att_config(cohorts, T, att_base, att), "cohort_values": cohorts.copy(),
            "n_periods": T, "n_covariates": K, "dgp_type": dgp_type, "panel": bool(panel)}


def _att_config(cohorts: NDArray, n_periods: int, att_base: float, att: NDArray) -> dict:
    periods = range(1, n_periods + 1)
    event_times = sorted({t - int(g) for g in cohorts for t in periods})
    return {
        "att_base": att_base, "dynamic": True, "slope": _ATT_SLOPE,
        "formula": "ATT(g, t) = att_base * (1 + 0.1 * (t - g)) for t >= g, else 0",
        "true_att": {(int(g), t): float(att[c + 1, t - 1])
                     for c, g in enumerate(cohorts) for t in periods},
        "true_att_event": {e: (att_base * (1.0 + _ATT_SLOPE * e) if e >= 0 else 0.0)
                           for e in event_times},
        "true_att_group": {int(g): float(np.mean(att[c + 1, int(g) - 1 :]))
                           for c, g in enumerate(cohorts)},
    }
