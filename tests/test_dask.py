"""The Dask engine against the in-memory engine: same numbers (1e-10) for every option it
claims (panels, balanced and unbalanced; repeated cross sections with and without ids), the
same typed errors, and triple differences.

Dask runs here on its default local scheduler (threads); ``test_dask_cluster.py`` runs on a
``distributed.LocalCluster`` with worker processes, where tasks are pickled as on a cluster.
"""

from __future__ import annotations

import pathlib
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import moderndid as did
from _ddd_simulation import staggered_ddd_panel
from moderndid import MPResult, aggte, att_gt
from moderndid.dask import dask_att_gt, dask_ddd
from moderndid.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    DataStructureError,
    InvalidOptionError,
    MissingValuesError,
)

dd = pytest.importorskip("dask.dataframe", reason="dask is not installed")

pytestmark = pytest.mark.dask

TOL = 1e-10
MPDTA = dict(yname="lemp", tname="year", idname="countyreal", gname="first.treat")
DATA = pathlib.Path(__file__).resolve().parent / "data"


def _mpdta() -> pd.DataFrame:
    pdf = did.load_mpdta()
    pdf["w"] = 1.0 + (pdf["countyreal"] % 4) * 0.5
    pdf["cluster"] = pdf["countyreal"] // 1000
    pdf["xtv"] = np.random.default_rng(20).normal(size=len(pdf))
    return pdf


def _unbalanced(pdf: pd.DataFrame) -> pd.DataFrame:
    drop = np.random.default_rng(5).choice(len(pdf), size=150, replace=False)
    return pdf.drop(index=pdf.index[drop]).reset_index(drop=True)


def close(a: Any, b: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=TOL, atol=TOL, err_msg=what, equal_nan=True)


def assert_same(dask_res: MPResult, mem_res: MPResult) -> None:
    assert dask_res.estimation_params["engine"] == "dask"
    np.testing.assert_array_equal(dask_res.groups, mem_res.groups)
    np.testing.assert_array_equal(dask_res.times, mem_res.times)
    assert np.isfinite(dask_res.att_gt).any()
    for name in ("att_gt", "se_gt", "vcov_analytical", "critical_value"):
        close(getattr(dask_res, name), getattr(mem_res, name), name)
    assert dask_res.n_units == mem_res.n_units
    close(dask_res.moments.gram, mem_res.moments.gram, "gram")
    if mem_res.moments.boot is not None:
        close(dask_res.moments.boot, mem_res.moments.boot, "bootstrap sums")
    for kind in ("simple", "dynamic", "group", "calendar"):
        a, b = aggte(dask_res, type=kind, na_rm=True), aggte(mem_res, type=kind, na_rm=True)
        close(a.overall_att, b.overall_att, f"{kind} overall")
        close(a.overall_se, b.overall_se, f"{kind} overall se")
        close(a.att_by_event, b.att_by_event, f"{kind} by event")
        close(a.se_by_event, b.se_by_event, f"{kind} se by event")


def fit_both(pdf: pd.DataFrame, npartitions: int = 3, **kwargs: Any
             ) -> tuple[MPResult, MPResult]:
    results, messages = [], []
    for frame in (dd.from_pandas(pdf, npartitions=npartitions), pdf):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results.append(att_gt(frame, **kwargs))
        messages.append(sorted(str(w.message) for w in caught
                               if issubclass(w.category, UserWarning)))
        # every warning points at the caller's line, not at moderndid's internals
        misplaced = [(w.filename, str(w.message)) for w in caught
                     if issubclass(w.category, UserWarning) and w.filename != __file__]
        assert misplaced == []
    assert messages[0] == messages[1], "the engines warn differently"
    return results[0], results[1]


