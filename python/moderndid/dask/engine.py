"""The Dask engine: prepares a Dask DataFrame and runs the estimators' passes on the
workers (:class:`~moderndid.dask.executor.DaskExecutor`)."""

from __future__ import annotations

import logging
from typing import Any

from moderndid.engine.protocol import EngineSettings, Planner, Prepared
from moderndid.engine.spec import DidSpec

logger = logging.getLogger("moderndid")


class DaskEngine:
    """Engine for Dask DataFrames (:class:`moderndid.engine.protocol.Engine`)."""

    name = "dask"

    def prepare(self, data: Any, spec: DidSpec, settings: EngineSettings,
                planner: Planner) -> Prepared:
        """Validate ``data`` and persist its unit-table blocks on the workers."""
        from moderndid.dask.executor import DaskExecutor
        from moderndid.dask.prepare import prepare_dask

        if settings.n_jobs not in (1, None):
            logger.info("moderndid: n_jobs=%s is ignored on Dask (the scheduler's workers "
                        "apply)", settings.n_jobs)
        prepared = prepare_dask(data, spec, settings.n_partitions, planner)
        return Prepared(meta=prepared.meta,
                        executor=DaskExecutor(prepared.blocks, prepared.to_partition),
                        release=lambda: None, two_period=prepared.two_period,
                        subgroups=prepared.subgroups)


ENGINE = DaskEngine()
