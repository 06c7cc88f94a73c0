"""Spark fits give the same digits whatever order their tasks end in.

Spark merges the partitions' partial sums as their tasks end (observed metrics before
pyspark 4.1 or with ``spark.sql.legacy.observeMetricsAggregateAllAttempts``; the grouping
shuffle of keyed sums on a cluster, whose fetch order is random), and a floating-point sum
depends on the order of its terms. The reductions therefore key every partial by its
partition (``spark_partition_id()``) and add the partials in ascending partition order,
so a rerun, a retried task or a slow executor cannot change a digit.

The end-to-end test holds back one partition per pass until every other partition of the
pass is done (a different one in each fit), on 8 partitions, with the aggregation of all
attempts (the order tasks end in); every fit must equal the first bit for bit, bootstrap
included, with the jar (JVM aggregators and the JVM bootstrap) and without it (Spark SQL
folds). The reduction tests feed the executor's reductions the same partials in shuffled
row orders and partitionings.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

import numpy as np
import pytest

from conftest import require_spark

require_spark()

import moderndid  # noqa: E402
from moderndid import aggte, att_gt  # noqa: E402

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

MPDTA = dict(yname="lemp", tname="year", idname="countyreal", gname="first.treat")
N_PARTITIONS = 8
ALL_ATTEMPTS = "spark.sql.legacy.observeMetricsAggregateAllAttempts"


class HoldBack:
    """Run ``function``; partition ``slow`` then waits until every other partition of the
    pass has run it (marker files in ``folder``), so that its task ends last."""

    def __init__(self, function: Any, folder: str, slow: int, partitions: int):
        self.function, self.folder = function, folder
        self.slow, self.partitions = slow, partitions

    def __call__(self, *args: Any) -> Any:
        from pyspark import TaskContext

        out = self.function(*args)
        part = TaskContext.get().partitionId()
        if part == self.slow:
            others = [os.path.join(self.folder, str(p))
                      for p in range(self.partitions) if p != part]
            deadline = time.monotonic() + 30
            while not all(map(os.path.exists, others)) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)  # their tasks report back
        else:
            open(os.path.join(self.folder, str(part)), "w").close()
        return out


@pytest.fixture(scope="module")
def mpdta(spark):
    return spark.createDataFrame(moderndid.load_mpdta()).persist()


def _numbers(res: Any) -> dict[str, np.ndarray]:
    dyn = aggte(res, type="dynamic", random_state=0)
    return {
        "att_gt": np.asarray(res.att_gt),
        "se_gt": np.asarray(res.se_gt),
        "critical_value": np.asarray(res.critical_value),
        "vcov_analytical": np.asarray(res.vcov_analytical),
        "boot": np.asarray(res.moments.boot),
        "gram": np.asarray(res.moments.gram),
        "dynamic_att": np.asarray(dyn.att_by_event),
        "dynamic_se": np.asarray(dyn.se_by_event),
        "dynamic_crit": np.asarray(dyn.critical_values),
    }


@pytest.mark.parametrize("mode", ["jar", "no-jar"])
def test_task_completion_order_changes_no_digit(spark, mpdta, monkeypatch, tmp_path, mode):
    from pyspark import cloudpickle

    import moderndid.spark.executor as executor_module
    import moderndid.spark.session as session_module

    if mode == "jar":
        from moderndid.spark.session import jar_path, register_aggregators

        if jar_path() is None or not register_aggregators(spark):
            pytest.skip("the moderndid jar is not built (python scripts/build_jar.py)")
    else:
        monkeypatch.setattr(session_module, "register_aggregators", lambda spark: False)
    run = executor_module.SparkExecutor.run
    natives: list[bool] = []
    slow = [0]

    def held_back(self: Any, kernel: Any, state: Any, description: str, **kw: Any) -> Any:
        natives.append(self.jvm_aggregators)
        folder = tmp_path / uuid.uuid4().hex
        folder.mkdir()
        assert self.n_partitions == N_PARTITIONS
        kernel = HoldBack(kernel, str(folder), slow[0], N_PARTITIONS)
        return run(self, kernel, state, description, **kw)

    monkeypatch.setattr(executor_module.SparkExecutor, "run", held_back)
    # ship HoldBack by value: the Python workers cannot import this test module
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spark.conf.set(ALL_ATTEMPTS, "true")
    try:
        fits = []
        for held in (0, 5):
            slow[0] = held
            fits.append(_numbers(att_gt(mpdta, **MPDTA, est_method="reg", boot=True,
                                        biters=199, random_state=17,
                                        n_partitions=N_PARTITIONS)))
    finally:
        spark.conf.unset(ALL_ATTEMPTS)
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert natives and all(n == (mode == "jar") for n in natives)
    first, second = fits
    assert np.isfinite(first["att_gt"]).all()
    assert abs(float(first["critical_value"]) - 1.959963984540054) > 1e-3  # a bootstrap band
    differ = [name for name in first if not np.array_equal(first[name], second[name])]
    assert differ == [], f"the fits differ in {differ}"


# --------------------------------------------------------------------------- reductions

PARTS = 6
WIDTH = 5


def _interleavings(per_part: dict[int, list], count: int, seed: int) -> list[list]:
    """``count`` random interleavings of the parts' row lists (each part's rows keep their
    order, as a task emits them), the first with the parts in descending order."""
    rng = np.random.default_rng(seed)
    out = [[row for p in sorted(per_part, reverse=True) for row in per_part[p]]]
    for _ in range(count - 1):
        tags = np.concatenate([[p] * len(rows) for p, rows in per_part.items()])
        rng.shuffle(tags)
        cursors = dict.fromkeys(per_part, 0)
        order = []
        for p in tags:
            order.append(per_part[p][cursors[p]])
            cursors[p] += 1
        out.append(order)
    return out


def _frames(spark: Any, orders: list[list], schema: str) -> list[Any]:
    """Each order as one task's rows, and spread over 3 tasks by partition."""
    frames = []
    for rows in orders:
        one = spark.createDataFrame(rows, schema).coalesce(1)
        frames += [one, one.repartition(3, "part")]
    return frames


