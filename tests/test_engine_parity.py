"""Same input, same answer on every engine: a battery of malformed and edge-case inputs
for ``att_gt`` and ``ddd``, each run in memory, on Spark and on Dask.

For every case the engines must agree on the error class and the whole message, on the
warnings, and, where a result is returned, on ATT(g,t) and its standard errors (1e-10).
No engine may leak an untyped error (numpy, pandas, pyarrow, py4j, dask): anything that
is not a :class:`~moderndid.errors.ModernDiDError` fails the test. A representative subset
also runs through the Spark SQL table functions.

The decisions come from one planner (:mod:`moderndid.did.plan`), so these tests pin that no
engine keeps a check, a recoding or a message of its own.
"""

from __future__ import annotations

import functools
import pathlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import moderndid
from moderndid.errors import ModernDiDError

ROLES = {"yname": "lemp", "tname": "year", "idname": "countyreal", "gname": "first.treat"}
DDD_ROLES = {"yname": "y", "tname": "time", "idname": "id", "gname": "state",
             "pname": "partition"}
DATA = pathlib.Path(__file__).resolve().parent / "data"
TOL = 1e-10

Make = Callable[[pd.DataFrame], pd.DataFrame]


def _set(column: str, rows: int | list[int], value: Any) -> Make:
    """``column`` set to ``value`` in ``rows`` (the column becomes float for float values,
    object for others that its type cannot hold)."""
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        first = value[0] if isinstance(value, list) else value
        if isinstance(first, float):
            df[column] = df[column].astype(np.float64)
        elif first is None or isinstance(first, str):
            df[column] = df[column].astype(object)
        df.loc[rows, column] = value
        return df
    return change


def _with(**columns: Callable[[pd.DataFrame], Any]) -> Make:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for name, make in columns.items():
            df[name] = make(df)
        return df
    return change


def _keep(df: pd.DataFrame) -> pd.DataFrame:
    return df


def _rows(pick: Callable[[pd.DataFrame], Any]) -> Make:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        return df[pick(df)].reset_index(drop=True)
    return change


def _duplicate(*rows: int) -> Make:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([df, df.iloc[list(rows)]], ignore_index=True)
    return change


def _units_of(column: str, value: Any, keep: int, unit: str = "countyreal") -> Make:
    """Keep only ``keep`` units of those with ``column == value``."""
    def change(df: pd.DataFrame) -> pd.DataFrame:
        units = df.loc[df[column] == value, unit].unique()
        return df[(df[column] != value) | df[unit].isin(units[:keep])].reset_index(drop=True)
    return change


def _no_never_treated_first_period(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["first.treat"] != 0].copy()
    df["first.treat"] = 2003  # every unit treated in the first period
    return df


def _vary_in_unit(column: str) -> Make:
    """``column`` changes in the second row of the first unit (and of unit 8019)."""
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        rows = df.index[(df["countyreal"].isin([8001, 8019])) & (df["year"] == 2004)]
        df.loc[rows, column] = df.loc[rows, column] + 1
        return df
    return change


def _per_unit(column: str, values: dict[int, Any]) -> Make:
    """``column`` set to ``values[unit]`` in every row of those units of mpdta."""
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for unit, value in values.items():
            df.loc[df["countyreal"] == unit, column] = value
        return df
    return change


def _cluster(df: pd.DataFrame) -> Any:
    return (df["countyreal"] % 37).astype(np.int64)


def _text(column: str) -> Make:
    return _with(**{column: lambda d: d[column].astype(str)})


W1 = {"w": lambda d: 1.0 + (d["countyreal"] % 5) / 4}

