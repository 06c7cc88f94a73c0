"""Influence functions against numerical derivatives.

For an estimator defined by weighted sums, the influence function on the "sum" scale is the
derivative of the estimate with respect to one observation's sampling weight:
``phi_i = d att / d w_i`` at ``w = 1`` (see the docstring of moderndid.did.estimators).
`MPResult.influence_func` is R `did`'s scale ``n * phi``. So reweighting unit i (panel: all of
its rows; repeated cross sections: its row) by ``1 +/- h``, re-estimating everything
(propensity-score logit, outcome regressions, cohort shares) and taking the central
difference must reproduce ``influence_func[i, :] / n``.

Rows of `influence_func` are units in ascending order of their (integer) id for panels, and
observations in row order of the input for repeated cross sections without an id column.
The data sets below are shuffled so those orders differ from the input order.

For `aggte`, whose result exposes no influence function, the check is on the analytic SEs:
``sum_i (d overall_att / d w_i)^2`` must equal ``overall_se^2`` (and likewise for every
event-time / group / period effect and every ATT(g,t)). This also checks the correction for
the estimated cohort shares, since those shares move with the weights.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

import moderndid
from moderndid import aggte, att_gt

H = 1e-5
METHODS = ("dr", "ipw", "reg")
AGG_TYPES = ("simple", "dynamic", "group", "calendar")


def _generated(n: int, panel: bool, seed: int) -> pd.DataFrame:
    df = moderndid.gen_did_scalable(n=n, n_periods=4, n_cohorts=2, n_covariates=4,
                                    random_state=seed, panel=panel)["data"]
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # shuffle rows
    df["w"] = 1.0
    return df[["id", "group", "time", "y", "cov1", "cov2", "w"]]


@functools.cache
def panel_data() -> pd.DataFrame:
    return _generated(300, True, 3)


@functools.cache
def rc_data() -> pd.DataFrame:
    return _generated(80, False, 3)  # 80 observations per period, 320 in all


def _fit(df: pd.DataFrame, panel: bool, est_method: str, control_group: str,
         xformla: str = "~ cov1 + cov2"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return att_gt(df, "y", "time", idname="id" if panel else None, gname="group",
                      xformla=xformla, weightsname="w", est_method=est_method,
                      control_group=control_group, panel=panel)


class Reweighter:
    """Refit with one unit's weight set to 1 + delta."""

    def __init__(self, df: pd.DataFrame, panel: bool):
        self.df = df
        self.panel = panel
        # influence-function order: ascending id (panel), row order (RC without id)
        self.units = np.sort(df["id"].unique()) if panel else np.arange(len(df))
        self.rows = df.groupby("id").indices if panel else None

    def data(self, unit_pos: int, delta: float) -> pd.DataFrame:
        w = np.ones(len(self.df))
        if self.panel:
            assert self.rows is not None
            w[self.rows[self.units[unit_pos]]] = 1.0 + delta
        else:
            w[unit_pos] = 1.0 + delta
        out = self.df.copy()
        out["w"] = w
        return out


def _probe_units(df: pd.DataFrame, panel: bool) -> list[int]:
    """Positions (in influence-function order) of a unit of each cohort and the last unit."""
    if panel:
        groups = df.groupby("id")["group"].first().sort_index().to_numpy()
    else:
        groups = df["group"].to_numpy()
    picks = [int(np.flatnonzero(groups == g)[k]) for g in np.unique(groups) for k in (0, 3)]
    return sorted({*picks, len(groups) - 1})


@pytest.mark.parametrize("control_group", ["nevertreated", "notyettreated"])
@pytest.mark.parametrize("est_method", METHODS)
@pytest.mark.parametrize("panel", [True, False], ids=["panel", "rc"])
def test_att_gt_influence_function_is_the_weight_derivative(panel, est_method, control_group):
    df = panel_data() if panel else rc_data()
    res = _fit(df, panel, est_method, control_group)
    n = res.n_units
    assert n == (300 if panel else 320)
    assert res.influence_func is not None and res.influence_func.shape == (n, res.att_gt.size)
    assert np.isfinite(res.att_gt).all()
    rw = Reweighter(df, panel)
    for i in _probe_units(df, panel):
        up = _fit(rw.data(i, H), panel, est_method, control_group).att_gt
        down = _fit(rw.data(i, -H), panel, est_method, control_group).att_gt
        numeric = (up - down) / (2 * H)
        np.testing.assert_allclose(res.influence_func[i] / n, numeric, rtol=1e-5, atol=1e-9,
                                   err_msg=f"unit at position {i}")


