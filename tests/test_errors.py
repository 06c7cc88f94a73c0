"""Bad input to `att_gt` / `aggte` raises a typed error that names what is wrong.

Every error a user can trigger derives from :class:`moderndid.errors.ModernDiDError`; each test
pins the specific subclass and a message fragment naming the column, unit, cohort or option at
fault, so that a regression to a bare numpy / pandas / pyarrow / formulaic exception (or to a
vaguer message) fails here.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import moderndid
from moderndid import aggte, att_gt
from moderndid.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    DataStructureError,
    InvalidOptionError,
    MissingValuesError,
    ModernDiDError,
    NumericalOverflowError,
    SingularDesignError,
    UnsupportedInputError,
)

ROLES = {"yname": "lemp", "tname": "year", "idname": "countyreal", "gname": "first.treat"}


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return moderndid.load_mpdta()


@pytest.fixture
def mp(base) -> pd.DataFrame:
    """A fresh copy of mpdta that a test may modify."""
    return base.copy()


def fit(data, **kwargs):
    """`att_gt` on mpdta's roles, with ``kwargs`` overriding them."""
    return att_gt(data, **{**ROLES, **kwargs})


def test_every_error_class_is_a_moderndid_error():
    for cls in (ColumnNotFoundError, ColumnTypeError, DataStructureError, InvalidOptionError,
                MissingValuesError, SingularDesignError, UnsupportedInputError,
                NumericalOverflowError):
        assert issubclass(cls, ModernDiDError)
        assert issubclass(cls, ValueError)


# --- missing or misspelled columns ------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "role", "wrong", "suggestion"),
    [
        ({"yname": "lemp2"}, "outcome", "lemp2", "lemp"),
        ({"yname": "LEMP"}, "outcome", "LEMP", "lemp"),  # case is ignored for suggestions
        ({"tname": "yaer"}, "time", "yaer", "year"),
        ({"idname": "county"}, "unit id", "county", "countyreal"),
        ({"gname": "first_treat"}, "group", "first_treat", "first.treat"),
        ({"weightsname": "lpopp"}, "weights", "lpopp", "lpop"),
        ({"clustervars": ["countyreal", "treatt"]}, "cluster", "treatt", "treat"),
        ({"xformla": "~ lpopx"}, "covariate", "lpopx", "lpop"),
        ({"xformla": "~ np.log(lpopx)"}, "covariate", "lpopx", "lpop"),
    ],
)
def test_missing_column_is_named_with_a_suggestion(mp, kwargs, role, wrong, suggestion):
    with pytest.raises(ColumnNotFoundError,
                       match=rf"{role}.*'{re.escape(wrong)}' is not in the data\. "
                             rf"Did you mean '{re.escape(suggestion)}'") as info:
        fit(mp, **kwargs)
    assert info.value.column == wrong
    assert isinstance(info.value, KeyError)  # so `except KeyError` keeps working


def test_missing_column_without_near_miss_has_no_suggestion(mp):
    with pytest.raises(ColumnNotFoundError, match=r"'zzz' is not in the data. Columns:") as info:
        fit(mp, yname="zzz")
    assert "Did you mean" not in str(info.value)


def test_missing_column_message_lists_at_most_30_columns(mp):
    wide = pd.concat([mp, pd.DataFrame({f"extra{i}": np.zeros(len(mp)) for i in range(50)})],
                     axis=1)
    with pytest.raises(ColumnNotFoundError, match=r"\.\.\. \(26 more\)\]"):
        fit(wide, yname="zzz")


def test_column_name_must_be_a_string(mp):
    with pytest.raises(ColumnTypeError, match=r"outcome \(yname\) must be a column name"):
        fit(mp, yname=3)


def test_dotted_column_names_work_in_xformla(mp):
    # formulaic reports `l.pop` as needing a variable `l`; the column lookup must not.
    dotted = mp.rename(columns={"lpop": "l.pop"})
    a = fit(mp, xformla="~ lpop")
    b = fit(dotted, xformla="~ l.pop")
    np.testing.assert_array_equal(a.att_gt, b.att_gt)
    np.testing.assert_array_equal(a.se_gt, b.se_gt)


