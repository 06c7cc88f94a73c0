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

import itertools
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
