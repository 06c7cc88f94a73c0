"""Tests for the att_gt / aggte result containers, their summaries and exporters."""

from __future__ import annotations

import dataclasses
from statistics import NormalDist

import numpy as np
import pytest

from moderndid.did.results import AGGTEResult, MPResult, to_arrow, to_df

Z95 = NormalDist().inv_cdf(0.975)

MP_FIELDS = (
    "groups",
    "times",
    "att_gt",
    "vcov_analytical",
    "se_gt",
    "critical_value",
    "influence_func",
    "n_units",
    "wald_stat",
    "wald_pvalue",
    "aggregate_effects",
    "alpha",
    "estimation_params",
    "G",
    "weights_ind",
    "influence_moments",
)
AGG_FIELDS = (
    "overall_att",
    "overall_se",
    "aggregation_type",
    "event_times",
    "att_by_event",
    "se_by_event",
    "critical_values",
    "influence_func",
    "influence_func_overall",
    "min_event_time",
    "max_event_time",
    "balanced_event_threshold",
    "estimation_params",
    "call_info",
    "vcov_analytical",
)


def _params(**overrides):
    params = {
        "yname": "lemp",
        "tname": "year",
        "idname": "countyreal",
        "gname": "first.treat",
        "xformla": "~lpop",
        "control_group": "nevertreated",
        "anticipation": 0,
        "base_period": "varying",
        "est_method": "dr",
        "panel": True,
        "allow_unbalanced_panel": False,
        "clustervars": None,
        "weightsname": None,
        "boot": False,
        "biters": 1000,
        "cband": False,
        "random_state": None,
        "n_obs": 2500,
        "n_periods": 4,
        "engine": "numpy",
    }
    params.update(overrides)
    return params


def _mp(critical_value=Z95, se=None, wald_pvalue=0.2327, **kwargs):
    groups = np.array([2004, 2004, 2006, 2006])
    times = np.array([2004, 2005, 2004, 2005])
    att = np.array([-0.1, 0.02, 0.5, -0.3])
    if se is None:
        se = np.array([0.02, 0.05, 0.1, np.nan])
    kwargs.setdefault("estimation_params", _params())
    return MPResult(
        groups=groups,
        times=times,
        att_gt=att,
        vcov_analytical=np.diag(np.nan_to_num(se) ** 2),
        se_gt=se,
        critical_value=critical_value,
        influence_func=None,
        n_units=500,
        wald_stat=3.1 if wald_pvalue is not None else None,
        wald_pvalue=wald_pvalue,
        **kwargs,
    )


def _agg(kind, **kwargs):
    labels = {
        "dynamic": np.array([-1, 0, 1]),
        "group": np.array([2004, 2006, 2007]),
        "calendar": np.array([2005, 2006, 2007]),
    }
    if kind == "simple":
        return AGGTEResult(-0.0418, 0.0115, "simple", estimation_params=_params(), **kwargs)
    kwargs.setdefault("critical_values", np.full(3, 2.5))
    kwargs.setdefault("estimation_params", _params(boot=True, cband=True, biters=999))
    return AGGTEResult(
        overall_att=-0.08,
        overall_se=0.02,
        aggregation_type=kind,
        event_times=labels[kind],
        att_by_event=np.array([0.01, -0.2, -0.05]),
        se_by_event=np.array([0.01, 0.05, np.nan]),
        **kwargs,
    )


def _table_rows(text):
    return [line for line in text.splitlines() if line.startswith("│")]


# --------------------------------------------------------------------------------------
# structure
# --------------------------------------------------------------------------------------


def test_field_order_matches_moderndid_041():
    mp_names = tuple(f.name for f in dataclasses.fields(MPResult))
    agg_names = tuple(f.name for f in dataclasses.fields(AGGTEResult))
    assert mp_names[: len(MP_FIELDS)] == MP_FIELDS
    assert agg_names[: len(AGG_FIELDS)] == AGG_FIELDS
    assert MPResult._fields == mp_names
    assert AGGTEResult._fields == agg_names
    # extra fields come last and have defaults
    for cls, base in ((MPResult, MP_FIELDS), (AGGTEResult, AGG_FIELDS)):
        for f in dataclasses.fields(cls)[len(base) :]:
            assert (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )


def test_moments_field_is_internal():
    (moments,) = [f for f in dataclasses.fields(MPResult) if f.name == "moments"]
    assert moments.repr is False and moments.compare is False
    res = _mp(moments={"gram": np.eye(2)})
    assert res.moments["gram"].shape == (2, 2)
    assert "gram" not in repr(res)


