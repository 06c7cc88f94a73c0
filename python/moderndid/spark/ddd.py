"""Triple differences on Spark: the same preparation, passes and combination as in memory."""

from __future__ import annotations

from typing import Any

from moderndid.did.fit import FitOptions
from moderndid.did.preprocess import DidData, DidSpec


def spark_ddd_fit(data: Any, spec: DidSpec, opts: FitOptions, n_partitions: int | None,
                  spark: Any = None) -> tuple[Any, DidData]:
    """Prepare a Spark DataFrame and fit every DDD comparison on the executors."""
    from moderndid.ddd.estimator import check_subgroups, fit_ddd
    from moderndid.spark.executor import SparkExecutor
    from moderndid.spark.prepare import prepare_spark
    from moderndid.spark.session import register_aggregators, resolve_session, translated_errors

    assert spec.pname is not None
    session = resolve_session(spark)
    opts.collect_influence = False
    with translated_errors():
        prepared = prepare_spark(data, spec, session, n_partitions)
        try:
            check_subgroups(prepared.subgroups, spec.pname)
            executor = SparkExecutor(session, prepared.table, prepared.to_partition,
                                     register_aggregators(session), prepared.n_partitions)
            fit = fit_ddd(prepared.meta, executor, opts, prepared.two_period)
        finally:
            prepared.table.unpersist()
    return fit, prepared.meta
