"""The two-period DR, IPW and outcome-regression DiD estimators as sums of ratio terms.

Every estimator of Sant'Anna & Zhao (2020, J. Econometrics 219(1)) that R `did` builds on
(DRDID's ``drdid_panel``, ``std_ipw_did_panel``, ``reg_did_panel``, ``drdid_rc``,
``std_ipw_did_rc``, ``reg_did_rc``) has the form

    ATT = sum_k s_k * (sum_i a_ki) / (sum_i b_ki),

where ``a_k`` and ``b_k`` depend on nuisance parameters: a weighted logit propensity score
``ps`` and weighted least-squares outcome regressions on sub-samples. Writing the
estimators this way lets a partitioned engine compute them from sums, and gives their
influence function in one generic formula (delta method plus the nuisance parameters'
own influence functions):

    phi_i = sum_k s_k (a_ki - R_k b_ki) / B_k
            + sum_theta (H_theta^{-1} g_theta)' score_theta_i,
    g_theta = sum_k s_k (sum_i da_ki/dtheta - R_k sum_i db_ki/dtheta) / B_k,

with ``R_k = A_k / B_k``, ``A_k, B_k`` the sums, ``H_theta`` the summed Hessian (logit) or
weighted cross-product (OLS) and ``score_theta_i`` the unit's estimating-equation term.
``phi`` is on the "sum" scale: ``ATT - ATT_0 ~ sum_i phi_i``, so ``Var = sum_i phi_i^2``;
R `did`'s influence-function matrix is ``n * phi``.

Every derivative here is a scalar times the unit's covariate row, so terms carry only those
scalars. Propensity-score weights and trimming follow DRDID 1.3 (``pmin(ps, 1 - 1e-6)``,
controls with ``ps >= trim_level`` get weight 0, treated units are never trimmed).

The repeated cross-section DR estimator's influence function here is the correct one (it
agrees with a numerical derivative, see the tests); R DRDID up to 1.3 adds the pre-period
outcome-regression terms where they should be subtracted, which moves its SEs slightly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

PS_CLIP = 1.0 - 1e-6
TRIM_LEVEL = 0.995


@dataclass
class Term:
    """One ratio term ``sign * sum(a) / sum(b)`` and its derivative coefficients."""

    sign: float
    a: np.ndarray
    b: np.ndarray
    da: dict[str, np.ndarray] = field(default_factory=dict)
    db: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class OLSModel:
    """A weighted least-squares outcome regression on a sub-sample of the cell."""

    name: str
    treated: int  # 1: treated units, 0: comparison units
    post: int | None  # None (panel, on the outcome change), 1 or 0 (period of the cross section)


def ols_models(est_method: str, panel: bool) -> list[OLSModel]:
    """Outcome regressions an estimator needs."""
    if est_method == "ipw":
        return []
    if panel:
        return [OLSModel("c", 0, None)]
    models = [OLSModel("c0", 0, 0), OLSModel("c1", 0, 1)]
    if est_method == "dr":
        models += [OLSModel("t0", 1, 0), OLSModel("t1", 1, 1)]
    return models


def uses_pscore(est_method: str) -> bool:
    """Whether the estimator fits a propensity score."""
    return est_method in ("dr", "ipw")


@dataclass
class CellData:
    """The arrays of one cell on one partition.

    ``y`` is the outcome change ``Y_t - Y_base`` for panels and the outcome for cross
    sections (``post`` = 1 in period t, 0 in the base period).
    """

    y: np.ndarray
    D: np.ndarray
    w: np.ndarray
    x: np.ndarray
    post: np.ndarray | None = None

    def ols_mask(self, model: OLSModel) -> np.ndarray:
        """Rows of the sub-sample an outcome regression is fitted on."""
        mask = self.D == model.treated
        if model.post is not None:
            assert self.post is not None
            mask &= self.post == model.post
        return mask


def pscore(x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Logistic propensity score ``1 / (1 + exp(-x'gamma))``, unclipped."""
    return expit(x @ gamma)


def logit_loglik(x: np.ndarray, D: np.ndarray, w: np.ndarray, gamma: np.ndarray) -> float:
    """Weighted Bernoulli log-likelihood of a logit, computed without overflow."""
    index = x @ gamma
    return float(-(w * (D * np.logaddexp(0.0, -index) + (1 - D) * np.logaddexp(0.0, index))).sum())


def local_logit(x: np.ndarray, D: np.ndarray, w: np.ndarray, max_iter: int = 30,
                tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray] | None:
    """Weighted logit fitted by Newton's method on one partition's rows (a starting value
    for the global fit): the coefficients and the information matrix at them, or ``None``
    when the rows cannot identify the fit (one class only, singular, no convergence)."""
    wd, wsum = float(w @ D), float(w.sum())
    if not 0.0 < wd < wsum:
        return None
    gamma = np.zeros(x.shape[1])
    gamma[0] = np.log(wd / (wsum - wd))
    for _ in range(max_iter):
        p = pscore(x, gamma)
        hess = (x * (w * p * (1.0 - p))[:, None]).T @ x
        try:
            delta = np.linalg.solve(hess, x.T @ (w * (D - p)))
        except np.linalg.LinAlgError:
            return None
        if not np.isfinite(delta).all():
            return None
        gamma = gamma + delta
        if np.max(np.abs(delta)) <= tol * (1.0 + np.max(np.abs(gamma))):
            p = pscore(x, gamma)
            return gamma, (x * (w * p * (1.0 - p))[:, None]).T @ x
    return None


