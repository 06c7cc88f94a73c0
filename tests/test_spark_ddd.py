"""Triple differences on Spark: same numbers as in memory, nothing row-level collected.

Shares the session-scoped ``spark`` fixture of ``conftest.py``.
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest

from _ddd_simulation import staggered_ddd_panel

pytest.importorskip("pyspark", reason="pyspark is not installed")

import moderndid as did
from moderndid.errors import DataStructureError
from moderndid.spark import spark_ddd

pytestmark = [pytest.mark.spark,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")]

DATA = pathlib.Path(__file__).resolve().parent / "data"
COVS = "~ cov1 + cov2 + cov3 + cov4"
ARGS = ("y", "time", "id", "state", "partition")


def _same(a, b) -> None:
    for name in ("att", "se"):
        np.testing.assert_allclose(np.atleast_1d(getattr(a, name)),
                                   np.atleast_1d(getattr(b, name)), rtol=1e-10, atol=1e-10)


def test_two_period_ddd_on_spark_matches_memory_and_readme(spark):
    pdf = pd.read_csv(DATA / "triplediff_readme_2periods_seed1234.csv")
    res = did.ddd(spark.createDataFrame(pdf), *ARGS, xformla=COVS)
    assert isinstance(res, did.DDDPanelResult)
    assert res.estimation_params["engine"] == "spark"
    _same(res, did.ddd(pdf, *ARGS, xformla=COVS))
    assert round(res.att, 4) == -0.0780 and round(res.se, 4) == 0.0828


def test_staggered_gmm_bootstrap_on_spark_matches_memory(spark):
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    kwargs = dict(xformla=COVS, control_group="notyettreated", boot=True, biters=199,
                  random_state=8, cband=True)
    res = spark_ddd(spark.createDataFrame(pdf), *ARGS, spark=spark, **kwargs)
    mem = did.ddd(pdf, *ARGS, **kwargs)
    _same(res, mem)
    assert res.critical_value == pytest.approx(mem.critical_value, rel=1e-10)
    a, b = did.agg_ddd(res), did.agg_ddd(mem)
    np.testing.assert_allclose(a.att_by_event, b.att_by_event, atol=1e-10)
    np.testing.assert_allclose(a.se_by_event, b.se_by_event, rtol=1e-10)


def test_spark_ddd_errors(spark):
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    bad = pdf[~((pdf.state == 2) & (pdf.partition == 0))]
    with pytest.raises(DataStructureError, match="cohort 2 have no ineligible units"):
        did.ddd(spark.createDataFrame(bad), *ARGS)


def test_rc_weights_cluster_ipw_reg_on_spark_match_memory(spark):
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    pdf["w"] = 1.0 + (pdf["id"] % 3) / 2.0
    sdf = spark.createDataFrame(pdf)
    for kwargs in (dict(xformla="~ cov1 + cov2", est_method="ipw", weightsname="w",
                        cluster="cluster", panel=False),
                   dict(est_method="reg", weightsname="w", base_period="varying",
                        control_group="notyettreated")):
        _same(did.ddd(sdf, *ARGS, **kwargs), did.ddd(pdf, *ARGS, **kwargs))


def test_pooled_not_yet_treated_ses_on_spark_match_memory(spark):
    """The simulation design of issue 17: cells pooling cohorts while leaving units out."""
    pdf = staggered_ddd_panel(3, n=400)
    kwargs = dict(control_group="notyettreated", base_period="varying", est_method="reg")
    args = ("y", "time", "id", "g", "p")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Not returning the pre-test Wald")
        res = did.ddd(spark.createDataFrame(pdf), *args, **kwargs)
        mem = did.ddd(pdf, *args, **kwargs)
    assert res.estimation_params["engine"] == "spark"
    _same(res, mem)
    a, b = did.agg_ddd(res), did.agg_ddd(mem)
    np.testing.assert_allclose(a.se_by_event, b.se_by_event, rtol=1e-10)


@pytest.mark.parametrize("panel", [True, False])
def test_two_period_ddd_with_any_treated_code_on_spark(spark, panel):
    """R triplediff accepts any code for the treated group of a two-period design (here 5,
    neither 1 nor the second period); Spark recodes it as in memory (the repeated
    cross-section path used to recode only 1)."""
    two = pd.read_csv(DATA / "triplediff_readme_2periods_seed1234.csv")
    frame = two.assign(state=two["state"].replace(1, 5))
    res = did.ddd(spark.createDataFrame(frame), *ARGS, xformla=COVS, panel=panel)
    _same(res, did.ddd(frame, *ARGS, xformla=COVS, panel=panel))
    _same(res, did.ddd(two, *ARGS, xformla=COVS, panel=panel))
