"""Multiplier bootstrap, uniform bands and clustering of `att_gt` / `aggte`.

Bootstrap SEs have no exact target (R draws its multipliers differently), so they are checked
for internal consistency (partitioning, seeds) and against the analytic SEs: with 1000 draws,
bootstrap / analytic SE ratios on mpdta fall in about [0.85, 1.2] (validation kit README).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import moderndid
from moderndid import aggte, att_gt

MPDTA_ARGS = ("lemp", "year", "countyreal", "first.treat")
Z975 = float(stats.norm.ppf(0.975))


@functools.cache
def _mpdta_boot(n_partitions: int | None = None, random_state: int = 7, biters: int = 499,
                cband: bool = True):
    return att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, xformla="~1", est_method="dr",
                  boot=True, biters=biters, random_state=random_state, cband=cband,
                  n_partitions=n_partitions)


@functools.cache
def _mpdta_analytic():
    return att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, xformla="~1", est_method="dr")


# ------------------------------------------------------------------ (a) partitioning


@pytest.mark.parametrize("n_partitions", [3, 8])
def test_bootstrap_does_not_depend_on_partitioning(n_partitions):
    one = _mpdta_boot(1)
    many = _mpdta_boot(n_partitions)
    np.testing.assert_allclose(many.att_gt, one.att_gt, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(many.se_gt, one.se_gt, rtol=1e-12)
    np.testing.assert_allclose(many.critical_value, one.critical_value, rtol=1e-12)
    assert many.estimation_params["cband"] and one.estimation_params["cband"]
    np.testing.assert_allclose(many.influence_func, one.influence_func, rtol=1e-10, atol=1e-14)
    dyn_one, dyn_many = aggte(one, type="dynamic"), aggte(many, type="dynamic")
    np.testing.assert_array_equal(dyn_many.event_times, dyn_one.event_times)
    np.testing.assert_allclose(dyn_many.se_by_event, dyn_one.se_by_event, rtol=1e-12)
    np.testing.assert_allclose(dyn_many.overall_se, dyn_one.overall_se, rtol=1e-12)
    np.testing.assert_allclose(dyn_many.critical_values, dyn_one.critical_values, rtol=1e-12)


# ------------------------------------------------------------------ (b) vs analytic


def test_bootstrap_se_close_to_analytic_on_mpdta():
    boot = _mpdta_boot(None, random_state=11, biters=1000)
    analytic = _mpdta_analytic()
    np.testing.assert_allclose(boot.att_gt, analytic.att_gt, rtol=0, atol=1e-15)
    ratio = boot.se_gt / analytic.se_gt
    assert np.all((ratio >= 0.85) & (ratio <= 1.2)), ratio
    assert not np.allclose(ratio, 1.0)  # the bootstrap did something
    for agg_type in ("simple", "dynamic"):
        b, a = aggte(boot, type=agg_type), aggte(analytic, type=agg_type)
        assert b.estimation_params["boot"] and not a.estimation_params["boot"]
        assert b.overall_att == pytest.approx(a.overall_att, abs=1e-15)
        assert 0.85 <= b.overall_se / a.overall_se <= 1.2
        if agg_type == "dynamic":
            ratio = b.se_by_event / a.se_by_event
            assert np.all((ratio >= 0.85) & (ratio <= 1.2)), ratio


# ------------------------------------------------------------------ (c) seeds


def test_same_seed_same_results_different_seed_different_ses():
    a = _mpdta_boot(None)
    b = att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, xformla="~1", est_method="dr", boot=True,
               biters=499, random_state=7)
    np.testing.assert_array_equal(a.se_gt, b.se_gt)
    assert a.critical_value == b.critical_value
    np.testing.assert_array_equal(aggte(a, type="dynamic").se_by_event,
                                  aggte(b, type="dynamic").se_by_event)
    c = _mpdta_boot(None, random_state=8)
    np.testing.assert_array_equal(a.att_gt, c.att_gt)
    assert not np.any(a.se_gt == c.se_gt)
    assert a.critical_value != c.critical_value
    assert aggte(a, type="simple").overall_se != aggte(c, type="simple").overall_se


def test_random_state_none_records_a_reusable_seed():
    a = att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, boot=True, biters=199, random_state=None)
    seed = a.estimation_params["random_state"]
    assert isinstance(seed, int) and 0 <= seed < 2**64
    b = att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, boot=True, biters=199, random_state=seed)
    np.testing.assert_array_equal(a.se_gt, b.se_gt)
    assert a.critical_value == b.critical_value


def test_generator_random_state_is_reproducible():
    a = att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, boot=True, biters=199,
               random_state=np.random.default_rng(5))
    b = att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, boot=True, biters=199,
               random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(a.se_gt, b.se_gt)


# ------------------------------------------------------------------ (d) uniform bands


def test_uniform_band_critical_value_exceeds_normal_quantile():
    res = _mpdta_boot(None)
    assert res.estimation_params["cband"] is True
    assert res.uniform_bands
    assert Z975 < res.critical_value < 7
    lo, hi = res.confidence_bands()
    np.testing.assert_allclose(hi - lo, 2 * res.critical_value * res.se_gt, rtol=1e-12)
    assert "Simultaneous" in str(res)
    dyn = aggte(res, type="dynamic")
    assert dyn.estimation_params["cband"] is True
    assert np.all(dyn.critical_values > Z975)
    assert np.unique(dyn.critical_values).size == 1


def test_pointwise_without_cband_or_without_bootstrap():
    pointwise = _mpdta_boot(None, cband=False)
    assert pointwise.estimation_params["cband"] is False
    assert pointwise.critical_value == pytest.approx(Z975, abs=1e-12)
    np.testing.assert_array_equal(pointwise.se_gt, _mpdta_boot(None).se_gt)

    analytic = att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, boot=False, cband=True)
    assert analytic.estimation_params["cband"] is False
    assert not analytic.uniform_bands
    assert analytic.critical_value == pytest.approx(Z975, abs=1e-12)
    # As in R `did`, aggte still reports a simultaneous band for the event study when
    # cband=True (here from Gaussian multiplier draws, seeded by the fit: reproducible).
    dyn = aggte(analytic, type="dynamic")
    assert dyn.estimation_params["cband"] is True
    assert np.all(dyn.critical_values > Z975)
    np.testing.assert_array_equal(dyn.critical_values,
                                  aggte(analytic, type="dynamic").critical_values)
    no_band = att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, boot=False, cband=False)
    dyn = aggte(no_band, type="dynamic")
    np.testing.assert_allclose(dyn.critical_values, Z975, rtol=1e-12)


def test_alpha_moves_the_pointwise_critical_value():
    res = att_gt(moderndid.load_mpdta(), *MPDTA_ARGS, alpha=0.1)
    assert res.critical_value == pytest.approx(float(stats.norm.ppf(0.95)), abs=1e-12)


# ------------------------------------------------------------------ (e) clustering


@functools.cache
def _clustered_panel() -> pd.DataFrame:
    df = moderndid.gen_did_scalable(n=1000, n_periods=4, n_cohorts=2, n_covariates=4,
                                    random_state=21)["data"]
    assert "cluster" in df.columns
    return df


def _panel_fit(clustervars=None, boot=False, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return att_gt(_clustered_panel(), "y", "time", "id", "group", xformla="~ cov1 + cov2",
                      clustervars=clustervars, boot=boot, **kwargs)


def test_clustered_analytic_se_sums_influence_functions_by_cluster():
    df = _clustered_panel()
    plain = _panel_fit()
    clustered = _panel_fit(["id", "cluster"])
    np.testing.assert_array_equal(clustered.att_gt, plain.att_gt)
    assert clustered.estimation_params["clustervars"] == ["cluster"]
    assert clustered.estimation_params["n_clusters"] == df["cluster"].nunique() == 50
    # unit -> cluster, in influence-function row order (ascending id)
    unit_cluster = df.groupby("id")["cluster"].first().sort_index().to_numpy()
    phi = clustered.influence_func / clustered.n_units  # sum scale
    cluster_sums = pd.DataFrame(phi).groupby(unit_cluster).sum().to_numpy()
    expected = np.sqrt((cluster_sums**2).sum(axis=0))
    np.testing.assert_allclose(clustered.se_gt, expected, rtol=1e-10)
    np.testing.assert_allclose(plain.se_gt, np.sqrt((phi**2).sum(axis=0)), rtol=1e-10)
    assert not np.allclose(clustered.se_gt, plain.se_gt, rtol=1e-3)
    # a clustering variable that is the unit id itself changes nothing
    np.testing.assert_array_equal(_panel_fit("id").se_gt, plain.se_gt)
    # aggregations use the clustered Gram matrix as well
    for agg_type in ("simple", "dynamic"):
        assert (aggte(clustered, type=agg_type).overall_se
                != pytest.approx(aggte(plain, type=agg_type).overall_se, rel=1e-3))


def test_clustered_bootstrap_close_to_clustered_analytic():
    analytic = _panel_fit(["id", "cluster"])
    boot = _panel_fit(["id", "cluster"], boot=True, biters=1000, random_state=3)
    ratio = boot.se_gt / analytic.se_gt
    assert np.all((ratio >= 0.8) & (ratio <= 1.25)), ratio
    for agg_type in ("simple", "dynamic"):
        r = aggte(boot, type=agg_type).overall_se / aggte(analytic, type=agg_type).overall_se
        assert 0.8 <= r <= 1.25, (agg_type, r)
    again = _panel_fit(["id", "cluster"], boot=True, biters=1000, random_state=3,
                       n_partitions=4)
    np.testing.assert_allclose(again.se_gt, boot.se_gt, rtol=1e-12)


@pytest.mark.parametrize("clustervars", [["id", "cluster", "cov1"], ["cluster", "group"]])
def test_more_than_one_extra_cluster_variable_is_rejected(clustervars):
    with pytest.raises(moderndid.InvalidOptionError):
        _panel_fit(clustervars)


def test_aggte_cannot_change_the_clustering():
    clustered = _panel_fit(["id", "cluster"])
    assert aggte(clustered, type="simple", clustervars=["id", "cluster"]).overall_se > 0
    with pytest.raises(moderndid.InvalidOptionError):
        aggte(_panel_fit(), type="simple", clustervars=["id", "cluster"])
