"""The Dask engine: `att_gt` and `ddd` on a Dask DataFrame, with the partition kernels of
the Spark engine (a secondary adapter; Spark is the primary distributed engine).

Importing this module does not import dask; the functions do. Panels only (balanced or
unbalanced); repeated cross sections are refused with a clear error.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["dask_att_gt", "dask_ddd", "is_dask_dataframe"]


def is_dask_dataframe(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame, without importing dask."""
    cls = type(data)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("dask")


def dask_att_gt(
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
    n_partitions: int | None = None,
) -> Any:
    """`att_gt` on a Dask DataFrame, run on the Dask workers.

    Same arguments and result as :func:`moderndid.att_gt`; the computation runs on the
    current Dask scheduler (a ``distributed.Client`` if one is active).

    Parameters
    ----------
    n_partitions : int, optional
        Partitions of the unit table after the shuffle by unit id. Default: the input's
        partitions, raised so that none holds more than about 2 million rows.

    Notes
    -----
    Only per-block statistics and per-pass partial sums reach the client. Covariate
    formulas must be sums of columns (``"~ x1 + x2"``); panels only.
    """
    from moderndid.dask.executor import DaskExecutor
    from moderndid.dask.prepare import prepare_dask
    from moderndid.did.att_gt import build_mp_result, validate_call
    from moderndid.did.fit import fit_att_gt

    if n_jobs not in (1, None):
        logging.getLogger("moderndid").info(
            "moderndid: n_jobs=%s is ignored on Dask (the scheduler's workers apply)", n_jobs)
    opts, spec = validate_call(
        yname=yname, tname=tname, idname=idname, gname=gname, xformla=xformla,
        weightsname=weightsname, alpha=alpha, cband=cband, boot=boot, biters=biters,
        clustervars=clustervars, est_method=est_method, panel=panel,
        allow_unbalanced_panel=allow_unbalanced_panel, control_group=control_group,
        anticipation=anticipation, base_period=base_period, random_state=random_state,
        backend=backend, collect_influence=False,
    )
    prepared = prepare_dask(data, spec, n_partitions)
    out = fit_att_gt(prepared.meta, DaskExecutor(prepared.blocks, prepared.to_partition), opts)
    return build_mp_result(out, prepared.meta, spec, opts, engine="dask")


def dask_ddd(data: Any, *args: Any, n_partitions: int | None = None, **kwargs: Any) -> Any:
    """Triple differences on a Dask DataFrame, run on the Dask workers.

    Same arguments and results as :func:`moderndid.ddd` (panels only); ``n_partitions``
    sets the partitions of the unit table. Nothing row-level reaches the client.
    """
    from moderndid.ddd.estimator import ddd
    from moderndid.errors import UnsupportedInputError

    if not is_dask_dataframe(data):
        raise UnsupportedInputError("dask_ddd needs a Dask DataFrame; use moderndid.ddd "
                                    "for in-memory data")
    return ddd(data, *args, n_partitions=n_partitions, **kwargs)


def dask_ddd_fit(data: Any, spec: Any, opts: Any, n_partitions: int | None
                 ) -> tuple[Any, Any]:
    """Prepare a Dask DataFrame and fit every DDD comparison on the workers."""
    from moderndid.dask.executor import DaskExecutor
    from moderndid.dask.prepare import prepare_dask
    from moderndid.ddd.estimator import check_subgroups, fit_ddd

    assert spec.pname is not None
    opts.collect_influence = False
    prepared = prepare_dask(data, spec, n_partitions)
    check_subgroups(prepared.subgroups, spec.pname)
    fit = fit_ddd(prepared.meta, DaskExecutor(prepared.blocks, prepared.to_partition), opts,
                  prepared.two_period)
    return fit, prepared.meta