# --- column types -----------------------------------------------------------------------------

@pytest.mark.parametrize(("column", "role"), [("year", "time"), ("first.treat", "group"),
                                              ("lemp", "outcome")])
def test_text_column_is_refused(mp, column, role):
    mp[column] = mp[column].astype(str)
    with pytest.raises(ColumnTypeError, match=rf"{role} .* column '{column}' must be numeric"):
        fit(mp)


def test_text_weights_are_refused(mp):
    mp["w"] = "1"
    with pytest.raises(ColumnTypeError, match=r"weights .* column 'w' must be numeric"):
        fit(mp, weightsname="w")


def test_datetime_time_column_is_refused(mp):
    mp["year"] = pd.to_datetime(mp["year"].astype(str))
    # the engine-neutral type name (not Arrow's timestamp[ns] nor numpy's datetime64[ns])
    with pytest.raises(ColumnTypeError,
                       match=r"time .* column 'year' must be numeric, but has type timestamp$"):
        fit(mp)


def test_type_names_are_the_same_for_every_engine():
    from moderndid.core.frames import pandas_type_label, spark_type_label, type_label

    arrow = {pa.int32(): "integer", pa.uint8(): "integer", pa.float32(): "float",
             pa.large_string(): "string", pa.string(): "string", pa.date32(): "date",
             pa.timestamp("us", tz="UTC"): "timestamp", pa.bool_(): "boolean",
             pa.decimal128(10, 2): "decimal", pa.dictionary(pa.int8(), pa.string()): "string"}
    for kind, label in arrow.items():
        assert type_label(kind) == label
    pandas = {np.dtype("int64"): "integer", np.dtype("float32"): "float",
              np.dtype("object"): "string", pd.StringDtype(): "string",
              np.dtype("datetime64[ns]"): "timestamp", pd.Int64Dtype(): "integer",
              pd.CategoricalDtype(["a"]): "string", np.dtype("bool"): "boolean"}
    for dtype, label in pandas.items():
        assert pandas_type_label(dtype) == label
    # Spark types by class name (no pyspark needed here)
    for name, label in {"LongType": "integer", "DoubleType": "float", "StringType": "string",
                        "DateType": "date", "TimestampNTZType": "timestamp"}.items():
        assert spark_type_label(type(name, (), {})()) == label


def test_mixed_type_object_column_is_named(mp):
    mp["lemp"] = mp["lemp"].astype(object)
    mp.loc[3, "lemp"] = "n/a"
    with pytest.raises(ColumnTypeError, match=r"column 'lemp' cannot be read as a typed column"):
        fit(mp)


def test_mixed_type_object_column_not_used_is_ignored(base, mp):
    mp["notes"] = [1] * (len(mp) - 1) + ["text"]
    np.testing.assert_array_equal(fit(mp).att_gt, fit(base).att_gt)


def test_non_integer_float_ids_are_refused(mp):
    mp["countyreal"] = mp["countyreal"] + 0.5
    with pytest.raises(ColumnTypeError, match=r"unit id .* column 'countyreal' holds non-integer"):
        fit(mp)


def test_datetime_ids_are_refused(mp):
    mp["countyreal"] = pd.to_datetime(mp["countyreal"], unit="D")
    with pytest.raises(ColumnTypeError, match=r"unit id .* column 'countyreal' must hold integers"):
        fit(mp)


def test_non_integer_cluster_is_refused(mp):
    mp["state"] = mp["countyreal"] // 1000 + 0.5
    with pytest.raises(ColumnTypeError, match=r"cluster .* column 'state' holds non-integer"):
        fit(mp, clustervars=["countyreal", "state"])


# --- panel structure --------------------------------------------------------------------------

def test_duplicated_unit_period_rows_name_unit_and_period(mp):
    dup = pd.concat([mp, mp.iloc[[7]]], ignore_index=True)  # county 8019 in 2005
    with pytest.raises(DataStructureError,
                       match=r"unit 8019 has more than one row in period 2005"):
        fit(dup)


