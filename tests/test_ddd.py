"""Triple differences: R `triplediff` README numbers and independently derived values.

References: tests/reference/triplediff_readme.csv (R triplediff README, analytic SEs printed
to 4 decimals) on the data sets in tests/data/ (regenerated bit-for-bit from triplediff's
generators with set.seed(1234); see the project's validation kit). The event-study and
not-yet-treated numbers are from the same README: e=0 17.5980 (0.4095), e=1 20.5986
(0.3868), overall 19.0983 (0.3213), GMM ATT(2,2) 10.1894 (0.2759), two-period p-value
0.3463 and interval [-0.2404, 0.0843].
"""

from __future__ import annotations

import functools
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest

import moderndid as did
from moderndid.errors import DataStructureError, InvalidOptionError

HERE = pathlib.Path(__file__).resolve().parent
COVS = "~ cov1 + cov2 + cov3 + cov4"


@functools.cache
def two_periods() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "triplediff_readme_2periods_seed1234.csv")


@functools.cache
def mult_periods() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "triplediff_readme_multperiods_seed1234.csv")


def printed(value: float, reference: float, decimals: int = 4) -> None:
    assert abs(value - reference) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9), (value, reference)


def test_two_period_dr_matches_readme():
    res = did.ddd(two_periods(), "y", "time", "id", "state", "partition", xformla=COVS)
    assert isinstance(res, did.DDDPanelResult)
    printed(res.att, -0.0780)
    printed(res.se, 0.0828)
    printed(res.lci, -0.2404)
    printed(res.uci, 0.0843)
    printed(res.p_value, 0.3463)


@functools.cache
def staggered(control_group: str, est_method: str = "dr", xformla: str | None = COVS):
    return did.ddd(mult_periods(), "y", "time", "id", "state", "partition", xformla=xformla,
                   control_group=control_group, base_period="universal", est_method=est_method)


def test_staggered_cells_match_readme():
    ref = pd.read_csv(HERE / "reference" / "triplediff_readme.csv").iloc[1:]
    res = staggered("nevertreated")
    assert isinstance(res, did.DDDMultiPeriodResult)
    cells = {(int(g), int(t)): (a, s) for g, t, a, s in
             zip(res.groups, res.times, res.att, res.se, strict=True)}
    for row in ref.itertuples():
        att, se = cells[(int(row.group), int(row.time))]
        printed(att, row.att)
        printed(se, row.se)
    # the universal base-period cells are reported as 0 with no SE
    assert cells[(2, 1)][0] == 0 and np.isnan(cells[(2, 1)][1])


def test_not_yet_treated_gmm_matches_readme():
    res = staggered("notyettreated")
    cells = {(int(g), int(t)): (a, s) for g, t, a, s in
             zip(res.groups, res.times, res.att, res.se, strict=True)}
    printed(cells[(2, 2)][0], 10.1894)
    printed(cells[(2, 2)][1], 0.2759)
    # a single comparison cohort: identical to never treated
    nev = staggered("nevertreated")
    np.testing.assert_allclose(res.att[3:], nev.att[3:], atol=1e-12)


def test_event_study_matches_readme():
    agg = did.agg_ddd(staggered("nevertreated"), type="eventstudy")
    assert isinstance(agg, did.DDDAggResult)
    by_e = dict(zip(np.asarray(agg.event_times).tolist(), agg.att_by_event, strict=True))
    se_e = dict(zip(np.asarray(agg.event_times).tolist(), agg.se_by_event, strict=True))
    printed(by_e[-2], -0.4593)
    printed(by_e[0], 17.5980)
    printed(se_e[0], 0.4095)
    printed(by_e[1], 20.5986)
    printed(se_e[1], 0.3868)
    printed(agg.overall_att, 19.0983)
    printed(agg.overall_se, 0.3213)


