"""Tests for moderndid.data: the packaged mpdta panel and the scalable DiD simulator."""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np
import pyarrow as pa
import pytest

pd = pytest.importorskip("pandas")

from moderndid.data import gen_did_scalable, load_mpdta, load_mpdta_arrow  # noqa: E402

MPDTA_COLUMNS = ["year", "countyreal", "lpop", "lemp", "first.treat", "treat"]


# --------------------------------------------------------------------------------------------
# mpdta
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mpdta():
    return load_mpdta()


def test_mpdta_shape_columns_dtypes(mpdta):
    assert mpdta.shape == (2500, 6)
    assert list(mpdta.columns) == MPDTA_COLUMNS
    for col in ("year", "countyreal", "first.treat", "treat"):
        assert mpdta[col].dtype == np.int64, col
    for col in ("lpop", "lemp"):
        assert mpdta[col].dtype == np.float64, col
    assert not mpdta.isna().any().any()


def test_mpdta_exact_values(mpdta):
    first = mpdta.iloc[0]
    assert first["year"] == 2003
    assert first["countyreal"] == 8001
    assert mpdta["lemp"].iloc[0] == 8.461469042643875  # bit-exact, round-trip parsing
    assert mpdta["lpop"].iloc[0] == 5.896760933305299


def test_mpdta_floats_bit_exact(mpdta):
    """Every float equals Python's correctly rounded parse of the packaged CSV text."""
    text = resources.files("moderndid.data").joinpath("files", "mpdta.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    for col in ("lpop", "lemp"):
        expected = np.array([float(r[col]) for r in rows])
        np.testing.assert_array_equal(mpdta[col].to_numpy(), expected)
        np.testing.assert_array_equal(load_mpdta_arrow()[col].to_numpy(), expected)


def test_mpdta_cohorts(mpdta):
    units = mpdta.groupby("countyreal")["first.treat"].agg(["nunique", "first"])
    assert (units["nunique"] == 1).all()  # cohort is time-invariant
    counts = units["first"].value_counts().to_dict()
    assert counts == {0: 309, 2004: 20, 2006: 40, 2007: 131}
    assert ((mpdta["first.treat"] > 0).astype(np.int64) == mpdta["treat"]).all()


def test_mpdta_balanced_panel(mpdta):
    assert mpdta["countyreal"].nunique() == 500
    assert not mpdta.duplicated(["countyreal", "year"]).any()
    years = mpdta.groupby("countyreal")["year"].agg(["min", "max", "size"])
    assert (years["min"] == 2003).all() and (years["max"] == 2007).all()
    assert (years["size"] == 5).all()
    # lpop is time-invariant within a county
    assert (mpdta.groupby("countyreal")["lpop"].nunique() == 1).all()


def test_mpdta_arrow_matches_pandas(mpdta):
    tbl = load_mpdta_arrow()
    assert isinstance(tbl, pa.Table)
    assert tbl.column_names == MPDTA_COLUMNS
    assert tbl.schema.field("year").type == pa.int64()
    assert tbl.schema.field("first.treat").type == pa.int64()
    assert tbl.schema.field("lemp").type == pa.float64()
    pd.testing.assert_frame_equal(tbl.to_pandas(), mpdta, check_exact=True)


# --------------------------------------------------------------------------------------------
# gen_did_scalable: structure
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_panel():
    return gen_did_scalable(2_000, n_periods=6, n_cohorts=3, n_covariates=5, random_state=7)


def test_generator_panel_shapes_and_columns(small_panel):
    sim = small_panel
    data, wide = sim["data"], sim["data_wide"]
    covs = [f"cov{k}" for k in range(1, 6)]
    assert list(data.columns) == ["id", "group", "time", "y", *covs, "cluster"]
    assert data.shape == (2_000 * 6, 10)
    for col in ("id", "group", "time", "cluster"):
        assert data[col].dtype == np.int64, col
    for col in ("y", *covs):
        assert data[col].dtype == np.float64, col
    assert data["id"].min() == 1 and data["id"].max() == 2_000
    assert set(np.unique(data["time"])) == set(range(1, 7))
    assert data["cluster"].between(1, 50).all()
    assert not data.isna().any().any()

    ys = [f"y_{t}" for t in range(1, 7)]
    assert list(wide.columns) == ["id", "group", "cluster", *covs, *ys]
    assert wide.shape == (2_000, 3 + 5 + 6)
    # wide and long agree (long is sorted by id, then time)
    np.testing.assert_array_equal(wide[ys].to_numpy().ravel(), data["y"].to_numpy())
    np.testing.assert_array_equal(np.repeat(wide["group"].to_numpy(), 6), data["group"])
    np.testing.assert_array_equal(np.repeat(wide["cov3"].to_numpy(), 6), data["cov3"])

    assert sim["n_periods"] == 6 and sim["n_covariates"] == 5
    assert sim["panel"] is True and sim["dgp_type"] == 1


def test_generator_wide_does_not_share_memory(small_panel):
    data, wide = small_panel["data"], small_panel["data_wide"]
    for t in range(1, 7):
        assert not np.shares_memory(wide[f"y_{t}"].to_numpy(), data["y"].to_numpy())


def test_generator_balanced_and_time_invariant(small_panel):
    data = small_panel["data"]
    assert not data.duplicated(["id", "time"]).any()
    assert (data.groupby("id")["time"].size() == 6).all()
    per_unit = data.groupby("id")[["group", "cluster", "cov1", "cov5"]].nunique()
    assert (per_unit == 1).all().all()


def test_generator_cohorts(small_panel):
    cohorts = small_panel["cohort_values"]
    assert cohorts.dtype == np.int64
    np.testing.assert_array_equal(cohorts, [2, 4, 6])
    groups = small_panel["data_wide"]["group"]
    assert set(groups.unique()) == {0, 2, 4, 6}
    # never-treated share is about 1/(C+1) or more
    assert (groups == 0).mean() > 0.8 / 4

    default = gen_did_scalable(500, n_covariates=4, random_state=0)
    np.testing.assert_array_equal(default["cohort_values"], [2, 3, 4, 5, 7, 8, 9, 10])
    full = gen_did_scalable(500, n_periods=5, n_cohorts=4, n_covariates=4, random_state=0)
    np.testing.assert_array_equal(full["cohort_values"], [2, 3, 4, 5])
    one = gen_did_scalable(100, n_periods=5, n_cohorts=1, n_covariates=4, random_state=0)
    assert one["cohort_values"].tolist() == [3]


def test_generator_true_att(small_panel):
    cfg = small_panel["att_config"]
    assert cfg["att_base"] == 10.0 and cfg["dynamic"] is True
    true_att = cfg["true_att"]
    assert set(true_att) == {(g, t) for g in (2, 4, 6) for t in range(1, 7)}
    assert true_att[(2, 1)] == 0.0
    assert true_att[(2, 2)] == pytest.approx(10.0)
    assert true_att[(2, 6)] == pytest.approx(14.0)
    assert true_att[(4, 5)] == pytest.approx(11.0)
    assert cfg["true_att_event"][0] == pytest.approx(10.0)
    assert cfg["true_att_event"][-2] == 0.0
    assert cfg["true_att_group"][4] == pytest.approx(11.0)  # mean of 10, 11, 12
    sim = gen_did_scalable(50, n_periods=4, n_cohorts=2, n_covariates=4, att_base=-2.0)
    assert sim["att_config"]["true_att"][(2, 4)] == pytest.approx(-2.4)


def test_generator_determinism():
    kw = {"n_periods": 5, "n_cohorts": 3, "n_covariates": 6, "dgp_type": 4}
    a = gen_did_scalable(1_000, random_state=123, **kw)
    b = gen_did_scalable(1_000, random_state=123, **kw)
    c = gen_did_scalable(1_000, random_state=124, **kw)
    pd.testing.assert_frame_equal(a["data"], b["data"], check_exact=True)
    pd.testing.assert_frame_equal(a["data_wide"], b["data_wide"], check_exact=True)
    assert not np.array_equal(a["data"]["y"], c["data"]["y"])
    assert not np.array_equal(a["data"]["cov1"], c["data"]["cov1"])
    g = np.random.default_rng(123)
    d = gen_did_scalable(1_000, random_state=g, **kw)
    pd.testing.assert_frame_equal(a["data"], d["data"], check_exact=True)


def test_generator_repeated_cross_sections():
    n, T = 1_000, 5
    sim = gen_did_scalable(n, n_periods=T, n_cohorts=2, n_covariates=4, panel=False, random_state=3)
    data = sim["data"]
    assert sim["data_wide"] is None and sim["panel"] is False
    assert list(data.columns) == [
        "id",
        "group",
        "time",
        "y",
        "cov1",
        "cov2",
        "cov3",
        "cov4",
        "cluster",
    ]
    assert len(data) == n * T
    assert data["id"].is_unique
    np.testing.assert_array_equal(np.sort(data["id"]), np.arange(1, n * T + 1))
    assert (data.groupby("time").size() == n).all()
    assert data["id"].dtype == np.int64 and data["y"].dtype == np.float64
    assert set(data["group"].unique()) <= {0, *sim["cohort_values"].tolist()}
    assert data["cluster"].between(1, 50).all()


def test_generator_validation():
    with pytest.raises(ValueError, match="n_cohorts"):
        gen_did_scalable(100, n_periods=5, n_cohorts=5)
    with pytest.raises(ValueError, match="n_cohorts"):
        gen_did_scalable(100, n_cohorts=0)
    with pytest.raises(ValueError, match="dgp_type"):
        gen_did_scalable(100, dgp_type=5)
    with pytest.raises(ValueError, match="n_covariates"):
        gen_did_scalable(100, n_covariates=3)
    with pytest.raises(ValueError, match="n_periods"):
        gen_did_scalable(100, n_periods=1, n_cohorts=1)
    with pytest.raises(ValueError, match="n must"):
        gen_did_scalable(0)
    with pytest.raises(ValueError, match="att_base"):
        gen_did_scalable(10, att_base=float("nan"))


# --------------------------------------------------------------------------------------------
# gen_did_scalable: statistical properties
# --------------------------------------------------------------------------------------------


def _did_2x2(wide, g, t, base, adjust):
    """2x2 DiD of cohort g vs never treated between periods base and t.

    ``adjust=True`` subtracts the never-treated regression of the outcome change on the
    (linear) covariates cov1..cov4 -- the outcome-regression DiD of Sant'Anna & Zhao (2020).
    """
    keep = wide["group"].isin([0, g]).to_numpy()
    treated = wide["group"].to_numpy()[keep] == g
    dy = (wide[f"y_{t}"] - wide[f"y_{base}"]).to_numpy()[keep]
    if not adjust:
        return dy[treated].mean() - dy[~treated].mean()
    x = np.column_stack(
        [np.ones(keep.sum())] + [wide[f"cov{k}"].to_numpy()[keep] for k in range(1, 5)]
    )
    beta = np.linalg.lstsq(x[~treated], dy[~treated], rcond=None)[0]
    return (dy[treated] - x[treated] @ beta).mean()


@pytest.fixture(scope="module")
def big_panels():
    kw = {"n_periods": 6, "n_cohorts": 3, "n_covariates": 4}
    return {d: gen_did_scalable(60_000, dgp_type=d, random_state=11, **kw) for d in (1, 2, 3)}


def test_conditional_parallel_trends_recovers_att(big_panels):
    """dgp 1: regression-adjusted DiD recovers ATT(g, t) (sd ~0.015 over seeds); placebo ~0."""
    wide = big_panels[1]["data_wide"]
    true_att = big_panels[1]["att_config"]["true_att"]
    for g, t in [(4, 4), (4, 6), (6, 6), (2, 5)]:
        assert _did_2x2(wide, g, t, g - 1, adjust=True) == pytest.approx(true_att[(g, t)], abs=0.1)
    assert _did_2x2(wide, 4, 3, 2, adjust=True) == pytest.approx(0.0, abs=0.1)  # pre-trend


def test_unconditional_parallel_trends_fails(big_panels):
    """Covariate-driven selection makes the unadjusted DiD clearly biased (by ~1 per period)."""
    wide = big_panels[1]["data_wide"]
    bias = _did_2x2(wide, 4, 6, 3, adjust=False) - big_panels[1]["att_config"]["true_att"][(4, 6)]
    assert abs(bias) > 1.5  # ~ -3.2 (sd 0.12 over seeds)
    assert abs(_did_2x2(wide, 4, 3, 2, adjust=False)) > 0.5  # placebo pre-trend is not zero


def test_outcome_model_misspecification(big_panels):
    """Linear outcome regression is right under dgp 2 but wrong under dgp 3 (transformed OR)."""
    truth = big_panels[2]["att_config"]["true_att"][(2, 6)]
    est2 = _did_2x2(big_panels[2]["data_wide"], 2, 6, 1, adjust=True)
    est3 = _did_2x2(big_panels[3]["data_wide"], 2, 6, 1, adjust=True)
    assert est2 == pytest.approx(truth, abs=0.1)  # sd ~0.015 over seeds
    assert abs(est3 - truth) > 1.0  # bias ~3.2, sd ~0.23 over seeds


def test_repeated_cross_sections_att():
    """RC: regression-adjusted DiD on fresh samples recovers ATT(g, g) under dgp 1."""
    sim = gen_did_scalable(
        40_000, n_periods=4, n_cohorts=2, n_covariates=4, panel=False, random_state=5
    )
    data = sim["data"]
    g = int(sim["cohort_values"][0])  # the most covariate-selected cohort
    covs = ["cov1", "cov2", "cov3", "cov4"]

    def cell(group, time):
        part = data[(data["group"] == group) & (data["time"] == time)]
        return np.column_stack([np.ones(len(part)), part[covs].to_numpy()]), part["y"].to_numpy()

    x0_pre, y0_pre = cell(0, g - 1)
    x0_post, y0_post = cell(0, g)
    x1_pre, y1_pre = cell(g, g - 1)
    x1_post, y1_post = cell(g, g)
    b_pre = np.linalg.lstsq(x0_pre, y0_pre, rcond=None)[0]
    b_post = np.linalg.lstsq(x0_post, y0_post, rcond=None)[0]
    est = (y1_post - x1_post @ b_post).mean() - (y1_pre - x1_pre @ b_pre).mean()
    assert est == pytest.approx(sim["att_config"]["true_att"][(g, g)], abs=0.2)  # sd ~0.03
    # without covariates, the cross-section comparison is biased
    naive = (y1_post.mean() - y1_pre.mean()) - (y0_post.mean() - y0_pre.mean())
    assert abs(naive - sim["att_config"]["true_att"][(g, g)]) > 0.5  # ~ -1.7 (sd 0.16)
