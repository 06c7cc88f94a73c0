"""`agg_ddd`: aggregations of staggered triple-difference effects."""

from __future__ import annotations

import inspect
import math
from typing import Any

from moderndid.ddd.porting import agg_ddd_r_arguments, check_agg_cluster
from moderndid.did.aggte import aggregate
from moderndid.did.results import AGGREGATION_TYPES, EVENT_STUDY_TYPES
from moderndid.errors import InvalidOptionError


def agg_ddd(
    ddd_result: Any = None,
    type: str = "eventstudy",
    balance_e: int | None = None,
    min_e: float = -math.inf,
    max_e: float = math.inf,
    na_rm: bool = False,
    boot: bool | None = None,
    biters: int | None = None,
    cband: bool | None = None,
    alpha: float | None = None,
    random_state: Any = None,
    *,
    cluster: str | list[str] | None = None,
    ddd_obj: Any = None,
    **r_arguments: Any,
) -> Any:
    """Aggregate staggered DDD(g, t) into simple, event-study, group or calendar effects.

    Cohorts are weighted by their share of all units (eligible or not),
    ``pg = mean(w * 1{G = g})``, as R `triplediff` does, and SEs include the estimation of
    those shares. Everything is computed from the fit's Gram matrix (no pass over the data);
    bootstrap draws are the fit's.

    Parameters
    ----------
    ddd_result : DDDMultiPeriodResult or DDDMultiPeriodRCResult
        A staggered result of :func:`moderndid.ddd`.
    type : {"eventstudy", "simple", "group", "calendar"}
        Aggregation.
    balance_e, min_e, max_e, na_rm, boot, biters, cband, alpha, random_state
        As in :func:`moderndid.aggte`.
    cluster : str or list of str, optional
        R `triplediff`'s ``cluster``. Clustering is set by :func:`moderndid.ddd` (its Gram
        matrix already sums influence functions within clusters), so the aggregations are
        clustered exactly when the fit is; naming the fit's variable (or the unit id)
        changes nothing, another variable raises
        :class:`~moderndid.errors.InvalidOptionError` (R warns and reports unclustered SEs).
    ddd_obj : DDDMultiPeriodResult, optional
        R's name for ``ddd_result``.
    **r_arguments
        R names: ``nboot`` (our ``biters``) and ``na.rm`` (``na_rm``, passed as
        ``**{"na.rm": True}``). Any other name raises
        :class:`~moderndid.errors.InvalidOptionError` (not ``TypeError``).

    Returns
    -------
    DDDAggResult
    """
    from moderndid.ddd.results import DDDAggResult

    if r_arguments:
        biters, na_rm = agg_ddd_r_arguments(r_arguments, biters=biters, na_rm=na_rm,
                                            known=_AGG_PARAMETERS)
    if ddd_obj is not None:
        if ddd_result is not None and ddd_result is not ddd_obj:
            raise InvalidOptionError("pass the ddd result once (ddd_result or R's ddd_obj)")
        ddd_result = ddd_obj
    if ddd_result is None:
        raise InvalidOptionError("agg_ddd needs the result of ddd (ddd_result)")
    moments = getattr(ddd_result, "moments", None)
    if moments is None:
        raise InvalidOptionError(
            "agg_ddd needs a staggered (multi-period) result of ddd; two-period results "
            "have a single ATT already"
        )
    if type not in (*AGGREGATION_TYPES, *EVENT_STUDY_TYPES):
        raise InvalidOptionError(
            f"type must be 'simple', 'eventstudy', 'group' or 'calendar', got {type!r}")
    params = dict(ddd_result.estimation_params)
    check_agg_cluster(cluster, params)
    params.setdefault("cband_requested", params.get("cband", False))
    agg = aggregate(moments, ddd_result.groups, ddd_result.times, ddd_result.att,
                    params, type="dynamic" if type in EVENT_STUDY_TYPES else type,
                    balance_e=balance_e, min_e=min_e, max_e=max_e, na_rm=na_rm, boot=boot, biters=biters, cband=cband,
                    alpha=alpha, random_state=random_state)
    return DDDAggResult.from_aggte(agg, "eventstudy" if type == "dynamic" else type)


_AGG_PARAMETERS = tuple(name for name, p in inspect.signature(agg_ddd).parameters.items()
                        if p.kind is not p.VAR_KEYWORD)
