"""The Spark engine's unit table, without Spark: pure pyarrow / numpy.

``units_from_rows`` collapses the long rows of each unit (on an executor) into one row per
unit and flags data problems; ``partition_from_blocks`` / ``partition_from_rows`` turn those
rows into the kernel partitions of :mod:`moderndid.did.preprocess`. The partitions must be
the ones the in-memory engine builds from the same data (up to row order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import moderndid
from moderndid.core.multipliers import keys_from_values
from moderndid.did.preprocess import DidSpec, prepare_did
from moderndid.engine.panel_blocks import (
    PanelLayout,
    RowColumns,
    build_blocks,
    partition_from_blocks,
)
from moderndid.engine.unit_table import (
    FLAG_CLUSTER_VARIES,
    FLAG_DUPLICATE,
    FLAG_GROUP_VARIES,
    FLAG_WEIGHT_VARIES,
    UNIT_SCHEMA,
    partition_from_rows,
    units_from_rows,
)

PERIODS = np.array([1.0, 2.0, 3.0])


def rows(**columns) -> pa.Table:
    return pa.table({name: pa.array(values) for name, values in columns.items()})


def by_key(batch: pa.RecordBatch) -> dict:
    """Unit-table rows as {id key: row dict}."""
    out = {}
    for row in batch.to_pylist():
        out[row["key"]] = row
    return out


def key_of(value) -> int:
    return int(keys_from_values(np.array([value])).view(np.int64)[0])


# --------------------------------------------------------------------------- units_from_rows


def test_units_from_rows_layout_and_unbalanced_nobs():
    table = rows(
        id=[7, 7, 7, 3, 3, 9],
        t=[3.0, 1.0, 2.0, 2.0, 1.0, 3.0],
        y=[13.0, 11.0, 12.0, 32.0, 31.0, 93.0],
        G=[2.0, 2.0, 2.0, np.inf, np.inf, 3.0],
        w=[0.5, 0.5, 0.5, 2.0, 2.0, 1.0],
        cluster=[1, 1, 1, 2, 2, 1],
        x0=[0.1, 0.1, 0.1, 0.3, 0.3, 0.9],
        x1=[1.0, 1.0, 1.0, 3.0, 3.0, 9.0],
    )
    batch = units_from_rows(table, PERIODS, ["x0", "x1"], has_cluster=True)
    assert batch.schema == UNIT_SCHEMA
    assert batch.num_rows == 3
    units = by_key(batch)
    u7, u3, u9 = units[key_of(7)], units[key_of(3)], units[key_of(9)]
    assert u7["y"] == [11.0, 12.0, 13.0]  # by period, whatever the row order
    assert u7["nobs"] == 3 and u3["nobs"] == 2 and u9["nobs"] == 1
    assert u3["y"][:2] == [31.0, 32.0] and np.isnan(u3["y"][2])
    assert np.isnan(u9["y"][:2]).all() and u9["y"][2] == 93.0
    assert (u7["G"], u3["G"], u9["G"]) == (2.0, np.inf, 3.0)
    assert (u7["w"], u3["w"], u9["w"]) == (0.5, 2.0, 1.0)
    assert u7["cluster"] == key_of(1) == u9["cluster"] and u3["cluster"] == key_of(2)
    assert [u["flags"] for u in (u7, u3, u9)] == [0, 0, 0]
    assert [u["xtv"] for u in (u7, u3, u9)] == [False, False, False]
    assert u7["x"] == [0.1, 1.0] and u3["x"] == [0.3, 3.0] and u9["x"] == [0.9, 9.0]


def test_units_from_rows_without_cluster_or_covariates():
    table = rows(id=[1, 1, 2, 2], t=[1.0, 2.0, 1.0, 2.0], y=[1.0, 2.0, 3.0, 4.0],
                 G=[2.0, 2.0, np.inf, np.inf], w=[1.0] * 4)
    batch = units_from_rows(table, PERIODS[:2], [], has_cluster=False)
    units = by_key(batch)
    assert {u["cluster"] for u in units.values()} == {0}
    assert all(u["x"] == [] for u in units.values())
    assert units[key_of(2)]["y"] == [3.0, 4.0]


def test_units_from_rows_string_ids_and_clusters_are_hashed():
    table = rows(id=["b", "a", "b", "a"], t=[1.0, 1.0, 2.0, 2.0], y=[1.0, 2.0, 3.0, 4.0],
                 G=[np.inf] * 4, w=[1.0] * 4, cluster=["x", "y", "x", "y"])
    units = by_key(units_from_rows(table, PERIODS[:2], [], has_cluster=True))
    assert set(units) == {key_of("a"), key_of("b")}
    assert units[key_of("a")]["cluster"] == key_of("y")
    assert units[key_of("b")]["y"] == [1.0, 3.0]


def test_units_from_rows_empty_table():
    table = rows(id=pa.array([], pa.int64()), t=pa.array([], pa.float64()),
                 y=pa.array([], pa.float64()), G=pa.array([], pa.float64()),
                 w=pa.array([], pa.float64()))
    batch = units_from_rows(table, PERIODS, [], has_cluster=False)
    assert batch.num_rows == 0 and batch.schema == UNIT_SCHEMA


def test_units_from_rows_flags_duplicates():
    table = rows(id=[1, 1, 1, 2, 2], t=[1.0, 2.0, 2.0, 1.0, 2.0],
                 y=[1.0, 2.0, 2.5, 3.0, 4.0], G=[2.0] * 3 + [np.inf] * 2, w=[1.0] * 5)
    units = by_key(units_from_rows(table, PERIODS[:2], [], has_cluster=False))
    assert units[key_of(1)]["flags"] == FLAG_DUPLICATE
    assert units[key_of(2)]["flags"] == 0


@pytest.mark.parametrize("column, flag", [
    ("G", FLAG_GROUP_VARIES),
    ("w", FLAG_WEIGHT_VARIES),
    ("cluster", FLAG_CLUSTER_VARIES),
])
def test_units_from_rows_flags_time_varying_unit_attributes(column, flag):
    columns = dict(id=[1, 1, 1, 2, 2, 2], t=[1.0, 2.0, 3.0] * 2, y=np.arange(6.0),
                   G=[2.0] * 3 + [np.inf] * 3, w=[1.0] * 3 + [2.0] * 3,
                   cluster=[5, 5, 5, 6, 6, 6])
    changed = list(columns[column])
    changed[4] = {"G": 3.0, "w": 2.5, "cluster": 7}[column]  # unit 2, period 2
    columns[column] = changed
    units = by_key(units_from_rows(rows(**columns), PERIODS, [], has_cluster=True))
    assert units[key_of(1)]["flags"] == 0
    assert units[key_of(2)]["flags"] == flag


def test_units_from_rows_combines_flags():
    table = rows(id=[1, 1, 1], t=[1.0, 1.0, 2.0], y=[1.0, 2.0, 3.0], G=[2.0, 3.0, 2.0],
                 w=[1.0, 1.0, 4.0], cluster=[1, 1, 2])
    unit = units_from_rows(table, PERIODS[:2], [], has_cluster=True).to_pylist()[0]
    assert unit["flags"] == (FLAG_DUPLICATE | FLAG_GROUP_VARIES | FLAG_WEIGHT_VARIES
                             | FLAG_CLUSTER_VARIES)


def test_units_from_rows_time_varying_covariates():
    table = rows(
        id=[1, 1, 1, 2, 2, 2, 3, 3],
        t=[1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 1.0, 3.0],
        y=np.arange(8.0),
        G=[2.0] * 3 + [np.inf] * 5,
        w=[1.0] * 8,
        x0=[1.0, 1.0, 1.0, 0.3, 0.2, 0.1, 5.0, 5.0],
        x1=[7.0, 7.0, 7.0, 9.0, 9.0, 9.0, 4.0, 4.0],
    )
    units = by_key(units_from_rows(table, PERIODS, ["x0", "x1"], has_cluster=False))
    u1, u2, u3 = units[key_of(1)], units[key_of(2)], units[key_of(3)]
    assert not u1["xtv"] and u1["x"] == [1.0, 7.0]
    assert u2["xtv"]
    np.testing.assert_array_equal(np.reshape(u2["x"], (3, 2)),
                                  [[0.1, 9.0], [0.2, 9.0], [0.3, 9.0]])  # (period, covariate)
    # Constant over the periods it is observed in (the missing period does not count).
    assert not u3["xtv"] and u3["x"] == [5.0, 4.0] and u3["nobs"] == 2


# --------------------------------------------------------------------------- round trips


def _mpdta() -> pd.DataFrame:
    pdf = moderndid.load_mpdta()
    pdf["w"] = 1.0 + (pdf["countyreal"] % 4) * 0.5
    pdf["cluster"] = pdf["countyreal"] // 1000
    rng = np.random.default_rng(20)
    pdf["xtv"] = rng.normal(size=len(pdf))
    return pdf


def _unbalanced(pdf: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    drop = rng.choice(len(pdf), size=150, replace=False)
    return pdf.drop(index=pdf.index[drop]).reset_index(drop=True)


def _spec(covariates: list[str], *, weights: bool, cluster: bool, panel: bool = True,
          unbalanced: bool = False) -> DidSpec:
    return DidSpec(yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                   xformla=("~ " + " + ".join(covariates)) if covariates else None,
                   weightsname="w" if weights else None,
                   clustervars=["cluster"] if cluster else [], panel=panel,
                   allow_unbalanced_panel=unbalanced, anticipation=0.0)


def _long_rows(pdf: pd.DataFrame, spec: DidSpec, covariates: list[str],
               recoded: bool = True) -> pa.Table:
    """The long table the Spark engine hands to the executors: with the cohorts recoded
    (repeated cross sections) or raw (panels: recoded when the blocks are read)."""
    g = pdf[spec.gname].to_numpy(dtype=float)
    t = pdf[spec.tname].to_numpy(dtype=float)
    if recoded:
        g = _recode(g, t.max())
    cols = {
        "id": pdf[spec.idname].to_numpy(),
        "t": t,
        "y": pdf[spec.yname].to_numpy(dtype=float),
        "G": g,
        "w": pdf[spec.weightsname].to_numpy(dtype=float) if spec.weightsname
        else np.ones(len(pdf)),
    }
    cols.update({f"x{j}": pdf[c].to_numpy(dtype=float) for j, c in enumerate(covariates)})
    if spec.clustervars:
        cols["cluster"] = pdf[spec.clustervars[0]].to_numpy()
    return pa.table(cols)


def _recode(g: np.ndarray, last_period: float) -> np.ndarray:
    return np.where((g == 0) | (g > last_period), np.inf, g)


def _chunks(long: pa.Table, n_chunks: int = 3) -> list[pa.Table]:
    """The long rows split by unit into chunks, as Spark partitions by id would."""
    ids = long.column("id").to_numpy()
    uid = np.unique(ids)
    chunk_of = {u: i % n_chunks for i, u in enumerate(np.random.default_rng(0).permutation(uid))}
    which = np.array([chunk_of[i] for i in ids])
    return [long.filter(pa.array(which == c)) for c in range(n_chunks)]


def _unit_table(long: pa.Table, periods: np.ndarray, k: int, clustered: bool) -> pa.Table:
    """Units built chunk by chunk."""
    return pa.Table.from_batches([
        units_from_rows(part, periods, [f"x{j}" for j in range(k)], clustered)
        for part in _chunks(long)])


def _partition_via_blocks(long_raw: pa.Table, periods: np.ndarray, k: int, clustered: bool,
                          kind: str) -> dict:
    """The Spark engine's path: blocks built chunk by chunk from raw rows, then read back
    with the cohorts recoded."""
    xcols = tuple(f"x{j}" for j in range(k))
    cols = RowColumns(checked=("y", "t", "G", "id", "w", *xcols), covariates=xcols,
                      clustered=clustered, fractional=())
    blocks = pa.Table.from_batches([build_blocks(part, cols) for part in _chunks(long_raw)])
    raw = np.unique(long_raw.column("G").to_numpy())
    recode = dict(zip(raw.tolist(), _recode(raw, periods[-1]).tolist(), strict=True))
    layout = PanelLayout(periods=periods, recode=recode, complete_only=False, kind=kind,
                         n_covariates=k, clustered=clustered)
    return partition_from_blocks(blocks, layout)


def _without_eligibility(got: dict, expected: dict) -> dict:
    """Drop the triple-differences eligibility column ``Q`` (all zeros) when the in-memory
    partition has none (no ``pname``)."""
    if "Q" in got and "Q" not in expected:
        assert (got["Q"] == 0).all()
        got = {name: value for name, value in got.items() if name != "Q"}
    return got


def _sorted(part: dict, key: np.ndarray) -> dict:
    order = np.argsort(key, kind="stable")
    return {name: value[order] for name, value in part.items()}


@pytest.mark.parametrize("covariates, weights, cluster", [
    ([], False, False),
    (["lpop"], True, True),
    (["lpop", "xtv"], True, False),  # a time-varying covariate: x is (n, T, k + 1)
])
def test_balanced_partition_matches_in_memory(covariates, weights, cluster):
    pdf = _mpdta()
    spec = _spec(covariates, weights=weights, cluster=cluster)
    mem = prepare_did(pdf, spec, 1)
    assert mem.kind == "panel"
    expected = mem.partitions[0]
    units = _unit_table(_long_rows(pdf, spec, covariates), mem.periods, len(covariates),
                        cluster)
    assert units.num_rows == mem.n_units
    assert bool(pa.compute.any(units.column("xtv")).as_py()) == mem.x_time_varying
    got = _partition_via_blocks(_long_rows(pdf, spec, covariates, recoded=False), mem.periods,
                                len(covariates), cluster, "panel")
    got = _without_eligibility(got, expected)

    assert set(got) == set(expected) - {"pos"}
    assert (got["G"][:-1] <= got["G"][1:]).all(), "rows sorted by cohort"
    got, want = _sorted(got, got["key"]), _sorted(expected, expected["key"])
    for name in got:
        assert got[name].shape == want[name].shape, name
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("covariates, weights, cluster", [
    ([], False, False),
    (["lpop", "xtv"], True, True),
])
def test_unbalanced_partition_matches_in_memory(covariates, weights, cluster):
    pdf = _unbalanced(_mpdta())
    spec = _spec(covariates, weights=weights, cluster=cluster, unbalanced=True)
    mem = prepare_did(pdf, spec, 1)
    assert mem.kind == "unbalanced"
    expected = mem.partitions[0]
    units = _unit_table(_long_rows(pdf, spec, covariates), mem.periods, len(covariates),
                        cluster)
    assert units.num_rows == mem.n_units
    assert int(pa.compute.sum(units.column("nobs")).as_py()) == mem.n_obs
    got = _partition_via_blocks(_long_rows(pdf, spec, covariates, recoded=False), mem.periods,
                                len(covariates), cluster, "unbalanced")
    got = _without_eligibility(got, expected)

    assert set(got) == set(expected) - {"unit_pos"}
    assert (got["G"][:-1] <= got["G"][1:]).all(), "observations sorted by cohort"
    # Units: compare by key. Observations: by (unit key, period).
    unit_names = [n for n in got if n.startswith("unit_")]
    got_units = _sorted({n: got[n] for n in unit_names}, got["unit_key"])
    want_units = _sorted({n: expected[n] for n in unit_names}, expected["unit_key"])
    for name in unit_names:
        np.testing.assert_array_equal(got_units[name], want_units[name], err_msg=name)
    obs_names = [n for n in got if not n.startswith("unit")]

    def observations(part: dict) -> dict:
        key = part["unit_key"][part["unit"]]
        order = np.lexsort((part["tidx"], key))
        return {n: part[n][order] for n in obs_names} | {"key": key[order]}

    g, w = observations(got), observations(expected)
    for name in g:
        assert g[name].shape == w[name].shape, name
        np.testing.assert_array_equal(g[name], w[name], err_msg=name)


@pytest.mark.parametrize("has_id", [True, False])
def test_repeated_cross_section_partition_matches_in_memory(has_id):
    pdf = _mpdta()
    spec = _spec(["lpop"], weights=True, cluster=True, panel=False)
    if not has_id:
        spec.idname = None
    mem = prepare_did(pdf, spec, 1)
    expected = mem.partitions[0]
    long = _long_rows(pdf.assign(countyreal=pdf["countyreal"]), _spec(
        ["lpop"], weights=True, cluster=True, panel=False), ["lpop"])
    if not has_id:  # the row position, as monotonically_increasing_id gives in one partition
        long = long.append_column("rowkey", pa.array(np.arange(long.num_rows, dtype=np.int64)))
    got = _without_eligibility(partition_from_rows(long, mem.periods, ["x0"], True, has_id),
                               expected)
    assert set(got) == set(expected) - {"pos"}
    order_got = np.lexsort((got["tidx"], got["key"]))
    order_want = np.lexsort((expected["tidx"], expected["key"]))
    for name in got:
        assert got[name].shape == expected[name].shape, name
        np.testing.assert_array_equal(got[name][order_got], expected[name][order_want],
                                      err_msg=name)


# --------------------------------------------------------------------------- blocks

COLS = RowColumns(checked=("y", "t", "G", "id", "w", "Q"), covariates=(), clustered=False,
                  fractional=())


def _long_fixture() -> pa.Table:
    return rows(
        id=[1, 1, 2, 2, 3, 4, 4],
        t=[1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 2.0],
        y=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        G=[2.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0],
        w=[1.0, 1.0, 2.0, 2.0, 1.0, 0.5, 0.5],
        Q=[1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
    )


def _layout(periods, recode, complete_only=False, kind="panel") -> PanelLayout:
    return PanelLayout(periods=np.asarray(periods, dtype=float), recode=recode,
                       complete_only=complete_only, kind=kind, n_covariates=0,
                       clustered=False)


def test_blocks_carry_statistics_once_and_a_histogram_of_units():
    blocks = build_blocks(_long_fixture(), COLS, block_units=3)
    assert blocks.num_rows == 2  # 4 units in blocks of at most 3
    assert blocks.column("units").to_pylist() == [3, 1]
    assert blocks.column("rows").to_pylist() == [7, 0]  # statistics on the first block only
    assert blocks.column("wmin").to_pylist()[0] == 0.5
    assert blocks.column("periods").to_pylist() == [[1.0, 2.0], [1.0, 2.0]]
    histogram: dict = {}
    for flat in blocks.column("histogram").to_pylist():
        for g, q, nobs, count in np.reshape(flat, (-1, 4)):
            histogram[(g, q, nobs)] = histogram.get((g, q, nobs), 0) + count
    # (raw group, eligibility, periods observed) -> units
    assert histogram == {(0.0, 0.0, 2.0): 1, (0.0, 1.0, 2.0): 1, (2.0, 1.0, 1.0): 1,
                         (2.0, 1.0, 2.0): 1}


def test_partition_from_blocks_recodes_and_balances_like_the_unit_table():
    long = _long_fixture()
    blocks = pa.Table.from_batches([build_blocks(long, COLS, block_units=3)])
    recode = {0.0: np.inf, 2.0: 2.0}
    got = partition_from_blocks(blocks, _layout([1.0, 2.0], recode, complete_only=True))
    # unit 3 (observed in period 1 only) is dropped; rows sorted by cohort, never last
    expected = {
        "y": np.array([[1.0, 2.0], [3.0, 4.0], [6.0, 7.0]]),
        "G": np.array([2.0, np.inf, np.inf]),
        "w": np.array([1.0, 2.0, 0.5]),
        "x": np.ones((3, 1, 1)),  # the intercept
        "key": keys_from_values(np.array([1, 2, 4])),
        "Q": np.array([1.0, 0.0, 1.0]),
    }
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    unbalanced = partition_from_blocks(blocks, _layout([1.0, 2.0], recode, kind="unbalanced"))
    assert unbalanced["y"].size == 7 and unbalanced["unit_G"].size == 4


def test_partition_from_blocks_aligns_partitions_with_different_periods():
    first = rows(id=[1, 1], t=[1.0, 2.0], y=[11.0, 12.0], G=[0.0, 0.0], w=[1.0, 1.0],
                 Q=[0.0, 0.0])
    second = rows(id=[2, 2], t=[2.0, 3.0], y=[22.0, 23.0], G=[3.0, 3.0], w=[1.0, 1.0],
                  Q=[0.0, 0.0])
    blocks = pa.Table.from_batches([build_blocks(first, COLS), build_blocks(second, COLS)])
    part = partition_from_blocks(blocks, _layout([1.0, 2.0, 3.0], {0.0: np.inf, 3.0: 3.0}))
    np.testing.assert_array_equal(part["G"], [3.0, np.inf])
    np.testing.assert_array_equal(part["y"], [[np.nan, 22.0, 23.0], [11.0, 12.0, np.nan]])
    # a dropped cohort (absent from recode) and a period cut off
    cut = partition_from_blocks(blocks, _layout([1.0, 2.0], {0.0: np.inf}))
    np.testing.assert_array_equal(cut["y"], [[11.0, 12.0]])


def test_missing_values_leave_statistics_and_no_units():
    long = _long_fixture()
    long = long.set_column(2, "y", pa.array([1.0, None, 3.0, 4.0, 5.0, 6.0, 7.0]))
    blocks = build_blocks(long, COLS)
    assert blocks.num_rows == 1
    assert blocks.column("missing").to_pylist() == [[1, 0, 0, 0, 0, 0]]
    assert blocks.column("units").to_pylist() == [0]
    part = partition_from_blocks(pa.Table.from_batches([blocks]),
                                 _layout([1.0, 2.0], {0.0: np.inf, 2.0: 2.0}))
    assert part["y"].shape == (0, 2)


def test_blocks_carry_flags_and_time_varying_covariates():
    table = rows(id=[1, 1, 2], t=[1.0, 1.0, 1.0], y=[1.0, 2.0, 3.0], G=[0.0] * 3,
                 w=[1.0] * 3, x0=[0.0, 1.0, 2.0])
    cols = RowColumns(checked=("y", "t", "G", "id", "w", "x0"), covariates=("x0",),
                      clustered=False, fractional=())
    block = build_blocks(table, cols)
    assert block.column("flags").to_pylist() == [FLAG_DUPLICATE]
    assert block.column("xtv").to_pylist() == [True]
    np.testing.assert_allclose(block.column("xx").to_pylist()[0], [3.0, 3.0, 5.0])