def test_positional_construction_in_041_order():
    se = np.array([0.1, 0.2])
    res = MPResult(
        np.array([3, 3]), np.array([2, 3]), np.array([0.0, 1.0]), np.diag(se**2), se, 1.96, None
    )
    assert res.n_units is None and res.alpha == 0.05 and res.estimation_params == {}
    assert res.wald_pvalue is None and res.moments is None
    agg = AGGTEResult(1.0, 0.5, "simple")
    assert agg.event_times is None and agg.call_info == {} and agg.alpha_level == 0.05


def test_frozen_and_replace():
    res = _mp()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.alpha = 0.1  # type: ignore[misc]
    agg = _agg("simple")
    with pytest.raises(dataclasses.FrozenInstanceError):
        agg.overall_att = 0.0  # type: ignore[misc]
    res2 = res._replace(alpha=0.1)
    assert res2.alpha == 0.1 and res.alpha == 0.05
    d = res._asdict()
    assert list(d) == list(MPResult._fields)
    assert d["att_gt"] is res.att_gt


def test_inputs_are_coerced_and_validated():
    res = MPResult([1, 1], [1, 2], [0.5, 0.1], None, [0.1, 0.2], 1.96, None)
    assert isinstance(res.att_gt, np.ndarray) and res.att_gt.dtype == float
    with pytest.raises(ValueError, match="se_gt"):
        MPResult([1, 1], [1, 2], [0.5, 0.1], None, [0.1], 1.96, None)
    with pytest.raises(ValueError, match="aggregation_type"):
        AGGTEResult(0.0, 0.1, "cohort")
    with pytest.raises(ValueError, match="se_by_event"):
        AGGTEResult(0.0, 0.1, "dynamic", np.array([0, 1]), np.array([1.0, 2.0]), np.array([1.0]))


# --------------------------------------------------------------------------------------
# MPResult summary
# --------------------------------------------------------------------------------------


def test_mp_summary_table_numbers_and_stars():
    res = _mp()
    text = res.summary()
    assert str(res) == text == repr(res)
    assert "Group-Time Average Treatment Effects" in text
    assert "[95% Pointwise Conf. Band]" in text
    rows = _table_rows(text)
    header, body = rows[0], rows[1:]
    for col in ("Group", "Time", "ATT(g,t)", "Std. Error"):
        assert col in header
    assert len(body) == 4
    # -0.1 +/- 1.96*0.02 -> [-0.1392, -0.0608] excludes 0
    assert "-0.1000" in body[0] and "0.0200" in body[0]
    assert "[-0.1392, -0.0608] *" in body[0]
    # 0.02 +/- 1.96*0.05 covers 0: no star
    assert "*" not in body[1]
    assert "[ 0.3040,  0.6960] *" in body[2]
    # NaN standard error prints NA, no band, no star
    assert body[3].count("NA") == 2 and "*" not in body[3]
    # fixed width: every table line has the same length
    table_lines = [ln for ln in text.splitlines() if ln and ln[0] in "┌│├└"]
    assert len({len(ln) for ln in table_lines}) == 1
    assert "Signif. codes" in text


def test_mp_summary_bands_use_critical_value():
    res = _mp(critical_value=3.0, estimation_params=_params(boot=True, cband=True, biters=999))
    text = res.summary()
    assert "[95% Simult. Conf. Band]" in text
    # -0.1 +/- 3*0.02
    assert "[-0.1600, -0.0400] *" in text
    assert "critical value 3.0000" in text
    lo, hi = res.confidence_bands()
    np.testing.assert_allclose(lo[:3], res.att_gt[:3] - 3.0 * res.se_gt[:3])
    np.testing.assert_allclose(hi[:3], res.att_gt[:3] + 3.0 * res.se_gt[:3])
    assert np.isnan(lo[3]) and np.isnan(hi[3])


def test_mp_summary_pretest_lines():
    assert "P-value for pre-test of parallel trends assumption:  0.2327" in _mp().summary()
    assert "No pre-treatment periods to test" in _mp(wald_pvalue=None).summary()
    assert "assumption:  NA" in _mp(wald_pvalue=float("nan")).summary()


def test_mp_summary_settings_default():
    text = _mp().summary()
    assert "Control Group: Never Treated" in text
    assert "Anticipation Periods: 0" in text
    assert "Estimation Method: Doubly Robust" in text
    assert "Standard Errors: Analytical" in text
    assert "Pointwise" in text
    assert "Units: 500" in text
    assert "Observations: 2500" in text
    assert "Time Periods: 4" in text
    assert "Treated Cohorts: 2" in text
    assert "Balanced panel" in text
    assert "Covariates: ~lpop" in text
    assert "Significance Level: 0.05" in text
    assert "Callaway and Sant'Anna (2021)" in text


