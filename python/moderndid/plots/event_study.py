"""Event-study plot of one or several ``dynamic`` aggregations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from moderndid.core.report import EVENT_STUDY_TYPES
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
    event_half_widths,
    figure_and_axes,
    onset_line,
    require_matplotlib,
    set_integer_ticks,
    zero_line,
)
from moderndid.plots.aggregate import AGG_PLOT_TYPES

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_event_study"]

_REQUIRED = ("event_times", "att_by_event", "se_by_event", "critical_values")
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf", "#7f7f7f", "#bcbd22")
_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "p")


def _event_series(result: Any, position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Event times, estimates, half-widths (NaN: no interval) and band note of one result."""
    where = "result" if position < 0 else f"result[{position}]"
    missing = [name for name in _REQUIRED if not hasattr(result, name)]
    if missing:
        raise TypeError(
            f"plot_event_study expects an event-study result (e.g. aggte(..., "
            f"type='dynamic')); {where} of type {type(result).__name__} has no "
            f"{', '.join(missing)}"
        )
    kind = getattr(result, "aggregation_type", "dynamic")
    if kind not in EVENT_STUDY_TYPES:
        hint = (" Use plot_agg for 'group' and 'calendar' aggregations."
                if kind in AGG_PLOT_TYPES else "")
        raise InvalidOptionError(
            f"plot_event_study needs a 'dynamic' (event-study) aggregation; {where} has "
            f"aggregation_type {kind!r}.{hint}"
        )
    if result.event_times is None or result.att_by_event is None:
        raise InvalidOptionError(f"{where} holds no per-event-time estimates to plot")
    event = as_float(result.event_times, "event_times")
    n = event.shape[0]
    att = as_float(result.att_by_event, "att_by_event", n)
    alpha = alpha_of(result)
    return event, att, event_half_widths(result, n, alpha), band_note(result, alpha)


def _colors_for(colors: Any, n_results: int) -> list[tuple[Any, Any]]:
    """(pre colour, post colour) for each result."""
    from matplotlib.colors import is_color_like

    if colors is None:
        if n_results == 1:
            return [(PRE_COLOR, POST_COLOR)]
        return [(_PALETTE[i % len(_PALETTE)],) * 2 for i in range(n_results)]
    single = is_color_like(colors)
    if not single and (isinstance(colors, str) or not isinstance(colors, Sequence)):
        raise InvalidOptionError(
            f"colors must be a colour or a sequence of colours, got {colors!r}"
        )
    cols = [colors] if single else list(colors)
    bad = [c for c in cols if not is_color_like(c)]
    if bad:
        raise InvalidOptionError(f"not a matplotlib colour: {bad[0]!r}")
    if n_results == 1 and len(cols) not in (1, 2):
        raise InvalidOptionError(
            "for a single event study, colors is one colour or two (pre-treatment, "
            f"post-treatment), got {len(cols)}"
        )
    if n_results == 1:
        return [(cols[0], cols[-1])]
    if len(cols) != n_results:
        got = "a single colour" if single else len(cols)
        raise InvalidOptionError(f"colors must give one colour per result ({n_results}), got {got}")
    return [(c, c) for c in cols]


def _labels_for(labels: Any, n_results: int) -> list[str]:
    if labels is None:  # one result needs no name
        return [] if n_results == 1 else [f"Model {i + 1}" for i in range(n_results)]
    if isinstance(labels, str):
        labels = [labels]
    names = [str(x) for x in labels]
    if len(names) != n_results:
        raise InvalidOptionError(
            f"labels must give one name per result ({n_results}), got {len(names)}"
        )
    return names