def test_duplicated_string_unit_is_quoted(mp):
    mp["countyreal"] = "c" + mp["countyreal"].astype(str)
    dup = pd.concat([mp, mp.iloc[[7]]], ignore_index=True)
    with pytest.raises(DataStructureError, match=r"unit 'c8019' has more than one row"):
        fit(dup)


def test_time_varying_group_names_the_unit(mp):
    mp.loc[6, "first.treat"] = 2006  # county 8019, never treated in its other rows
    with pytest.raises(DataStructureError,
                       match=r"group column 'first.treat' varies over time within unit 8019"):
        fit(mp)


def test_time_varying_weights_name_the_unit(mp):
    mp["w"] = 1.0
    mp.loc[6, "w"] = 2.0
    with pytest.raises(DataStructureError,
                       match=r"weights column 'w' varies over time within unit 8019"):
        fit(mp, weightsname="w")


def test_time_varying_cluster_names_the_unit(mp):
    mp["state"] = mp["countyreal"] // 1000
    mp.loc[6, "state"] = 99
    with pytest.raises(DataStructureError,
                       match=r"cluster column 'state' varies over time within unit 8019"):
        fit(mp, clustervars=["countyreal", "state"])


def test_negative_weights_are_refused(mp):
    mp["w"] = 1.0
    mp.loc[mp["countyreal"] == 8019, "w"] = -1.0
    with pytest.raises(DataStructureError,
                       match=r"weights column 'w' has negative values$"):
        fit(mp, weightsname="w")


def test_all_zero_weights_are_refused(mp):
    mp["w"] = 0.0
    with pytest.raises(DataStructureError, match=r"weights column 'w' is zero everywhere"):
        fit(mp, weightsname="w", est_method="ipw")


def test_the_smallest_offending_unit_is_named(mp):
    # the rule of every engine: the smallest unit (and its earliest period), whatever the
    # order of the rows
    dup = pd.concat([mp, mp.iloc[[2000, 7]]], ignore_index=True).iloc[::-1]
    with pytest.raises(DataStructureError,
                       match=r"unit 8019 has more than one row in period 2005"):
        fit(dup)
    for unit in (8019, 8001):
        mp.loc[(mp["countyreal"] == unit) & (mp["year"] == 2004), "first.treat"] = 1999
    with pytest.raises(DataStructureError, match=r"varies over time within unit 8001;"):
        fit(mp.iloc[::-1])


def test_the_smallest_offending_cohort_is_named(mp):
    mp["first.treat"] = mp["first.treat"].astype(float).replace({2006: 2006.5, 2004: 2003.5})
    with pytest.raises(DataStructureError, match=r"first-treated period 2003.5, which"):
        fit(mp)
    mp.loc[mp["countyreal"] == 8001, "first.treat"] = -1
    mp.loc[mp["countyreal"] == 8019, "first.treat"] = -3
    with pytest.raises(DataStructureError, match=r"has negative values \(-3\)"):
        fit(mp)


def test_varying_group_raises_before_cohort_warnings(mp):
    # a group value of the first period in one row must not warn that a cohort is dropped
    mp.loc[1, "first.treat"] = 2003
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataStructureError, match=r"varies over time within unit 8001"):
            fit(mp)


@pytest.mark.parametrize(("column", "kwargs", "role"), [
    ("lemp", {}, "outcome"),
    ("w", {"weightsname": "w"}, "weights"),
    ("lpop", {"xformla": "~ lpop"}, "covariate"),
])
@pytest.mark.parametrize("panel", [True, False])
def test_values_that_overflow_the_estimator_are_refused(mp, column, kwargs, role, panel):
    mp["w"] = 1.0
    mp.loc[mp["countyreal"] == 8001, column] = -1e200 if column != "w" else 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        with pytest.raises(NumericalOverflowError,
                           match=rf"{role} .* column '{column}' has values as large as "
                                 r"1e\+[23]00 in absolute value \(the limit is 1e\+100\)"):
            fit(mp, panel=panel, **kwargs)


