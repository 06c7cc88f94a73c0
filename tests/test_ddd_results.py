"""Tests of the triple-differences result containers (moderndid.ddd.results)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from moderndid.ddd.results import (
    DDDAggResult,
    DDDMultiPeriodRCResult,
    DDDMultiPeriodResult,
    DDDPanelResult,
    DDDRCResult,
    build_ddd_result,
)
from moderndid.did.results import AGGTEResult
from moderndid.errors import InvalidOptionError

Z95 = 1.959963984540054

# Field names and order of the ModernDiD 0.4.1 classes of the same names.
TWO_PERIOD_041 = [
    "att", "se", "uci", "lci", "boots", "att_inf_func", "did_atts", "subgroup_counts", "args",
]  # fmt: skip
MULTI_041 = [
    "att", "se", "uci", "lci", "groups", "times", "glist", "tlist", "inf_func_mat", "n",
    "args", "unit_groups", "unit_weights", "unit_clusters", "unit_partition",
]  # fmt: skip
AGG_041 = [
    "overall_att", "overall_se", "aggregation_type", "egt", "att_egt", "se_egt", "crit_val",
    "inf_func", "inf_func_overall", "args",
]  # fmt: skip

ARGS = {
    "yname": "y",
    "tname": "time",
    "idname": "id",
    "gname": "state",
    "pname": "partition",
    "xformla": "~ cov1 + cov2",
    "est_method": "dr",
    "boot": False,
    "alpha": 0.05,
    "n_obs": 2000,
    "engine": "in-memory",
}
COUNTS = {
    "4 (treated, eligible)": 260,
    "3 (treated, ineligible)": 240,
    "2 (untreated, eligible)": 255,
    "1 (untreated, ineligible)": 245,
}


def two_period(cls=DDDPanelResult, **changes):
    kwargs = {
        "att": 1.5,
        "se": 0.5,
        "uci": None,
        "lci": None,
        "att_inf_func": np.arange(1000, dtype=float),
        "did_atts": {"4 vs 3": 1.2, "4 vs 2": 0.9, "4 vs 1": 0.6},
        "subgroup_counts": dict(COUNTS),
        "args": dict(ARGS),
        "n_units": 1000,
    }
    kwargs.update(changes)
    return cls(**kwargs)


def multi(cls=DDDMultiPeriodResult, **changes):
    kwargs = {
        "att": np.array([0.1, 2.0, 3.0, 2.5]),
        "se": np.array([0.2, 0.5, 0.6, np.nan]),
        "uci": None,
        "lci": None,
        "groups": np.array([2, 2, 2, 3]),
        "times": np.array([1, 2, 3, 3]),
        "glist": None,
        "tlist": None,
        "inf_func_mat": np.zeros((600, 4)),
        "n": 600,
        "args": dict(
            ARGS,
            gname="group",
            control_group="nevertreated",
            base_period="universal",
            anticipation=0,
        ),
        "unit_groups": np.repeat([0, 2, 3], 200),
        "unit_partition": np.tile([0, 1, 1], 200),
    }
    kwargs.update(changes)
    return cls(**kwargs)


def aggte(kind="dynamic", **changes):
    labels = {"dynamic": [-1, 0, 1], "group": [2, 3], "calendar": [2, 3]}.get(kind)
    kwargs = {
        "overall_att": 2.0,
        "overall_se": 0.4,
        "aggregation_type": kind,
        "estimation_params": dict(ARGS, gname="group", boot=True, biters=499, cband=True),
        "call_info": {"function": "aggte"},
        "alpha": 0.05,
    }
    if labels is not None:
        n = len(labels)
        kwargs.update(
            event_times=np.array(labels),
            att_by_event=np.linspace(-0.1, 2.0, n),
            se_by_event=np.full(n, 0.3),
            critical_values=np.full(n, 2.7),
            influence_func=np.ones((50, n)),
            influence_func_overall=np.ones(50),
            vcov_analytical=np.eye(n),
        )
    if kind == "dynamic":
        kwargs.update(min_event_time=-1, max_event_time=1, balanced_event_threshold=1)
    kwargs.update(changes)
    return AGGTEResult(**kwargs)


# ---------------------------------------------------------------------------------------
# field layout
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [DDDPanelResult, DDDRCResult])
def test_two_period_fields(cls):
    names = [f.name for f in dataclasses.fields(cls)]
    assert names == [*TWO_PERIOD_041, "n_units", "alpha"]
    assert cls._fields == tuple(names)


@pytest.mark.parametrize("cls", [DDDMultiPeriodResult, DDDMultiPeriodRCResult])
def test_multi_period_fields(cls):
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    assert names == [*MULTI_041, "critical_value", "vcov_analytical", "alpha", "moments"]
    moments = fields[-1]
    assert moments.repr is False and moments.compare is False and moments.default is None


def test_agg_fields():
    names = [f.name for f in dataclasses.fields(DDDAggResult)]
    assert names == [
        *AGG_041,
        "vcov_analytical",
        "alpha",
        "min_event_time",
        "max_event_time",
        "balanced_event_threshold",
    ]


# ---------------------------------------------------------------------------------------
# two periods
# ---------------------------------------------------------------------------------------


def test_two_period_positional_construction_041_order():
    res = DDDPanelResult(1.0, 0.5, 2.0, 0.0, None, None, {}, {}, {"alpha": 0.1})
    assert (res.uci, res.lci) == (2.0, 0.0)
    assert res.alpha_level == 0.1
    assert res.estimation_params is res.args
    assert res.boot is False and res.influence_func is None and res.n_units is None


def test_two_period_derived_interval_and_pvalue():
    res = two_period()
    assert res.lci == pytest.approx(1.5 - Z95 * 0.5)
    assert res.uci == pytest.approx(1.5 + Z95 * 0.5)
    assert res.confidence_interval() == (res.lci, res.uci)
    assert res.p_value == pytest.approx(2 * (1 - 0.99865010196837), abs=1e-9)  # z = 3
    res90 = two_period(alpha=0.1)
    assert res90.uci == pytest.approx(1.5 + 1.6448536269514722 * 0.5)
    assert two_period(se=float("nan")).p_value != two_period(se=float("nan")).p_value


def test_two_period_summary():
    res = two_period()
    text = str(res)
    assert text == repr(res) == res.summary()
    assert " Triple Difference-in-Differences" in text
    assert "DR-DDD estimation for the ATT:" in text
    assert "Pr(>|t|)" in text and "[95% Conf. Int.]" in text
    assert "1.5000" in text and "0.5000" in text and "0.0027" in text
    assert "[0.5200, 2.4800] *" in text
    assert "Partition Variable: partition" in text
    assert "Balanced panel" in text and "Units: 1000" in text and "Observations: 2000" in text
    assert "Units per Subgroup" in text
    for key, value in COUNTS.items():
        assert f"{key}: {value}" in text
    assert "DiD Components" in text and "4 vs 3: 1.2000" in text
    assert "Outcome Regression: OLS" in text and "Propensity Score: Logit" in text
    assert "Standard Errors: Analytical" in text and "critical value 1.9600" in text
    assert "Ortiz-Villavicencio and Sant'Anna (2025)" in text
    for absent in ("Control Group", "Anticipation", "Base Period", "Simult."):
        assert absent not in text
    assert "Control Group" not in str(two_period(args=dict(ARGS, control_group="nevertreated")))


def test_two_period_rc_summary_and_labels():
    res = two_period(DDDRCResult, args=dict(ARGS, est_method="ipw"), n_units=2000)
    text = res.summary()
    assert "IPW-DDD estimation for the ATT:" in text
    assert "Repeated cross-sections" in text and "Observations: 2000" in text
    assert "Observations per Subgroup" in text
    assert "Outcome Regression" not in text and "Propensity Score" in text
    assert res.panel is False and two_period().panel is True


def test_two_period_tuple_subgroup_keys_get_triplediff_labels():
    counts = {(math.inf, 0.0): 11, (2.0, 1.0): 44, (math.inf, 1.0): 22, (2.0, 0.0): 33}
    text = two_period(subgroup_counts=counts).summary()
    lines = [ln.strip() for ln in text.splitlines()]
    i = lines.index("4 (treated, eligible): 44")
    assert lines[i : i + 4] == [
        "4 (treated, eligible): 44",
        "3 (treated, ineligible): 33",
        "2 (untreated, eligible): 22",
        "1 (untreated, ineligible): 11",
    ]


def test_two_period_bootstrap_and_insignificant():
    res = two_period(att=0.1, boots=np.zeros(250), args=dict(ARGS, boot=True, random_state=3))
    text = res.summary()
    assert res.boot is True
    assert "Multiplier bootstrap (250 draws)" in text and "Random State: 3" in text
    assert " *" not in text.split("Signif.")[0]
    res2 = two_period(boots=np.zeros(7), args={})
    assert "Multiplier bootstrap (7 draws)" in res2.summary()


def test_two_period_stored_interval_is_kept_and_its_critical_value_reported():
    res = two_period(uci=1.5 + 2.5 * 0.5, lci=1.5 - 2.5 * 0.5)
    assert res.uci == 2.75 and res.lci == 0.25
    assert "critical value 2.5000" in res.summary()


def test_two_period_to_df_to_arrow_html():
    res = two_period()
    df = res.to_df()
    assert list(df.columns) == ["att", "se", "ci_lower", "ci_upper"]
    assert df.shape == (1, 4)
    assert df.iloc[0].tolist() == pytest.approx([1.5, 0.5, res.lci, res.uci])
    table = res.to_arrow()
    assert table.column_names == list(df.columns) and table.num_rows == 1
    html = res._repr_html_()
    assert html.startswith('<div class="moderndid-result">')
    assert "<h4>Triple Difference-in-Differences</h4>" in html
    assert "Pr(&gt;|t|)" in html and "4 (treated, eligible)" in html


def test_two_period_immutable_replace_asdict():
    res = two_period()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.att = 2.0  # type: ignore[misc]
    other = res._replace(att=3.0)
    assert other.att == 3.0 and res.att == 1.5
    d = res._asdict()
    assert list(d) == list(DDDPanelResult._fields)
    assert isinstance(res.att_inf_func, np.ndarray) and res.influence_func is res.att_inf_func


# ---------------------------------------------------------------------------------------
# staggered
# ---------------------------------------------------------------------------------------


def test_multi_construction_and_aliases():
    res = multi()
    np.testing.assert_array_equal(res.glist, [2, 3])
    np.testing.assert_array_equal(res.tlist, [1, 2, 3])
    assert res.critical_value == pytest.approx(Z95)
    np.testing.assert_allclose(res.uci, res.att + Z95 * res.se)
    np.testing.assert_allclose(res.lci, res.att - Z95 * res.se)
    assert res.att_gt is res.att and res.se_gt is res.se
    assert res.influence_func is res.inf_func_mat and res.n_units == 600
    assert res.estimation_params is res.args and res.alpha_level == 0.05
    assert res.uniform_bands is False


def test_multi_critical_value_given_or_implied():
    given = multi(critical_value=2.8)
    np.testing.assert_allclose(given.uci, given.att + 2.8 * given.se)
    att, se = np.array([1.0, 2.0]), np.array([0.5, 0.25])
    implied = multi(
        att=att,
        se=se,
        uci=att + 2.4 * se,
        lci=att - 2.4 * se,
        groups=[2, 2],
        times=[2, 3],
        inf_func_mat=None,
    )
    assert implied.critical_value == pytest.approx(2.4)
    assert multi(alpha=0.1).critical_value == pytest.approx(1.6448536269514722)


def test_multi_validation():
    with pytest.raises(InvalidOptionError, match="groups"):
        multi(groups=np.array([2, 2]))
    with pytest.raises(InvalidOptionError, match="uci"):
        multi(uci=np.zeros(3))


def test_multi_summary():
    res = multi(
        critical_value=2.9,
        args=dict(multi().args, boot=True, biters=999, cband=True, clustervars=["cluster"]),
    )
    text = res.summary()
    assert " Triple Difference-in-Differences, staggered adoption" in text
    assert "DR-DDD estimation for the ATT(g,t):" in text
    assert "[95% Simult. Conf. Band]" in text
    assert "Control Group: Never Treated" in text and "Base Period: Universal" in text
    assert "Treated Cohorts: 2" in text and "Units: 600" in text
    assert "Units per Cohort" in text
    assert "Never treated: 133 eligible, 67 ineligible" in text
    assert "Cohort 2: 133 eligible, 67 ineligible" in text
    assert "Simultaneous (uniform) (critical value 2.9000)" in text
    assert "Clustered On: cluster" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("│") and "ATT(g,t)" not in ln]
    assert len(rows) == 4
    assert rows[0].rstrip("│ ").endswith("]")  # pre-period: band covers zero, no star
    assert rows[1].rstrip("│ ").endswith("*")
    assert "NA" in rows[3]


def test_multi_rc_and_counts_from_args():
    counts = {(math.inf, 0.0): 5, (math.inf, 1.0): 6, (2.0, 0.0): 7, (2.0, 1.0): 8}
    res = multi(
        DDDMultiPeriodRCResult,
        unit_groups=None,
        unit_partition=None,
        args={k: v for k, v in multi().args.items() if k != "n_obs"} | {"subgroup_counts": counts},
    )
    text = res.summary()
    assert "Repeated cross-sections" in text and "Observations: 600" in text
    assert "Observations per Cohort" in text
    assert "Never treated: 6 eligible, 5 ineligible" in text
    assert "Cohort 2: 8 eligible, 7 ineligible" in text
    assert text.index("Never treated:") < text.index("Cohort 2:")
    assert "Units per Cohort" not in multi(unit_groups=None).summary()


def test_multi_to_df_arrow_html_and_empty():
    res = multi()
    df = res.to_df()
    assert list(df.columns) == [
        "group", "time", "att", "se", "ci_lower", "ci_upper", "event_time", "treatment_status",
    ]  # fmt: skip
    assert df["event_time"].tolist() == [-1, 0, 1, 0]
    assert df["treatment_status"].tolist() == ["Pre", "Post", "Post", "Post"]
    np.testing.assert_allclose(df["ci_upper"], res.uci)
    assert res.to_arrow().num_rows == 4
    html = res._repr_html_()
    assert "staggered adoption" in html and "<table" in html
    empty = multi(
        att=np.empty(0), se=np.empty(0), groups=np.empty(0), times=np.empty(0),
        inf_func_mat=None,
    )  # fmt: skip
    assert "No group-time cells were estimated." in empty.summary()
    assert empty.to_df().shape == (0, 8)


def test_multi_moments_hidden_and_not_compared():
    a = multi(moments=object())
    assert "moments" not in a.summary()
    assert a.moments is not None and a._replace(moments=None).moments is None


# ---------------------------------------------------------------------------------------
# aggregation
# ---------------------------------------------------------------------------------------


def test_agg_construction_and_validation():
    res = DDDAggResult(1.0, 0.2, "dynamic", np.array([0, 1]), [1.0, 2.0], [0.1, 0.2])
    assert res.aggregation_type == "eventstudy"
    np.testing.assert_allclose(res.critical_values, [Z95, Z95])
    assert res.event_times is res.egt and res.att_by_event is res.att_egt
    assert res.se_by_event is res.se_egt
    with pytest.raises(InvalidOptionError, match="aggregation_type"):
        DDDAggResult(1.0, 0.2, "bogus")
    with pytest.raises(InvalidOptionError, match="att_egt"):
        DDDAggResult(1.0, 0.2, "group", np.array([2, 3]), np.array([1.0]))
    with pytest.raises(InvalidOptionError, match="crit_val"):
        DDDAggResult(1.0, 0.2, "group", np.array([2, 3]), [1.0, 2.0], [0.1, 0.1], [2.0] * 3)
    simple = DDDAggResult(1.0, 0.2, "simple")
    assert simple.critical_values is None
    assert simple.confidence_bands()[0].size == 0
    assert simple.overall_confidence_interval() == pytest.approx((1 - Z95 * 0.2, 1 + Z95 * 0.2))


@pytest.mark.parametrize(
    ("kind", "ddd_kind", "label"),
    [("dynamic", "eventstudy", "event_time"), ("group", "group", "group"),
     ("calendar", "calendar", "time")],
)  # fmt: skip
def test_from_aggte(kind, ddd_kind, label):
    agg = aggte(kind)
    res = DDDAggResult.from_aggte(agg, ddd_kind)
    assert res.aggregation_type == ddd_kind
    assert res.overall_att == 2.0 and res.overall_se == 0.4
    np.testing.assert_array_equal(res.egt, agg.event_times)
    np.testing.assert_array_equal(res.att_egt, agg.att_by_event)
    np.testing.assert_array_equal(res.se_egt, agg.se_by_event)
    assert res.crit_val == 2.7
    np.testing.assert_allclose(res.critical_values, 2.7)
    assert res.inf_func is not None and res.inf_func.shape == (50, len(agg.event_times))
    assert res.inf_func_overall is not None and res.influence_func_overall is not None
    assert res.vcov_analytical is not None and res.alpha == 0.05
    assert res.args["cband"] is True and res.args["call_info"] == {"function": "aggte"}
    assert res.uniform_bands is True
    lo, hi = res.confidence_bands()
    np.testing.assert_allclose(hi - lo, 2 * 2.7 * 0.3)
    df = res.to_df()
    expected = [label, "att", "se", "ci_lower", "ci_upper"]
    if ddd_kind == "eventstudy":
        expected.append("treatment_status")
        assert df["treatment_status"].tolist() == ["Pre", "Post", "Post"]
        assert (res.min_event_time, res.max_event_time) == (-1, 1)
        assert res.balanced_event_threshold == 1
    assert list(df.columns) == expected
    assert res.to_arrow().column_names == expected
    assert DDDAggResult.from_aggte(agg).aggregation_type == ddd_kind  # type inferred


def test_from_aggte_simple_and_critical_values():
    agg = aggte("simple")
    res = DDDAggResult.from_aggte(agg, "simple")
    assert res.egt is None and res.crit_val is None
    df = res.to_df()
    assert list(df.columns) == ["att", "se", "ci_lower", "ci_upper"]
    assert df["ci_lower"].iloc[0] == pytest.approx(2.0 - Z95 * 0.4)
    varying = DDDAggResult.from_aggte(aggte("group", critical_values=np.array([2.0, 2.5])))
    np.testing.assert_array_equal(varying.crit_val, [2.0, 2.5])
    pointwise = DDDAggResult.from_aggte(aggte("group", critical_values=None))
    assert pointwise.crit_val is None
    np.testing.assert_allclose(pointwise.critical_values, Z95)


def test_from_aggte_errors():
    with pytest.raises(InvalidOptionError, match="does not match"):
        DDDAggResult.from_aggte(aggte("dynamic"), "group")
    with pytest.raises(TypeError, match="AGGTEResult"):
        DDDAggResult.from_aggte(SimpleNamespace(aggregation_type="simple"), "simple")  # type: ignore[arg-type]
    assert DDDAggResult.from_aggte(aggte("dynamic"), "dynamic").aggregation_type == "eventstudy"


def test_agg_summaries():
    es = DDDAggResult.from_aggte(aggte("dynamic"), "eventstudy")
    text = es.summary()
    assert " Aggregate Triple DiD Treatment Effects (Event Study)" in text
    assert "Overall summary of ATT's based on event-study aggregation:" in text
    assert "Event Study:" in text and "Event time" in text
    assert "[95% Simult. Conf. Band]" in text
    assert "Aggregation: Event study" in text and "Event Window: [-1, 1]" in text
    assert "Multiplier bootstrap (499 draws)" in text
    assert "critical value 2.7000" in text
    assert "Ortiz-Villavicencio" in text
    grp = DDDAggResult.from_aggte(aggte("group"), "group").summary()
    assert "(Group/Cohort)" in grp and "Group Effects:" in grp
    cal = DDDAggResult.from_aggte(aggte("calendar"), "calendar")
    assert "Time Effects:" in cal.summary()
    assert "Aggregate Triple DiD Treatment Effects (Calendar Time)" in cal._repr_html_()
    simple = DDDAggResult.from_aggte(aggte("simple"), "simple").summary()
    assert "Overall ATT:" in simple and "Event Study" not in simple
    assert "[1.2160, 2.7840] *" in simple


def test_agg_without_events_to_df_raises():
    res = DDDAggResult(1.0, 0.2, "group")
    with pytest.raises(InvalidOptionError, match="no per-event"):
        res.to_df()
    assert "Group Effects" not in res.summary()


# ---------------------------------------------------------------------------------------
# building from a fit; plotting by duck typing
# ---------------------------------------------------------------------------------------


def _fit(two_period, n_cells):
    cells = [SimpleNamespace(group=2.0 + (i > 1), time=1.0 + i) for i in range(n_cells)]
    return SimpleNamespace(
        cells=cells,
        att=np.linspace(1.0, 2.0, n_cells),
        se=np.full(n_cells, 0.5),
        critical_value=2.5,
        cband=True,
        vcov=0.25 * np.eye(n_cells),
        moments="moments",
        influence=np.ones((10, n_cells)),
        two_period=two_period,
        subgroup_counts={(2.0, 1.0): 3},
    )


@pytest.mark.parametrize(
    ("two", "panel", "cls"),
    [(True, True, DDDPanelResult), (True, False, DDDRCResult),
     (False, True, DDDMultiPeriodResult), (False, False, DDDMultiPeriodRCResult)],
)  # fmt: skip
def test_build_ddd_result(two, panel, cls):
    n_cells = 1 if two else 3
    data = SimpleNamespace(n_units=10, kind="panel" if panel else "rc",
                           cohorts=np.array([2.0, 3.0]), periods=np.array([1.0, 2.0, 3.0]))  # fmt: skip
    res = build_ddd_result(_fit(two, n_cells), data, {"panel": panel, "alpha": 0.05})
    assert type(res) is cls
    if two:
        assert res.att == 1.0 and res.uci == pytest.approx(1.0 + 2.5 * 0.5)
        assert res.att_inf_func.shape == (10,)
        assert res.subgroup_counts == {(2.0, 1.0): 3}
    else:
        assert res.critical_value == 2.5 and res.moments == "moments"
        np.testing.assert_array_equal(res.groups, [2.0, 2.0, 3.0])
        np.testing.assert_array_equal(res.glist, [2.0, 3.0])
        assert res.vcov_analytical.shape == (3, 3) and res.n == 10
    assert res.n_units == 10


def test_results_plot_by_duck_typing():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from moderndid.plots import plot_agg, plot_gt

    assert isinstance(plot_gt(multi()), Figure)
    assert isinstance(plot_agg(DDDAggResult.from_aggte(aggte("group"), "group")), Figure)