@pytest.mark.parametrize("panel", [True, False], ids=["panel", "rc"])
def test_influence_function_rows_follow_unit_order(panel):
    """Panel rows are ascending ids whatever the row order; RC rows follow the input rows."""
    df = panel_data() if panel else rc_data()
    res = _fit(df, panel, "dr", "nevertreated")
    ordered = df.sort_values(["id", "time"]).reset_index(drop=True)
    res_sorted = _fit(ordered, panel, "dr", "nevertreated")
    assert res_sorted.influence_func is not None and res.influence_func is not None
    if panel:
        np.testing.assert_allclose(res.influence_func, res_sorted.influence_func,
                                   rtol=1e-9, atol=1e-12)
    else:
        # row r of the shuffled data is row position_in_sorted[r] of the sorted data
        position_in_sorted = np.argsort(np.argsort(df["id"].to_numpy(), kind="stable"))
        np.testing.assert_allclose(res.influence_func,
                                   res_sorted.influence_func[position_in_sorted],
                                   rtol=1e-9, atol=1e-12)
        # with an idname the rows still follow the input rows (ids only key the multipliers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            res_id = att_gt(df, "y", "time", idname="id", gname="group", xformla="~ cov1 + cov2",
                            weightsname="w", panel=False)
        assert res_id.influence_func is not None
        np.testing.assert_allclose(res_id.influence_func, res.influence_func,
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("relabel", ["negative", "string"])
def test_influence_function_rows_are_in_ascending_id_order_for_any_id_type(relabel):
    df = moderndid.gen_did_scalable(n=50, n_periods=3, n_cohorts=1, n_covariates=4,
                                    random_state=1)["data"]
    base = att_gt(df, "y", "time", "id", "group").influence_func
    other = df.copy()
    if relabel == "negative":
        other["id"] = other["id"] - 25  # -24..25: ascending order is unchanged
    else:
        other["id"] = other["id"].map(lambda i: f"u{i:03d}")  # sorts like the integers
    np.testing.assert_allclose(att_gt(other, "y", "time", "id", "group").influence_func, base,
                               rtol=1e-12, atol=1e-14)


def _all_estimates(res) -> tuple[np.ndarray, np.ndarray]:
    """ATT(g,t), then each aggregation's overall and per-label effects, with their SEs."""
    est, se = [res.att_gt], [res.se_gt]
    for agg_type in AGG_TYPES:
        agg = aggte(res, type=agg_type)
        est.append(np.array([agg.overall_att]))
        se.append(np.array([agg.overall_se]))
        if agg.att_by_event is not None:
            est.append(agg.att_by_event)
            se.append(agg.se_by_event)
    return np.concatenate(est), np.concatenate(se)


@pytest.mark.slow
@pytest.mark.parametrize(("panel", "n", "est_method", "control_group"),
                         [(True, 60, "dr", "notyettreated"), (False, 25, "reg", "nevertreated")],
                         ids=["panel", "rc"])
def test_aggte_analytic_se_is_norm_of_weight_derivatives(panel, n, est_method, control_group):
    """Every unit is reweighted (2n refits), so the data sets are small; the RC case uses the
    cheapest estimator (the cells' influence functions of all estimators are checked above,
    what is checked here is the aggregation, including the estimated cohort shares)."""
    df = _generated(n, panel, 5)
    res = _fit(df, panel, est_method, control_group)
    estimates, ses = _all_estimates(res)
    assert np.isfinite(estimates).all() and np.isfinite(ses).all()
    rw = Reweighter(df, panel)
    derivs = np.empty((res.n_units, estimates.size))
    for i in range(res.n_units):
        up = _all_estimates(_fit(rw.data(i, H), panel, est_method, control_group))[0]
        down = _all_estimates(_fit(rw.data(i, -H), panel, est_method, control_group))[0]
        derivs[i] = (up - down) / (2 * H)
    n_cells = res.att_gt.size
    np.testing.assert_allclose(derivs[:, :n_cells], res.influence_func / res.n_units,
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(np.sqrt((derivs**2).sum(axis=0)), ses, rtol=1e-6)
