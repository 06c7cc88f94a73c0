"""The Spark engine: `att_gt` and `ddd` on a PySpark DataFrame, distributed end to end.

``moderndid.att_gt`` / ``moderndid.ddd`` dispatch a PySpark DataFrame (classic or Spark
Connect) here by themselves; :func:`spark_att_gt` and :func:`spark_ddd` are the same calls
restricted to Spark input. Importing this module does not import pyspark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moderndid.ddd.agg_ddd import agg_ddd
from moderndid.ddd.estimator import ddd
from moderndid.did.aggte import aggte
from moderndid.did.att_gt import att_gt
from moderndid.engine.registry import engine_entry
from moderndid.spark.session import configure, jar_path
from moderndid.spark.sql import register, register_by

__all__ = ["agg_ddd_transform", "aggte_transform", "att_gt_transform", "configure",
           "ddd_transform", "jar_path", "register", "register_by", "spark_att_gt", "spark_ddd"]

spark_att_gt = engine_entry(att_gt, "spark", "spark_att_gt")
spark_ddd = engine_entry(ddd, "spark", "spark_ddd")


def att_gt_transform(yname: str, tname: str, idname: str | None = None,
                     gname: str | None = None, *, aggregation: str | None = None,
                     **kwargs: Any) -> Callable[[Any], Any]:
    """A function for ``DataFrame.transform``: estimate and return the results as Spark rows.

    ``panel.transform(att_gt_transform("y", "time", "id", "group", xformla="~ x1"))``
    returns a Spark DataFrame with one row per ATT(g, t) (``group, time, att, se,
    ci_lower, ci_upper, event_time, treatment_status``), or, with ``aggregation`` set to
    ``"dynamic"``, ``"group"``, ``"calendar"`` or ``"simple"``, the rows of that
    aggregation. The estimation runs distributed, as :func:`spark_att_gt`; only the small
    result table is created back in Spark. Other keyword arguments go to ``att_gt``.
    """
    return _transform(att_gt, aggte, yname, tname, idname, gname, aggregation, kwargs)


def aggte_transform(yname: str, tname: str, idname: str | None = None,
                    gname: str | None = None, *, type: str = "group",
                    **kwargs: Any) -> Callable[[Any], Any]:
    """``att_gt`` then ``aggte(type=...)`` as a ``DataFrame.transform`` function: the
    aggregation's rows (see :func:`att_gt_transform`)."""
    return att_gt_transform(yname, tname, idname, gname, aggregation=type, **kwargs)


def ddd_transform(yname: str, tname: str, idname: str | None = None, gname: str | None = None,
                  pname: str | None = None, *, aggregation: str | None = None,
                  **kwargs: Any) -> Callable[[Any], Any]:
    """``ddd`` as a ``DataFrame.transform`` function: one row per DDD(g, t) (the columns of
    the result's ``to_df``), or with ``aggregation`` (``"eventstudy"``, ``"group"``,
    ``"calendar"``, ``"simple"``) the rows of ``agg_ddd``. Runs distributed, as
    :func:`spark_ddd`; other keyword arguments go to ``ddd``."""
    return _transform(ddd, agg_ddd, yname, tname, idname, gname, aggregation,
                      {"pname": pname, **kwargs})


def agg_ddd_transform(yname: str, tname: str, idname: str | None = None,
                      gname: str | None = None, pname: str | None = None, *,
                      type: str = "eventstudy", **kwargs: Any) -> Callable[[Any], Any]:
    """``ddd`` then ``agg_ddd(type=...)`` as a ``DataFrame.transform`` function."""
    return ddd_transform(yname, tname, idname, gname, pname, aggregation=type, **kwargs)


def _transform(estimate: Callable[..., Any], aggregate: Callable[..., Any], yname: str,
               tname: str, idname: str | None, gname: str | None, aggregation: str | None,
               kwargs: dict[str, Any]) -> Callable[[Any], Any]:
    def transform(data: Any) -> Any:
        session = data.sparkSession
        result = engine_entry(estimate, "spark", f"{estimate.__name__}_transform")(
            data, yname, tname, idname=idname, gname=gname, spark=session, **kwargs)
        if aggregation is not None:
            result = aggregate(result, type=aggregation)
        return result.to_spark(session)

    return transform