# (make the data, keyword arguments of att_gt). Each case names what it exercises.
CASES: dict[str, tuple[Make, dict[str, Any]]] = {
    # --- columns missing, misspelled, named by a non-string, of the wrong type ----------
    "missing outcome column": (_keep, {"yname": "lempx"}),
    "misspelled time column": (_keep, {"tname": "Year"}),
    "missing id column": (_keep, {"idname": "county"}),
    "missing group column": (_keep, {"gname": "first_treat"}),
    "missing weights column": (_keep, {"weightsname": "weight"}),
    "missing cluster column": (_keep, {"clustervars": ["state"]}),
    "missing covariate column": (_keep, {"xformla": "~ lpopx"}),
    "id named by a number": (_keep, {"idname": 5}),
    "text time column": (_text("year"), {}),
    "text outcome column": (_text("lemp"), {}),
    "text group column": (_text("first.treat"), {}),
    "text weights column": (_with(w=lambda d: np.full(len(d), "1")), {"weightsname": "w"}),
    "text covariate": (_text("lpop"), {"xformla": "~ lpop"}),
    "date time column": (_with(year=lambda d: pd.to_datetime(d["year"].astype(str) + "-01-01")),
                         {}),
    "date ids": (_with(countyreal=lambda d: pd.to_datetime(d["countyreal"], unit="D")), {}),
    "fractional ids": (_with(countyreal=lambda d: d["countyreal"] + 0.5), {}),
    "fractional cluster": (_with(c=lambda d: _cluster(d) + 0.5), {"clustervars": ["c"]}),
    "string ids": (_with(countyreal=lambda d: "c" + d["countyreal"].astype(str)), {}),
    "string cluster": (_with(c=lambda d: "s" + _cluster(d).astype(str)),
                       {"clustervars": ["c"]}),
    "boolean covariate": (_with(big=lambda d: d["lpop"] > 4), {"xformla": "~ big"}),
    "column names with spaces": (lambda d: d.rename(columns={"lemp": "log emp"}),
                                 {"yname": "log emp"}),
    "float32 outcome": (_with(lemp=lambda d: d["lemp"].astype(np.float32)), {}),
    "categorical string ids": (_with(countyreal=lambda d: ("c" + d["countyreal"].astype(str))
                                     .astype("category")), {}),
    "nullable integer group with a null": (
        _with(**{"first.treat": lambda d: d["first.treat"].astype("Int64").mask(
            d.index == 6)}), {}),
    # --- NaN / inf in every role --------------------------------------------------------
    "nan outcome": (_set("lemp", 3, np.nan), {}),
    "inf outcome": (_set("lemp", 3, np.inf), {}),
    "-inf outcome": (_set("lemp", [3, 9], -np.inf), {}),
    "nan period": (_set("year", 7, np.nan), {}),
    "inf period": (_set("year", 7, np.inf), {}),
    "nan cohort": (_set("first.treat", 12, np.nan), {}),
    "inf cohort": (_set("first.treat", 12, np.inf), {}),
    "nan covariate": (_set("lpop", 3, np.nan), {"xformla": "~ lpop"}),
    "inf covariate": (_set("lpop", 3, np.inf), {"xformla": "~ lpop"}),
    "nan weights": (_with(w=lambda d: np.where(d.index == 3, np.nan, 1.0)),
                    {"weightsname": "w"}),
    "inf weights": (_with(w=lambda d: np.where(d.index == 3, np.inf, 1.0)),
                    {"weightsname": "w"}),
    "nan cluster": (_with(c=lambda d: np.where(d.index == 3, np.nan, _cluster(d))),
                    {"clustervars": ["c"]}),
    "nan id": (_set("countyreal", 3, np.nan), {}),
    "null string id": (_set("countyreal", 3, None), {}),
    "nan outcome, repeated cross sections": (_set("lemp", 3, np.nan), {"panel": False}),
    # --- panel structure ----------------------------------------------------------------
    "duplicated unit-period": (_duplicate(10), {}),
    "duplicated row of a cohort dropped in the first period": (
        lambda d: _duplicate(0)(_per_unit("first.treat", {8001: 2003})(d)), {}),
    "duplicated rows of two units": (_duplicate(2000, 10), {}),
    "time-varying group": (_vary_in_unit("first.treat"), {}),
    "time-varying weights": (_vary_in_unit("w"), {"weightsname": "w"}),
    "time-varying cluster": (_vary_in_unit("c"), {"clustervars": ["c"]}),
    "unbalanced panel": (_rows(lambda d: d.index != 7), {}),
    "unbalanced panel allowed": (_rows(lambda d: d.index != 7),
                                 {"allow_unbalanced_panel": True}),
    "empty frame": (_rows(lambda d: d.index < 0), {}),
    "periods with gaps": (_rows(lambda d: d["year"].isin([2003, 2004, 2006, 2007])), {}),
    "negative periods": (_with(year=lambda d: d["year"] - 2010, **{
        "first.treat": lambda d: np.where(d["first.treat"] > 0, d["first.treat"] - 2010, 0)}),
        {}),
    "repeated cross sections without ids": (_keep, {"panel": False, "idname": None}),
    "repeated cross sections with a nan id": (_set("countyreal", 3, np.nan), {"panel": False}),
    "duplicated rows, repeated cross sections": (_duplicate(10), {"panel": False}),
    # --- weights ------------------------------------------------------------------------
    "negative weights": (_with(w=lambda d: np.where(d["countyreal"] == 8001, -1.0, 1.0)),
                         {"weightsname": "w"}),
    "zero weights": (_with(w=lambda d: np.zeros(len(d))), {"weightsname": "w"}),
    # --- cohorts and periods ------------------------------------------------------------
    "negative group": (_per_unit("first.treat", {8001: -1}), {}),
    "two negative groups": (_per_unit("first.treat", {8001: -1, 8019: -3}), {}),
    "cohort not a period": (_with(**{"first.treat": lambda d: d["first.treat"].replace(
        2006, 2006.5)}), {}),
    "two cohorts not periods": (_with(**{"first.treat": lambda d: d["first.treat"].replace(
        {2006: 2006.5, 2004: 2003.5})}), {}),
    "no treated units": (_with(**{"first.treat": lambda d: np.zeros(len(d), dtype=int)}), {}),
    "every cohort treated in the first period": (_no_never_treated_first_period, {}),
    "no never-treated units": (_rows(lambda d: d["first.treat"] != 0), {}),
    "no never-treated units, not-yet-treated": (_rows(lambda d: d["first.treat"] != 0),
                                                {"control_group": "notyettreated"}),
    "cohort after the last period": (_with(**{"first.treat": lambda d: d["first.treat"].replace(
        2007, 2010)}), {}),
    "single period": (_rows(lambda d: d["year"] == 2004), {}),
    "two periods": (_rows(lambda d: d["year"] <= 2004), {}),
    "fractional periods": (_with(year=lambda d: d["year"] + 0.5), {}),
    "one-unit cohort": (_units_of("first.treat", 2004, 1), {}),
    "small cohorts warn": (_units_of("first.treat", 2004, 3), {}),
    "never-treated group too small": (_units_of("first.treat", 0, 4), {"xformla": "~ lpop"}),
    "anticipation beyond the data": (_keep, {"anticipation": 5}),
    "anticipation of one period": (_keep, {"anticipation": 1}),
    # --- covariates ---------------------------------------------------------------------
    "duplicated covariate": (_with(lpop_copy=lambda d: d["lpop"]),
                             {"xformla": "~ lpop + lpop_copy"}),
    "duplicated covariate, other order": (_with(lpop_copy=lambda d: d["lpop"]),
                                          {"xformla": "~ lpop_copy + lpop"}),
    "constant covariate": (_with(one=lambda d: np.full(len(d), 3.0)),
                           {"xformla": "~ lpop + one"}),
    # the rank tolerance's two sides: 1e-9 of noise is collinear, 1e-4 is not, everywhere
    "nearly collinear covariate": (_with(lpop2=lambda d: d["lpop"] * (1 + 1e-9 * np.sin(
        np.arange(len(d))))), {"xformla": "~ lpop + lpop2"}),
    "separating covariate": (_with(sep=lambda d: (d["first.treat"] == 2004) * 10.0
                                   + d["lpop"] * 1e-3), {"xformla": "~ sep"}),
    "time-varying covariate": (_with(tv=lambda d: d["lpop"] + (d["year"] - 2003) * 0.1),
                               {"xformla": "~ tv"}),
    # --- extreme finite values ----------------------------------------------------------
    "outcome of 1e200": (_set("lemp", [3, 8], 1e200), {}),
    "weights of 1e300": (_with(w=lambda d: np.where(d["countyreal"] == 8001, 1e300, 1.0)),
                         {"weightsname": "w"}),
    "covariate of 1e200": (_set("lpop", [0, 1, 2, 3, 4], 1e200), {"xformla": "~ lpop"}),
    "outcome of 1e50 is estimated": (_set("lemp", [3, 8], 1e50), {}),
    "weights of 1e300, repeated cross sections": (
        _with(w=lambda d: np.where(d["countyreal"] == 8001, 1e300, 1.0)),
        {"weightsname": "w", "panel": False}),
    # --- options ------------------------------------------------------------------------
    "unknown est_method": (_keep, {"est_method": "ols"}),
    "unknown keyword argument": (_keep, {"estmethod": "dr", "cores": 2}),
    "unknown control_group": (_keep, {"control_group": "never"}),
    "unknown base_period": (_keep, {"base_period": "fixed"}),
    "alpha out of range": (_keep, {"alpha": 1.5}),
    "negative anticipation": (_keep, {"anticipation": -1}),
    "two extra cluster variables": (_with(c=_cluster, c2=_cluster),
                                    {"clustervars": ["c", "c2"]}),
    "malformed formula": (_keep, {"xformla": "~ lpop +"}),
    "panel without id": (_keep, {"idname": None}),
    "zero partitions": (_keep, {"n_partitions": 0}),
    "cluster named by a string": (_keep, {"clustervars": "c"}),
    "cluster on the unit id": (_keep, {"clustervars": ["countyreal"]}),
    "three partitions": (_keep, {"n_partitions": 3, "xformla": "~ lpop"}),
    "not-yet-treated with anticipation": (_keep, {"control_group": "notyettreated",
                                                  "anticipation": 1}),
    # --- results that must agree --------------------------------------------------------
    "weights and clusters": (_with(c=_cluster, **W1), {"weightsname": "w", "clustervars": ["c"]}),
    "repeated cross sections": (_keep, {"panel": False, "xformla": "~ lpop"}),
    "inverse probability weighting": (_keep, {"est_method": "ipw", "xformla": "~ lpop"}),
    "outcome regression, universal base": (_keep, {"est_method": "reg", "xformla": "~ lpop",
                                                   "base_period": "universal"}),
}