def test_mp_summary_settings_variants():
    params = _params(
        control_group="notyettreated",
        anticipation=2,
        est_method="ipw",
        boot=True,
        biters=499,
        cband=True,
        clustervars=["countyreal", "state"],
        panel=False,
        xformla=None,
    )
    text = _mp(critical_value=2.7, estimation_params=params).summary()
    assert "Control Group: Not Yet Treated" in text
    assert "Anticipation Periods: 2" in text
    assert "Estimation Method: Inverse Probability Weighting" in text
    assert "Multiplier bootstrap (499 draws)" in text
    assert "Simultaneous (uniform)" in text
    assert "Clustered On: countyreal, state" in text
    assert "Repeated cross-sections" in text
    assert "Covariates: None" in text
    reg = _mp(estimation_params=_params(est_method="reg")).summary()
    assert "Estimation Method: Outcome Regression" in reg


def test_mp_summary_reads_041_param_names():
    params = {
        "yname": "y",
        "control_group": "notyettreated",
        "anticipation_periods": 1,
        "estimation_method": "ipw",
        "bootstrap": True,
        "uniform_bands": True,
        "panel": True,
        "biters": 1000,
    }
    text = _mp(critical_value=2.5, estimation_params=params).summary()
    assert "Anticipation Periods: 1" in text
    assert "Inverse Probability Weighting" in text
    assert "Simult. Conf. Band" in text
    assert "Multiplier bootstrap (1000 draws)" in text


def test_mp_alpha_changes_level_label():
    res = _mp(alpha=0.1, critical_value=NormalDist().inv_cdf(0.95))
    assert "[90% Pointwise Conf. Band]" in res.summary()
    assert "Significance Level: 0.1" in res.summary()


def test_mp_float_labels_print_as_integers():
    res = MPResult(
        np.array([3.0, 3.0]),
        np.array([2.0, 3.0]),
        np.array([0.1, 0.2]),
        None,
        np.array([1.0, 1.0]),
        Z95,
        None,
    )
    body = _table_rows(res.summary())[1:]
    assert body[0].split("│")[1].strip() == "3"
    assert body[0].split("│")[2].strip() == "2"


def test_mp_html():
    html_text = _mp(estimation_params=_params(yname="a<b"))._repr_html_()
    assert "<table" in html_text and "</table>" in html_text
    assert "<th>ATT(g,t)</th>" in html_text
    assert "-0.1000" in html_text and "NA" in html_text
    assert "a&lt;b" in html_text and "a<b" not in html_text
    assert "Never Treated" in html_text


# --------------------------------------------------------------------------------------
# AGGTEResult summary
# --------------------------------------------------------------------------------------


def test_agg_simple_summary():
    agg = _agg("simple")
    text = agg.summary()
    assert "Aggregate Treatment Effects" in text
    assert "Overall ATT:" in text
    assert "Effects:" not in text
    rows = _table_rows(text)
    assert len(rows) == 2
    # -0.0418 +/- 1.96*0.0115 = [-0.0643, -0.0193]
    assert "-0.0418" in rows[1] and "0.0115" in rows[1]
    assert "[-0.0643, -0.0193] *" in rows[1]
    assert "[95% Conf. Int.]" in rows[0]
    assert "Control Group: Never Treated" in text
    assert "Estimation Method: Doubly Robust" in text


@pytest.mark.parametrize(
    ("kind", "title", "heading", "first_col", "overall"),
    [
        ("dynamic", "(Event Study)", "Dynamic Effects:", "Event time", "event-study/dynamic"),
        ("group", "(Group/Cohort)", "Group Effects:", "Group", "group/cohort"),
        ("calendar", "(Calendar Time)", "Time Effects:", "Time", "calendar time"),
    ],
)
def test_agg_summary_by_type(kind, title, heading, first_col, overall):
    agg = _agg(kind)
    text = agg.summary()
    assert f"Aggregate Treatment Effects {title}" in text
    assert f"Overall summary of ATT's based on {overall} aggregation:" in text
    assert heading in text
    rows = _table_rows(text)
    # overall header + row, event header + 3 rows
    assert len(rows) == 6
    assert rows[2].split("│")[1].strip() == first_col
    assert "[95% Simult. Conf. Band]" in rows[2]
    # band with the per-event critical value 2.5: -0.2 +/- 2.5*0.05 = [-0.325, -0.075]
    assert "[-0.3250, -0.0750] *" in rows[4]
    # 0.01 +/- 0.025 covers 0
    assert "*" not in rows[3]
    assert rows[5].count("NA") == 2 and "*" not in rows[5]
    # overall interval uses the normal quantile, not the uniform band value
    lo, hi = agg.overall_confidence_interval()
    assert lo == pytest.approx(-0.08 - Z95 * 0.02)
    assert hi == pytest.approx(-0.08 + Z95 * 0.02)
    assert "Multiplier bootstrap (999 draws)" in text
    table_lines = [ln for ln in text.splitlines() if ln and ln[0] in "┌│├└"]
    widths = {len(ln) for ln in table_lines[5:]}
    assert len(widths) == 1


