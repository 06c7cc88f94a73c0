"""Same bad input, same answer on every engine: the error class and the whole message (and
the warnings) of the in-memory path, on Spark and on Dask.

The decisions come from one planner (:mod:`moderndid.did.plan`), so these tests pin that no
engine keeps a check, a recoding or a message of its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import moderndid
from moderndid.errors import ModernDiDError

ROLES = {"yname": "lemp", "tname": "year", "idname": "countyreal", "gname": "first.treat"}


def _set(column: str, row: int, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df[column] = df[column].astype(type(value)) if isinstance(value, float) else df[column]
        df.loc[row, column] = value
        return df
    return change


def _with(**columns: Callable[[pd.DataFrame], Any]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for name, make in columns.items():
            df[name] = make(df)
        return df
    return change


def _keep(df: pd.DataFrame) -> pd.DataFrame:
    return df


def _duplicate_row(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df.iloc[[10]]], ignore_index=True)


def _no_never_treated_first_period(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["first.treat"] != 0].copy()
    df["first.treat"] = 2003  # every unit treated in the first period
    return df


def _few_never_treated(df: pd.DataFrame) -> pd.DataFrame:
    never = df.loc[df["first.treat"] == 0, "countyreal"].unique()
    return df[(df["first.treat"] != 0) | df["countyreal"].isin(never[:4])]


def _few_treated_2004(df: pd.DataFrame) -> pd.DataFrame:
    early = df.loc[df["first.treat"] == 2004, "countyreal"].unique()
    return df[(df["first.treat"] != 2004) | df["countyreal"].isin(early[:3])]


CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], dict[str, Any]]] = {
    "missing column": (_keep, {"yname": "lempx"}),
    "text time column": (_with(year=lambda d: d["year"].astype(str)), {}),
    "fractional ids": (_with(countyreal=lambda d: d["countyreal"] + 0.5), {}),
    "duplicated unit-period": (_duplicate_row, {}),
    "time-varying group": (_with(**{"first.treat": lambda d: np.where(
        d.index == 1, np.where(d["first.treat"] == 2006, 2004, 2006), d["first.treat"])}), {}),
    "time-varying weights": (_with(w=lambda d: np.where(d.index == 1, 2.0, 1.0)),
                             {"weightsname": "w"}),
    "negative weights": (_with(w=lambda d: np.where(d["countyreal"] == 8001, -1.0, 1.0)),
                         {"weightsname": "w"}),
    "zero weights": (_with(w=lambda d: np.zeros(len(d))), {"weightsname": "w"}),
    "negative group": (_set("first.treat", 0, -1), {}),
    "nan outcome": (_set("lemp", 3, np.nan), {}),
    "inf outcome": (_set("lemp", 3, np.inf), {}),
    "nan covariate": (_set("lpop", 3, np.nan), {"xformla": "~ lpop"}),
    "nan weights": (_with(w=lambda d: np.where(d.index == 3, np.nan, 1.0)),
                    {"weightsname": "w"}),
    "duplicated covariate": (_with(lpop_copy=lambda d: d["lpop"]),
                             {"xformla": "~ lpop + lpop_copy"}),
    "duplicated covariate, other order": (_with(lpop_copy=lambda d: d["lpop"]),
                                          {"xformla": "~ lpop_copy + lpop"}),
    "constant covariate": (_with(one=lambda d: np.full(len(d), 3.0)),
                           {"xformla": "~ lpop + one"}),
    "no treated units": (_with(**{"first.treat": lambda d: np.zeros(len(d), dtype=int)}), {}),
    "every cohort treated in the first period": (_no_never_treated_first_period, {}),
    "single period": (lambda d: d[d["year"] == 2004], {}),
    "cohort not a period": (_with(**{"first.treat": lambda d: d["first.treat"].replace(
        2006, 2006.5)}), {}),
    "never-treated group too small": (_few_never_treated, {"xformla": "~ lpop"}),
    # the rank tolerance's two sides: 1e-9 of noise is collinear, 1e-4 is not, everywhere
    "nearly collinear covariate": (_with(lpop2=lambda d: d["lpop"] * (1 + 1e-9 * np.sin(
        np.arange(len(d))))), {"xformla": "~ lpop + lpop2"}),
    "small cohorts warn": (_few_treated_2004, {}),
}


def _spark_frame(spark: Any, pdf: pd.DataFrame) -> Any:
    return spark.createDataFrame(pdf.reset_index(drop=True))


def _dask_frame(pdf: pd.DataFrame) -> Any:
    dd = pytest.importorskip("dask.dataframe")
    return dd.from_pandas(pdf.reset_index(drop=True), npartitions=2)


def _outcome(data: Any, kwargs: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(error class or "ok", message, warnings) of an att_gt call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            moderndid.att_gt(data, **{**ROLES, **kwargs})
            kind, message = "ok", ""
        except ModernDiDError as exc:
            kind, message = type(exc).__name__, str(exc)
    seen = [str(w.message) for w in caught if issubclass(w.category, UserWarning)
            and "pyspark" not in str(w.message).lower()]
    return kind, message, seen


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return moderndid.load_mpdta()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["spark", "dask"])
@pytest.mark.parametrize("case", list(CASES))
def test_same_error_and_warnings_on_every_engine(request, mpdta, engine, case):
    make, kwargs = CASES[case]
    pdf = make(mpdta)
    expected = _outcome(pdf, kwargs)
    assert expected[0] != "ok" or expected[2], f"{case}: the case raises and warns nothing"
    if engine == "spark":
        from conftest import require_spark

        require_spark()
        data = _spark_frame(request.getfixturevalue("spark"), pdf)
    else:
        data = _dask_frame(pdf)
    assert _outcome(data, kwargs) == expected