def test_large_values_below_the_limit_are_estimated(mp, base):
    mp["lemp"] = mp["lemp"] * 1e90
    np.testing.assert_allclose(fit(mp).att_gt, fit(base).att_gt * 1e90, rtol=1e-9)


def test_negative_group_is_refused(mp):
    mp.loc[mp["countyreal"] == 8019, "first.treat"] = -1
    with pytest.raises(DataStructureError,
                       match=r"group column 'first.treat' has negative values \(-1\); it holds the first"):
        fit(mp)


def test_duplicated_column_names_are_refused(mp):
    mp.columns = ["year", "countyreal", "lpop", "lemp", "first.treat", "year"]
    with pytest.raises(DataStructureError, match=r"duplicated column names: \['year'\]"):
        fit(mp)


def test_duplicated_column_names_in_arrow_are_refused(base):
    table = pa.Table.from_pandas(base, preserve_index=False)
    table = table.append_column("lemp", table.column("lpop"))
    with pytest.raises(DataStructureError, match=r"duplicated column names: \['lemp'\]"):
        fit(table)


# --- missing values ---------------------------------------------------------------------------

def test_nan_outcome_is_refused(mp):
    mp.loc[7, "lemp"] = np.nan
    with pytest.raises(MissingValuesError,
                       match=r"outcome \(yname\) column 'lemp' has 1 missing or non-finite value\(s\); drop"):
        fit(mp)


def test_null_in_nullable_outcome_is_refused(mp):
    mp["lemp"] = mp["lemp"].astype("Float64")
    mp.loc[7, "lemp"] = pd.NA
    with pytest.raises(MissingValuesError, match=r"column 'lemp' has 1 missing"):
        fit(mp)


def test_infinite_outcome_is_refused(mp):
    mp.loc[7, "lemp"] = np.inf
    with pytest.raises(MissingValuesError, match=r"column 'lemp' has 1 missing or non-finite"):
        fit(mp)


@pytest.mark.parametrize("xformla", ["~ lpop", "~ lpop + C(treat)"])
def test_nan_covariate_is_refused(mp, xformla):
    mp.loc[7, "lpop"] = np.nan
    with pytest.raises(MissingValuesError, match=r"covariate \(xformla\) column 'lpop' has 1 missing"):
        fit(mp, xformla=xformla)