def plot_event_study(
    result: Any,
    *,
    ax: Axes | None = None,
    labels: Sequence[str] | str | None = None,
    colors: Any = None,
    title: str | None = None,
    xlabel: str = "Event time",
    ylabel: str = "ATT",
    ref_line: bool = True,
    show_pre: bool = True,
    dodge: float = 0.1,
) -> Figure:
    """Plot an event study: effects by time relative to treatment with their intervals.

    Parameters
    ----------
    result : AGGTEResult or sequence of AGGTEResult
        Output of ``aggte(..., type="dynamic")``, or several of them to compare on one
        axes (e.g. specifications). Any object with ``event_times``, ``att_by_event``,
        ``se_by_event`` and ``critical_values`` attributes is accepted (duck typing).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new figure is created.
    labels : str or sequence of str, optional
        Legend names of the results (default ``"Model 1"``, ``"Model 2"``, ... when
        several are given). For a single result, the name titles the legend.
    colors : colour or sequence of colours, optional
        Several results: one colour per result (pre- and post-treatment estimates then
        differ by open / filled markers). A single result: one colour for all points or
        two colours ``(pre-treatment, post-treatment)``; default blue and red.
    title : str, optional
        Axes title.
    xlabel, ylabel : str
        Axis labels.
    ref_line : bool, default True
        Draw a horizontal line at 0 and a dashed vertical line at event time -0.5
        (treatment onset).
    show_pre : bool, default True
        Show pre-treatment event times (``e < 0``).
    dodge : float, default 0.1
        Horizontal distance between the points of successive results at the same event
        time, so that several event studies do not overlap (ignored for one result).

    Returns
    -------
    matplotlib.figure.Figure
        The figure that holds the axes (``ax``'s figure when ``ax`` is given).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    TypeError
        If a result lacks the event-study attributes.
    InvalidOptionError
        If a result is an aggregation other than ``dynamic``, or ``labels`` / ``colors``
        do not match the number of results.

    Notes
    -----
    Intervals are ``att -/+ critical_value * se`` with the result's own critical values:
    the simultaneous (uniform) band value when ``result.uniform_bands`` is true, else the
    pointwise normal quantile. An estimate whose standard error is missing (NaN) is
    drawn as a point without interval. Pre-treatment estimates are drawn with circles,
    post-treatment ones with squares (one result) or open / filled markers (several).
    """
    require_matplotlib()
    from matplotlib.lines import Line2D

    if isinstance(result, (list, tuple)):
        if not result:
            raise InvalidOptionError("plot_event_study needs at least one result")
        series = [_event_series(r, i) for i, r in enumerate(result)]
    else:
        series = [_event_series(result, -1)]
    n_results = len(series)
    multi = n_results > 1
    names = _labels_for(labels, n_results)
    color_pairs = _colors_for(colors, n_results)
    dodge = float(dodge)
    if not np.isfinite(dodge) or dodge < 0:
        raise InvalidOptionError(f"dodge must be a non-negative number, got {dodge!r}")

    own_figure = ax is None
    fig, ax = figure_and_axes(ax, (8.6, 4.6) if multi else (7.0, 4.8))

    shown_events: list[np.ndarray] = []
    legend_handles: list[Any] = []
    legend_labels: list[str] = []
    any_pre = False
    for i, (event, att, half, _) in enumerate(series):
        offset = (i - (n_results - 1) / 2.0) * dodge if multi else 0.0
        keep = np.ones(event.shape, dtype=bool) if show_pre else event >= 0
        shown_events.append(event[keep])
        handle = None  # several results: one legend entry each, the last phase drawn
        for post in (False, True):
            sel = keep & ((event >= 0) if post else (event < 0))
            if not sel.any():
                continue
            phase = "Post-treatment" if post else "Pre-treatment"
            if multi:
                marker, label = _MARKERS[i % len(_MARKERS)], f"{names[i]}: {phase.lower()}"
            else:
                marker, label = (POST_MARKER if post else PRE_MARKER), phase
            handle = draw_points(ax, event[sel] + offset, att[sel], half[sel],
                                 color=color_pairs[i][int(post)], marker=marker, label=label,
                                 filled=post or not multi, markersize=5.0 if multi else 6.0)
            any_pre = any_pre or not post
            if not multi:
                legend_handles.append(handle)
                legend_labels.append(label)
        if multi and handle is not None:
            legend_handles.append(handle)
            legend_labels.append(names[i])

    if multi:  # marker fill tells the phase apart when colours tell the results apart
        for post, text in ((False, "Pre-treatment (open)"), (True, "Post-treatment (filled)")):
            if post or any_pre:
                legend_handles.append(Line2D([], [], linestyle="none", marker="o", color="0.35",
                                             markerfacecolor="0.35" if post else "white"))
                legend_labels.append(text)

    if ref_line:
        zero_line(ax)
        onset_line(ax, -0.5)
    events = np.concatenate(shown_events) if shown_events else np.empty(0)
    set_integer_ticks(ax.xaxis, events)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)

    notes = {note for *_, note in series}
    legend_title = notes.pop() if len(notes) == 1 else None
    if not multi and names:
        legend_title = f"{names[0]}\n{legend_title}"
    if legend_handles:
        add_legend(fig, ax, legend_handles, legend_labels, title=legend_title,
                   outside=own_figure, ncols=1 if multi else 2,
                   side="right upper" if multi else "lower center")
    return fig