# the columns that some cases name exist in every case's data (c, w)
_BASE_COLUMNS = {"c": _cluster, "w": lambda d: np.ones(len(d))}


def _ddd_vary(column: str) -> Make:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        rows = df.index[(df["id"].isin([1, 7])) & (df["time"] == 2)]
        df.loc[rows, column] = 1 - df.loc[rows, column] if column == "partition" else \
            df.loc[rows, column] + 1
        return df
    return change


DDD_COVS = "~ cov1 + cov2"
DDD_CASES: dict[str, tuple[Make, dict[str, Any]]] = {
    "missing partition column": (_keep, {"pname": "eligible"}),
    "text partition column": (_text("partition"), {}),
    "partition of 0, 1, 2": (_set("partition", [0, 1, 2], 2), {}),
    "nan partition": (_set("partition", 4, np.nan), {}),
    "inf partition": (_set("partition", 4, np.inf), {}),
    "weights varying within a unit": (_with(w=lambda d: np.where(d.index == 4, 2.0, 1.0)),
                                      {"weightsname": "w"}),
    "unknown R argument": (_keep, {"nboot": 0}),
    "partition varying within a unit": (_ddd_vary("partition"), {}),
    "group varying within a unit": (_ddd_vary("state"), {}),
    "nan outcome": (_set("y", 4, np.nan), {}),
    "inf covariate": (_set("cov1", 4, np.inf), {"xformla": DDD_COVS}),
    "collinear covariates": (_with(cov1b=lambda d: d["cov1"] * 2),
                             {"xformla": "~ cov1 + cov1b"}),
    "duplicated unit-period": (_duplicate(20), {}),
    "nan cluster": (_with(cl=lambda d: np.where(d.index == 4, np.nan, d["cluster"])),
                    {"cluster": "cl"}),
    "no eligible units in a cohort": (_rows(lambda d: ~((d["state"] == 2)
                                                        & (d["partition"] == 1))), {}),
    "outcome of 1e200": (_set("y", [0, 1], 1e200), {}),
    "unknown est_method": (_keep, {"est_method": "ols"}),
    "result with covariates": (_keep, {"xformla": DDD_COVS}),
    "result, not-yet-treated, clustered": (_keep, {"control_group": "notyettreated",
                                                   "cluster": "cluster"}),
    "two periods": (_rows(lambda d: d["time"] >= 2), {}),
    "result, string ids and weights": (_with(w=lambda d: 1.0 + (d["id"] % 3) / 2,
                                             id=lambda d: "u" + d["id"].astype(str)),
                                       {"weightsname": "w"}),
    "result, repeated cross sections": (_keep, {"panel": False, "xformla": DDD_COVS}),
}