def nuisances(est_method: str, cell: CellData, params: dict[str, np.ndarray]
              ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, score scalars ``s_i``, Hessian weights ``h_i``) of each nuisance: row i's
    estimating-equation term is ``s_i * x_i``, the summed Hessian ``sum_i h_i x_i x_i'``."""
    rows = []
    if uses_pscore(est_method):
        p = np.minimum(pscore(cell.x, params["ps"]), PS_CLIP)
        rows.append(("ps", cell.w * (cell.D - p), cell.w * p * (1.0 - p)))
    for model in ols_models(est_method, cell.post is None):
        mask = cell.ols_mask(model)
        score = np.where(mask, cell.w * (cell.y - cell.x @ params[model.name]), 0.0)
        rows.append((model.name, score, np.where(mask, cell.w, 0.0)))
    return rows


def terms(est_method: str, cell: CellData, params: dict[str, np.ndarray],
          trim_level: float = TRIM_LEVEL) -> list[Term]:
    """The ratio terms of an estimator on one cell's rows."""
    if cell.post is None:
        return _panel_terms(est_method, cell, params, trim_level)
    return _rc_terms(est_method, cell, params, trim_level)


def _ps_weights(cell: CellData, params: dict[str, np.ndarray], trim_level: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Trimmed weights of treated rows and odds-reweighted comparison rows."""
    p = np.minimum(pscore(cell.x, params["ps"]), PS_CLIP)
    keep = np.where(cell.D == 1, 1.0, (p < trim_level).astype(np.float64))
    w1 = keep * cell.w * cell.D
    w0 = keep * cell.w * p * (1.0 - cell.D) / (1.0 - p)
    return w1, w0


def _panel_terms(est_method: str, cell: CellData, params: dict[str, Any],
                 trim_level: float) -> list[Term]:
    dy = cell.y
    if est_method == "reg":
        w1 = cell.w * cell.D
        out = cell.x @ params["c"]
        return [Term(1.0, w1 * dy, w1), Term(-1.0, w1 * out, w1, da={"c": w1})]
    w1, w0 = _ps_weights(cell, params, trim_level)
    if est_method == "ipw":
        return [Term(1.0, w1 * dy, w1),
                Term(-1.0, w0 * dy, w0, da={"ps": w0 * dy}, db={"ps": w0})]
    resid = dy - cell.x @ params["c"]
    return [
        Term(1.0, w1 * resid, w1, da={"c": -w1}),
        Term(-1.0, w0 * resid, w0, da={"ps": w0 * resid, "c": -w0}, db={"ps": w0}),
    ]


def _rc_terms(est_method: str, cell: CellData, params: dict[str, Any],
              trim_level: float) -> list[Term]:
    y, post = cell.y, cell.post
    assert post is not None
    pre = 1.0 - post
    if est_method == "reg":
        wt1 = cell.w * cell.D * post
        wt0 = cell.w * cell.D * pre
        wd = cell.w * cell.D
        diff = cell.x @ params["c1"] - cell.x @ params["c0"]
        return [Term(1.0, wt1 * y, wt1), Term(-1.0, wt0 * y, wt0),
                Term(-1.0, wd * diff, wd, da={"c1": wd, "c0": -wd})]
    w1, w0 = _ps_weights(cell, params, trim_level)
    wt1, wt0, wc1, wc0 = w1 * post, w1 * pre, w0 * post, w0 * pre
    if est_method == "ipw":
        return [
            Term(1.0, wt1 * y, wt1),
            Term(-1.0, wt0 * y, wt0),
            Term(-1.0, wc1 * y, wc1, da={"ps": wc1 * y}, db={"ps": wc1}),
            Term(1.0, wc0 * y, wc0, da={"ps": wc0 * y}, db={"ps": wc0}),
        ]
    mu_c1, mu_c0 = cell.x @ params["c1"], cell.x @ params["c0"]
    mu_t1, mu_t0 = cell.x @ params["t1"], cell.x @ params["t0"]
    resid = y - (post * mu_c1 + pre * mu_c0)
    return [
        Term(1.0, wt1 * resid, wt1, da={"c1": -wt1}),
        Term(-1.0, wt0 * resid, wt0, da={"c0": -wt0}),
        Term(-1.0, wc1 * resid, wc1, da={"ps": wc1 * resid, "c1": -wc1}, db={"ps": wc1}),
        Term(1.0, wc0 * resid, wc0, da={"ps": wc0 * resid, "c0": -wc0}, db={"ps": wc0}),
        Term(1.0, w1 * (mu_t1 - mu_c1), w1, da={"t1": w1, "c1": -w1}),
        Term(-1.0, wt1 * (mu_t1 - mu_c1), wt1, da={"t1": wt1, "c1": -wt1}),
        Term(-1.0, w1 * (mu_t0 - mu_c0), w1, da={"t0": w1, "c0": -w1}),
        Term(1.0, wt0 * (mu_t0 - mu_c0), wt0, da={"t0": wt0, "c0": -wt0}),
    ]


def nuisance_names(est_method: str, panel: bool) -> list[str]:
    """Names of all nuisance parameters of an estimator, propensity score first."""
    names = ["ps"] if uses_pscore(est_method) else []
    return names + [m.name for m in ols_models(est_method, panel)]


def term_signs(est_method: str, panel: bool) -> np.ndarray:
    """The signs ``s_k`` of an estimator's ratio terms (read off :func:`terms`)."""
    empty = np.zeros(0)
    cell = CellData(y=empty, D=empty, w=empty, x=np.zeros((0, 1)), post=None if panel else empty)
    params = {name: np.zeros(1) for name in nuisance_names(est_method, panel)}
    return np.array([t.sign for t in terms(est_method, cell, params)])
