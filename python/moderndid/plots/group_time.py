"""Plot of group-time average treatment effects ATT(g, t), one panel per cohort."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from moderndid.core.report import as_array, fmt_label, normal_quantile
from moderndid.errors import InvalidOptionError
from moderndid.plots._common import (
    POST_COLOR,
    POST_MARKER,
    PRE_COLOR,
    PRE_MARKER,
    add_legend,
    alpha_of,
    as_float,
    band_note,
    draw_points,
    half_widths,
    new_figure,
    onset_line,
    require_matplotlib,
    set_integer_ticks,
    zero_line,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = ["plot_gt"]

_REQUIRED = ("groups", "times", "att_gt", "se_gt", "critical_value")


def _select_groups(all_groups: np.ndarray, groups: Any) -> list[Any]:
    cohorts = list(np.unique(all_groups))
    if groups is None:
        return cohorts
    asked = [groups] if np.isscalar(groups) else list(groups)
    if not asked:
        raise InvalidOptionError("groups must name at least one cohort")
    for g in asked:
        if g not in cohorts:
            raise InvalidOptionError(
                f"group {g!r} is not a cohort of the result; cohorts: "
                f"{', '.join(fmt_label(c) for c in cohorts)}"
            )
    return list(dict.fromkeys(cohorts[cohorts.index(g)] for g in asked))  # in order, once


def plot_gt(
    result: Any,
    *,
    groups: Sequence[Any] | None = None,
    ncols: int | None = None,
    sharey: bool = True,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Plot the group-time average treatment effects ATT(g, t), one panel per cohort.

    Parameters
    ----------
    result : MPResult
        Output of ``att_gt``.
    groups : sequence, optional
        Cohorts to show, in this order (default: every cohort, ascending).
    ncols : int, optional
        Panels per row (default: ``min(number of cohorts, 3)``).
    sharey : bool, default True
        Share the ATT axis between panels.
    title : str, optional
        Figure title (``suptitle``).
    fig : matplotlib.figure.Figure, optional
        Empty figure to draw into (for instance ``plt.figure(figsize=...)`` to manage the
        figure with pyplot); by default a new figure is created.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; ``fig.axes`` holds one axes per cohort, titled ``"Group <g>"``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    TypeError
        If ``result`` is not a group-time result.
    InvalidOptionError
        If ``groups`` names an unknown cohort, ``ncols`` is not a positive integer, or
        the result holds no estimates.

    Notes
    -----
    Intervals are ``att_gt -/+ critical_value * se_gt`` (the simultaneous band value when
    uniform bands were computed, else the pointwise normal quantile); estimates without
    standard error are drawn without interval. Pre-treatment periods (``t < g``) are
    blue circles, post-treatment periods (``t >= g``) red squares; a dashed line marks
    treatment onset between the last pre- and the first post-treatment period.
    """
    require_matplotlib()
    missing = [name for name in _REQUIRED if not hasattr(result, name)]
    if missing:
        hint = (" For aggregated results use plot_event_study or plot_agg."
                if hasattr(result, "aggregation_type") else "")
        raise TypeError(
            f"plot_gt expects the MPResult of att_gt; {type(result).__name__} has no "
            f"{', '.join(missing)}.{hint}"
        )
    all_groups = np.atleast_1d(as_array(result.groups))
    n = all_groups.shape[0]
    if n == 0:
        raise InvalidOptionError("the result holds no group-time estimates to plot")
    att = as_float(result.att_gt, "att_gt", n)
    se = as_float(result.se_gt, "se_gt", n)
    times_f = as_float(result.times, "times", n)
    alpha = alpha_of(result)
    cv = result.critical_value
    crit = normal_quantile(alpha) if cv is None else float(cv)
    half = half_widths(se, crit)

    cohorts = _select_groups(all_groups, groups)
    n_panels = len(cohorts)
    if ncols is None:
        ncols = min(n_panels, 3)
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise InvalidOptionError(f"ncols must be a positive integer, got {ncols!r}")
    ncols = int(min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)

    if fig is None:
        fig = new_figure((3.6 * ncols + 0.8, 2.7 * nrows + 1.0))
    else:
        fig.set_layout_engine("constrained")
    axes = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False)

    finite_t = times_f[np.isfinite(times_f)]
    xlim = (finite_t.min() - 0.5, finite_t.max() + 0.5) if finite_t.size else None
    handles: dict[str, Any] = {}
    for k, g in enumerate(cohorts):
        r, c = divmod(k, ncols)
        ax = axes[r, c]
        mask = all_groups == g
        t = times_f[mask]
        order = np.argsort(t, kind="stable")
        t, a, h = t[order], att[mask][order], half[mask][order]
        is_post = t >= float(g)
        zero_line(ax)
        if (~is_post).any() and is_post.any():
            onset_line(ax, (t[~is_post].max() + t[is_post].min()) / 2.0)
        for post in (False, True):
            sel = is_post if post else ~is_post
            if not sel.any():
                continue
            label = "Post-treatment" if post else "Pre-treatment"
            handles[label] = draw_points(ax, t[sel], a[sel], h[sel], label=label,
                                         color=POST_COLOR if post else PRE_COLOR,
                                         marker=POST_MARKER if post else PRE_MARKER)
        ax.set_title(f"Group {fmt_label(g)}")
        set_integer_ticks(ax.xaxis, finite_t)
        if xlim is not None:
            ax.set_xlim(*xlim)
        if k + ncols >= n_panels:  # nothing below this panel
            ax.set_xlabel("Time")
        if c == 0 or not sharey:
            ax.set_ylabel("ATT(g,t)")
    for ax in axes.flat[n_panels:]:
        ax.remove()

    order_labels = [x for x in ("Pre-treatment", "Post-treatment") if x in handles]
    add_legend(fig, axes[0, 0], [handles[x] for x in order_labels], order_labels,
               title=band_note(result, alpha), outside=True, ncols=len(order_labels))
    if title is not None:
        fig.suptitle(title)
    return fig
