"""The Dask engine: `att_gt` and `ddd` on a Dask DataFrame, with the partition kernels of
the Spark engine (a secondary adapter; Spark is the primary distributed engine).

``moderndid.att_gt`` / ``moderndid.ddd`` dispatch a Dask DataFrame here by themselves;
:func:`dask_att_gt` and :func:`dask_ddd` are the same calls restricted to Dask input, run
on the current Dask scheduler (a ``distributed.Client`` if one is active). Importing
this module does not import dask.
"""

from __future__ import annotations

from moderndid.ddd.estimator import ddd
from moderndid.did.att_gt import att_gt
from moderndid.engine.registry import engine_entry

__all__ = ["dask_att_gt", "dask_ddd"]

dask_att_gt = engine_entry(att_gt, "dask", "dask_att_gt")
dask_ddd = engine_entry(ddd, "dask", "dask_ddd")
