"""R `triplediff` arguments that users bring over to :func:`ddd` and :func:`agg_ddd`.

Code ported from R passes argument names that have no parameter of the same name here.
Those with a meaning here are translated (``nboot`` is ``biters``, ``na.rm`` is
``na_rm``, ``ddd_obj`` is the result, ``cluster`` of ``agg_ddd`` is checked against the
fit); R's defaults of the others are accepted, since they ask for nothing; any other value,
and any unknown name, raises :class:`~moderndid.errors.InvalidOptionError` saying what to
use instead, never Python's bare ``TypeError`` for an unexpected keyword.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable
from typing import Any

from moderndid.errors import InvalidOptionError

_DML = ("double machine learning is not implemented here: use est_method='dr' (or 'ipw', "
        "'reg') with the covariates in xformla")
_PARALLEL = ("ddd runs in one process in memory; to spread the work pass a Spark or Dask "
             "DataFrame (or n_partitions=)")

#: R `triplediff` arguments (0.2.4, and ``dname`` / ``learners`` / ``n_folds`` of earlier
#: versions) with no namesake in :func:`moderndid.ddd`: the values accepted as no-ops (R's
#: defaults) and the advice for any other value.
DDD_R_ARGUMENTS: dict[str, tuple[tuple[Any, ...], str]] = {
    "use_parallel": ((False,), _PARALLEL),
    "cores": ((1, None), _PARALLEL),
    "skip_data_checks": ((False,), "the data checks run in the same pass as the estimation "
                                   "and cannot be skipped: drop the argument"),
    "dname": ((None,), "dname was removed from R triplediff; pass the treatment column as "
                       "gname (two periods: 0 for the comparison units)"),
    "learners": ((None,), _DML),
    "n_folds": ((None,), _DML),
}

def _unknown(function: str, name: str, known: Iterable[str]) -> InvalidOptionError:
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return InvalidOptionError(f"{function}() got an unexpected argument {name!r}.{hint}")


def _nboot(nboot: Any, biters: int | None, default: int | None) -> int | None:
    """R's ``nboot`` is our ``biters``; both given with different values is refused."""
    if nboot is None:
        return biters
    if not isinstance(nboot, numbers.Integral) or isinstance(nboot, bool) or nboot < 1:
        raise InvalidOptionError(f"nboot (R's name for biters) must be a positive integer, "
                                 f"got {nboot!r}")
    if biters is not None and biters != default and biters != nboot:
        raise InvalidOptionError(
            f"nboot={nboot} and biters={biters} disagree: pass biters only")
    return int(nboot)


def ddd_r_arguments(extra: dict[str, Any], *, biters: int, known: Iterable[str],
                    distributed: bool) -> int:
    """Interpret the R arguments ``extra`` passed to :func:`moderndid.ddd` and return
    ``biters`` (``nboot`` when given); ``known`` (the parameters of ``ddd``) gives the
    suggestions for unknown names, ``distributed`` refuses ``inffunc=True``."""
    extra = dict(extra)
    biters_out = _nboot(extra.pop("nboot", None), biters, 1000)
    assert biters_out is not None
    if "inffunc" in extra:
        inffunc = extra.pop("inffunc")
        if not isinstance(inffunc, bool):
            raise InvalidOptionError(f"inffunc must be True or False, got {inffunc!r}")
        if inffunc and distributed:
            raise InvalidOptionError(
                "inffunc=True: Spark and Dask executors do not bring unit-level influence "
                "functions to the driver; run ddd in memory for influence_func, or use "
                "agg_ddd and the result's moments (its Gram matrix) for inference")
        # In memory the influence functions are always returned (influence_func).
    for name, value in extra.items():
        if name not in DDD_R_ARGUMENTS:
            raise _unknown("ddd", name, known)
        accepted, advice = DDD_R_ARGUMENTS[name]
        if not any(value is a or (a is not None and value == a) for a in accepted):
            raise InvalidOptionError(f"{name}={value!r} (an R triplediff argument): {advice}")
    return biters_out


def agg_ddd_r_arguments(extra: dict[str, Any], *, biters: int | None, na_rm: bool,
                        known: Iterable[str]) -> tuple[int | None, bool]:
    """Interpret the R arguments ``extra`` passed to :func:`moderndid.agg_ddd` (``nboot``,
    ``na.rm``); return ``(biters, na_rm)`` after them. Unknown names (``known``: the
    parameters of ``agg_ddd``) and conflicting values raise :class:`InvalidOptionError`."""
    extra = dict(extra)
    biters = _nboot(extra.pop("nboot", None), biters, None)
    if "na.rm" in extra:
        value = extra.pop("na.rm")
        if not isinstance(value, bool):
            raise InvalidOptionError(f"na.rm must be True or False, got {value!r}")
        na_rm = na_rm or value
    if extra:
        raise _unknown("agg_ddd", next(iter(extra)), known)
    return biters, na_rm


def check_agg_cluster(cluster: Any, params: dict[str, Any]) -> None:
    """``agg_ddd(cluster=...)`` may only repeat the fit's clustering: the aggregations use
    the fit's Gram matrix, already summed within its clusters (R `triplediff` 0.2.3+ warns
    and falls back to unclustered SEs for another variable; here that is an error)."""
    if cluster is None:
        return
    asked = [cluster] if isinstance(cluster, str) else list(cluster)
    if not all(isinstance(c, str) for c in asked):
        raise InvalidOptionError(f"cluster must be a column name, got {cluster!r}")
    asked = [c for c in asked if c != params.get("idname")]
    fitted = list(params.get("cluster") or [])
    if asked != fitted:
        raise InvalidOptionError(
            f"agg_ddd cannot change clustering (ddd clustered on {fitted or 'units only'}, "
            f"agg_ddd asked for {asked or 'units only'}): pass cluster= to ddd instead")
