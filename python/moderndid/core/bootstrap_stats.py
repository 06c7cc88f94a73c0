"""Statistics of multiplier-bootstrap draws, following R ``did``'s ``mboot`` conventions.

The multiplier bootstrap of Callaway & Sant'Anna (2021) perturbs the (cluster-averaged)
influence functions with i.i.d. mean-zero, unit-variance multipliers; each draw gives one
bootstrap realisation ``sqrt(n) * (theta* - theta)`` of the estimators. From a matrix of such
draws, ``mboot`` computes a robust standard error from the interquartile range and the
critical value of the uniform (sup-t) confidence band. The functions here reproduce those
computations exactly (R's quantile type 1, the same degeneracy threshold, the same constants),
so results agree with R and across engines.

References
----------
Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-Differences with multiple time
periods. *Journal of Econometrics*, 225(2), 200-230.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import NDArray

from moderndid.errors import InvalidOptionError

__all__ = [
    "NORMAL_IQR",
    "SE_DEGENERACY_TOL",
    "bootstrap_se",
    "quantile_type1",
    "uniform_critical_value",
]

#: R's ``qnorm(0.75) - qnorm(0.25)`` = 2 * 0.6744897501960817, as a literal so every engine
#: and language uses the same double.
NORMAL_IQR: float = 1.3489795003921634
#: R's ``sqrt(.Machine$double.eps) * 10``: standard errors at or below it are treated as
#: degenerate (NaN).
SE_DEGENERACY_TOL: float = float(np.sqrt(np.finfo(np.float64).eps) * 10.0)


def quantile_type1(x: Any, q: Any, axis: int = 0) -> Any:
    """R's quantile of type 1 (inverse of the empirical CDF), ignoring NaN.

    For the ``n`` non-NaN values along ``axis``, sorted as ``x_(1) <= ... <= x_(n)``, the
    ``q`` quantile is ``x_(k)`` with ``k = max(ceil(n * q), 1)``, where ``n * q`` is evaluated
    in double precision exactly as R's ``quantile(x, q, type = 1, na.rm = TRUE)`` does. No
    interpolation: the result is always one of the data values. A slice with no non-NaN
    value gives NaN.

    Parameters
    ----------
    x : array_like
        Data, at least one-dimensional.
    q : float or array_like of float
        Probabilities in ``[0, 1]``.
    axis : int, default 0
        Axis along which the quantiles are taken.

    Returns
    -------
    numpy.float64 or numpy.ndarray
        Shape ``np.shape(q) + shape of x without axis`` (like :func:`numpy.quantile`); a
        numpy scalar when both are zero-dimensional.

    Raises
    ------
    InvalidOptionError
        If ``x`` is zero-dimensional, ``axis`` is out of range, or a probability is outside
        ``[0, 1]`` or NaN.

    References
    ----------
    Hyndman, R. J. and Fan, Y. (1996). Sample quantiles in statistical packages. *The
    American Statistician*, 50(4), 361-365.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        raise InvalidOptionError("quantile_type1 needs at least a one-dimensional x.")
    if not -arr.ndim <= axis < arr.ndim:
        raise InvalidOptionError(f"axis {axis} is out of range for an array of {arr.ndim} dims.")
    probs = np.asarray(q, dtype=np.float64)
    if not np.all((probs >= 0.0) & (probs <= 1.0)):  # also rejects NaN
        raise InvalidOptionError(f"quantile probabilities must be in [0, 1], got {q!r}.")

    ordered = np.moveaxis(np.sort(arr, axis=axis), axis, 0)  # NaN sort last
    n_valid = ordered.shape[0] - np.count_nonzero(np.isnan(ordered), axis=0)  # shape rest
    flat_q = probs.reshape(-1)
    # k = ceil(n * q) computed in double precision, as R does; at least 1
    k = np.ceil(np.multiply.outer(flat_q, n_valid.astype(np.float64)))
    idx = np.maximum(k, 1.0).astype(np.int64) - 1
    empty = np.broadcast_to(n_valid == 0, idx.shape)
    if ordered.shape[0] == 0:
        result = np.full(idx.shape, np.nan)
    else:
        result = np.take_along_axis(ordered, idx, axis=0)
        result = np.where(empty, np.nan, result)
    result = result.reshape(probs.shape + ordered.shape[1:])
    return result[()] if result.ndim == 0 else result


