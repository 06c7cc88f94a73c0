"""The Spark engine: prepares a PySpark DataFrame (classic or Spark Connect) and runs the
estimators' passes on the executors (:class:`~moderndid.spark.executor.SparkExecutor`)."""

from __future__ import annotations

import logging
from typing import Any

from moderndid.engine.protocol import EngineSettings, Planner, Prepared
from moderndid.engine.spec import DidSpec

logger = logging.getLogger("moderndid")


class SparkEngine:
    """Engine for PySpark DataFrames (:class:`moderndid.engine.protocol.Engine`)."""

    name = "spark"

    def prepare(self, data: Any, spec: DidSpec, settings: EngineSettings,
                planner: Planner) -> Prepared:
        """Validate ``data`` and persist its unit table; nothing row-level is collected."""
        from moderndid.spark.executor import SparkExecutor
        from moderndid.spark.prepare import prepare_spark
        from moderndid.spark.session import (
            register_aggregators,
            resolve_session,
            translated_errors,
        )

        if settings.n_jobs not in (1, None):
            logger.info("moderndid: n_jobs=%s is ignored on Spark (the session's parallelism "
                        "applies)", settings.n_jobs)
        session = resolve_session(settings.session)
        with translated_errors():
            prepared = prepare_spark(data, spec, session, settings.n_partitions, planner)
        try:
            executor = SparkExecutor(session, prepared.table, prepared.to_partition,
                                     register_aggregators(session), prepared.n_partitions)
        except BaseException:
            prepared.table.unpersist()
            raise
        return Prepared(prepared.meta, executor, prepared.table.unpersist, prepared.two_period,
                        prepared.subgroups)


ENGINE = SparkEngine()
