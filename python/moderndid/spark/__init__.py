"""The Spark engine: `att_gt` and `ddd` on a PySpark DataFrame, distributed end to end.

``moderndid.att_gt`` / ``moderndid.ddd`` dispatch a PySpark DataFrame (classic or Spark
Connect) here by themselves; :func:`spark_att_gt` and :func:`spark_ddd` are the same calls
restricted to Spark input. Importing this module does not import pyspark.
"""

from __future__ import annotations

from typing import Any

from moderndid.ddd.estimator import ddd
from moderndid.did.aggte import aggte
from moderndid.did.att_gt import att_gt
from moderndid.did.results import to_arrow
from moderndid.engine.registry import engine_entry
from moderndid.spark.session import configure, jar_path
from moderndid.spark.sql import register, register_by

__all__ = ["att_gt_transform", "configure", "jar_path", "register", "register_by", "spark_att_gt",
           "spark_ddd"]

spark_att_gt = engine_entry(att_gt, "spark", "spark_att_gt")
spark_ddd = engine_entry(ddd, "spark", "spark_ddd")


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
        session = data.sparkSession
        result = spark_att_gt(data, yname, tname, idname=idname, gname=gname, spark=session,
                              **kwargs)
        table = to_arrow(aggte(result, type=aggregation) if aggregation else result)
        return session.createDataFrame(table)

    return transform
