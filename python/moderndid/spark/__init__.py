"""The Spark engine: `att_gt` on a PySpark DataFrame, distributed end to end.

Importing this module does not import pyspark; the functions do.
"""

from __future__ import annotations

import logging
from typing import Any

from moderndid.spark.session import configure, jar_path

__all__ = ["att_gt_transform", "configure", "jar_path", "spark_att_gt", "spark_ddd"]


def att_gt_transform(yname: str, tname: str, idname: str | None = None,
                     gname: str | None = None, *, aggregation: str | None = None,
                     **kwargs: Any) -> Any:
    """A function for ``DataFrame.transform``: estimate and return the results as Spark rows.

    ``panel.transform(att_gt_transform("y", "time", "id", "group", xformla="~ x1"))``
    returns a Spark DataFrame with one row per ATT(g, t) (``group, time, att, se,
    ci_lower, ci_upper, event_time, treatment_status``), or, with ``aggregation`` set to
    ``"dynamic"``, ``"group"``, ``"calendar"`` or ``"simple"``, the rows of that
    aggregation. The estimation runs distributed, as :func:`spark_att_gt`; only the small
    result table is created back in Spark. Other keyword arguments go to ``att_gt``.
    """

    def transform(data: Any) -> Any:
        from moderndid.did.aggte import aggte
        from moderndid.did.results import to_arrow

        session = data.sparkSession
        result = spark_att_gt(data, yname, tname, idname=idname, gname=gname, spark=session,
                              **kwargs)
        table = to_arrow(aggte(result, type=aggregation) if aggregation else result)
        return session.createDataFrame(table)

    return transform


def spark_ddd(data: Any, *args: Any, spark: Any = None, n_partitions: int | None = None,
              **kwargs: Any) -> Any:
    """Triple differences on a Spark DataFrame, run on the executors.

    Same arguments and results as :func:`moderndid.ddd`; ``spark`` picks the session
    (default: the active one, else a new local session with the moderndid jar) and
    ``n_partitions`` the partitions of the unit table. Nothing row-level is collected.
    """
    from moderndid.ddd.estimator import ddd
    from moderndid.did.att_gt import is_spark_dataframe
    from moderndid.errors import UnsupportedInputError
    from moderndid.spark.session import resolve_session

    if not is_spark_dataframe(data):
        raise UnsupportedInputError("spark_ddd needs a PySpark DataFrame; use moderndid.ddd "
                                    "for in-memory data")
    return ddd(data, *args, spark=resolve_session(spark), n_partitions=n_partitions, **kwargs)


def spark_att_gt(
    data: Any,
    yname: str,
    tname: str,
    idname: str | None = None,
    gname: str | None = None,
    xformla: str | None = None,
    weightsname: str | None = None,
    alpha: float = 0.05,
    cband: bool = True,
    boot: bool = False,
    biters: int = 1000,
    clustervars: str | list[str] | None = None,
    est_method: str = "dr",
    panel: bool = True,
    allow_unbalanced_panel: bool = False,
    control_group: str = "nevertreated",
    anticipation: float = 0,
    base_period: str = "varying",
    random_state: Any = None,
    n_jobs: int = 1,
    backend: str | None = None,
    *,
    spark: Any = None,
    n_partitions: int | None = None,
    max_cohorts: int | None = None,
) -> Any:
    """`att_gt` on a Spark DataFrame (classic or Spark Connect), run on the executors.

    Same arguments and result as :func:`moderndid.att_gt`, plus:

    Parameters
    ----------
    spark : SparkSession, optional
        Session to run on: by default the active session, else a new local session with
        the moderndid jar (``local[*]``).
    n_partitions : int, optional
        Partitions of the unit table. Default: the session's parallelism, raised so that
        no partition holds more than about 2 million input rows.
    max_cohorts : int, optional
        Accepted for ModernDiD compatibility; it has no effect. ModernDiD uses it to cap
        executor memory; here every pass handles the cells one at a time, and the moments
        pass, which needs all cells together, holds at most about 4 million values of the
        units' influence-function rows at once (fewer units per block when there are many
        cells), so executor memory is bounded by the partition size (``n_partitions``)
        whatever the number of cohorts.

    Notes
    -----
    Only column statistics and per-pass partial sums reach the driver. Covariate formulas
    must be sums of columns (``"~ x1 + x2"``). For repeated cross sections without
    ``idname``, bootstrap multipliers are keyed by row position, which depends on the
    input's partitioning; pass an id column for reproducible bootstrap draws.
    """
    from moderndid.did.att_gt import build_mp_result, validate_call
    from moderndid.did.fit import fit_att_gt
    from moderndid.spark.executor import SparkExecutor
    from moderndid.spark.prepare import prepare_spark
    from moderndid.spark.session import (
        register_aggregators,
        resolve_session,
        translated_errors,
    )

    if n_jobs not in (1, None):
        logging.getLogger("moderndid").info(
            "moderndid: n_jobs=%s is ignored on Spark (the session's parallelism applies)", n_jobs)
    opts, spec = validate_call(
        yname=yname, tname=tname, idname=idname, gname=gname, xformla=xformla,
        weightsname=weightsname, alpha=alpha, cband=cband, boot=boot, biters=biters,
        clustervars=clustervars, est_method=est_method, panel=panel,
        allow_unbalanced_panel=allow_unbalanced_panel, control_group=control_group,
        anticipation=anticipation, base_period=base_period, random_state=random_state,
        backend=backend, collect_influence=False,
    )
    session = resolve_session(spark)
    with translated_errors():
        prepared = prepare_spark(data, spec, session, n_partitions)
        try:
            executor = SparkExecutor(session, prepared.table, prepared.to_partition,
                                     register_aggregators(session), prepared.n_partitions)
            out = fit_att_gt(prepared.meta, executor, opts)
        finally:
            prepared.table.unpersist()
    return build_mp_result(out, prepared.meta, spec, opts, engine="spark")