def _numbers(result: Any) -> tuple[np.ndarray, np.ndarray]:
    att = getattr(result, "att_gt", None)
    if att is None:
        att = result.att
    se = getattr(result, "se_gt", None)
    if se is None:
        se = result.se
    return np.atleast_1d(np.asarray(att, float)), np.atleast_1d(np.asarray(se, float))


def _outcome(estimator: Callable[..., Any], data: Any, kwargs: dict[str, Any]
             ) -> tuple[str, str, list[str], Any]:
    """(error class or "ok", message, warnings, (ATT, SE) or None) of an estimator call.

    Only moderndid's typed errors are caught: any other exception fails the test."""
    numbers = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            numbers = _numbers(estimator(data, **kwargs))
            kind, message = "ok", ""
        except ModernDiDError as exc:
            kind, message = type(exc).__name__, str(exc)
    seen = [f"{w.category.__name__}: {w.message}" for w in caught
            if "pyspark" not in str(w.message).lower()
            and not issubclass(w.category, DeprecationWarning | FutureWarning)]
    return kind, message, seen, numbers


def _assert_same(got: tuple, expected: tuple, case: str) -> None:
    assert got[:3] == expected[:3], case
    if expected[3] is not None:
        for a, b in zip(got[3], expected[3], strict=True):
            np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL, err_msg=case)


