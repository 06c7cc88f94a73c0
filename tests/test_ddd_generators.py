"""Tests of the triple-differences data generators (moderndid.data.ddd_generators).

Besides shapes, determinism and the within-unit structure, the designs are checked against
their truth on large samples with fixed seeds: the DDD of subgroup means recovers the ATT
when membership does not depend on the covariates, while a DiD among eligible units only is
biased by the designed state/cohort trend; with covariate confounding the unconditional DDD
is biased and a covariate-adjusted DDD recovers the ATT. Tolerances are several standard
errors wide (and the seeds are fixed), so the tests cannot flake.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from moderndid.data import ddd_generators as G
from moderndid.data import gen_ddd_2periods, gen_ddd_mult_periods, gen_ddd_scalable
from moderndid.errors import InvalidOptionError

COVS4 = ["cov1", "cov2", "cov3", "cov4"]


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _panel_arrays(data: pd.DataFrame, n_periods: int, gcol: str = "group"):
    """Unit-level group/partition and an (n, T) outcome matrix of a sorted panel."""
    y = data["y"].to_numpy().reshape(-1, n_periods)
    first = data.iloc[::n_periods]
    return first[gcol].to_numpy(), first["partition"].to_numpy(), y, first


def _ddd_means(dy: np.ndarray, g: np.ndarray, q: np.ndarray, g_treat, g_ctrl) -> tuple:
    """(DDD, DiD among eligible, DiD within the treated cohort) of mean changes."""

    def mean(gv, qv):
        sel = (g == gv) & (q == qv)
        assert sel.sum() > 1000
        return dy[sel].mean()

    ddd = mean(g_treat, 1) - mean(g_treat, 0) - mean(g_ctrl, 1) + mean(g_ctrl, 0)
    did_eligible = mean(g_treat, 1) - mean(g_ctrl, 1)
    did_treated = mean(g_treat, 1) - mean(g_treat, 0)
    return ddd, did_eligible, did_treated


def _ols_fit_predict(x_fit: np.ndarray, y_fit: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(x_fit)), x_fit])
    beta, *_ = np.linalg.lstsq(design, y_fit, rcond=None)
    return np.column_stack([np.ones(len(x_new)), x_new]) @ beta


# ---------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("panel", [True, False])
def test_2periods_columns_and_dtypes(panel):
    sim = gen_ddd_2periods(500, random_state=1, panel=panel)
    data = sim["data"]
    assert list(data.columns) == [
        "id", "state", "partition", "time", "y", *COVS4, "cluster",
    ]  # fmt: skip
    assert len(data) == 1000
    for col in ("id", "state", "partition", "time", "cluster"):
        assert data[col].dtype == np.int64
    for col in ("y", *COVS4):
        assert data[col].dtype == np.float64
    assert set(data["state"]) == {0, 1}
    assert set(data["partition"]) == {0, 1}
    assert set(data["time"]) == {1, 2}
    assert data["cluster"].between(1, 50).all()
    assert set(sim) == {
        "data", "true_att", "oracle_att", "efficiency_bound", "subgroup_labels",
        "dgp_type", "panel", "confounding",
    }  # fmt: skip
    assert sim["true_att"] == 10.0
    assert sim["panel"] is panel and sim["dgp_type"] == 1 and sim["confounding"] is True
    assert sim["subgroup_labels"][4] == "treated state, eligible"
    if panel:
        assert data["id"].nunique() == 500
    else:
        assert data["id"].tolist() == list(range(1, 1001))
        assert (data["time"].to_numpy() == np.repeat([1, 2], 500)).all()


@pytest.mark.parametrize("panel", [True, False])
def test_mult_periods_columns_and_keys(panel):
    sim = gen_ddd_mult_periods(600, random_state=2, panel=panel)
    data = sim["data"]
    assert list(data.columns) == ["id", "group", "partition", "time", "y", *COVS4, "cluster"]
    assert len(data) == 1800
    assert set(data["group"]) == {0, 2, 3}
    assert set(data["time"]) == {1, 2, 3}
    for key in ("es_0_oracle", "prob_g2_p1", "prob_g3_p1", "att_config", "cohort_values"):
        assert key in sim
    assert list(sim["cohort_values"]) == [2, 3]
    assert sim["prob_g2_p1"] + sim["prob_g3_p1"] == pytest.approx(1.0)
    assert 0.0 < sim["prob_g2_p1"] < 1.0
    assert np.isfinite(sim["es_0_oracle"])
    if panel:
        wide = sim["data_wide"]
        assert list(wide.columns) == [
            "id", "group", "partition", "y_t1", "y_t2", "y_t3", *COVS4, "cluster",
        ]  # fmt: skip
        assert len(wide) == 600
    else:
        assert sim["data_wide"] is None
        assert data["id"].is_unique


def test_scalable_columns_shapes_and_truth():
    sim = gen_ddd_scalable(300, n_periods=5, n_cohorts=3, n_covariates=6, random_state=3)
    data, wide = sim["data"], sim["data_wide"]
    covs = [f"cov{k}" for k in range(1, 7)]
    assert list(data.columns) == ["id", "group", "partition", "time", "y", *covs, "cluster"]
    assert data.shape == (1500, 12)
    assert list(wide.columns) == [
        "id", "group", "partition", *[f"y_t{t}" for t in range(1, 6)], *covs, "cluster",
    ]  # fmt: skip
    assert list(sim["cohort_values"]) == [2, 4, 5]
    assert set(data["group"]) <= {0, 2, 4, 5}
    assert sim["n_periods"] == 5 and sim["n_covariates"] == 6 and sim["panel"] is True
    cfg = sim["att_config"]
    assert set(cfg["true_att"]) == {(g, t) for g in (2, 4, 5) for t in range(1, 6)}
    assert cfg["true_att"][(4, 3)] == 0.0
    assert cfg["true_att"][(2, 4)] == pytest.approx(12.0)
    assert cfg["true_att_event"][0] == 10.0 and cfg["true_att_event"][-2] == 0.0
    assert cfg["true_att_group"][4] == pytest.approx(10.5)
    assert cfg["cohort_trends"] == {2: 1.0, 4: 1.25, 5: 1.5}
    assert cfg["partition_trend"] == G.PARTITION_TREND
    # the wide outcome columns are the long outcome, unit by unit
    y = data["y"].to_numpy().reshape(300, 5)
    for t in range(5):
        np.testing.assert_array_equal(wide[f"y_t{t + 1}"].to_numpy(), y[:, t])
    assert not np.shares_memory(wide["y_t1"].to_numpy(), data["y"].to_numpy())


def test_scalable_repeated_cross_sections():
    sim = gen_ddd_scalable(200, n_periods=4, n_cohorts=2, n_covariates=4, panel=False,
                           random_state=4)  # fmt: skip
    data = sim["data"]
    assert sim["data_wide"] is None and sim["panel"] is False
    assert data.shape == (800, 10)
    assert data["id"].tolist() == list(range(1, 801))
    assert (data["time"].to_numpy() == np.repeat(np.arange(1, 5), 200)).all()


@pytest.mark.parametrize(
    ("gen", "kwargs", "gcol", "n_periods"),
    [
        (gen_ddd_2periods, {}, "state", 2),
        (gen_ddd_mult_periods, {}, "group", 3),
        (gen_ddd_scalable, {"n_periods": 6, "n_cohorts": 4, "n_covariates": 5}, "group", 6),
    ],
)
def test_balanced_panel_and_time_invariant_unit_columns(gen, kwargs, gcol, n_periods):
    data = gen(400, random_state=5, **kwargs)["data"]
    n = 400
    assert len(data) == n * n_periods
    ids = data["id"].to_numpy().reshape(n, n_periods)
    times = data["time"].to_numpy().reshape(n, n_periods)
    assert (ids == np.arange(1, n + 1)[:, None]).all()  # sorted by id, then time
    assert (times == np.arange(1, n_periods + 1)[None, :]).all()  # every period once
    for col in (gcol, "partition", "cluster", *[c for c in data.columns if c.startswith("cov")]):
        block = data[col].to_numpy().reshape(n, n_periods)
        assert (block == block[:, :1]).all(), col
    assert set(np.unique(data["partition"])) == {0, 1}


@pytest.mark.parametrize(
    ("gen", "kwargs"),
    [
        (gen_ddd_2periods, {}),
        (gen_ddd_2periods, {"panel": False}),
        (gen_ddd_mult_periods, {"dgp_type": 4}),
        (gen_ddd_scalable, {"n_periods": 4, "n_cohorts": 2, "n_covariates": 6}),
        (gen_ddd_scalable, {"n_periods": 4, "n_cohorts": 2, "n_covariates": 6, "panel": False}),
    ],
)
def test_determinism(gen, kwargs):
    a = gen(300, random_state=11, **kwargs)
    b = gen(300, random_state=11, **kwargs)
    c = gen(300, random_state=12, **kwargs)
    pd.testing.assert_frame_equal(a["data"], b["data"])
    assert not a["data"]["y"].equals(c["data"]["y"])
    g1 = gen(300, random_state=np.random.default_rng(11), **kwargs)
    pd.testing.assert_frame_equal(a["data"], g1["data"])


def test_dgp_type_and_confounding_change_the_data():
    base = gen_ddd_2periods(300, 1, random_state=0)["data"]
    for dgp in (2, 3, 4):
        other = gen_ddd_2periods(300, dgp, random_state=0)["data"]
        pd.testing.assert_frame_equal(base[COVS4], other[COVS4])  # same covariate draws
        assert not base["y"].equals(other["y"])
    flat = gen_ddd_2periods(300, 1, random_state=0, confounding=False)
    assert flat["confounding"] is False
    assert not base["state"].equals(flat["data"]["state"])


def test_validation():
    with pytest.raises(InvalidOptionError, match="dgp_type"):
        gen_ddd_2periods(10, dgp_type=5)
    with pytest.raises(InvalidOptionError, match="dgp_type"):
        gen_ddd_mult_periods(10, dgp_type=True)
    with pytest.raises(InvalidOptionError, match="n must be"):
        gen_ddd_scalable(0)
    with pytest.raises(InvalidOptionError, match="integer"):
        gen_ddd_2periods(10.5)
    with pytest.raises(InvalidOptionError, match="too many"):
        gen_ddd_scalable(10, n_periods=4, n_cohorts=4)
    with pytest.raises(InvalidOptionError, match="n_covariates"):
        gen_ddd_scalable(10, n_covariates=3)
    with pytest.raises(InvalidOptionError, match="att"):
        gen_ddd_2periods(10, att=float("inf"))
    with pytest.raises(InvalidOptionError, match="att_base"):
        gen_ddd_mult_periods(10, att_base="x")


# ---------------------------------------------------------------------------------------
# the truth
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flat_2p():
    """Large two-period panel without covariate confounding."""
    return gen_ddd_2periods(400_000, random_state=20250101, att=3.0, confounding=False)


def test_2periods_unconditional_ddd_recovers_att_and_did_is_biased(flat_2p):
    s, q, y, _ = _panel_arrays(flat_2p["data"], 2, "state")
    ddd, did_elig, did_treated = _ddd_means(y[:, 1] - y[:, 0], s, q, 1, 0)
    # standard error of each contrast is about 0.035
    assert ddd == pytest.approx(3.0, abs=0.2)
    assert did_elig == pytest.approx(3.0 + G.STATE_TREND, abs=0.2)  # state-specific trend
    assert did_treated == pytest.approx(3.0 + G.PARTITION_TREND, abs=0.2)  # partition trend
    assert did_elig - 3.0 > 0.7
    assert flat_2p["oracle_att"] == pytest.approx(3.0, abs=0.02)


def test_2periods_repeated_cross_sections_recover_att():
    sim = gen_ddd_2periods(400_000, panel=False, random_state=7, att=3.0, confounding=False)
    d = sim["data"]
    s, q, t, y = (d[c].to_numpy() for c in ("state", "partition", "time", "y"))

    def change(sv, qv):
        sel = (s == sv) & (q == qv)
        return y[sel & (t == 2)].mean() - y[sel & (t == 1)].mean()

    ddd = change(1, 1) - change(1, 0) - change(0, 1) + change(0, 0)
    assert ddd == pytest.approx(3.0, abs=0.5)  # standard error about 0.09
    assert change(1, 1) - change(0, 1) == pytest.approx(3.0 + G.STATE_TREND, abs=0.5)
    assert sim["oracle_att"] == pytest.approx(3.0, abs=0.03)


def test_2periods_covariate_confounding():
    """Unconditional DDD is biased; DDD with covariate-adjusted comparisons is not."""
    sim = gen_ddd_2periods(400_000, dgp_type=1, random_state=8)
    s, q, y, first = _panel_arrays(sim["data"], 2, "state")
    dy = y[:, 1] - y[:, 0]
    ddd, _, _ = _ddd_means(dy, s, q, 1, 0)
    assert abs(ddd - 10.0) > 0.8  # designed bias, about -1.3
    x = first[COVS4].to_numpy()
    treated = (s == 1) & (q == 1)
    # outcome-regression DDD: impute each comparison subgroup's change for the treated
    imputed = np.zeros(int(treated.sum()))
    for sv, qv, sign in ((1, 0, 1.0), (0, 1, 1.0), (0, 0, -1.0)):
        sel = (s == sv) & (q == qv)
        imputed += sign * _ols_fit_predict(x[sel], dy[sel], x[treated])
    att_or = float(np.mean(dy[treated] - imputed))
    assert att_or == pytest.approx(10.0, abs=0.15)  # standard error about 0.03


@pytest.mark.parametrize("panel", [True, False])
def test_efficiency_bound_without_confounding_is_exact(panel):
    # all four subgroups have probability 1/4 whatever X: closed form
    sim = gen_ddd_2periods(10, panel=panel, random_state=0, confounding=False)
    assert sim["efficiency_bound"] == pytest.approx(36.0 if panel else 136.0, rel=1e-12)


def test_efficiency_bound_matches_efficient_influence_function():
    """E[psi^2] of the efficient influence function (true nuisances) on a large sample."""
    n = 400_000
    sim = gen_ddd_2periods(n, dgp_type=1, random_state=9)
    s, q, y, first = _panel_arrays(sim["data"], 2, "state")
    dy = y[:, 1] - y[:, 0]
    x = first[COVS4].to_numpy().T
    p = G._cell_probabilities(x, 1, True)
    m = G._OR_COEF @ x
    lam = G._cohort_trends(1)
    cond_mean = 1.0 + m + lam[s] + G.PARTITION_TREND * q  # E[dY(0) | X, subgroup]
    k = 1 + q + 2 * s  # R triplediff subgroup numbering
    p4 = float(np.mean(k == 4))
    resid = dy - cond_mean
    psi = np.where(k == 4, (resid - sim["true_att"]) / p4, 0.0)
    for sub, sign in ((3, -1.0), (2, -1.0), (1, 1.0)):
        w = p[4] / (p[sub] * p4)
        psi += np.where(k == sub, sign * w * resid, 0.0)
    assert np.mean(psi) == pytest.approx(0.0, abs=0.05)
    assert np.mean(psi**2) == pytest.approx(sim["efficiency_bound"], rel=0.05)


def test_efficiency_bound_by_design():
    bounds = {d: gen_ddd_2periods(10, d, random_state=0)["efficiency_bound"] for d in (1, 2)}
    assert all(np.isfinite(b) and b > 36.0 for b in bounds.values())  # confounding costs
    assert bounds[1] == gen_ddd_2periods(10, 3, random_state=1)["efficiency_bound"]
    rc = gen_ddd_2periods(10, 1, panel=False, random_state=0)["efficiency_bound"]
    assert rc > bounds[1]


@pytest.fixture(scope="module")
def flat_staggered():
    return gen_ddd_scalable(300_000, n_periods=4, n_cohorts=2, n_covariates=4,
                            random_state=31, confounding=False)  # fmt: skip


def test_staggered_unconditional_ddd_recovers_att_gt(flat_staggered):
    sim = flat_staggered
    g, q, y, _ = _panel_arrays(sim["data"], 4)
    cfg = sim["att_config"]
    assert list(sim["cohort_values"]) == [2, 4]
    for gv in (2, 4):
        base = gv - 1  # the period before treatment
        for t in range(1, 5):
            if t == base:
                continue
            dy = y[:, t - 1] - y[:, base - 1]
            ddd, did_elig, _ = _ddd_means(dy, g, q, gv, 0)
            assert ddd == pytest.approx(cfg["true_att"][(gv, t)], abs=0.25), (gv, t)
            # DiD among eligible units carries the cohort trend over t - base periods
            bias = cfg["cohort_trends"][gv] * (t - base)
            assert did_elig == pytest.approx(cfg["true_att"][(gv, t)] + bias, abs=0.25)


def test_staggered_not_yet_treated_comparison_is_also_valid_for_ddd(flat_staggered):
    """Cohort 4 (not yet treated at t = 2, 3) as comparison for cohort 2."""
    g, q, y, _ = _panel_arrays(flat_staggered["data"], 4)
    cfg = flat_staggered["att_config"]
    for t in (2, 3):
        dy = y[:, t - 1] - y[:, 0]
        ddd, did_elig, _ = _ddd_means(dy, g, q, 2, 4)
        assert ddd == pytest.approx(cfg["true_att"][(2, t)], abs=0.25)
        trend_gap = (cfg["cohort_trends"][2] - cfg["cohort_trends"][4]) * (t - 1)
        assert did_elig == pytest.approx(cfg["true_att"][(2, t)] + trend_gap, abs=0.25)


def test_mult_periods_oracle_and_shares():
    sim = gen_ddd_mult_periods(50_000, random_state=13, att_base=4.0)
    d = sim["data"].iloc[::3]
    elig_treated = (d["group"] > 0) & (d["partition"] == 1)
    share2 = ((d["group"] == 2) & (d["partition"] == 1)).sum() / elig_treated.sum()
    assert sim["prob_g2_p1"] == pytest.approx(share2)
    assert sim["es_0_oracle"] == pytest.approx(4.0, abs=0.1)
    assert sim["att_config"]["true_att"][(3, 3)] == 4.0


@pytest.mark.parametrize("dgp_type", [1, 2, 3, 4])
def test_membership_probabilities_keep_overlap(dgp_type):
    x = np.random.default_rng(0).standard_normal((4, 200_000))
    p = G._cell_probabilities(x, dgp_type, True)
    total = sum(p.values())
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)
    assert min(float(v.min()) for v in p.values()) > 1e-5