def _executor(spark: Any, jar: bool) -> Any:
    from moderndid.spark.executor import SparkExecutor

    if jar:
        from moderndid.spark.session import jar_path, register_aggregators

        if jar_path() is None or not register_aggregators(spark):
            pytest.skip("the moderndid jar is not built (python scripts/build_jar.py)")
    return SparkExecutor(spark, None, lambda table: {}, jar, 3)


def _partials(seed: int) -> dict[int, np.ndarray]:
    """Per-partition sums whose total depends on the order they are added in."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-3, 12, size=(PARTS, 1))
    return {p: row for p, row in enumerate(rng.normal(size=(PARTS, WIDTH)) * scale)}


def _in_order(partials: dict[int, np.ndarray], parts: Any) -> np.ndarray:
    out = partials[parts[0]].copy()
    for p in parts[1:]:
        out = out + partials[p]
    return out


@pytest.mark.parametrize("jar", [True, False], ids=["jar", "no-jar"])
def test_flat_reduction_adds_partitions_in_their_order(spark, jar):
    """Sums (and the JVM bootstrap) are the fold in ascending partition order, whatever
    order the rows come in and however they are split into tasks."""
    import json

    from moderndid.did.kernels import bootstrap_sums
    from moderndid.engine.executor import BootstrapRequest

    executor = _executor(spark, jar)
    sums, maxima = _partials(1), _partials(2)
    layout = json.dumps([["sum", "s", [WIDTH]], ["max", "m", [WIDTH]]])
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**63, size=(PARTS, 3, 40))
    z = rng.normal(size=(PARTS, 3, 40, 4)) * 10.0 ** rng.integers(-3, 9, size=(PARTS, 3, 1, 1))
    per_part = {}
    for p in range(PARTS):
        rows = [(layout, sums[p].tolist(), maxima[p].tolist(), None, None, p)]
        if jar:  # bootstrap blocks, three per partition
            rows += [(None, None, None, keys[p, b].tolist(), z[p, b].ravel().tolist(), p)
                     for b in range(3)]
        per_part[p] = rows
    schema = ("layout string, sums array<double>, maxima array<double>, "
              "bkeys array<bigint>, bz array<double>, part int")
    request = BootstrapRequest(2**63 + 5, 31) if jar else None
    results = [executor._reduce_flat(frame, request)
               for frame in _frames(spark, _interleavings(per_part, 3, 4), schema)]
    expected = _in_order(sums, list(range(PARTS)))
    assert not np.array_equal(expected, _in_order(sums, list(range(PARTS))[::-1]))
    for res in results:
        assert np.array_equal(res.sums["s"], expected)
        assert np.array_equal(res.maxima["m"], np.max(list(maxima.values()), axis=0))
    if jar:
        boots = [res.sums["boot"] for res in results]
        assert all(np.array_equal(b, boots[0]) for b in boots)
        flat_keys = keys.reshape(-1).astype(np.uint64)
        np.testing.assert_allclose(
            boots[0], bootstrap_sums(2**63 + 5, flat_keys, z.reshape(-1, 4), 31),
            rtol=1e-12, atol=1e-12 * np.abs(z).sum())


@pytest.mark.parametrize("jar", [True, False], ids=["jar", "no-jar"])
def test_keyed_reduction_adds_partitions_in_their_order(spark, jar):
    """Keyed sums (one row per partition and key, grouped in a shuffle) and plain sums of a
    keyed pass are folds in ascending partition order too."""
    executor = _executor(spark, jar)
    keyed = {k: _partials(10 + k) for k in range(4)}
    plain = _partials(20)
    per_part = {}
    for p in range(PARTS):
        per_part[p] = [("keyed", "c", k, [WIDTH], keyed[k][p].tolist(), p) for k in keyed]
        per_part[p].append(("sum", "s", 0, [WIDTH], plain[p].tolist(), p))
    schema = "kind string, name string, key bigint, shape array<int>, value array<double>, " \
             "part int"
    results = [executor._reduce_rows(frame)
               for frame in _frames(spark, _interleavings(per_part, 3, 5), schema)]
    parts = list(range(PARTS))
    for res in results:
        assert np.array_equal(res.sums["s"], _in_order(plain, parts))
        got_keys, got = res.keyed["c"]
        assert got_keys.tolist() == sorted(keyed)
        for row, k in zip(got, sorted(keyed), strict=True):
            assert np.array_equal(row, _in_order(keyed[k], parts))