def test_nan_made_by_a_formula_transform_names_the_term(mp):
    with pytest.raises(MissingValuesError, match=r"covariate \(xformla\) term column 'np.log\(lpop - 6\)'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's log of negatives
            fit(mp, xformla="~ np.log(lpop - 6)")


@pytest.mark.parametrize("dtype", ["Int64", "string", "float"])
def test_null_id_is_refused(mp, dtype):
    mp["countyreal"] = mp["countyreal"].astype(dtype)
    mp.loc[7, "countyreal"] = None
    with pytest.raises(MissingValuesError,
                       match=r"unit id \(idname\) column 'countyreal' has 1 missing or non-finite value"):
        fit(mp)


def test_nan_group_is_refused(mp):
    mp["first.treat"] = mp["first.treat"].astype(float)
    mp.loc[7, "first.treat"] = np.nan
    with pytest.raises(MissingValuesError, match=r"group .* column 'first.treat' has 1 missing"):
        fit(mp)


def test_nan_weights_are_refused(mp):
    mp["w"] = 1.0
    mp.loc[7, "w"] = np.nan
    with pytest.raises(MissingValuesError, match=r"weights .* column 'w' has 1 missing"):
        fit(mp, weightsname="w")


def test_null_cluster_is_refused(mp):
    mp["state"] = (mp["countyreal"] // 1000).astype("Int64")
    mp.loc[7, "state"] = pd.NA
    with pytest.raises(MissingValuesError, match=r"cluster .* column 'state' has 1 missing"):
        fit(mp, clustervars="state")


# --- singular covariate designs ---------------------------------------------------------------

def test_duplicated_covariate_is_singular(mp):
    mp["lpop_copy"] = mp["lpop"]
    with pytest.raises(SingularDesignError, match=r"singular: lpop_copy is a linear combination"):
        fit(mp, xformla="~ lpop + lpop_copy")


def test_rescaled_covariate_is_singular(mp):
    with pytest.raises(SingularDesignError, match=r"singular: I\(2 \* lpop\)"):
        fit(mp, xformla="~ lpop + I(2 * lpop)")


def test_collinear_term_named_is_the_later_one_in_either_order(mp):
    # An exact tie (two identical columns) must name the later term whatever the order:
    # the in-order check cannot be flipped by BLAS or pivoting.
    mp["lpop_copy"] = mp["lpop"]
    with pytest.raises(SingularDesignError, match=r"singular: lpop is a linear combination"):
        fit(mp, xformla="~ lpop_copy + lpop")
    with pytest.raises(SingularDesignError, match=r"singular: lpop_copy is a linear comb"):
        fit(mp, xformla="~ lpop + lpop_copy")


def test_collinear_terms_in_order():
    from moderndid.core.design import collinear_terms

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=50), rng.normal(size=50)
    x = np.column_stack([np.ones(50), a, b, a + b, 2 * b, np.zeros(50), a * 1e6])
    # a + b depends on a, b; 2 b on b; the zero column is constant; 1e6 a on a
    assert collinear_terms(x.T @ x) == [3, 4, 5, 6]
    assert collinear_terms(x[:, [0, 3, 1, 2]].T @ x[:, [0, 3, 1, 2]]) == [3]
    # nearly collinear but above R's tolerance is kept
    c = a + 1e-5 * rng.normal(size=50)
    x2 = np.column_stack([np.ones(50), a, c])
    assert collinear_terms(x2.T @ x2) == []


def test_constant_covariate_is_singular(mp):
    mp["one"] = 3.0
    with pytest.raises(SingularDesignError, match=r"singular: one is a linear combination"):
        fit(mp, xformla="~ lpop + one")


# --- options ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"est_method": "foo"}, "est_method must be 'dr', 'ipw' or 'reg', got 'foo'"),
        ({"est_method": lambda *args: 0.0}, "callable.* est_method is not supported"),
        ({"control_group": "foo"}, "control_group must be 'nevertreated' or 'notyettreated'"),
        ({"base_period": "foo"}, "base_period must be 'varying' or 'universal', got 'foo'"),
        ({"alpha": 2}, r"alpha must be a number in \(0, 1\), got 2"),
        ({"alpha": float("nan")}, r"alpha must be a number in \(0, 1\)"),
        ({"biters": 0}, "biters must be a positive integer, got 0"),
        ({"anticipation": -1}, "anticipation must be a non-negative whole number.*-1"),
        ({"anticipation": 0.5}, "anticipation must be a non-negative whole number.*0.5"),
        ({"boot": "yes"}, "boot must be True or False, got 'yes'"),
        ({"cband": "no"}, "cband must be True or False, got 'no'"),
        ({"panel": "yes"}, "panel must be True or False, got 'yes'"),
        ({"clustervars": ["state", "region"]},
         r"clustervars may hold the unit id and at most one other variable.*'state', 'region'"),
        ({"clustervars": 5}, "clustervars must be a column name or a list of column names"),
        ({"clustervars": [None]}, "clustervars must be a column name or a list"),
        ({"n_partitions": -1}, "n_partitions must be a positive integer, got -1"),
        ({"n_partitions": 1.5}, "n_partitions must be a positive integer, got 1.5"),
        ({"backend": "foo"}, "backend must be None or 'numpy'.*got 'foo'"),
        ({"backend": "cupy"}, r"backend='cupy' \(GPUs\) is not available.*docs/gpu.md"),
        ({"random_state": "seed"}, "random_state must be"),
        ({"gname": None}, "gname .* is required"),
        ({"idname": None}, r"idname is required for panel data"),
    ],
)
def test_invalid_option(mp, kwargs, message):
    with pytest.raises(InvalidOptionError, match=message):
        fit(mp, **kwargs)


