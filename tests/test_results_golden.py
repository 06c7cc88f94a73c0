"""Golden output of every result class: printed summary, HTML, exporters and fields.

The expected text lives in ``tests/data/results_golden.json``; it was written from the code
before the result classes were refactored onto one formatting module, so a change of layout,
wording, numbers or fields shows up here as a diff. Regenerate it (only for an intended
change of output) with::

    python tests/test_results_golden.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from moderndid.ddd.results import (
    DDDAggResult,
    DDDMultiPeriodRCResult,
    DDDMultiPeriodResult,
    DDDPanelResult,
    DDDRCResult,
)
from moderndid.did.results import AGGTEResult, MPResult, to_arrow, to_df

GOLDEN = Path(__file__).parent / "data" / "results_golden.json"

PARAMS = {
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
# ModernDiD 0.4.1 spellings, clusters, weights, repeated cross-sections
PARAMS_041 = {
    "yname": "y",
    "control_group": "notyettreated",
    "anticipation_periods": 1,
    "estimation_method": "ipw",
    "panel": False,
    "bootstrap": True,
    "uniform_bands": True,
    "biters": 499,
    "random_state": 7,
    "clustervars": "state",
    "weightsname": "w",
    "xformla": "~1",
}
DDD_ARGS = {
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
LABELS = {
    "dynamic": np.array([-2, -1, 0, 1]),
    "group": np.array([2004, 2006, 2007, 2008]),
    "calendar": np.array([2005.0, 2006.0, 2007.0, 2008.0]),
}
ATT = np.array([0.0123456, -0.2, -0.05, 1.25])
SE = np.array([0.01, 0.05, np.nan, 0.3])


def _aggte_cases() -> dict[str, AGGTEResult]:
    out: dict[str, AGGTEResult] = {
        "agg_simple": AGGTEResult(-0.0418, 0.0115, "simple", estimation_params=dict(PARAMS)),
        "agg_simple_nan_se": AGGTEResult(
            0.5, float("nan"), "simple", estimation_params=dict(PARAMS_041), alpha=0.1
        ),
    }
    for kind, labels in LABELS.items():
        out[f"agg_{kind}_uniform"] = AGGTEResult(
            overall_att=-0.08,
            overall_se=0.02,
            aggregation_type=kind,
            event_times=labels,
            att_by_event=ATT,
            se_by_event=SE,
            critical_values=np.full(4, 2.5),
            influence_func=np.ones((6, 4)),
            influence_func_overall=np.arange(6.0),
            min_event_time=-2 if kind == "dynamic" else None,
            max_event_time=1 if kind == "dynamic" else None,
            balanced_event_threshold=1 if kind == "dynamic" else None,
            estimation_params=dict(PARAMS, boot=True, cband=True, biters=999, random_state=3),
            call_info={"function": "aggte", "type": kind},
            vcov_analytical=np.eye(4),
            alpha=0.05,
        )
        out[f"agg_{kind}_pointwise"] = AGGTEResult(
            overall_att=1.0,
            overall_se=0.4,
            aggregation_type=kind,
            event_times=labels,
            att_by_event=ATT,
            se_by_event=None,
            critical_values=None,
            max_event_time=3 if kind == "dynamic" else None,
            estimation_params=dict(PARAMS_041),
        )
    out["agg_dynamic_no_se"] = AGGTEResult(
        0.3, 0.1, "dynamic", LABELS["dynamic"], ATT, None, 1.7, estimation_params=dict(PARAMS)
    )
    return out


def _mp_cases() -> dict[str, MPResult]:
    groups = np.array([2004, 2004, 2006, 2006])
    times = np.array([2004, 2005, 2004, 2005])
    return {
        "mp": MPResult(
            groups=groups,
            times=times,
            att_gt=ATT,
            vcov_analytical=np.diag(np.nan_to_num(SE) ** 2),
            se_gt=SE,
            critical_value=2.7,
            influence_func=None,
            n_units=500,
            wald_stat=3.1,
            wald_pvalue=0.2327,
            estimation_params=dict(PARAMS, cband=True, boot=True),
        ),
        "mp_041": MPResult(
            groups.astype(float), times.astype(float), ATT, None, SE, None, None,
            alpha=0.1, estimation_params=dict(PARAMS_041),
        ),
        "mp_empty": MPResult(
            np.array([]), np.array([]), np.array([]), None, np.array([]), 1.96, None
        ),
    }


def _ddd_cases() -> dict[str, Any]:
    counts = {
        "4 (treated, eligible)": 260,
        "3 (treated, ineligible)": 240,
        "2 (untreated, eligible)": 255,
        "1 (untreated, ineligible)": 245,
    }
    tuple_counts = {(0.0, 0.0): 245, (0.0, 1.0): 255, (2.0, 0.0): 240, (2.0, 1.0): 260}
    multi_args = dict(
        DDD_ARGS, gname="group", control_group="nevertreated", base_period="universal",
        anticipation=0,
    )  # fmt: skip
    out: dict[str, Any] = {
        "ddd_panel": DDDPanelResult(
            att=1.5, se=0.5, uci=None, lci=None, att_inf_func=np.arange(10.0),
            did_atts={"4 vs 3": 1.2, "4 vs 2": "n/a"}, subgroup_counts=counts,
            args=dict(DDD_ARGS), n_units=1000,
        ),
        "ddd_rc_boot": DDDRCResult(
            att=0.1, se=0.5, uci=1.2, lci=-0.9, boots=np.zeros(250),
            subgroup_counts=tuple_counts, args=dict(DDD_ARGS, est_method="ipw", random_state=3),
            n_units=800, alpha=0.1,
        ),
        "ddd_panel_plain": DDDPanelResult(1.0, float("nan"), None, None, None, None, {}, {}, {}),
        "ddd_multi": DDDMultiPeriodResult(
            att=np.array([0.1, 2.0, 3.0, 2.5]), se=np.array([0.2, 0.5, 0.6, np.nan]),
            uci=None, lci=None, groups=np.array([2, 2, 2, 3]), times=np.array([1, 2, 3, 3]),
            glist=None, tlist=None, inf_func_mat=np.zeros((6, 4)), n=600, args=multi_args,
            unit_groups=np.repeat([0, 2, 3], 2), unit_partition=np.tile([0, 1, 1], 2),
        ),
        "ddd_multi_rc": DDDMultiPeriodRCResult(
            att=np.array([0.1, 2.0]), se=np.array([0.2, 0.5]),
            uci=np.array([0.6, 3.2]), lci=np.array([-0.4, 0.8]), groups=np.array([2, 3]),
            times=np.array([2, 3]), glist=np.array([2, 3]), tlist=np.array([1, 2, 3]),
            inf_func_mat=None, n=900,
            args=dict(multi_args, est_method="reg", cband=True, boot=True,
                      subgroup_counts=tuple_counts),
        ),
        "ddd_multi_empty": DDDMultiPeriodResult(
            np.array([]), np.array([]), None, None, np.array([]), np.array([]), None, None,
            None, None, {},
        ),
    }  # fmt: skip
    for name, agg in _aggte_cases().items():
        out["ddd_agg" + name[3:]] = DDDAggResult.from_aggte(agg)
    out["ddd_agg_direct"] = DDDAggResult(
        overall_att=2.0, overall_se=None, aggregation_type="dynamic",
        egt=np.array([0, 1]), att_egt=np.array([1.0, 3.0]), se_egt=0.5,
        crit_val=np.array([2.0, 2.2]), args=dict(multi_args, panel=False), alpha=0.1,
    )  # fmt: skip
    out["ddd_agg_simple_plain"] = DDDAggResult(1.0, 0.25, "simple")
    return out


def _value(x: Any) -> Any:
    """JSON-able, exact description of a field or property value."""
    if isinstance(x, np.ndarray):
        return {"dtype": str(x.dtype), "shape": list(x.shape), "values": repr(x.tolist())}
    if isinstance(x, tuple):
        return [_value(v) for v in x]
    if isinstance(x, dict):
        return {repr(k): _value(v) for k, v in x.items()}
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, (bool, int, float, str)) or x is None:
        return [type(x).__name__, x]
    return [type(x).__name__, repr(x)]


def _describe(res: Any) -> dict[str, Any]:
    cls = type(res)
    out: dict[str, Any] = {
        "class": cls.__name__,
        "summary": res.summary(),
        "str_is_summary": str(res) == repr(res) == res.summary(),
        "html": res._repr_html_(),
        "_fields": list(cls._fields),
        "asdict": {k: _value(v) for k, v in res._asdict().items()},
    }
    props = sorted(
        name
        for name in dir(cls)
        if not name.startswith("_") and isinstance(getattr(cls, name), property)
    )
    out["properties"] = {name: _value(getattr(res, name)) for name in props}
    for meth in ("confidence_bands", "overall_confidence_interval", "confidence_interval"):
        if hasattr(res, meth):
            out[meth] = _value(getattr(res, meth)())
    try:
        df = res.to_df()
        table = res.to_arrow()
    except Exception as exc:  # the error is part of the pinned behaviour
        out["to_df"] = [type(exc).__name__, str(exc)]
    else:
        out["to_df"] = {
            "columns": list(df.columns),
            "dtypes": [str(t) for t in df.dtypes],
            "values": repr(df.to_dict("list")),
        }
        out["to_arrow"] = {"schema": str(table.schema), "values": repr(table.to_pydict())}
        if isinstance(res, (MPResult, AGGTEResult)):
            out["module_to_df_same"] = to_df(res).equals(df) and to_arrow(res).equals(table)
    return out


def _all_cases() -> dict[str, Any]:
    return {**_aggte_cases(), **_mp_cases(), **_ddd_cases()}


def _current() -> dict[str, Any]:
    return {name: _describe(res) for name, res in _all_cases().items()}


@pytest.mark.parametrize("name", sorted(_all_cases()))
def test_result_output_unchanged(name):
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = json.loads(json.dumps(_describe(_all_cases()[name])))
    want = expected[name]
    # compare the summary first: its diff is the readable one
    assert got["summary"] == want["summary"]
    assert got == want


def test_golden_covers_every_case():
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sorted(expected) == sorted(_all_cases())


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(_current(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
