"""The same covariate formula language on every engine: transforms, interactions and
categoricals (numeric or text) give the in-memory numbers on Spark and Dask, for `att_gt`
(panel and repeated cross sections) and `ddd`; what no engine evaluates is refused with
the same error everywhere.

The formula is evaluated on each partition through one :class:`CovariateDesign`, whose
categorical levels come from every row of the data; these tests pin that a partition
missing a level, or a level only one partition holds, changes nothing.
"""

from __future__ import annotations

import pathlib
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import moderndid as did
from moderndid.errors import InvalidOptionError, MissingValuesError, ModernDiDError

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")

DATA = pathlib.Path(__file__).resolve().parent / "data"
ROLES = {"yname": "lemp", "tname": "year", "idname": "countyreal", "gname": "first.treat"}
ENGINES = ["spark", "dask"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    df = did.load_mpdta()
    rng = np.random.default_rng(3)
    units = df["countyreal"].unique()
    region = dict(zip(units, rng.choice(["north", "south", "east", "west"], units.size),
                      strict=True))
    size = dict(zip(units, rng.normal(size=units.size), strict=True))
    df["region"] = df["countyreal"].map(region)
    df["size"] = df["countyreal"].map(size)
    df["large"] = df["size"] > 0.5  # a boolean column: a two-level categorical
    # a level of 15% of the units, whose rows come last: the first partitions never see it
    islands = df["countyreal"].isin(rng.choice(units, units.size * 15 // 100, replace=False))
    df.loc[islands, "region"] = "islands"
    return df.sort_values("region", key=lambda r: r == "islands", kind="stable")


def _frame(request: Any, engine: str, pdf: pd.DataFrame) -> Any:
    if engine == "spark":
        from conftest import require_spark

        require_spark()
        return request.getfixturevalue("spark").createDataFrame(pdf.reset_index(drop=True))
    dd = pytest.importorskip("dask.dataframe")
    return dd.from_pandas(pdf.reset_index(drop=True), npartitions=3)


def _same(a: Any, b: Any, names: tuple[str, ...]) -> None:
    for name in names:
        np.testing.assert_allclose(np.asarray(getattr(a, name), dtype=float),
                                   np.asarray(getattr(b, name), dtype=float),
                                   rtol=1e-10, atol=1e-10, equal_nan=True, err_msg=name)


FORMULAS = [
    "~ I(lpop ** 2)",
    "~ lpop + C(region)",
    "~ lpop * C(region)",
    "~ np.log(lpop) + region",
    "~ lpop + C(region, levels=['west', 'south', 'north', 'east', 'islands'])",
    "~ lpop + size + lpop:size",
    "~ lpop + C(treat == 1)",
    "~ lpop + large",
    "~ 0 + lpop",
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("xformla", FORMULAS)
def test_formula_panel_matches_memory(request, panel, engine, xformla):
    kwargs = dict(ROLES, xformla=xformla, est_method="dr", boot=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # singular comparison cells (C(treat))
        mem = did.att_gt(panel, **kwargs)
        dist = did.att_gt(_frame(request, engine, panel), **kwargs)
    _same(dist, mem, ("att_gt", "se_gt"))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("xformla", ["~ lpop * C(region)", "~ np.log(lpop) + I(lpop ** 2)"])
def test_formula_repeated_cross_sections_match_memory(request, panel, engine, xformla):
    kwargs = dict(ROLES, xformla=xformla, panel=False, boot=True, biters=99,
                  random_state=5)
    mem = did.att_gt(panel, **kwargs)
    dist = did.att_gt(_frame(request, engine, panel), **kwargs)
    _same(dist, mem, ("att_gt", "se_gt"))


@pytest.mark.parametrize("engine", ENGINES)
def test_partitions_holding_one_level_each(request, panel, engine):
    """Rows sorted by the text column, so that most partitions see a single level (formulaic
    once encoded such a partition's dummies as the text itself)."""
    pdf = panel.sort_values(["region", "countyreal", "year"], kind="stable")
    kwargs = dict(ROLES, xformla="~ lpop + region", boot=False)
    data = _frame(request, engine, pdf)
    if engine == "dask":
        data = data.repartition(npartitions=5)
    _same(did.att_gt(data, **kwargs), did.att_gt(pdf, **kwargs), ("att_gt", "se_gt"))
    _same(did.att_gt(data, **kwargs, panel=False), did.att_gt(pdf, **kwargs, panel=False),
          ("att_gt", "se_gt"))


def test_formula_in_memory_reads_text_categories_and_adds_the_intercept(panel):
    """A text column is a categorical (R's factor), its first sorted level the reference;
    '~ 0 + x' fits as '~ x', as R's DRDID adds the intercept."""
    plain = did.att_gt(panel, **ROLES, xformla="~ lpop", boot=False)
    _same(did.att_gt(panel, **ROLES, xformla="~ 0 + lpop", boot=False), plain,
          ("att_gt", "se_gt"))
    dummies = panel.assign(**{f"r_{level}": (panel["region"] == level).astype(float)
                              for level in ("islands", "north", "south", "west")})
    by_hand = did.att_gt(dummies, **ROLES, xformla="~ lpop + r_islands + r_north + r_south"
                         " + r_west", boot=False)
    _same(did.att_gt(panel, **ROLES, xformla="~ lpop + C(region)", boot=False), by_hand,
          ("att_gt", "se_gt"))


@pytest.mark.parametrize("engine", ENGINES)
def test_formula_ddd_matches_memory(request, engine):
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    pdf["band"] = np.where(pdf["cov1"] > 0, "high", "low")
    kwargs = dict(xformla="~ cov1 + I(cov2 ** 2) + C(band) + cov3:cov4",
                  control_group="notyettreated")
    args = ("y", "time", "id", "state", "partition")
    mem = did.ddd(pdf, *args, **kwargs)
    dist = did.ddd(_frame(request, engine, pdf), *args, **kwargs)
    _same(dist, mem, ("att", "se"))


def _outcome(call: Any) -> tuple[type, str]:
    with pytest.raises(ModernDiDError) as info:
        call()
    return type(info.value), str(info.value)


REFUSED = [
    # (formula, change to the data, error class, message fragment)
    ("~ scale(lpop)", None, InvalidOptionError, "need the whole column at once"),
    ("~ lpop + bs(lpop, df=3)", None, InvalidOptionError, "need the whole column at once"),
    ("~ I(region - 2)", None, InvalidOptionError, "cannot evaluate xformla"),
    ("~ lpop + C(region)", "region_missing", MissingValuesError,
     "categorical covariate (xformla) column 'region' has 3 missing"),
    ("~ np.log(lpop - 3)", None, MissingValuesError,
     "covariate (xformla) term column 'np.log(lpop - 3)' has"),
    ("~ lpop + C(countyreal)", None, InvalidOptionError, "more than 1000 distinct values"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", REFUSED, ids=[c[0] + (c[1] or "") for c in REFUSED])
def test_formula_refused_alike(request, panel, engine, case):
    xformla, change, error, fragment = case
    pdf = panel.copy()
    if change == "region_missing":
        pdf.loc[[3, 50, 700], "region"] = None
    if xformla == "~ lpop + C(countyreal)":  # more units than MAX_LEVELS
        pdf = pd.concat([pdf.assign(countyreal=pdf["countyreal"] + 100_000 * i)
                         for i in range(3)], ignore_index=True)
    kwargs = dict(ROLES, xformla=xformla, boot=False)
    expected = _outcome(lambda: did.att_gt(pdf, **kwargs))
    assert expected[0] is error and fragment in expected[1], expected
    assert _outcome(lambda: did.att_gt(_frame(request, engine, pdf), **kwargs)) == expected