def test_unknown_keyword_is_an_invalid_option_with_a_suggestion(mp):
    with pytest.raises(InvalidOptionError, match=r"att_gt got unknown argument\(s\) "
                       r"'estmethod' \(did you mean 'est_method'\?\)"):
        fit(mp, estmethod="dr")


def test_zero_partitions_are_refused(mp):
    with pytest.raises(InvalidOptionError, match=r"n_partitions must be a positive integer"):
        fit(mp, n_partitions=0)


def test_numpy_integer_partitions_are_accepted(base):
    a = fit(base, n_partitions=np.int64(3))
    np.testing.assert_allclose(a.att_gt, fit(base).att_gt, rtol=0, atol=1e-12)


# --- data objects -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda df: df.head(20).to_dict("records"), "data of type list is not supported"),
        (lambda df: df.to_numpy(), "data of type ndarray is not supported"),
        (lambda df: {c: df[c].tolist() for c in df.columns}, "data of type dict"),
        (lambda df: df["lemp"], "data is a Series, not a table"),
        (lambda df: pa.Table.from_pandas(df).column("lemp"), "ChunkedArray .* not a table"),
    ],
)
def test_unsupported_data(base, make, message):
    with pytest.raises(UnsupportedInputError, match=message):
        fit(make(base))


def test_polars_lazy_frame_must_be_collected(base):
    pl = pytest.importorskip("polars")
    with pytest.raises(UnsupportedInputError, match=r"LazyFrame must be collected"):
        fit(pl.from_pandas(base).lazy())
    with pytest.raises(UnsupportedInputError, match=r"data is a Series"):
        fit(pl.from_pandas(base)["lemp"])


# --- formulas ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("xformla", "message"),
    [
        ("lpop", "xformla must be one-sided and start with '~'"),
        ("lemp ~ lpop", "xformla must be one-sided and start with '~'"),
        (5, "xformla must be a string"),
        ("~ lpop +", r"cannot parse xformla '~ lpop \+'"),
        ("~ (lpop", r"cannot parse xformla '~ \(lpop'"),
        ("~ lpop | treat", "xformla must be a single one-sided formula"),
        ("~ lpop ~ treat", "xformla must be a single one-sided formula"),
        ("~ 0", "xformla '~ 0' has no terms"),
    ],
)
def test_bad_xformla(mp, xformla, message):
    with pytest.raises(InvalidOptionError, match=message) as info:
        fit(mp, xformla=xformla)
    assert "\x1b[" not in str(info.value)  # no terminal colour codes from formulaic


# --- cohorts ----------------------------------------------------------------------------------

def test_no_treated_units(mp):
    mp["first.treat"] = 0
    with pytest.raises(DataStructureError, match=r"no treated cohort is left to estimate"):
        fit(mp)


def test_no_rows_left_after_dropping_first_period_cohorts(mp):
    mp["first.treat"] = 2003  # everyone treated in the first period
    with pytest.warns(UserWarning), pytest.raises(DataStructureError, match=r"no rows are left"):
        fit(mp)


def test_empty_data(base):
    with pytest.raises(DataStructureError, match=r"the data has no rows"):
        fit(base.iloc[:0])


def test_single_period(base):
    with pytest.warns(UserWarning, match=r"already treated in the first period"), \
            pytest.raises(DataStructureError, match=r"time column 'year' has fewer than two"):
        fit(base[base["year"] == 2004])


def test_cohort_that_is_not_a_period(mp):
    mp["first.treat"] = mp["first.treat"].astype(float)
    mp.loc[mp["first.treat"] == 2006, "first.treat"] = 2005.5
    with pytest.raises(DataStructureError,
                       match=r"first-treated period 2005.5, which is not one of the time periods"):
        fit(mp)


# --- aggte ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(base):
    return fit(base)


def test_aggte_unknown_type(fitted):
    with pytest.raises(InvalidOptionError, match=r"type must be one of .* got 'foo'"):
        aggte(fitted, type="foo")


def test_aggte_needs_an_att_gt_result():
    with pytest.raises(InvalidOptionError, match=r"aggte needs the MPResult returned by att_gt"):
        aggte({"att_gt": [0.1]})