def test_agg_pointwise_without_critical_values():
    agg = _agg("dynamic", critical_values=None, estimation_params=_params())
    text = agg.summary()
    assert "[95% Pointwise Conf. Band]" in text
    lo, _ = agg.confidence_bands()
    assert lo[1] == pytest.approx(-0.2 - Z95 * 0.05)


def test_agg_dynamic_window_and_balance():
    agg = _agg("dynamic", min_event_time=-1, max_event_time=1, balanced_event_threshold=1)
    text = agg.summary()
    assert "Event Window: [-1, 1]" in text
    assert "Balanced Cohorts: observed for event times 0..1" in text


def test_agg_alpha_from_field_or_params():
    assert "[90% Conf. Int.]" in _agg("simple", alpha=0.1).summary()
    agg = AGGTEResult(1.0, 0.5, "simple", estimation_params={"alpha": 0.01})
    assert agg.alpha_level == 0.01
    assert "[99% Conf. Int.]" in agg.summary()


def test_agg_html():
    page = _agg("group")._repr_html_()
    assert page.count("<table") >= 2
    assert "<th>Group</th>" in page
    assert "Group Effects:" in page


# --------------------------------------------------------------------------------------
# exporters
# --------------------------------------------------------------------------------------


def test_to_df_mp():
    res = _mp(critical_value=2.0)
    df = to_df(res)
    assert list(df.columns) == [
        "group",
        "time",
        "att",
        "se",
        "ci_lower",
        "ci_upper",
        "event_time",
        "treatment_status",
    ]
    np.testing.assert_array_equal(df["group"], [2004, 2004, 2006, 2006])
    np.testing.assert_array_equal(df["event_time"], [0, 1, -2, -1])
    assert list(df["treatment_status"]) == ["Post", "Post", "Pre", "Pre"]
    np.testing.assert_allclose(df["ci_lower"][:3], res.att_gt[:3] - 2.0 * res.se_gt[:3])
    np.testing.assert_allclose(df["ci_upper"][:3], res.att_gt[:3] + 2.0 * res.se_gt[:3])
    assert np.isnan(df["se"].iloc[3]) and np.isnan(df["ci_lower"].iloc[3])
    assert res.to_df().equals(df)


@pytest.mark.parametrize(
    ("kind", "label"), [("dynamic", "event_time"), ("group", "group"), ("calendar", "time")]
)
def test_to_df_agg(kind, label):
    agg = _agg(kind)
    df = to_df(agg)
    assert list(df.columns)[:5] == [label, "att", "se", "ci_lower", "ci_upper"]
    np.testing.assert_array_equal(df[label], agg.event_times)
    np.testing.assert_allclose(df["ci_lower"][:2], agg.att_by_event[:2] - 2.5 * agg.se_by_event[:2])
    if kind == "dynamic":
        assert list(df["treatment_status"]) == ["Pre", "Post", "Post"]
    else:
        assert "treatment_status" not in df.columns


def test_to_df_simple_one_row():
    df = to_df(_agg("simple"))
    assert list(df.columns) == ["att", "se", "ci_lower", "ci_upper"]
    assert len(df) == 1
    assert df["ci_lower"].iloc[0] == pytest.approx(-0.0418 - Z95 * 0.0115)


def test_to_arrow_matches_to_df():
    for res in (_mp(), _agg("dynamic"), _agg("simple"), _agg("calendar")):
        table = to_arrow(res)
        df = to_df(res)
        assert table.column_names == list(df.columns)
        assert table.num_rows == len(df)
        np.testing.assert_allclose(
            table.column("att").to_numpy(), df["att"].to_numpy(), equal_nan=True
        )
    assert to_arrow(_mp()).column("treatment_status").to_pylist() == ["Post", "Post", "Pre", "Pre"]


def test_to_df_rejects_other_objects():
    with pytest.raises(TypeError):
        to_df(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_df(AGGTEResult(0.0, 0.1, "dynamic"))