@functools.cache
def _mpdta() -> pd.DataFrame:
    return moderndid.load_mpdta()


@functools.cache
def _ddd_panel() -> pd.DataFrame:
    return pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")


def _case_data(case: str) -> pd.DataFrame:
    make, _ = CASES[case]
    base = _mpdta().copy()
    for name, column in _BASE_COLUMNS.items():
        base[name] = column(base)
    return make(base).reset_index(drop=True)


@functools.cache
def _expected(estimator: str, case: str) -> tuple:
    """The in-memory outcome of a case (computed once for both distributed engines)."""
    if estimator == "att_gt":
        return _outcome(moderndid.att_gt, _case_data(case), {**ROLES, **CASES[case][1]})
    make, kwargs = DDD_CASES[case]
    return _outcome(moderndid.ddd, make(_ddd_panel()).reset_index(drop=True),
                    {**DDD_ROLES, **kwargs})


def _distributed(request: Any, engine: str, pdf: pd.DataFrame) -> Any:
    if engine == "spark":
        from conftest import require_spark

        require_spark()
        spark = request.getfixturevalue("spark")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(pdf) == 0:  # Spark infers no schema from an empty pandas frame
                return spark.createDataFrame(_mpdta()).limit(0)
            return spark.createDataFrame(pdf.reset_index(drop=True))
    dd = pytest.importorskip("dask.dataframe")
    return dd.from_pandas(pdf.reset_index(drop=True), npartitions=2)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["spark", "dask"])