def test_aggte_negative_balance_e(fitted):
    with pytest.raises(InvalidOptionError, match=r"balance_e must be a non-negative integer"):
        aggte(fitted, type="dynamic", balance_e=-1)


def test_aggte_cannot_change_clustering(fitted):
    with pytest.raises(InvalidOptionError, match=r"aggte cannot change clustering.*'treat'"):
        aggte(fitted, clustervars=["countyreal", "treat"])
    aggte(fitted, clustervars="countyreal")  # the unit id is the fit's clustering: fine


def test_aggte_alpha(fitted):
    with pytest.raises(InvalidOptionError, match=r"alpha must be a number in \(0, 1\)"):
        aggte(fitted, alpha=1.5)


def test_aggte_na_cells_need_na_rm(base):
    # Repeated cross sections without cohort 2006 in 2005: ATT(2006, t) has no treated
    # observations in 2005 (a period or base period of three cells), so those cells are NA.
    data = base[~((base["first.treat"] == 2006) & (base["year"] == 2005))]
    with pytest.warns(UserWarning, match=r"ATT.*set to NA for 3 cell"):
        result = fit(data, panel=False)
    assert np.isnan(result.att_gt).sum() == 3
    with pytest.raises(MissingValuesError,
                       match=r"ATT\(g,t\) is NA for 3 cell\(s\) \(first: g=2006, t=2005\)"):
        aggte(result, type="group")
    agg = aggte(result, type="group", na_rm=True)
    assert np.isfinite(agg.overall_att)


# --- input formats ----------------------------------------------------------------------------

def _assert_same_fit(a, b):
    np.testing.assert_array_equal(a.groups, b.groups)
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.att_gt, b.att_gt)
    np.testing.assert_array_equal(a.se_gt, b.se_gt)


@pytest.mark.parametrize("xformla", [None, "~ lpop"])
def test_pandas_polars_pyarrow_agree(base, xformla):
    pl = pytest.importorskip("polars")
    kwargs = {"xformla": xformla, "clustervars": None}
    ref = fit(base, **kwargs)
    _assert_same_fit(ref, fit(pl.from_pandas(base), **kwargs))
    _assert_same_fit(ref, fit(pa.Table.from_pandas(base, preserve_index=False), **kwargs))
    _assert_same_fit(ref, fit(moderndid.load_mpdta_arrow(), **kwargs))


def test_pandas_polars_pyarrow_agree_with_bootstrap(base):
    pl = pytest.importorskip("polars")
    kwargs = {"boot": True, "biters": 200, "random_state": 7}
    ref = fit(base, **kwargs)
    for data in (pl.from_pandas(base), pa.Table.from_pandas(base, preserve_index=False)):
        other = fit(data, **kwargs)
        _assert_same_fit(ref, other)
        np.testing.assert_array_equal(ref.critical_value, other.critical_value)


@pytest.mark.parametrize("as_text", [False, True])
def test_categorical_id_column(base, as_text):
    data = base.copy()
    ids = data["countyreal"].astype(str) if as_text else data["countyreal"]
    data["countyreal"] = ids.astype("category")
    ref = base.copy()
    ref["countyreal"] = ids
    _assert_same_fit(fit(ref), fit(data))
    # Text ids sort units differently from integer ids: only the summation order changes.
    np.testing.assert_allclose(fit(data).att_gt, fit(base).att_gt, rtol=1e-13, atol=1e-15)


def test_dictionary_encoded_arrow_id_column(base):
    table = pa.Table.from_pandas(base, preserve_index=False)
    i = table.column_names.index("countyreal")
    table = table.set_column(i, "countyreal", table.column(i).dictionary_encode())
    _assert_same_fit(fit(base), fit(table))


def test_polars_categorical_id_column(base):
    pl = pytest.importorskip("polars")
    data = pl.from_pandas(base).with_columns(pl.col("countyreal").cast(pl.String)
                                             .cast(pl.Categorical))
    text = base.copy()
    text["countyreal"] = text["countyreal"].astype(str)
    _assert_same_fit(fit(text), fit(data))