def bootstrap_se(draws: Any) -> NDArray[np.float64]:
    """Bootstrap standard errors from the interquartile range of the draws, as in ``mboot``.

    For each column ``j``::

        se[j] = (Q_0.75(draws[:, j]) - Q_0.25(draws[:, j])) / (qnorm(0.75) - qnorm(0.25))

    with type-1 quantiles ignoring NaN (:func:`quantile_type1`); values ``<=
    sqrt(machine eps) * 10`` (:data:`SE_DEGENERACY_TOL`), and columns without any non-NaN
    draw, become NaN. This is the IQR-based standard error of the multiplier bootstrap of
    Callaway & Sant'Anna (2021). The draws are used as given: pass ``sqrt(n) * (theta* -
    theta)`` and divide the result by ``sqrt(n)`` to get R's ``se``.

    Parameters
    ----------
    draws : array_like, shape (B, m)
        ``B`` bootstrap draws of ``m`` statistics (a one-dimensional array is a single
        statistic).

    Returns
    -------
    numpy.ndarray of float64, shape (m,)
        (zero-dimensional for one-dimensional ``draws``)
    """
    arr = np.asarray(draws, dtype=np.float64)
    if arr.ndim == 0:
        raise InvalidOptionError("bootstrap draws must be an array of shape (B, m).")
    q25, q75 = quantile_type1(arr, [0.25, 0.75], axis=0)
    with np.errstate(invalid="ignore"):  # inf - inf -> NaN
        se = np.asarray((q75 - q25) / NORMAL_IQR, dtype=np.float64)
    se[~(se > SE_DEGENERACY_TOL)] = np.nan  # also keeps NaN as NaN
    return se


def uniform_critical_value(draws: Any, se: Any, alpha: float) -> float:
    """Critical value of the uniform (sup-t) confidence band, as in ``mboot``.

    For every draw ``b`` the statistic is ``T_b = max_j |draws[b, j] / se[j]|`` over the
    columns with a finite ``se`` (NaN draws are skipped, as R's ``max(..., na.rm = TRUE)``);
    draws whose ``T_b`` is not finite (e.g. all entries NaN) are dropped, as recent versions
    of ``did`` do (``bT <- bT[is.finite(bT)]``). The critical value is the type-1 ``1 - alpha`` quantile of the ``T_b``
    (:func:`quantile_type1`). The band is then ``theta_j +/- c * se_j / sqrt(n)``;
    Callaway & Sant'Anna (2021) describe the construction.

    Parameters
    ----------
    draws : array_like, shape (B, m)
        Bootstrap draws, on the same scale as ``se``.
    se : array_like, shape (m,)
        Standard errors, typically from :func:`bootstrap_se`; NaN marks a degenerate column
        that is left out.
    alpha : float
        Significance level in ``(0, 1)``; ``1 - alpha`` is computed in double precision as
        in R.

    Returns
    -------
    float
        The critical value; NaN when no column has a finite standard error or no draw has a
        finite statistic.
    """
    arr = np.asarray(draws, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InvalidOptionError(
            f"bootstrap draws must have shape (B, m), got an array of shape {arr.shape}."
        )
    scale = np.asarray(se, dtype=np.float64).reshape(-1)
    if scale.shape[0] != arr.shape[1]:
        raise InvalidOptionError(
            f"se has {scale.shape[0]} entries but draws have {arr.shape[1]} columns."
        )
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
        raise InvalidOptionError(f"alpha must be a number in (0, 1), got {alpha!r}.")
    if not 0.0 < float(alpha) < 1.0:
        raise InvalidOptionError(f"alpha must be in (0, 1), got {alpha!r}.")
    keep = np.isfinite(scale)
    if not keep.any():
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(arr[:, keep] / scale[keep])
    t = np.where(np.isnan(t), -np.inf, t)  # max(..., na.rm = TRUE)
    t_max = t.max(axis=1)
    return float(quantile_type1(t_max[np.isfinite(t_max)], 1.0 - float(alpha)))  # NaN if empty