@pytest.mark.parametrize("case", list(CASES))
def test_att_gt_same_answer_on_every_engine(request, engine, case):
    data = _distributed(request, engine, _case_data(case))
    got = _outcome(moderndid.att_gt, data, {**ROLES, **CASES[case][1]})
    _assert_same(got, _expected("att_gt", case), case)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["spark", "dask"])
@pytest.mark.parametrize("case", list(DDD_CASES))
def test_ddd_same_answer_on_every_engine(request, engine, case):
    make, kwargs = DDD_CASES[case]
    data = _distributed(request, engine, make(_ddd_panel()))
    got = _outcome(moderndid.ddd, data, {**DDD_ROLES, **kwargs})
    _assert_same(got, _expected("ddd", case), case)


def test_battery_is_large_enough():
    assert len(CASES) >= 60 and len(DDD_CASES) >= 10
    outcomes = {_expected("att_gt", c)[0] for c in CASES}
    assert "ok" in outcomes and len(outcomes) >= 5  # results and several error classes


# A representative subset through the Spark SQL table functions: errors found when the
# call is checked (columns, options) and while estimating, and results.
SQL_CASES = [
    "missing outcome column", "text time column", "nan outcome", "duplicated unit-period",
    "time-varying group", "negative weights", "cohort not a period", "single period",
    "duplicated covariate", "outcome of 1e200", "unknown est_method", "date time column",
    "string ids", "weights and clusters", "repeated cross sections",
]
SQL_DDD_CASES = ["nan partition", "outcome of 1e200", "result with covariates"]


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = ", ".join(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _sql_outcome(session: Any, function: str, pdf: pd.DataFrame, kwargs: dict[str, Any]
                 ) -> tuple[str, Any]:
    """("ok", (ATT, SE)) or ("error", the text of Spark's exception) of a SQL call."""
    from pyspark.errors import AnalysisException, IllegalArgumentException

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session.createDataFrame(pdf.reset_index(drop=True)).createOrReplaceTempView("case")
        arguments = ", ".join(f"{k} => {_sql_literal(v)}" for k, v in kwargs.items())
        try:
            rows = session.sql(f"SELECT * FROM {function}(TABLE(case), {arguments}) "
                               "ORDER BY `group`, time").toPandas()
        except (AnalysisException, IllegalArgumentException) as exc:
            return "error", str(exc)
    return "ok", (rows["att"].to_numpy(float), rows["se"].to_numpy(float))


@pytest.fixture(scope="module")
def sql_session(spark):
    from moderndid.spark import register

    register(spark)
    return spark


def _assert_sql_same(got: tuple[str, Any], expected: tuple, case: str) -> None:
    kind, message = expected[:2]
    if kind == "ok":
        assert got[0] == "ok", (case, got[1])
        for a, b in zip(got[1], expected[3], strict=True):
            np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL, err_msg=case)
    else:
        assert got[0] == "error" and f"{kind}: {message}" in got[1], (case, got[1][:600])


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.parametrize("case", SQL_CASES)
def test_att_gt_same_answer_in_spark_sql(sql_session, case):
    got = _sql_outcome(sql_session, "moderndid_att_gt", _case_data(case),
                       {**ROLES, **CASES[case][1]})
    _assert_sql_same(got, _expected("att_gt", case), case)


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.parametrize("case", SQL_DDD_CASES)
def test_ddd_same_answer_in_spark_sql(sql_session, case):
    make, kwargs = DDD_CASES[case]
    got = _sql_outcome(sql_session, "moderndid_ddd", make(_ddd_panel()),
                       {**DDD_ROLES, **kwargs})
    _assert_sql_same(got, _expected("ddd", case), case)
