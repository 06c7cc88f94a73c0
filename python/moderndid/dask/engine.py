"""The Dask engine: prepares a Dask DataFrame and runs the estimators' passes on the
workers (:class:`~moderndid.dask.executor.DaskExecutor`)."""

from __future__ import annotations

import logging
from typing import Any

from moderndid.engine.protocol import EngineSettings, Planner, Prepared
from moderndid.engine.spec import DidSpec

logger = logging.getLogger("moderndid")


class DaskEngine:
    """Engine for Dask DataFrames: every computation of a fit runs on ``settings.client``
    when given, else on the current ``distributed.Client`` if one exists, else on Dask's
    default scheduler (threads for DataFrames). No client is created or closed here."""

    name = "dask"

    def prepare(self, data: Any, spec: DidSpec, settings: EngineSettings,
                planner: Planner) -> Prepared:
        """Validate ``data`` and persist its unit-table blocks on the workers."""
        from moderndid.dask.executor import DaskScheduler, current_client
        from moderndid.dask.prepare import prepare_dask

        if settings.n_jobs not in (1, None):
            logger.info("moderndid: n_jobs=%s is ignored on Dask (the scheduler's workers "
                        "apply)", settings.n_jobs)
        if settings.max_cohorts is not None:
            logger.info("moderndid: max_cohorts=%s has no effect: worker memory is bounded "
                        "by the partition size (n_partitions)", settings.max_cohorts)
        client = settings.client if settings.client is not None else current_client()
        return prepare_dask(data, spec, settings.n_partitions, planner, DaskScheduler(client))


ENGINE = DaskEngine()