def test_event_study_weights_cohorts_by_all_units():
    """e = 0 averages ATT(2,2) and ATT(3,3) with pg = share of ALL units in the cohort."""
    res = staggered("nevertreated")
    data = mult_periods()
    first = data[data.time == 1]
    n2, n3 = (first.state == 2).sum(), (first.state == 3).sum()
    att = {(int(g), int(t)): a for g, t, a in zip(res.groups, res.times, res.att, strict=True)}
    expected = (n2 * att[(2, 2)] + n3 * att[(3, 3)]) / (n2 + n3)
    agg = did.agg_ddd(res, type="eventstudy")
    e0 = float(np.asarray(agg.att_by_event)[np.asarray(agg.event_times) == 0][0])
    assert e0 == pytest.approx(expected, abs=1e-12)


def _subgroup_change(df: pd.DataFrame, treated_state, eligible: int, t1: int, t0: int) -> float:
    def mean(t):
        rows = df[(df.time == t) & (df.partition == eligible)]
        rows = rows[rows.state.isin(treated_state)]
        return rows.y.mean()
    return mean(t1) - mean(t0)


@pytest.mark.parametrize("est_method", ["dr", "ipw", "reg"])
@pytest.mark.parametrize("panel", [True, False], ids=["panel", "rc"])
def test_without_covariates_ddd_is_the_difference_of_four_mean_changes(est_method, panel):
    df = two_periods()
    res = did.ddd(df, "y", "time", "id" if panel else None, "state", "partition",
                  est_method=est_method, panel=panel)
    expected = ((_subgroup_change(df, [1], 1, 2, 1) - _subgroup_change(df, [1], 0, 2, 1))
                - (_subgroup_change(df, [0], 1, 2, 1) - _subgroup_change(df, [0], 0, 2, 1)))
    assert res.att == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("est_method", ["dr", "ipw", "reg"])
def test_staggered_without_covariates_matches_mean_changes(est_method):
    df = mult_periods()
    res = staggered("nevertreated", est_method, None)
    att = {(int(g), int(t)): a for g, t, a in zip(res.groups, res.times, res.att, strict=True)}
    # DDD(3, 3) with the universal base period 2, never-treated comparison
    expected = ((_subgroup_change(df, [3], 1, 3, 2) - _subgroup_change(df, [3], 0, 3, 2))
                - (_subgroup_change(df, [0], 1, 3, 2) - _subgroup_change(df, [0], 0, 3, 2)))
    assert att[(3, 3)] == pytest.approx(expected, abs=1e-9)


def test_methods_agree_within_sampling_error_with_covariates():
    dr = staggered("nevertreated", "dr").att
    ipw = staggered("nevertreated", "ipw")
    reg = staggered("nevertreated", "reg")
    cells = np.array([1, 2, 3, 5])
    assert np.all(np.abs(dr[cells] - reg.att[cells]) < 3 * reg.se[cells])
    assert np.all(np.abs(dr[cells] - ipw.att[cells]) < 3 * ipw.se[cells])
    assert not np.allclose(dr, reg.att)


def test_influence_function_matches_numerical_derivative():
    df = two_periods().copy()
    df["w"] = 1.0
    base = did.ddd(df, "y", "time", "id", "state", "partition", xformla="~ cov1 + cov2",
                   weightsname="w")
    n = base.n_units
    h = 1e-5
    for unit in (1, 17, 2500):
        plus, minus = df.copy(), df.copy()
        plus.loc[plus.id == unit, "w"] = 1 + h
        minus.loc[minus.id == unit, "w"] = 1 - h
        d_att = (did.ddd(plus, "y", "time", "id", "state", "partition", xformla="~ cov1 + cov2",
                         weightsname="w").att
                 - did.ddd(minus, "y", "time", "id", "state", "partition",
                           xformla="~ cov1 + cov2", weightsname="w").att) / (2 * h)
        assert d_att == pytest.approx(base.influence_func[unit - 1] / n, rel=1e-5, abs=1e-10)


def test_bootstrap_is_reproducible_and_close_to_analytic():
    a = did.ddd(mult_periods(), "y", "time", "id", "state", "partition", xformla=COVS,
                base_period="universal", boot=True, biters=999, random_state=5, cband=True)
    b = did.ddd(mult_periods(), "y", "time", "id", "state", "partition", xformla=COVS,
                base_period="universal", boot=True, biters=999, random_state=5, cband=True,
                n_partitions=3)
    np.testing.assert_allclose(a.se, b.se, rtol=1e-12)
    assert a.critical_value == pytest.approx(b.critical_value, rel=1e-12)
    analytic = staggered("nevertreated")
    ok = np.isfinite(analytic.se)
    ratio = a.se[ok] / analytic.se[ok]
    assert np.all((ratio > 0.85) & (ratio < 1.2))