SPECS = {
    "dr-never-lpop": dict(xformla="~ lpop"),
    "ipw-notyet-anticipation": dict(est_method="ipw", control_group="notyettreated",
                                    anticipation=1, xformla="~ lpop"),
    "reg-universal-weights": dict(est_method="reg", base_period="universal",
                                  weightsname="w", xformla="~ lpop"),
    "dr-cluster-boot": dict(xformla="~ lpop", clustervars=["countyreal", "cluster"],
                            boot=True, biters=199, random_state=7),
    "dr-boot-weights": dict(weightsname="w", boot=True, biters=299, random_state=3),
    "dr-time-varying-covariate": dict(xformla="~ xtv", control_group="notyettreated"),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_parity_balanced(name):
    assert_same(*fit_both(_mpdta(), **MPDTA, **SPECS[name]))


@pytest.mark.parametrize("kwargs", [
    dict(allow_unbalanced_panel=True, xformla="~ lpop"),
    dict(allow_unbalanced_panel=True, est_method="ipw", clustervars=["countyreal", "cluster"],
         boot=True, biters=99, random_state=2),
    dict(),  # balanced with a warning
])
def test_parity_unbalanced(kwargs):
    assert_same(*fit_both(_unbalanced(_mpdta()), **MPDTA, **kwargs))


@pytest.mark.parametrize("control_group", ["nevertreated", "notyettreated"])
def test_no_never_treated_units(control_group):
    pdf = _mpdta()
    pdf = pdf[pdf["first.treat"] > 0]
    assert_same(*fit_both(pdf, **MPDTA, control_group=control_group))


RC_SPECS = {
    "rc-dr-boot-lpop": (MPDTA, dict(xformla="~ lpop", boot=True, biters=199, random_state=5)),
    "rc-reg-weights-cluster-notyet": (
        MPDTA, dict(est_method="reg", weightsname="w", clustervars=["countyreal", "cluster"],
                    control_group="notyettreated", xformla="~ lpop")),
    "rc-ipw-cluster-boot-universal": (
        MPDTA, dict(est_method="ipw", clustervars=["cluster"], boot=True, biters=99,
                    random_state=9, base_period="universal", anticipation=1)),
    # Without ids the multipliers are keyed by the row's position in the input, which the
    # Dask engine reproduces exactly (unlike Spark): the bootstrap equals the in-memory one.
    "rc-dr-no-idname-boot-weights": (
        dict(MPDTA, idname=None), dict(weightsname="w", boot=True, biters=199,
                                       random_state=6, xformla="~ lpop")),
    "rc-ipw-no-idname-5-partitions": (
        dict(MPDTA, idname=None), dict(est_method="ipw", n_partitions=5, boot=True, biters=99,
                                       random_state=1)),
}


@pytest.mark.parametrize("name", list(RC_SPECS))
def test_parity_repeated_cross_sections(name):
    columns, kwargs = RC_SPECS[name]
    # a row order that is not the panel's: keys by position must follow the input order
    pdf = _mpdta().sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert_same(*fit_both(pdf, npartitions=4, **columns, panel=False, **kwargs))


def test_repeated_cross_sections_without_never_treated_units():
    pdf = _mpdta()
    pdf = pdf[pdf["first.treat"] > 0].reset_index(drop=True)  # last cohort -> comparisons
    assert_same(*fit_both(pdf, **dict(MPDTA, idname=None), panel=False,
                          control_group="notyettreated", boot=True, biters=99,
                          random_state=2))


def _rc_parity_cases() -> list[str]:
    from test_engine_parity import CASES

    return list(CASES)


@pytest.mark.parametrize("case", _rc_parity_cases())
def test_repeated_cross_sections_same_answer(case):
    """Every case of the parity battery as repeated cross sections: same class, message,
    warnings and numbers as in memory (panel-only problems, such as duplicated rows, are
    not problems there: both return the same result)."""
    from test_engine_parity import CASES, ROLES, _assert_same, _case_data, _outcome

    pdf = _case_data(case)
    kwargs = {**ROLES, **CASES[case][1], "panel": False}
    expected = _outcome(att_gt, pdf, kwargs)
    _assert_same(_outcome(att_gt, dd.from_pandas(pdf, npartitions=2), kwargs), expected, case)


def test_string_ids_and_dask_att_gt_with_partitions():
    pdf = did.gen_did_scalable(n=600, n_periods=4, n_cohorts=2, n_covariates=4,
                               random_state=3)["data"]
    pdf["sid"] = "unit-" + pdf["id"].astype(str)
    kwargs = dict(yname="y", tname="time", idname="sid", gname="group",
                  xformla="~ cov1 + cov2", boot=True, biters=99, random_state=5)
    res = dask_att_gt(dd.from_pandas(pdf, npartitions=4), n_partitions=5, **kwargs)
    assert_same(res, att_gt(pdf, **kwargs))


def test_errors_are_typed_and_name_the_column_or_unit():
    pdf = _mpdta()
    ddf = dd.from_pandas(pdf, npartitions=2)
    with pytest.raises(ColumnNotFoundError, match="nope"):
        att_gt(ddf, **dict(MPDTA, yname="nope"))
    with pytest.raises(ColumnTypeError, match="lemp"):
        att_gt(dd.from_pandas(pdf.assign(lemp="x"), npartitions=2), **MPDTA)
    with pytest.raises(MissingValuesError, match="lpop"):
        bad = pdf.copy()
        bad.loc[3, "lpop"] = np.nan
        att_gt(dd.from_pandas(bad, npartitions=2), **MPDTA, xformla="~ lpop")
    with pytest.raises(DataStructureError, match="more than one row"):
        att_gt(dd.from_pandas(pd.concat([pdf, pdf.iloc[:1]]), npartitions=2), **MPDTA)
    with pytest.raises(DataStructureError, match="varies over time within unit"):
        varying = pdf.copy()
        varying.loc[varying.index[0], "first.treat"] = 2006
        att_gt(dd.from_pandas(varying, npartitions=2), **MPDTA)
    with pytest.raises(InvalidOptionError, match="need the whole column at once"):
        att_gt(ddf, **MPDTA, xformla="~ center(lpop)")
    with pytest.raises(InvalidOptionError, match="n_partitions"):
        dask_att_gt(ddf, **MPDTA, n_partitions=0)
    with pytest.raises(InvalidOptionError, match="max_cohorts"):  # validated, as on Spark
        dask_att_gt(ddf, **MPDTA, max_cohorts=0)
    with pytest.raises(InvalidOptionError, match="backend"):
        att_gt(ddf, **MPDTA, backend="cupy")


DDD_COVS = "~ cov1 + cov2 + cov3 + cov4"
DDD_ARGS = ("y", "time", "id", "state", "partition")


def test_repeated_cross_section_ddd_on_dask_matches_memory():
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    pdf["w"] = 1.0 + (pdf["id"] % 3) / 2.0
    ddf = dd.from_pandas(pdf, npartitions=3)
    for kwargs in (dict(xformla="~ cov1 + cov2", est_method="ipw", weightsname="w",
                        cluster="cluster", panel=False),
                   dict(est_method="dr", panel=False, control_group="notyettreated", boot=True,
                        biters=99, random_state=4, cband=True)):
        res = dask_ddd(ddf, *DDD_ARGS, **kwargs)
        assert res.estimation_params["engine"] == "dask"
        mem = did.ddd(pdf, *DDD_ARGS, **kwargs)
        _same_ddd(res, mem)
        assert res.critical_value == pytest.approx(mem.critical_value, rel=1e-10)
    two = pd.read_csv(DATA / "triplediff_readme_2periods_seed1234.csv")
    # the two-period design with the treated group coded 5 (neither 1 nor the period)
    for frame in (two, two.assign(state=two["state"].replace(1, 5))):
        _same_ddd(did.ddd(dd.from_pandas(frame, npartitions=2), *DDD_ARGS, xformla=DDD_COVS,
                          panel=False),
                  did.ddd(frame, *DDD_ARGS, xformla=DDD_COVS, panel=False))


def _same_ddd(a, b) -> None:
    for name in ("att", "se"):
        np.testing.assert_allclose(np.atleast_1d(getattr(a, name)),
                                   np.atleast_1d(getattr(b, name)), rtol=TOL, atol=TOL)


def test_two_period_ddd_on_dask_matches_memory_and_readme():
    pdf = pd.read_csv(DATA / "triplediff_readme_2periods_seed1234.csv")
    res = did.ddd(dd.from_pandas(pdf, npartitions=3), *DDD_ARGS, xformla=DDD_COVS)
    assert res.estimation_params["engine"] == "dask"
    _same_ddd(res, did.ddd(pdf, *DDD_ARGS, xformla=DDD_COVS))
    assert round(res.att, 4) == -0.0780 and round(res.se, 4) == 0.0828


def test_staggered_gmm_bootstrap_ddd_on_dask_matches_memory():
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    kwargs = dict(xformla=DDD_COVS, control_group="notyettreated", boot=True, biters=199,
                  random_state=8, cband=True, weightsname=None)
    res = dask_ddd(dd.from_pandas(pdf, npartitions=3), *DDD_ARGS, **kwargs)
    mem = did.ddd(pdf, *DDD_ARGS, **kwargs)
    _same_ddd(res, mem)
    assert res.critical_value == pytest.approx(mem.critical_value, rel=1e-10)
    a, b = did.agg_ddd(res), did.agg_ddd(mem)
    np.testing.assert_allclose(a.att_by_event, b.att_by_event, atol=TOL)
    np.testing.assert_allclose(a.se_by_event, b.se_by_event, rtol=TOL)


def test_pooled_not_yet_treated_ddd_ses_on_dask_match_memory():
    """The simulation design of issue 17: cells pooling cohorts while leaving units out."""
    pdf = staggered_ddd_panel(3, n=400)
    kwargs = dict(control_group="notyettreated", base_period="varying", est_method="reg")
    args = ("y", "time", "id", "g", "p")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Not returning the pre-test Wald")
        res = did.ddd(dd.from_pandas(pdf, npartitions=3), *args, **kwargs)
        mem = did.ddd(pdf, *args, **kwargs)
    assert res.estimation_params["engine"] == "dask"
    _same_ddd(res, mem)
    a, b = did.agg_ddd(res), did.agg_ddd(mem)
    np.testing.assert_allclose(a.se_by_event, b.se_by_event, rtol=TOL)


def test_ddd_inffunc_true_is_refused_on_dask():
    """Dask executors do not bring unit-level influence functions back (R's inffunc)."""
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    with pytest.raises(InvalidOptionError, match="in memory"):
        did.ddd(dd.from_pandas(pdf, npartitions=2), *DDD_ARGS, inffunc=True)
    res = did.ddd(dd.from_pandas(pdf, npartitions=2), *DDD_ARGS, inffunc=False)
    assert res.estimation_params["engine"] == "dask"
