"""Point-range plot of ``group`` and ``calendar`` aggregations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from moderndid.core.report import (
    AGGREGATION_LABELS,
    EVENT_STUDY_TYPES,
    fmt_label,
    level_label,
    normal_quantile,
)
from moderndid.errors import InvalidOptionError
from moderndid.plots._common import (
    POST_COLOR,
    PRE_COLOR,
    add_legend,
    alpha_of,
    as_float,
    band_note,
    draw_points,
    event_half_widths,
    figure_and_axes,
    require_matplotlib,
    zero_line,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_agg"]

AGG_PLOT_TYPES = ("group", "calendar")
"""The aggregation types :func:`plot_agg` draws."""
_REQUIRED = ("aggregation_type", "event_times", "att_by_event", "se_by_event", "overall_att")


def plot_agg(result: Any, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Plot a ``group`` or ``calendar`` aggregation as horizontal point-ranges.

    Parameters
    ----------
    result : AGGTEResult
        Output of ``aggte(..., type="group")`` (one row per cohort) or
        ``aggte(..., type="calendar")`` (one row per period).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new figure is created.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure that holds the axes (``ax``'s figure when ``ax`` is given).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    TypeError
        If ``result`` is not an aggregated result.
    InvalidOptionError
        If the aggregation type is not ``group`` or ``calendar`` (use
        :func:`plot_event_study` for ``dynamic``), or it holds no estimates.

    Notes
    -----
    Each row shows the estimate with its interval ``att -/+ critical_value * se``
    (simultaneous when ``result.uniform_bands`` is true, else pointwise). The overall
    ATT is a dashed vertical line, with its pointwise confidence interval shaded; a solid
    line marks 0. Rows whose standard error is missing have no interval.
    """
    require_matplotlib()
    from matplotlib.patches import Patch

    missing = [name for name in _REQUIRED if not hasattr(result, name)]
    if missing:
        hint = " For att_gt results use plot_gt." if hasattr(result, "att_gt") else ""
        raise TypeError(
            f"plot_agg expects an AGGTEResult of aggte; {type(result).__name__} has no "
            f"{', '.join(missing)}.{hint}"
        )
    kind = result.aggregation_type
    if kind not in AGG_PLOT_TYPES:
        if kind in EVENT_STUDY_TYPES:
            hint = "use plot_event_study for 'dynamic' (event-study) aggregations"
        elif kind == "simple":
            hint = "a 'simple' aggregation has only the overall ATT"
        else:
            hint = "use aggte(..., type='group') or type='calendar'"
        raise InvalidOptionError(
            f"plot_agg draws 'group' and 'calendar' aggregations, got {kind!r}: {hint}"
        )
    if result.event_times is None or result.att_by_event is None:
        raise InvalidOptionError(f"this {kind!r} aggregation holds no estimates to plot")
    labels = np.atleast_1d(np.asarray(result.event_times))
    n = labels.shape[0]
    att = as_float(result.att_by_event, "att_by_event", n)
    alpha = alpha_of(result)
    half = event_half_widths(result, n, alpha)
    what = AGGREGATION_LABELS[kind].label_header

    own_figure = ax is None
    fig, ax = figure_and_axes(ax, (6.4, max(3.4, 0.5 * n + 2.4)))

    pos = np.arange(n, dtype=float)
    note = band_note(result, alpha)
    names = [f"{what} ATT ({note})"]
    handles: list[Any] = [draw_points(ax, pos, att, half, color=PRE_COLOR, marker="o",
                                      label=names[0], horizontal=True)]

    overall = float(result.overall_att)
    overall_se = float(getattr(result, "overall_se", np.nan))
    if np.isfinite(overall):
        line = ax.axvline(overall, color=POST_COLOR, linestyle="--", linewidth=1.3, zorder=2,
                          gid="moderndid-overall-line")
        if np.isfinite(overall_se):
            z = normal_quantile(alpha)
            ax.axvspan(overall - z * overall_se, overall + z * overall_se, color=POST_COLOR,
                       alpha=0.15, linewidth=0, zorder=0, gid="moderndid-overall-band")
            handles.append((Patch(facecolor=POST_COLOR, alpha=0.3, linewidth=0), line))
            names.append(f"Overall ATT ({level_label(alpha)} CI)")
        else:
            handles.append(line)
            names.append("Overall ATT")
    zero_line(ax, vertical=True)

    ax.set_yticks(pos, labels=[fmt_label(v) for v in labels])
    ax.set_ylim(n - 0.5, -0.5)  # first group / period on top
    ax.set_ylabel(what)
    ax.set_xlabel("ATT")
    if title is not None:
        ax.set_title(title)
    add_legend(fig, ax, handles, names, title=None, outside=own_figure, ncols=2)
    return fig