def test_aggregation_types_run_and_simple_is_cohort_weighted():
    res = staggered("nevertreated")
    for kind in ("simple", "group", "calendar", "eventstudy"):
        agg = did.agg_ddd(res, type=kind)
        assert np.isfinite(agg.overall_att) and np.isfinite(agg.overall_se)


def test_base_period_defaults_to_varying_as_triplediff():
    """R triplediff uses "varying" when base_period is not given; so do we (no warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = did.ddd(mult_periods(), "y", "time", "id", "state", "partition",
                          xformla=COVS)
    assert default.estimation_params["base_period"] == "varying"
    varying = did.ddd(mult_periods(), "y", "time", "id", "state", "partition", xformla=COVS,
                      base_period="varying")
    np.testing.assert_array_equal(default.att, varying.att)
    np.testing.assert_array_equal(default.se, varying.se)
    universal = staggered("nevertreated")
    cells = {(int(g), int(t)): a for g, t, a in
             zip(universal.groups, universal.times, universal.att, strict=True)}
    pre = {(int(g), int(t)): a for g, t, a in
           zip(default.groups, default.times, default.att, strict=True)}
    # post-treatment cells agree; the pre-treatment cell of cohort 3 is ATT(3,2) vs period 1
    # with the varying base period and ATT(3,1) vs period 2 (sign flipped) with universal
    for cell in ((2, 2), (2, 3), (3, 3)):
        assert pre[cell] == pytest.approx(cells[cell], abs=1e-10)
    assert pre[(3, 2)] == pytest.approx(-cells[(3, 1)], abs=1e-10)


def test_errors_name_the_problem():
    df = mult_periods()
    with pytest.raises(InvalidOptionError, match="pname"):
        did.ddd(df, "y", "time", "id", "state", None)
    bad = df.assign(partition=df.partition * 2)
    with pytest.raises(DataStructureError, match="partition column 'partition'"):
        did.ddd(bad, "y", "time", "id", "state", "partition")
    no_ineligible = df[~((df.state == 2) & (df.partition == 0))]
    with pytest.raises(DataStructureError, match="cohort 2 have no ineligible units"):
        did.ddd(no_ineligible, "y", "time", "id", "state", "partition")
    varying = df.copy()
    varying.loc[(varying.id == 1) & (varying.time == 2), "partition"] = 1 - varying.loc[
        (varying.id == 1) & (varying.time == 2), "partition"]
    with pytest.raises(DataStructureError, match="partition column 'partition' varies"):
        did.ddd(varying, "y", "time", "id", "state", "partition")
    with pytest.raises(InvalidOptionError, match="boot_type"):
        did.ddd(df, "y", "time", "id", "state", "partition", boot_type="weighted")
    with pytest.raises(InvalidOptionError, match="multi"):
        did.agg_ddd(did.ddd(two_periods(), "y", "time", "id", "state", "partition"))


def test_generated_staggered_panel_recovers_the_truth():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sim = did.gen_ddd_mult_periods(4000, random_state=11)
    res = did.ddd(sim["data"], "y", "time", "id", "group", "partition", xformla=COVS,
                  control_group="notyettreated")
    agg = did.agg_ddd(res, type="eventstudy")
    assert np.all(np.isfinite(agg.att_by_event))


# --- arguments of R triplediff (issue 17) -------------------------------------------------


def test_r_arguments_with_a_meaning_are_supported():
    df = mult_periods()
    boot = dict(boot=True, random_state=3, cband=True)
    a = did.ddd(df, "y", "time", "id", "state", "partition", nboot=199, **boot)
    b = did.ddd(df, "y", "time", "id", "state", "partition", biters=199, **boot)
    np.testing.assert_array_equal(a.se, b.se)
    assert a.estimation_params["biters"] == 199
    # R's NULL for control_group / base_period means its defaults (ours)
    null = did.ddd(df, "y", "time", "id", "state", "partition", control_group=None,
                   base_period=None)
    default = did.ddd(df, "y", "time", "id", "state", "partition")
    np.testing.assert_array_equal(null.att, default.att)
    assert null.estimation_params["control_group"] == "nevertreated"
    # inffunc: the influence functions are returned in memory anyway
    res = did.ddd(df, "y", "time", "id", "state", "partition", inffunc=True,
                  use_parallel=False, cores=1, skip_data_checks=False)
    assert res.influence_func is not None and res.influence_func.shape[0] == res.n_units
    agg_r = did.agg_ddd(ddd_obj=res, type="group", nboot=None, **{"na.rm": False})
    agg = did.agg_ddd(res, type="group")
    assert agg_r.overall_se == agg.overall_se


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(use_parallel=True), "Spark or Dask DataFrame"),
    (dict(cores=4), "n_partitions"),
    (dict(skip_data_checks=True), "cannot be skipped"),
    (dict(dname="treat"), "gname"),
    (dict(learners=["rf", "xgb"]), "est_method='dr'"),
    (dict(n_folds=3), "double machine learning"),
    (dict(nboot=199, biters=500), "pass biters only"),
    (dict(nboot=0), "positive integer"),
    (dict(inffunc="yes"), "True or False"),
    (dict(clustervars="cluster"), "Did you mean 'cluster'"),
    (dict(bogus=1), "unexpected argument 'bogus'"),
])
def test_r_arguments_without_a_meaning_are_refused_with_a_typed_error(kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        did.ddd(mult_periods(), "y", "time", "id", "state", "partition", **kwargs)


def test_agg_ddd_cluster_is_the_fits_clustering():
    df = mult_periods()
    plain = staggered("nevertreated")
    # unclustered fit: the unit id is the fit's clustering, another variable is refused
    same = did.agg_ddd(plain, cluster="id")
    assert same.overall_se == did.agg_ddd(plain).overall_se
    with pytest.raises(InvalidOptionError, match="pass cluster= to ddd"):
        did.agg_ddd(plain, cluster="cluster")
    clustered = did.ddd(df, "y", "time", "id", "state", "partition", xformla=COVS,
                        base_period="universal", cluster="cluster")
    by_fit = did.agg_ddd(clustered)
    np.testing.assert_equal(did.agg_ddd(clustered, cluster="cluster").overall_se,
                            by_fit.overall_se)
    np.testing.assert_equal(did.agg_ddd(clustered, cluster=["id", "cluster"]).overall_se,
                            by_fit.overall_se)
    assert by_fit.overall_se != did.agg_ddd(plain).overall_se
    with pytest.raises(InvalidOptionError, match="units only"):
        did.agg_ddd(clustered, cluster="id")


def test_agg_ddd_refuses_unknown_and_conflicting_r_arguments():
    res = staggered("nevertreated")
    with pytest.raises(InvalidOptionError, match="unexpected argument 'bootstrap'"):
        did.agg_ddd(res, bootstrap=True)
    with pytest.raises(InvalidOptionError, match="once"):
        did.agg_ddd(res, ddd_obj=staggered("notyettreated"))
    with pytest.raises(InvalidOptionError, match="needs the result"):
        did.agg_ddd(type="simple")
    with pytest.raises(InvalidOptionError, match=r"na\.rm"):
        did.agg_ddd(res, **{"na.rm": "yes"})


def test_r_departures_alpha_and_bootstrap_bands_are_honoured():
    """R resets alpha > 0.10 to 0.05 and forces cband=TRUE with boot=TRUE; we do neither."""
    df = two_periods()
    wide = did.ddd(df, "y", "time", "id", "state", "partition", xformla=COVS, alpha=0.2)
    assert wide.estimation_params["alpha"] == 0.2
    assert wide.uci - wide.att == pytest.approx(1.2815515655 * wide.se, rel=1e-9)
    boot = did.ddd(mult_periods(), "y", "time", "id", "state", "partition", boot=True,
                   biters=199, random_state=1)
    assert boot.estimation_params["cband"] is False
    assert boot.critical_value == pytest.approx(1.959963985, rel=1e-9)
